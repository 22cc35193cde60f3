"""The hostile corpus against the real ``ocrpipe serve`` (REST and gRPC), on SQLite and PostgreSQL.

Every crafted file goes to every endpoint that takes a document. The answer must be a documented 4xx code
the case allows (or a successful read where the case says a read is right), never a 5xx; a job is refused
before its ``202`` when the file can never be read; a normal client keeps being served throughout; the
server is healthy afterwards and its log holds no traceback.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import httpx
import pytest
from rapidfuzz.distance import Levenshtein
from testsupport.hostile import MALFORMED, Case, corpus, long_lines, pdf_pages
from testsupport.images import mixed_line_text, text_line, text_page
from testsupport.server import Server, wait_job

from ocrpipe.protocol import ingest_pb2, ingest_pb2_grpc

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

CASES = corpus()
ERROR_CODE = "ocrpipe-error-code"


class HostileServer(Server):
    serve_grpc = True


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostileServer]:
    """One server per database back end for the whole module (small limits keep refusals cheap)."""
    from testsupport.databases import pg_database

    env = {"OCRPIPE_MAX_UPLOAD_MB": "4", "OCRPIPE_MAX_PIXELS": "20000000", "OCRPIPE_MAX_PAGES": "50"}
    data_dir = tmp_path_factory.mktemp(f"hostile-{request.param}")
    if request.param == "sqlite":
        srv = HostileServer(data_dir, env=env).start()
        try:
            yield srv
        finally:
            srv.stop()
        return
    with pg_database() as url:
        srv = HostileServer(data_dir, "--database-url", url, env=env).start()
        try:
            yield srv
        finally:
            srv.stop()


def _peak_growth_mb(server: HostileServer, work: Callable[[], None]) -> float:
    """How far the server's peak resident memory rose above its resident memory while ``work`` ran (the
    kernel's high-water mark is reset first: ``/proc/PID/clear_refs``)."""
    assert server.proc is not None
    proc = Path(f"/proc/{server.proc.pid}")
    (proc / "clear_refs").write_text("5")

    def status(field: str) -> float:
        line = next(x for x in (proc / "status").read_text().splitlines() if x.startswith(field + ":"))
        return int(line.split()[1]) / 1024

    before = status("VmRSS")
    work()
    return status("VmHWM") - before


def test_page_boxes_are_checked_before_rendering(server: HostileServer) -> None:
    """Runs first, on a quiet server: a needle page (36,000,000 x 0.001 pt) and a 1.8e8 pt wide one are refused
    from their page box on every endpoint, before anything is rendered (the peak memory hardly moves)."""
    needle, wide = pdf_pages([(36_000_000, 0.001)]), pdf_pages([(1.8e8, 100)])
    answers: list[tuple[str, int, str]] = []

    def send() -> None:
        with server.client() as client:
            for name, data in (("needle.pdf", needle), ("wide.pdf", wide)):
                upload = (name, data, "application/pdf")
                for route in ("/v1/ocr", "/v1/detection", "/v1/jobs"):
                    resp = client.post(route, files={"file": upload})
                    answers.append((route, resp.status_code, _code(resp)))
                resp = client.post("/v1/recognition", files={"files": upload})
                answers.append(("/v1/recognition", resp.status_code, _code(resp)))
                resp = client.post("/v1/batch_ocr", files=[("files", upload)])
                entry = resp.json()["documents"][0]
                answers.append(("/v1/batch_ocr", resp.status_code, (entry.get("error") or {}).get("code")))

    growth = _peak_growth_mb(server, send)
    refused = [(route, status) for route, status, code in answers
               if code == "image_too_small" and status == (200 if route == "/v1/batch_ocr" else 400)]
    assert len(refused) == len(answers) == 10, answers
    assert growth < 100, f"peak memory rose {growth:.0f} MB"


def _code(resp: httpx.Response) -> str:
    try:
        return str(resp.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return f"<no error body: {resp.text[:120]!r}>"


def _verdict(case: Case, resp: httpx.Response, where: str) -> str | None:
    """What is wrong with this answer (None: it is a right one)."""
    if resp.status_code >= 500:
        return f"{case.name} on {where}: {resp.status_code} {resp.text[:200]}"
    if resp.status_code == 200:
        return None if case.ok else f"{case.name} on {where}: read although it must be refused"
    code = _code(resp)
    return None if code in case.expect else f"{case.name} on {where}: {resp.status_code} {code}"


def _batch_verdict(case: Case, resp: httpx.Response) -> str | None:
    if resp.status_code != 200:
        return _verdict(case, resp, "/v1/batch_ocr")
    entry = resp.json()["documents"][0]
    if not entry.get("error"):
        return None if case.ok else f"{case.name} in batch: read although it must be refused"
    code = entry["error"]["code"]
    return None if code in case.expect else f"{case.name} in batch: {code}"


class Bystander:
    """A normal client OCRing a real page in a loop while the hostile traffic runs."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.page = text_page(["정상 요청 123"])
        self.answers: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=120) as client:
            while not self._stop.is_set():
                resp = client.post("/v1/ocr", files={"file": ("ok.png", self.page, "image/png")})
                self.answers.append(resp.status_code)
                time.sleep(0.2)

    def __enter__(self) -> Bystander:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(150)


def test_every_document_endpoint(server: HostileServer) -> None:
    wrong: list[str | None] = []
    with Bystander(server.url) as bystander, server.client() as client:
        for case in CASES:
            upload = {"file": (case.filename, case.data, "application/octet-stream")}
            for route in ("/v1/ocr", "/v1/detection"):
                wrong.append(_verdict(case, client.post(route, files=upload), route))
            resp = client.post("/v1/recognition", files={"files": upload["file"]})
            wrong.append(_verdict(case, resp, "/v1/recognition"))
            wrong.append(_batch_verdict(case, client.post("/v1/batch_ocr", files=[("files", upload["file"])])))
    assert not [w for w in wrong if w], "\n".join(w for w in wrong if w)
    assert bystander.answers and set(bystander.answers) == {200}, bystander.answers
    _assert_healthy(server)


def test_jobs_refuse_unreadable_files_before_202(server: HostileServer) -> None:
    accepted: list[tuple[Case, str]] = []
    wrong: list[str | None] = []
    with server.client() as client:
        for case in CASES:
            resp = client.post("/v1/jobs", files={"file": (case.filename, case.data, "application/octet-stream")})
            if resp.status_code == 202:
                accepted.append((case, resp.json()["id"]))
                wrong.append(None if case.ok else f"{case.name}: acknowledged although it can never be read")
            else:
                wrong.append(_verdict(case, resp, "/v1/jobs"))
        for case, job_id in accepted:
            job = wait_job(client, job_id, timeout=300)
            code = (job.get("error") or {}).get("code")
            if job["status"] == "failed" and code not in case.expect:
                wrong.append(f"{case.name}: job failed with {job['error']}")
    assert not [w for w in wrong if w], "\n".join(w for w in wrong if w)
    _assert_healthy(server)


def test_grpc_submit(server: HostileServer) -> None:
    channel = grpc.insecure_channel(server.target)
    stub = ingest_pb2_grpc.IngestStub(channel)
    accepted: list[tuple[Case, str]] = []
    wrong: list[str] = []
    for case in CASES:
        allowed = case.expect | {"too_many_pages"}  # a printout upload is one page
        try:
            reply = stub.Submit(ingest_pb2.SubmitRequest(image=case.data, filename=case.filename), timeout=60)
        except grpc.RpcError as exc:
            code = dict(exc.trailing_metadata() or ()).get(ERROR_CODE)
            if exc.code() == grpc.StatusCode.INTERNAL or code not in allowed:
                wrong.append(f"{case.name}: {exc.code()} {code} {exc.details()}")
            continue
        if not case.ok:
            wrong.append(f"{case.name}: Submit accepted a file that can never be read")
        accepted.append((case, reply.job_id))
    for case, job_id in accepted:
        res = _finished(stub, job_id)
        if res.status == "failed" and res.error_code not in case.expect | {"too_many_pages"}:
            wrong.append(f"{case.name}: template job failed with {res.error_code}")
        elif res.status not in ("succeeded", "failed"):
            wrong.append(f"{case.name}: job still {res.status}")
    channel.close()
    assert not wrong, "\n".join(wrong)
    _assert_healthy(server)


def _finished(stub: ingest_pb2_grpc.IngestStub, job_id: str, timeout: float = 300) -> ingest_pb2.JobResult:
    deadline = time.monotonic() + timeout
    while True:
        res = stub.GetResult(ingest_pb2.GetResultRequest(job_id=job_id), timeout=30)
        if res.status in ("succeeded", "failed") or time.monotonic() > deadline:
            return res
        time.sleep(0.3)


def test_long_line_crops(server: HostileServer) -> None:
    """Line images up to 30,000 px long are read (in pieces past the recognisers' width cap) or refused with
    a documented code, never an engine failure; a real 600-character line (9,500 px at 37 px high) is read
    through the server's batched recogniser with a CER under 0.05 (squeezed to the cap it read 0.53)."""
    line = mixed_line_text(2, 600)

    wrong: list[str | None] = []
    with server.client() as client:
        for case in long_lines():
            resp = client.post("/v1/recognition", files={"files": (case.filename, case.data, "image/png")})
            wrong.append(_verdict(case, resp, "/v1/recognition"))
        resp = client.post("/v1/recognition", files={"files": ("long.png", text_line(line, 24), "image/png")})
    assert not [w for w in wrong if w], "\n".join(w for w in wrong if w)
    assert resp.status_code == 200, resp.text[:300]
    read = resp.json()["results"][0]["text"]
    assert Levenshtein.distance(read, line) / len(line) <= 0.05, read


def test_page_images_of_a_long_pdf(server: HostileServer) -> None:
    """A page image of a 50-page PDF job renders that page only: twelve at once leave the peak memory
    nearly where it was, the answer is the page at the server's PDF resolution, and a page past the end is
    ``not_found``."""
    with server.client() as client:
        resp = client.post("/v1/jobs", files={"file": ("long.pdf", pdf_pages([(595, 842)] * 50), "application/pdf")})
        assert resp.status_code == 202, resp.text[:300]
        job_id = resp.json()["id"]
        # The job's worker reads the same A4 pages meanwhile: one A4 page OCRed first has grown the engine's
        # buffers to that size, so the peak below is the page images' own.
        warm = client.post("/v1/ocr", files={"file": ("a4.pdf", pdf_pages([(595, 842)]), "application/pdf")})
        assert warm.status_code == 200, warm.text[:300]
        answers: list[httpx.Response] = []

        def fetch_pages() -> None:
            with ThreadPoolExecutor(12) as pool:
                answers.extend(pool.map(lambda i: client.get(f"/v1/jobs/{job_id}/pages/{i}"), [49] * 12))

        growth = _peak_growth_mb(server, fetch_pages)
        assert {r.status_code for r in answers} <= {200, 429}, {r.status_code for r in answers}
        ok = [r for r in answers if r.status_code == 200]
        assert ok and all(r.headers["content-type"] == "image/jpeg" for r in ok)
        from PIL import Image

        assert Image.open(io.BytesIO(ok[0].content)).size == (1653, 2339)  # A4 at 200 dpi
        # 12 A4 renders with their JPEGs; decoding the whole upload per request rose ~0.9 GB
        assert growth < 400, f"peak memory rose {growth:.0f} MB for 12 page images"
        missing = client.get(f"/v1/jobs/{job_id}/pages/50")
        assert missing.status_code == 404 and _code(missing) == "not_found"


def test_watch_from_the_far_future(server: HostileServer) -> None:
    channel = grpc.insecure_channel(server.target)
    stub = ingest_pb2_grpc.IngestStub(channel)
    stream = stub.WatchResults(ingest_pb2.WatchRequest(since_unix_ms=2**62), timeout=3)
    with pytest.raises(grpc.RpcError) as info:
        for _ in stream:
            pass
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, info.value
    assert dict(info.value.trailing_metadata() or ()).get(ERROR_CODE) == "invalid_argument"
    channel.close()


def test_unknown_grpc_method(server: HostileServer) -> None:
    channel = grpc.insecure_channel(server.target)
    call = channel.unary_unary("/ocrpipe.v1.Ingest/NoSuchMethod")
    with pytest.raises(grpc.RpcError) as info:
        call(b"", timeout=10)
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
    channel.close()


MALFORMED_CODES = {"invalid_argument", "file_too_large", "unsupported_media_type"}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_multipart(server: HostileServer, name: str) -> None:
    headers, body = MALFORMED[name]
    with server.client() as client:
        for route in ("/v1/ocr", "/v1/jobs", "/v1/batch_ocr"):
            resp = client.post(route, headers=headers, content=body)
            assert 400 <= resp.status_code < 500, f"{route}: {resp.status_code} {resp.text[:200]}"
            assert _code(resp) in MALFORMED_CODES, f"{route}: {_code(resp)}"


def _assert_healthy(server: HostileServer) -> None:
    with server.client() as client:
        assert client.get("/readyz").status_code == 200
        resp = client.post("/v1/ocr", files={"file": ("p.png", text_page(["확인 42"]), "image/png")})
        assert resp.status_code == 200, resp.text[:300]
    log = server.log()
    assert "Traceback" not in log, log[log.find("Traceback") - 2000:][:6000]



def test_healthy_after_everything(server: HostileServer) -> None:
    """Runs last: after the malformed bodies, the far-future watch and the unknown method too."""
    _assert_healthy(server)
