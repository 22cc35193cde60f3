"""``ocrpipe serve --templates DIR``: gRPC template jobs read with the user's templates, ``GET /v1/templates``
lists them, the folder is reloaded when it changes and a broken file is refused while the last good set
stays. The user template is made by ``ocrpipe template new`` from a clean page of a layout no built-in
template covers (``ko_form_v1``)."""

from __future__ import annotations

import io
import json
import signal
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from testsupport.server import Server, wait_for, wait_job

from ocrpipe.cli import main
from ocrpipe.protocol import ingest_pb2 as pb
from ocrpipe.synth.printouts import make_page
from ocrpipe.synth.printouts.heldout import HELDOUT

from .ingest_helpers import GrpcServer, query, wait_result

pytestmark = pytest.mark.integration


def _user_template(folder: Path, work: Path) -> None:
    img, truth = make_page(HELDOUT["ko_form_v1"], np.random.default_rng(606), strength=0.0)
    Image.fromarray(img).save(work / "ref.png")
    (work / "v.json").write_text(json.dumps({k: f["text"] for k, f in truth["fields"].items()}, ensure_ascii=False),
                                 encoding="utf-8")
    assert main(["template", "new", str(work / "ref.png"), "--values", str(work / "v.json"), "--name", "clinic_form",
                 "--out", str(folder)]) == 0


def _listing(srv: GrpcServer) -> dict:
    with srv.client() as http:
        r = http.get("/v1/templates")
        assert r.status_code == 200, r.text
        return r.json()


def _wait(srv: GrpcServer, ok, timeout: float = 20.0) -> dict:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        listing = _listing(srv)
        if ok(listing):
            return listing
        time.sleep(0.5)
    raise AssertionError(f"the template folder was not reloaded: {listing}")


def test_served_user_templates_read_grpc_jobs_and_reload(tmp_path: Path) -> None:
    folder = tmp_path / "templates"
    _user_template(folder, tmp_path)
    srv = GrpcServer(tmp_path / "data", "--templates", str(folder))
    (tmp_path / "data").mkdir()
    srv.start()
    try:
        listing = _listing(srv)
        names = {t["name"]: t for t in listing["templates"]}
        assert names["clinic_form"]["source"] == str(folder / "clinic_form.yaml") and "ark_v1" in names
        assert listing["reload_error"] is None

        # a mildly degraded scan: this tests the served path; accuracy on scans is the evaluation's job
        img, truth = make_page(HELDOUT["ko_form_v1"], np.random.default_rng(707), strength=0.5)
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="PNG")
        stub = srv.stub()
        reply = stub.Submit(pb.SubmitRequest(image=buf.getvalue(), filename="form.png",
                                             idempotency_key=uuid.uuid4().hex), timeout=30)
        res = wait_result(stub, reply.job_id)
        assert res.status == "succeeded" and res.mode == "template" and res.template == "clinic_form", res
        rows = query(srv.db_url, "SELECT field, value FROM template_fields WHERE job_id = :j", j=reply.job_id)
        assert {r[0] for r in rows} == set(truth["fields"])
        assert sum(dict(rows)[k] == truth["fields"][k]["value"] for k in truth["fields"]) >= 3

        (folder / "broken.yaml").write_text("name: [unclosed\n", encoding="utf-8")
        listing = _wait(srv, lambda lst: lst["reload_error"])
        assert "broken.yaml" in listing["reload_error"]
        assert "clinic_form" in {t["name"] for t in listing["templates"]}  # the last good set stays

        (folder / "broken.yaml").unlink()
        text = (folder / "clinic_form.yaml").read_text(encoding="utf-8").replace("name: clinic_form",
                                                                                "name: clinic_form_2", 1)
        (folder / "clinic_form_2.yaml").write_text(text, encoding="utf-8")
        listing = _wait(srv, lambda lst: "clinic_form_2" in {t["name"] for t in lst["templates"]})
        assert listing["reload_error"] is None

        (folder / "dup.yaml").write_text(text, encoding="utf-8")  # a second clinic_form_2: refused, named
        listing = _wait(srv, lambda lst: lst["reload_error"])
        assert "dup.yaml" in listing["reload_error"] and "clinic_form_2.yaml" in listing["reload_error"]
    finally:
        srv.stop()


def test_sighup_reloads_the_folder_without_dropping_jobs(tmp_path: Path) -> None:
    """With the folder watch off (``OCRPIPE_TEMPLATE_WATCH_S=0``) only SIGHUP reloads it: template jobs
    queued or running at the signal all finish, a new template is served after it, and a broken file sent
    in by a second SIGHUP is refused while the last good set keeps reading pages. REST template jobs
    (``POST /v1/template-jobs``) use the served set as gRPC ones do."""
    folder = tmp_path / "templates"
    _user_template(folder, tmp_path)
    (tmp_path / "data").mkdir()
    srv = Server(tmp_path / "data", "--templates", str(folder), env={"OCRPIPE_TEMPLATE_WATCH_S": "0"}).start()
    assert srv.proc is not None

    def submit(http: Any, seed: int) -> str:
        img, _ = make_page(HELDOUT["ko_form_v1"], np.random.default_rng(seed), strength=0.3)
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="PNG")
        resp = http.post("/v1/template-jobs", files={"file": (f"p{seed}.png", buf.getvalue(), "image/png")})
        assert resp.status_code == 202, resp.text
        job_id: str = resp.json()["id"]
        return job_id

    def names(http: Any) -> set[str]:
        return {t["name"] for t in http.get("/v1/templates").json()["templates"]}

    try:
        with srv.client() as http:
            jobs = [submit(http, seed) for seed in (11, 12, 13)]
            text = (folder / "clinic_form.yaml").read_text(encoding="utf-8")
            (folder / "clinic_form_2.yaml").write_text(text.replace("name: clinic_form", "name: clinic_form_2", 1),
                                                       encoding="utf-8")
            assert "clinic_form_2" not in names(http)  # nothing watches the folder
            pending = [j for j in jobs if http.get(f"/v1/jobs/{j}").json()["status"] in ("queued", "running")]
            assert pending, "every job finished before the signal; the test would prove nothing"
            srv.proc.send_signal(signal.SIGHUP)
            wait_for(lambda: "clinic_form_2" in names(http), 20, "the SIGHUP reload")
            assert http.get("/v1/templates").json()["reload_error"] is None
            for j in jobs:  # none dropped: each read with the user template
                assert wait_job(http, j)["status"] == "succeeded"
                result = http.get(f"/v1/jobs/{j}/result").json()
                assert result["mode"] == "template" and result["template"] in {"clinic_form", "clinic_form_2"}
                assert len(http.get(f"/v1/jobs/{j}/fields").json()["fields"]) == 4

            (folder / "broken.yaml").write_text("name: [unclosed\n", encoding="utf-8")
            srv.proc.send_signal(signal.SIGHUP)
            error = wait_for(lambda: http.get("/v1/templates").json()["reload_error"], 20, "the refused reload")
            assert "broken.yaml" in error and "invalid YAML" in error
            assert {"clinic_form", "clinic_form_2"} <= names(http)  # the last good set stays
            later = submit(http, 14)
            assert wait_job(http, later)["status"] == "succeeded"
            assert http.get(f"/v1/jobs/{later}/result").json()["mode"] == "template"
            assert srv.proc.poll() is None  # SIGHUP never stops the server
    finally:
        srv.stop()
    assert "template reload refused" in srv.log()
