"""API keys for gRPC: a server interceptor reading ``authorization: Bearer <key>`` from call metadata.

The same keys, scopes, tenants and rate limits as the REST API (:mod:`ocrpipe.server.security.auth`):
missing/invalid/revoked key → ``UNAUTHENTICATED``, missing scope → ``PERMISSION_DENIED``, over the key's
rate → ``RESOURCE_EXHAUSTED``. The health service stays public. Servicers read the caller with
:func:`current_principal` (a context variable set around the handler, also while a response stream is
being produced) and answer ``NOT_FOUND`` for another tenant's job, exactly as for a missing one.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator
from typing import Any

import grpc

from ocrpipe.errors import ErrorCode
from ocrpipe.server.errors import grpc_abort
from ocrpipe.server.security.audit import AuditLog
from ocrpipe.server.security.auth import FAILED_AUTH_PER_MIN, AuthError, SecurityState
from ocrpipe.server.security.keys import KeyStore, Principal, Scope
from ocrpipe.server.security.settings import SecuritySettings

_principal: contextvars.ContextVar[Principal | None] = contextvars.ContextVar("grpc_principal", default=None)

PUBLIC_PREFIXES = ("/grpc.health.v1.", "/grpc.reflection.")


def current_principal() -> Principal | None:
    """The authenticated caller of the gRPC call being handled (None when auth is not enforced)."""
    return _principal.get()


def current_tenant() -> str | None:
    """The tenant whose jobs the current gRPC caller may see (None: unrestricted, auth not enforced)."""
    p = _principal.get()
    return p.tenant if p is not None else None


def scope_for(method: str) -> Scope:
    """The scope a gRPC method needs, from its name: Submit*/Upload*/Delete* → submit, Get*/Watch*/List* →
    read, anything else → admin (unknown methods fail closed)."""
    name = method.rsplit("/", 1)[-1]
    if name.startswith(("Submit", "Upload", "Delete")):
        return Scope.SUBMIT
    if name.startswith(("Get", "Watch", "List")):
        return Scope.READ
    return Scope.ADMIN


def peer_host(peer: str) -> str:
    """The address of a gRPC peer string without scheme and port (``ipv4:10.0.0.5:4711`` → ``10.0.0.5``,
    ``ipv6:[::1]:4711`` → ``::1``), the form REST sees, so one counter serves both transports."""
    scheme, _, rest = peer.partition(":")
    if scheme not in ("ipv4", "ipv6"):
        return peer
    if rest.startswith("["):
        return rest[1:].partition("]")[0]
    return rest.rsplit(":", 1)[0]



class AuthInterceptor(grpc.ServerInterceptor):
    """Authenticate and authorise every call (except the health service) before its handler runs."""

    def __init__(self, engine: Any, settings: SecuritySettings | None = None, *, audit: bool = True,
                 state: SecurityState | None = None) -> None:
        # ``state``: the REST app's, so both transports share one key cache and one failed-key counter per
        # address (a guesser gains nothing by alternating between them).
        self.state = state or SecurityState(settings or SecuritySettings())
        self.keys: KeyStore = self.state.bind(engine)
        self.audit = AuditLog(engine, background=True) if audit else None

    def intercept_service(self, continuation: Callable[[Any], Any], details: Any) -> Any:
        handler = continuation(details)
        method: str = details.method
        if handler is None or method.startswith(PUBLIC_PREFIXES):
            return handler
        return _wrap(handler, lambda context: self.check(method, context))

    def check(self, method: str, context: grpc.ServicerContext) -> Principal | None:
        """The caller's principal (None when auth is not enforced); raises
        :class:`~ocrpipe.server.security.auth.AuthError`."""
        if not self.state.enforced(self.keys):
            return None
        metadata = {k.lower(): v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)}
        value = metadata.get("authorization", "")
        scheme, _, token = value.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthError(ErrorCode.UNAUTHORIZED, "send the API key as 'authorization: Bearer <key>'")
        peer = "peer:" + peer_host(context.peer() or "?")
        known = self.keys.recently_verified(token.strip())
        if not known and self.state.failures.peek(peer, FAILED_AUTH_PER_MIN) > 0:
            raise AuthError(ErrorCode.RATE_LIMITED, "too many invalid API keys from this address")
        principal = self.keys.authenticate(token.strip())
        if principal is None:
            self.state.failures.acquire(peer, FAILED_AUTH_PER_MIN)
            raise AuthError(ErrorCode.UNAUTHORIZED, "the API key is invalid or was revoked")
        limit = principal.rate_limit_per_min or self.state.settings.rate_limit_per_min
        if self.state.limiter.acquire(principal.key_id, limit) > 0:
            raise AuthError(ErrorCode.RATE_LIMITED,
                            f"key {principal.name!r} is limited to {limit:g} requests per minute")
        scope = scope_for(method)
        if not principal.has(scope):
            raise AuthError(ErrorCode.FORBIDDEN,
                            f"key {principal.name!r} lacks the {scope.value!r} scope needed for {method}")
        return principal

    def record(self, action: str, principal: Principal | None, job_id: str | None, status: int = 0) -> None:
        """Write an audit entry for a gRPC read/submit (servicers call this; status 0 = OK, as gRPC)."""
        if self.audit is not None:
            self.audit.record(action, principal=principal, job_id=job_id, transport="grpc", status=status)


def _wrap(handler: Any, check: Callable[[grpc.ServicerContext], Principal | None]) -> Any:
    """A copy of ``handler`` whose behaviour first runs ``check`` and sets the principal context."""

    def guard(behavior: Callable[..., Any], streaming_response: bool) -> Callable[..., Any]:
        def unary(request: Any, context: grpc.ServicerContext) -> Any:
            token = _enter(check, context)
            try:
                return behavior(request, context)
            finally:
                _principal.reset(token)

        def stream(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            token = _enter(check, context)
            try:
                yield from behavior(request, context)
            finally:
                _principal.reset(token)

        return stream if streaming_response else unary

    fields = {}
    for kind in ("unary_unary", "unary_stream", "stream_unary", "stream_stream"):
        behavior = getattr(handler, kind)
        fields[kind] = guard(behavior, kind.endswith("_stream")) if behavior is not None else None
    return handler._replace(**fields)


def _enter(check: Callable[[grpc.ServicerContext], Principal | None],
           context: grpc.ServicerContext) -> contextvars.Token[Principal | None]:
    try:
        principal = check(context)
    except AuthError as exc:
        grpc_abort(context, exc)
    return _principal.set(principal)


# ---- server construction -----------------------------------------------------------------------------


def make_server(engine: Any, settings: SecuritySettings | None = None, *, max_workers: int = 8,
                options: Any = ()) -> grpc.Server:
    """A ``grpc.server`` whose every call (except health) goes through :class:`AuthInterceptor`."""
    from concurrent.futures import ThreadPoolExecutor

    return grpc.server(ThreadPoolExecutor(max_workers, thread_name_prefix="grpc"), options=options,
                       interceptors=[AuthInterceptor(engine, settings)])


def add_port(server: grpc.Server, address: str, settings: SecuritySettings) -> int:
    """Bind ``address`` with TLS (mutual with ``tls_client_ca``) when configured; returns the port."""
    from ocrpipe.server.security.tls import grpc_server_credentials

    if settings.tls:
        assert settings.tls_cert is not None and settings.tls_key is not None
        creds = grpc_server_credentials(settings.tls_cert, settings.tls_key, settings.tls_client_ca)
        return int(server.add_secure_port(address, creds))
    return int(server.add_insecure_port(address))
