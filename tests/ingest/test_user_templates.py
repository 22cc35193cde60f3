"""``ocrpipe serve --templates DIR``: gRPC template jobs read with the user's templates, ``GET /v1/templates``
lists them, the folder is reloaded when it changes and a broken file is refused while the last good set
stays. The user template is made by ``ocrpipe template new`` from a clean page of a layout no built-in
template covers (``ko_form_v1``)."""

from __future__ import annotations

import io
import json
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

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
