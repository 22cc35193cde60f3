"""The gRPC auth interceptor on a real gRPC server (generic handlers, raw bytes), plain and over mutual
TLS: UNAUTHENTICATED without/with a revoked key, PERMISSION_DENIED without the scope, the tenant seen by
handlers (also inside a response stream), and the health service left public."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from ocrpipe.protocol.channel import client_channel, grpc_channel_credentials
from ocrpipe.server.security.grpc_auth import add_port, current_tenant, make_server, scope_for
from ocrpipe.server.security.keys import KeyStore, Scope
from ocrpipe.server.security.settings import SecuritySettings
from ocrpipe.server.storage.db import get_engine, migrate


def _ident(b: bytes) -> bytes:
    return b


def _handlers() -> grpc.GenericRpcHandler:
    def get(request: bytes, context: grpc.ServicerContext) -> bytes:
        return f"tenant={current_tenant()}".encode()

    def watch(request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
        for i in range(2):
            yield f"{i}:{current_tenant()}".encode()

    return grpc.method_handlers_generic_handler("test.Jobs", {
        "GetThing": grpc.unary_unary_rpc_method_handler(get, _ident, _ident),
        "SubmitThing": grpc.unary_unary_rpc_method_handler(get, _ident, _ident),
        "WatchThings": grpc.unary_stream_rpc_method_handler(watch, _ident, _ident),
    })


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory, certs: Any) -> Iterator[dict[str, Any]]:
    d: Path = tmp_path_factory.mktemp("grpc")
    engine = get_engine(f"sqlite:///{d / 'db.sqlite'}")
    migrate(engine)
    keys = KeyStore(engine)
    tokens = {name: keys.create(name, scopes, tenant)[1] for name, scopes, tenant in
              [("reader", "read", "clinic-a"), ("writer", "submit", "clinic-a"), ("gone", "read", "x")]}
    keys.revoke("gone")
    good, _ = certs
    tls = SecuritySettings(tls_cert=good.server_cert, tls_key=good.server_key, tls_client_ca=good.ca_cert)
    server = make_server(engine, SecuritySettings(), max_workers=4)
    server.add_generic_rpc_handlers((_handlers(),))
    health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
    plain = add_port(server, "127.0.0.1:0", SecuritySettings())
    secure = add_port(server, "127.0.0.1:0", tls)
    server.start()
    yield {"tokens": tokens, "plain": plain, "secure": secure}
    server.stop(0)
    engine.dispose()


def call(channel: grpc.Channel, method: str, token: str | None, stream: bool = False) -> Any:
    md = [("authorization", f"Bearer {token}")] if token else None
    if stream:
        return [r.decode() for r in channel.unary_stream(method, _ident, _ident)(b"", metadata=md, timeout=10)]
    return channel.unary_unary(method, _ident, _ident)(b"", metadata=md, timeout=10).decode()


def status_of(fn: Any) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as info:
        fn()
    return info.value.code()


def test_scopes_follow_method_names() -> None:
    assert scope_for("/ocrpipe.v1.Ingest/Submit") is Scope.SUBMIT
    assert scope_for("/ocrpipe.v1.Ingest/GetResult") is Scope.READ
    assert scope_for("/ocrpipe.v1.Ingest/WatchResults") is Scope.READ
    assert scope_for("/ocrpipe.v1.Ingest/Compact") is Scope.ADMIN


def test_grpc_keys_scopes_and_tenants(setup: dict[str, Any]) -> None:
    t = setup["tokens"]
    with grpc.insecure_channel(f"127.0.0.1:{setup['plain']}") as ch:
        assert call(ch, "/test.Jobs/GetThing", t["reader"]) == "tenant=clinic-a"
        assert call(ch, "/test.Jobs/WatchThings", t["reader"], stream=True) == ["0:clinic-a", "1:clinic-a"]
        assert status_of(lambda: call(ch, "/test.Jobs/GetThing", None)) == grpc.StatusCode.UNAUTHENTICATED
        assert status_of(lambda: call(ch, "/test.Jobs/GetThing", "ocp_0123456789ab_" + "x" * 43)) \
            == grpc.StatusCode.UNAUTHENTICATED
        assert status_of(lambda: call(ch, "/test.Jobs/GetThing", t["gone"])) == grpc.StatusCode.UNAUTHENTICATED
        assert status_of(lambda: call(ch, "/test.Jobs/SubmitThing", t["reader"])) \
            == grpc.StatusCode.PERMISSION_DENIED
        assert status_of(lambda: call(ch, "/test.Jobs/WatchThings", t["writer"], stream=True)) \
            == grpc.StatusCode.PERMISSION_DENIED
        assert call(ch, "/test.Jobs/SubmitThing", t["writer"]) == "tenant=clinic-a"
        health_stub = health_pb2_grpc.HealthStub(ch)
        assert health_stub.Check(health_pb2.HealthCheckRequest(), timeout=10).status == \
            health_pb2.HealthCheckResponse.SERVING  # public, no key


def test_client_channel_sends_the_key_over_plain_and_mutual_tls(setup: dict[str, Any], certs: Any) -> None:
    good, _ = certs
    key = setup["tokens"]["reader"]
    with client_channel(f"127.0.0.1:{setup['plain']}", api_key=key) as ch:
        assert call(ch, "/test.Jobs/GetThing", None) == "tenant=clinic-a"
        assert call(ch, "/test.Jobs/WatchThings", None, stream=True) == ["0:clinic-a", "1:clinic-a"]
    with client_channel(f"localhost:{setup['secure']}", api_key=key, ca_file=good.ca_cert,
                        cert_file=good.client_cert, key_file=good.client_key) as ch:
        assert call(ch, "/test.Jobs/GetThing", None) == "tenant=clinic-a"
    with client_channel(f"127.0.0.1:{setup['plain']}") as ch:
        assert status_of(lambda: call(ch, "/test.Jobs/GetThing", None)) == grpc.StatusCode.UNAUTHENTICATED


def test_grpc_mutual_tls(setup: dict[str, Any], certs: Any) -> None:
    good, rogue = certs
    target = f"localhost:{setup['secure']}"
    creds = grpc_channel_credentials(good.ca_cert, good.client_cert, good.client_key)
    with grpc.secure_channel(target, creds) as ch:
        assert call(ch, "/test.Jobs/GetThing", setup["tokens"]["reader"]) == "tenant=clinic-a"
    for bad in (grpc_channel_credentials(rogue.ca_cert, good.client_cert, good.client_key),  # untrusted server
                grpc_channel_credentials(good.ca_cert),  # no client certificate
                grpc_channel_credentials(good.ca_cert, rogue.client_cert, rogue.client_key)):  # untrusted client
        with grpc.secure_channel(target, bad) as ch:
            assert status_of(lambda ch=ch: call(ch, "/test.Jobs/GetThing", setup["tokens"]["reader"])) \
                == grpc.StatusCode.UNAVAILABLE
