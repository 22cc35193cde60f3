"""The web page's template editor against the real server (``ocrpipe serve --templates DIR``), in headless
Chromium: upload a reference and its values, see the fields ``template new`` proposes drawn over it, rename
one and move one, try the template on another scan, save it; then ``GET /v1/templates`` lists it and a REST
template job reads a page with it into field rows. Also the editor's REST errors and its admin scope.

The layout is one no built-in template covers (``ko_form_v1``: a Korean form with a fixed header)."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import yaml
from PIL import Image
from testsupport.databases import create_keys
from testsupport.server import Server, wait_for, wait_job

from ocrpipe.synth.printouts import make_page
from ocrpipe.synth.printouts.heldout import HELDOUT

pytestmark = pytest.mark.integration

DRAFTS = "/v1/admin/templates/drafts"


def _png(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A clean reference of the form with the values printed on it, and a mildly degraded scan of another
    page of the same form with its truth."""
    d = tmp_path_factory.mktemp("editor-pages")
    ref, ref_truth = make_page(HELDOUT["ko_form_v1"], np.random.default_rng(606), strength=0.0)
    scan, truth = make_page(HELDOUT["ko_form_v1"], np.random.default_rng(707), strength=0.5)
    (d / "reference.png").write_bytes(_png(ref))
    (d / "scan.png").write_bytes(_png(scan))
    return {"reference": d / "reference.png", "scan": d / "scan.png",
            "values": {k: f["text"] for k, f in ref_truth["fields"].items()},
            "truth": {k: f["value"] for k, f in truth["fields"].items()}}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("editor")
    (data / "templates").mkdir()
    srv = Server(data, "--templates", str(data / "templates")).start()
    yield srv
    srv.stop()


def _draft(client: httpx.Client, pages: dict[str, Any], name: str, values: Any = None) -> httpx.Response:
    return client.post(DRAFTS, files={"file": ("ref.png", pages["reference"].read_bytes(), "image/png")},
                       data={"values": json.dumps(pages["values"] if values is None else values, ensure_ascii=False),
                             "name": name})


def _code(resp: httpx.Response) -> str:
    code: str = resp.json()["error"]["code"]
    return code


def test_make_try_save_and_serve_a_template_in_the_browser(server: Server, browser: Any, pages: dict[str, Any],
                                                           tmp_path: Path) -> None:
    page = browser.new_page(viewport={"width": 1500, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)  # CSP violations too
    page.goto(server.url + "/#templates")
    page.wait_for_selector("#templates-view:not([hidden])")
    page.wait_for_function("() => document.querySelectorAll('#tpl-served tbody tr').length > 0")
    assert "ark_v1" in page.inner_text("#tpl-served")

    # the reference and the values printed on it
    page.set_input_files("#tpl-ref", str(pages["reference"]))
    page.fill("#tpl-name", "clinic_form")
    values = list(pages["values"].items())
    for _ in values[1:]:
        page.click("#tpl-add-value")
    rows = page.locator("#tpl-values tbody tr")
    for i, (k, v) in enumerate(values):
        rows.nth(i).locator(".v-name").fill(k)
        rows.nth(i).locator(".v-value").fill(v)
    page.click("#tpl-propose")
    page.wait_for_function("() => document.querySelector('#tpl-status').textContent.includes('fields proposed')",
                           timeout=180_000)
    assert "error" not in (page.get_attribute("#tpl-status", "class") or ""), page.inner_text("#tpl-status")
    # proposing again replaces the draft, and the first one (its reference image) is discarded
    first = page.evaluate("() => tpl.draft.id")
    page.click("#tpl-propose")
    page.wait_for_function(f"() => tpl.draft && tpl.draft.id !== {first!r} && "
                           "document.querySelector('#tpl-status').textContent.includes('fields proposed')",
                           timeout=180_000)  # the status is set once the new fields are drawn
    with server.client() as http:
        wait_for(lambda: http.get(f"{DRAFTS}/{first}").status_code == 404, 10, "the first draft to be discarded")

    # the proposed fields, one box each over the reference
    names = page.eval_on_selector_all("#tpl-fields .f-name", "els => els.map(e => e.value)")
    assert names == [k for k, _ in values]
    boxes = page.eval_on_selector_all("#tpl-svg .field-box", "els => els.map(e => e.dataset.name)")
    assert boxes == names
    assert page.evaluate("() => document.querySelector('#tpl-svg image').getAttribute('href')").startswith("blob:")

    # rename reg_no (to a Korean name) and move the date's box by dragging it
    row = names.index("reg_no")
    page.locator("#tpl-fields tbody tr").nth(row).locator(".f-name").fill("등록번호")
    page.locator("#tpl-fields tbody tr").nth(row).locator(".f-name").press("Tab")
    page.wait_for_selector('#tpl-svg .field-box[data-name="등록번호"]')
    box = page.locator('#tpl-svg .field-box[data-name="date"]')
    before = [float(box.get_attribute(a) or 0) for a in ("x", "y", "width", "height")]
    r = box.bounding_box()
    assert r is not None
    scale = r["width"] / before[2]  # screen pixels per reference pixel
    page.mouse.move(r["x"] + r["width"] / 2, r["y"] + r["height"] / 2)
    page.mouse.down()
    page.mouse.move(r["x"] + r["width"] / 2 + 8 * scale, r["y"] + r["height"] / 2 + 3 * scale, steps=4)
    page.mouse.up()
    after = [float(box.get_attribute(a) or 0) for a in ("x", "y", "width", "height")]
    assert after[0] - before[0] == pytest.approx(8, abs=1.5) and after[1] - before[1] == pytest.approx(3, abs=1.5)
    assert after[2:] == pytest.approx(before[2:], abs=0.5)

    # resize msds's box by its corner handle
    msds = page.locator('#tpl-svg .field-box[data-name="msds"]')
    width = float(msds.get_attribute("width") or 0)
    hb = page.locator('#tpl-svg [data-field="3"] .handle').bounding_box()
    assert hb is not None
    page.mouse.move(hb["x"] + hb["width"] / 2, hb["y"] + hb["height"] / 2)
    page.mouse.down()
    page.mouse.move(hb["x"] + hb["width"] / 2 + 12 * scale, hb["y"] + hb["height"] / 2, steps=4)
    page.mouse.up()
    assert float(msds.get_attribute("width") or 0) - width == pytest.approx(12, abs=1.5)

    # add a field, retype it, remove it again
    page.click("#tpl-add-field")
    new = page.locator("#tpl-fields tbody tr").nth(4)
    new.locator(".f-type").select_option("number")
    new.locator(".f-extra").fill("mm")
    new.locator(".f-extra").press("Tab")
    added = page.evaluate("() => currentTemplate().fields[4]")
    assert added["type"] == "number" and added["unit"] == "mm" and "validation" not in added
    assert page.locator("#tpl-svg .field-box").count() == 5
    new.locator(".remove-field").click()
    assert page.locator("#tpl-svg .field-box").count() == 4

    # each field shows the label it is anchored to; an anchor can be dropped
    first_row = page.locator("#tpl-fields tbody tr").nth(0)
    assert first_row.locator(".anchor").count() >= 1 and "이름" in first_row.locator(".f-anchors").inner_text()
    labels = page.locator("#tpl-svg .label-box").count()
    first_row.locator(".drop-anchor").first.click()
    assert page.evaluate("() => currentTemplate().fields[0].label") is None
    assert page.locator("#tpl-svg .label-box").count() == labels - 1

    # the reference still reads back as printed, the renamed field included
    page.click("#tpl-check")
    page.wait_for_selector("#tpl-results .result", timeout=120_000)
    assert "all valid" in page.inner_text("#tpl-results .result h4")
    assert page.locator("#tpl-results .result li").count() == 0, page.inner_text("#tpl-results")
    assert page.inner_text('#tpl-results tr[data-field="등록번호"] .value') == pages["values"]["reg_no"]

    # try it on another scan: per-field value, validity and issues
    page.set_input_files("#tpl-try-files", str(pages["scan"]))
    page.click("#tpl-try")
    page.wait_for_selector("#tpl-results .result", timeout=120_000)
    card = page.inner_text("#tpl-results .result h4")
    assert "matched" in card and "not matched" not in card, card
    tried = {tr.get_attribute("data-field"): (tr.locator(".value").inner_text(), tr.locator(".valid").inner_text())
             for tr in page.locator("#tpl-results tbody tr").all()}
    assert set(tried) == {"name", "등록번호", "date", "msds"}
    assert tried["등록번호"] == (pages["truth"]["reg_no"], "yes")
    assert tried["date"] == (pages["truth"]["date"], "yes")  # still read after the move
    assert page.locator("#tpl-results .result svg polygon").count() == 4
    shots = Path(os.environ.get("OCRPIPE_SCREENSHOT_DIR", tmp_path))
    page.screenshot(path=str(shots / "template_editor.png"), full_page=True)

    # save: into the server's folder, in service at once
    page.click("#tpl-save")
    page.wait_for_function("() => document.querySelector('#tpl-status').textContent.includes('in service')")
    page.wait_for_selector('#tpl-served tbody tr[data-name="clinic_form"]')
    assert not errors, errors
    page.close()

    folder = server.data_dir / "templates"
    with server.client() as http:
        listing = http.get("/v1/templates").json()
        served = {t["name"]: t for t in listing["templates"]}
        assert served["clinic_form"]["source"] == str(folder / "clinic_form.yaml")
        assert listing["reload_error"] is None
        saved = yaml.safe_load((folder / "clinic_form.yaml").read_text(encoding="utf-8"))
        fields = {f["name"]: f for f in saved["fields"]}
        assert set(fields) == {"name", "등록번호", "date", "msds"} and (folder / "clinic_form.png").is_file()
        w, h = saved["size"]
        assert fields["date"]["region"][0] * w == pytest.approx(after[0], abs=1.0)

        # a REST template job reads a page with it, and its field rows are stored
        resp = http.post("/v1/template-jobs", files={"file": ("scan.png", pages["scan"].read_bytes(), "image/png")},
                         data={"device": "desk-1", "exam_id": "E-7"})
        assert resp.status_code == 202, resp.text
        job = wait_job(http, resp.json()["id"])
        assert job["status"] == "succeeded", job
        result = http.get(f"/v1/jobs/{job['id']}/result").json()
        assert result["mode"] == "template" and result["template"] == "clinic_form"
        rows = {r["field"]: r for r in http.get(f"/v1/jobs/{job['id']}/fields").json()["fields"]}
        assert set(rows) == {"name", "등록번호", "date", "msds"}
        assert rows["등록번호"]["value"] == pages["truth"]["reg_no"] and rows["등록번호"]["valid"]
        assert {(r["template"], r["device"], r["exam_id"]) for r in rows.values()} == {("clinic_form", "desk-1", "E-7")}

    # and it can be taken out of service from the page
    page = browser.new_page(viewport={"width": 1500, "height": 1000})
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(server.url + "/#templates")
    page.click('#tpl-served tbody tr[data-name="clinic_form"] button.remove')
    page.wait_for_selector('#tpl-served tbody tr[data-name="clinic_form"]', state="detached")
    assert page.locator('#tpl-served tbody tr[data-name="ark_v1"] button').count() == 0  # built-ins stay
    page.close()
    assert not (folder / "clinic_form.yaml").exists() and not (folder / "clinic_form.png").exists()


def test_the_editor_refuses_bad_input_with_its_codes(server: Server, pages: dict[str, Any], tmp_path: Path) -> None:
    with server.client() as http:
        assert _code(http.get(f"{DRAFTS}/{'0' * 32}")) == "template_draft_not_found"
        assert http.get(f"{DRAFTS}/../../etc").status_code == 404
        bad_values = http.post(DRAFTS, files={"file": ("r.png", pages["reference"].read_bytes(), "image/png")},
                               data={"values": "{not json", "name": "x1"})
        assert bad_values.status_code == 400 and _code(bad_values) == "invalid_argument"
        assert _code(_draft(http, pages, "x1", {})) == "invalid_argument"
        assert "1x" in _draft(http, pages, "x1", {"1x": "3"}).json()["error"]["message"]
        assert _code(_draft(http, pages, "../evil")) == "invalid_template"
        nowhere = _draft(http, pages, "x1", {"serial": "QZX-998877-WW"})
        assert _code(nowhere) == "invalid_argument" and "serial" in nowhere.json()["error"]["message"]
        taken = _draft(http, pages, "ark_v1")
        assert taken.status_code == 409 and _code(taken) == "template_exists"
        two = io.BytesIO()
        img = Image.open(pages["reference"]).convert("RGB")
        img.save(two, "PDF", save_all=True, append_images=[img])
        pdf = http.post(DRAFTS, files={"file": ("two.pdf", two.getvalue(), "application/pdf")},
                        data={"values": json.dumps(pages["values"]), "name": "x2"})
        assert _code(pdf) == "too_many_pages"

        draft = _draft(http, pages, "form_b")
        assert draft.status_code == 201, draft.text
        d = draft.json()
        assert d["missing"] == [] and d["check"]["matched"] and d["check"]["problems"] == []
        ref = http.get(d["reference_url"])
        assert ref.headers["content-type"] == "image/png"
        assert Image.open(io.BytesIO(ref.content)).size == (d["width"], d["height"])
        tpl = d["template"]
        broken = {**tpl, "fields": [{**tpl["fields"][0], "region": [0.5, 0.5, 0.4, 0.6]}]}
        bad_try = http.post(f"{DRAFTS}/{d['id']}/try", data={"template": json.dumps(broken)})
        assert bad_try.status_code == 400 and _code(bad_try) == "invalid_template"
        assert "region" in bad_try.json()["error"]["message"]
        assert _code(http.post(f"{DRAFTS}/{d['id']}/try", data={"template": "[1"})) == "invalid_template"
        on_ref = http.post(f"{DRAFTS}/{d['id']}/try", data={"template": json.dumps(tpl)}).json()
        assert on_ref["matched"] and on_ref["problems"] == [] and len(on_ref["fields"]) == len(tpl["fields"])

        # saving: once, then the name is taken unless replaced; a built-in's name never
        assert _code(http.post("/v1/admin/templates", json={"draft": d["id"], "template": {**tpl, "name": "ark_v1"}})
                     ) == "template_exists"
        first = http.post("/v1/admin/templates", json={"draft": d["id"], "template": tpl})
        assert first.status_code == 201 and not first.json()["replaced"], first.text
        assert _code(http.post("/v1/admin/templates", json={"draft": d["id"], "template": tpl})
                     ) == "template_draft_not_found"  # a saved draft is gone
        again = _draft(http, pages, "form_b").json()
        clash = http.post("/v1/admin/templates", json={"draft": again["id"], "template": again["template"]})
        assert clash.status_code == 409 and _code(clash) == "template_exists"
        replaced = http.post("/v1/admin/templates", json={"draft": again["id"], "template": again["template"],
                                                          "replace": True})
        assert replaced.status_code == 201 and replaced.json()["replaced"]
        names = [t["name"] for t in http.get("/v1/templates").json()["templates"]]
        assert names.count("form_b") == 1

        # removing: a user template leaves the folder and the set; a built-in cannot
        folder = server.data_dir / "templates"
        removed = http.delete("/v1/admin/templates/form_b")
        assert removed.status_code == 200 and removed.json()["reload_error"] is None, removed.text
        assert not (folder / "form_b.yaml").exists() and not (folder / "form_b.png").exists()
        assert "form_b" not in [t["name"] for t in http.get("/v1/templates").json()["templates"]]
        assert _code(http.delete("/v1/admin/templates/form_b")) == "not_found"
        assert _code(http.delete("/v1/admin/templates/ark_v1")) == "invalid_argument"

        # a draft can be discarded (its reference image with it)
        gone = _draft(http, pages, "form_c").json()
        assert http.delete(f"{DRAFTS}/{gone['id']}").status_code == 200
        assert _code(http.get(gone["reference_url"])) == "template_draft_not_found"

        assert _code(http.get("/v1/jobs/nope/fields")) == "job_not_found"


def test_the_editor_needs_the_admin_scope_and_a_folder(tmp_path: Path, pages: dict[str, Any]) -> None:
    srv = Server(tmp_path / "data")  # no --templates: nothing to save into
    (tmp_path / "data").mkdir()
    keys = create_keys(srv.db_url, {"desk": {"scopes": "submit,read"}, "boss": {"scopes": "admin,read"}})
    srv.start()
    try:
        with srv.client(keys["desk"]) as desk, srv.client(keys["boss"]) as boss:
            refused = _draft(desk, pages, "form_c")
            assert refused.status_code == 403 and _code(refused) == "forbidden"
            assert _code(desk.post("/v1/admin/templates", json={"draft": "0" * 32, "template": {}})) == "forbidden"
            d = _draft(boss, pages, "form_c")
            assert d.status_code == 201, d.text
            unsaved = boss.post("/v1/admin/templates", json={"draft": d.json()["id"], "template": d.json()["template"]})
            assert unsaved.status_code == 409 and _code(unsaved) == "no_template_folder"
            assert "--templates" in unsaved.json()["error"]["message"]
            job = desk.post("/v1/template-jobs", files={"file": ("s.png", pages["scan"].read_bytes(), "image/png")})
            assert job.status_code == 202, job.text  # a template job needs only the submit scope

            def audited() -> set[tuple[Any, ...]]:
                entries = boss.get("/v1/admin/audit", params={"limit": 100}).json()["entries"]
                return {(e["key_name"], e["action"], e["status"], e["job_id"]) for e in entries}

            want = {(None, "create_template_draft", 403, None), ("boss", "create_template_draft", 201, None),
                    ("boss", "save_template", 409, None), ("desk", "submit_job", 202, job.json()["id"])}
            wait_for(lambda: want <= audited(), 10, f"the audit entries {want}")
    finally:
        srv.stop()
