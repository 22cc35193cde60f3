"""``ocrpipe serve --ray`` on a real two-node Ray cluster (separate ``ray start`` processes): the ingress,
detector and recogniser deployments answer ``POST /v1/ocr`` with the Document ``ocrpipe serve`` answers for
the same page, run jobs from the PostgreSQL store, keep the service's keys and limits, and lose no request
to a killed replica and none silently to a lost node."""

from __future__ import annotations

import concurrent.futures
import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from testsupport.databases import create_keys, pg_available, pg_database
from testsupport.images import text_page
from testsupport.server import Server, wait_for, wait_job

pytestmark = [pytest.mark.ray, pytest.mark.integration, pytest.mark.postgres, pytest.mark.timeout(900)]

LINES = ["진료비 영수증 2026-03-14", "환자 번호 A-20931 김민지", "Total 48,500 KRW (VAT incl.)"]
# one node (1 CPU) holds a whole copy of the service (0.2 + 2 x 0.25 + 0.3), so that after losing the other
# node Serve can place every lost replica again, whichever replicas that node held
SMALL = ["--ray-ingress-cpus", "0.2", "--ray-detector-cpus", "0.25", "--ray-recognizer-cpus", "0.3",
         "--ray-detector-replicas", "2", "--max-upload-mb", "1"]


def essentials(doc: dict[str, Any]) -> dict[str, Any]:
    """Engine, models, text, and each line's and word's text and box (as tests/service/test_parity.py)."""
    return {
        "engine": doc["engine"], "models": doc["models"], "text": doc["text"],
        "pages": [{"size": (p["width"], p["height"]),
                   "lines": [(ln["text"], ln["box"], [(w["text"], w["box"]) for w in ln["words"]])
                             for ln in p["lines"]]}
                  for p in doc["pages"]],
    }


def replica_pids(cluster: Any, deployment: str) -> list[int]:
    """Processes of this cluster whose title is a Serve replica of ``deployment``."""
    from ocrpipe.cluster.local import _tree

    found = []
    for node in cluster.nodes:
        for pid in _tree(node.proc.pid):
            try:
                title = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if f"ServeReplica:ocrpipe:{deployment}" in title:
                found.append(pid)
    return found


def killed_replica_loses_no_request(cluster: Any, server: Server, key: str, page: bytes,
                                    expected: dict[str, Any]) -> None:
    """4 clients x 2 requests; one detector replica is SIGKILLed while they run: every request still
    answers the same Document (the ingress sends a page whose replica died again; Serve replaces it)."""
    pids = replica_pids(cluster, "detector")
    assert len(pids) == 2, pids

    def client_run(_: int) -> list[httpx.Response]:
        with server.client(key) as client:
            return [client.post("/v1/ocr", files={"file": ("page.png", page, "image/png")}) for _ in range(2)]

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        runs = [pool.submit(client_run, i) for i in range(4)]
        time.sleep(1.5)  # the first pages are on the detectors
        os.kill(pids[0], signal.SIGKILL)
        responses = [r for run in runs for r in run.result(timeout=600)]
    assert [r.status_code for r in responses] == [200] * 8, [r.text for r in responses if r.status_code != 200]
    assert all(essentials(r.json()) == expected for r in responses)
    print("replica died under a call and was retried:", "a replica died under a call" in server.log())


def losing_the_worker_node_answers_cleanly(cluster: Any, server: Server, key: str, page: bytes,
                                           expected: dict[str, Any]) -> None:
    """4 clients x 2 requests; the worker node (its every process) is SIGKILLed while they run: each request
    answers the same Document or a retryable 503 ``replica_lost`` (and, only when the ingress replica itself
    was on that node, Ray's proxy's own 500/503 for the requests it held), or, when its connection was to the
    lost node's proxy, loses the connection; none waits past the client's 120 s timeout; then the service
    answers again."""
    from ocrpipe.cluster.local import _tree

    worker = next(n for n in cluster.nodes if not n.head and n.alive())
    there = set(_tree(worker.proc.pid))
    placed = {d: len(set(replica_pids(cluster, d)) & there) for d in ("ingress", "detector", "recognizer")}
    ingress_there = placed["ingress"] > 0
    assert sum(placed.values()) > 0, placed  # Serve spreads replicas: the node to lose holds some

    def client_run(_: int) -> list[httpx.Response | httpx.TransportError]:
        out: list[httpx.Response | httpx.TransportError] = []
        with server.client(key) as client:
            for _ in range(2):
                try:
                    out.append(client.post("/v1/ocr", files={"file": ("page.png", page, "image/png")}))
                except httpx.TimeoutException:
                    raise  # a hang fails the test
                except httpx.TransportError as exc:  # the connection was to the lost node's proxy
                    out.append(exc)
        return out

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        runs = [pool.submit(client_run, i) for i in range(4)]
        time.sleep(1.5)  # the first pages are on the replicas
        cluster.kill_node(worker)
        responses = [r for run in runs for r in run.result(timeout=600)]
    outcomes = []
    for r in responses:
        if isinstance(r, httpx.TransportError):
            # every node runs a Serve proxy on the port (SO_REUSEPORT on loopback): a connection the lost
            # node's proxy held is dropped, as a client of a lost machine's address sees it
            assert isinstance(r, httpx.RemoteProtocolError | httpx.ConnectError | httpx.ReadError), repr(r)
            outcomes.append("connection lost")
        elif r.status_code == 200:
            assert essentials(r.json()) == expected
            outcomes.append("200")
        elif r.headers.get("content-type", "").startswith("application/json"):
            assert (r.status_code, r.json()["error"]["code"]) == (503, "replica_lost"), r.text
            outcomes.append("503 replica_lost")
        else:  # Ray's proxy answered: the ingress replica holding the request died with the node
            assert ingress_there and r.status_code in (500, 503), (r.status_code, r.text)
            outcomes.append(f"{r.status_code} from the proxy")

    def answers() -> bool:
        with server.client(key) as client:
            return client.post("/v1/ocr", files={"file": ("page.png", page, "image/png")}).status_code == 200

    wait_for(answers, 300, "the service to answer after the node loss", every=2.0)
    print(f"worker node lost (replicas there: {placed}):", sorted(outcomes))


class RayServer(Server):
    stop_wait = 60.0  # the deployments are deleted on SIGTERM


def test_the_cluster_serves_the_same_api(cluster, tmp_path: Path) -> None:
    if not pg_available():
        pytest.skip("PostgreSQL is not reachable")
    page = text_page(LINES)
    local = Server(tmp_path / "local").start()
    try:
        with local.client() as client:
            expected = client.post("/v1/ocr", files={"file": ("page.png", page, "image/png")})
            boxes = client.post("/v1/detection", files={"file": ("page.png", page, "image/png")})
    finally:
        local.stop()
    assert expected.status_code == 200, expected.text
    assert boxes.status_code == 200, boxes.text

    with pg_database() as url:
        key = create_keys(url, {"clinic": {"scopes": ["submit", "read"]}})["clinic"]
        server = RayServer(tmp_path / "ray", "--ray", cluster.address, "--database-url", url, *SMALL)
        server.start(timeout=420)
        try:
            with server.client(key) as client:
                resp = client.post("/v1/ocr", files={"file": ("page.png", page, "image/png")})
                assert resp.status_code == 200, resp.text
                assert essentials(resp.json()) == essentials(expected.json())
                assert resp.json()["timings_ms"]["detect"] > 0
                detection = client.post("/v1/detection", files={"file": ("page.png", page, "image/png")})
                assert detection.status_code == 200, detection.text
                assert detection.json()["pages"] == boxes.json()["pages"]

                job = client.post("/v1/jobs", files={"file": ("page.png", page, "image/png")})
                assert job.status_code == 202, job.text
                done = wait_job(client, job.json()["id"], timeout=300)
                assert done["status"] == "succeeded", done
                result = client.get(f"/v1/jobs/{done['id']}/result")
                assert essentials(result.json()) == essentials(expected.json())

                big = client.post("/v1/ocr", files={"file": ("big.png", b"\x89PNG" + b"0" * 2_000_000,
                                                             "image/png")})
                assert (big.status_code, big.json()["error"]["code"]) == (413, "file_too_large")
                bad = client.post("/v1/ocr", files={"file": ("bad.png", b"\x89PNG\r\n\x1a\nxx", "image/png")})
                assert (bad.status_code, bad.json()["error"]["code"]) == (400, "corrupt_image")
            anonymous = httpx.post(server.url + "/v1/ocr", files={"file": ("page.png", page, "image/png")},
                                   timeout=60)
            assert (anonymous.status_code, anonymous.json()["error"]["code"]) == (401, "unauthorized")
            killed_replica_loses_no_request(cluster, server, key, page, essentials(expected.json()))
            losing_the_worker_node_answers_cleanly(cluster, server, key, page, essentials(expected.json()))
        finally:
            server.stop()
            if not any(n.alive() for n in cluster.nodes if not n.head):
                cluster.add_worker()  # the next tests get their two nodes back
        log = server.log()
        for deployment in ("ingress", "detector", "recognizer"):  # the three were deployed, and removed on stop
            assert "Replica(id=" in log and f"deployment='{deployment}', app='ocrpipe') is stopped" in log
