"""Templates made by ``template new`` on layouts no built-in covers: a slip whose columns move with the
printer font (fields follow their column headers) and a Korean form whose body text changes page to page
(matching compares the header band only)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from ocrpipe.cli import main
from ocrpipe.synth.printouts import make_page
from ocrpipe.synth.printouts.heldout import HELDOUT, SHIFTS
from ocrpipe.synth.printouts.render import FONT_SETS
from ocrpipe.templates.schema import load_template

pytestmark = pytest.mark.integration


def _template(tmp_path, key: str, seed: int):  # type: ignore[no-untyped-def]
    img, truth = make_page(HELDOUT[key], np.random.default_rng(seed), strength=0.0)
    Image.fromarray(img).save(tmp_path / "ref.png")
    (tmp_path / "v.json").write_text(json.dumps({k: f["text"] for k, f in truth["fields"].items()}), encoding="utf-8")
    assert main(["template", "new", str(tmp_path / "ref.png"), "--values", str(tmp_path / "v.json"), "--name", key,
                 "--out", str(tmp_path / "t")]) == 0
    return load_template(tmp_path / "t" / f"{key}.yaml"), truth["font"]


def _score(tpl, key: str, seed: int, pages: int, differ_from: str | None = None):  # type: ignore[no-untyped-def]
    from ocrpipe.templates.engine import TemplateEngine
    from ocrpipe.templates.evaluate import Score, score_page

    engine, rng, score, shifts = TemplateEngine([tpl]), np.random.default_rng(seed), Score(), set()
    while score.pages < pages:
        img, truth = make_page(HELDOUT[key], rng)
        if differ_from is not None and truth["font"] == differ_from:
            continue
        shifts.add(SHIFTS[[f.name for f in FONT_SETS].index(truth["font"]) % len(SHIFTS)])
        score_page(score, engine, img, truth, str(score.pages))
    return score.summary(), shifts


def test_columns_that_move_with_the_font_are_read_under_their_headers(tmp_path) -> None:
    tpl, ref_font = _template(tmp_path, "rm_slip_v1", 8080)
    assert any(f.column is not None and f.column.text == "S" for f in tpl.fields)
    s, shifts = _score(tpl, "rm_slip_v1", 6, 3, differ_from=ref_font)
    ref_shift = SHIFTS[[f.name for f in FONT_SETS].index(ref_font) % len(SHIFTS)]
    assert any(sh != ref_shift for sh in shifts)  # the pages' columns lie elsewhere than the reference's
    assert s["silently_wrong"] == 0, s["errors"]
    # the A column of the first section has no header the reader finds on the reference: its cells take
    # the header of the same column in the second section (``adopt_columns``), as does PD below the table
    assert any(f.name == "pd" and f.column is not None for f in tpl.fields)
    assert s["template_accuracy"] == 1.0 and s["field_accuracy"] >= 0.8, s["errors"]


def test_a_form_is_matched_on_its_header_whatever_its_body_text(tmp_path) -> None:
    tpl, _ = _template(tmp_path, "ko_form_v1", 606)
    assert tpl.matching.region is not None and tpl.matching.region[3] < 0.5  # the header band only
    s, _ = _score(tpl, "ko_form_v1", 8, 3)
    assert s["silently_wrong"] == 0, s["errors"]
    assert s["template_accuracy"] == 1.0 and s["field_accuracy"] >= 0.9, s["errors"]


def test_a_korean_report_in_sections_is_read_under_its_korean_headers(tmp_path) -> None:
    """Two sections with the same row labels (우안/좌안) and Korean column headers (1회, 2회, 평균) that
    move with the font: every cell follows its own section's header and row."""
    tpl, ref_font = _template(tmp_path, "kr_tk_v1", 8080)
    assert sum(f.column is not None for f in tpl.fields) >= 10
    s, _ = _score(tpl, "kr_tk_v1", 12, 3, differ_from=ref_font)
    assert s["silently_wrong"] == 0, s["errors"]
    assert s["template_accuracy"] == 1.0 and s["field_accuracy"] >= 0.9, s["errors"]


def test_ranked_matching_decides_as_registering_every_template(tmp_path) -> None:
    """With the built-ins and a labelled user template loaded, the thumbnail ranking decides pages of the
    user's layout from the top two templates (the rest are not registered) when it ranks that layout first,
    and always chooses what registering every template chooses; a built-in page (no labels to confirm it)
    still registers every template."""
    from ocrpipe.synth.printouts import LAYOUTS
    from ocrpipe.templates.engine import TemplateEngine
    from ocrpipe.templates.schema import load_templates

    tpl, _ = _template(tmp_path, "rm_slip_v1", 8080)
    engine, rng = TemplateEngine([*load_templates(), tpl]), np.random.default_rng(31)
    pages = [make_page(HELDOUT["rm_slip_v1"], rng)[0] for _ in range(4)] + [make_page(LAYOUTS["nct_v1"], rng)[0]]
    short = []
    for i, img in enumerate(pages):
        engine.ranked = 2
        ranked = engine.match(img)
        engine.ranked = 0
        full = engine.match(img)
        assert ranked.template is not None and full.template is not None
        assert ranked.template.name == full.template.name == ("rm_slip_v1" if i < 4 else "nct_v1")
        skipped = [c for c in ranked.candidates if c.reason.startswith("not registered")]
        assert len(skipped) in ((0, len(engine.templates) - 2) if i < 4 else (0,))
        short.append(bool(skipped))
        assert ranked.registration is not None and full.registration is not None
        assert np.allclose(ranked.registration.matrix, full.registration.matrix, atol=1.0)
    assert any(short)  # the ranking put the user's layout first on some of its pages


def test_a_user_template_matches_its_pages_turned_by_the_scanner(tmp_path) -> None:
    """A template from ``template new``, served beside the built-ins, matches its pages skewed ±3° and
    turned by 90°, 180° and 270°, and reads their fields; a slip page on which a built-in's registration
    scores higher than the slip's own affine warp (seed 31, third page: nct_v1 0.83, rm_slip_v1 0.61 with
    6 of its 14 labels at their places) is still the slip: its labels are read under a similarity."""
    import cv2

    from ocrpipe.templates.engine import TemplateEngine
    from ocrpipe.templates.evaluate import Score, score_page
    from ocrpipe.templates.schema import load_templates

    tpl, _ = _template(tmp_path, "rm_slip_v1", 8080)
    engine, rng, score = TemplateEngine([*load_templates(), tpl]), np.random.default_rng(31), Score()
    pages = [make_page(HELDOUT["rm_slip_v1"], rng) for _ in range(3)]
    for (img, truth), k, skew in zip(pages, (1, 2, 3), (3.0, -3.0, 3.0), strict=True):
        h, w = img.shape[:2]
        skewed = cv2.warpAffine(img, cv2.getRotationMatrix2D((w / 2, h / 2), skew, 1.0), (w, h),
                                borderMode=cv2.BORDER_CONSTANT, borderValue=(235, 235, 235))
        score_page(score, engine, np.ascontiguousarray(np.rot90(skewed, k)), truth, f"turned {k}")
    score_page(score, engine, *pages[2], "seed 31 page 3")
    s = score.summary()
    assert s["template_accuracy"] == 1.0 and s["silently_wrong"] == 0, s["errors"]
    assert s["field_accuracy"] >= 0.9, s["errors"]


def test_a_layout_fitting_a_page_upside_down_is_doubted_by_its_fields(tmp_path, capsys) -> None:
    """A report page upside down (and skewed 3°) fits the built-in nct_v1 as it lies (a score of 0.8, its
    pixel rule holds): pixel matching alone takes that, but its fields read almost none valid, so ``run_image``
    tries the page's other turn, where the report's own template is confirmed by its labels and read.
    ``template match`` and ``template check`` give the same verdict and say why nct_v1 was set aside."""
    from ocrpipe.synth.printouts.render import turn_scan
    from ocrpipe.templates.engine import TemplateEngine
    from ocrpipe.templates.evaluate import Score, score_page
    from ocrpipe.templates.schema import load_templates

    tpl, _ = _template(tmp_path, "kr_tk_v1", 8080)
    engine, rng = TemplateEngine([*load_templates(), tpl]), np.random.default_rng(12)
    img, truth = [make_page(HELDOUT["kr_tk_v1"], rng) for _ in range(3)][2]
    page = turn_scan(img, 2, -3.0)
    first = engine.match(page)
    assert first.template is not None and first.template.name == "nct_v1"  # the premise: a wrong layout fits
    score = Score()
    score_page(score, engine, page, truth, "upside down")
    s = score.summary()
    assert s["template_accuracy"] == 1.0 and s["silently_wrong"] == 0, s["errors"]
    assert s["field_accuracy"] >= 0.9, s["errors"]

    Image.fromarray(page).save(tmp_path / "page.png")
    capsys.readouterr()
    assert main(["template", "match", str(tmp_path / "page.png"), "--templates", str(tmp_path / "t")]) == 0
    said = capsys.readouterr().out
    assert "match: kr_tk_v1" in said and "doubted: nct_v1 fitted the page" in said, said
    assert main(["template", "check", "nct_v1", str(tmp_path / "page.png"), "--out", str(tmp_path / "d.png")]) == 1
    said = capsys.readouterr().out
    assert "DOUBTED: nct_v1 fitted the page" in said and "fields read valid" in said, said
    assert main(["template", "check", "kr_tk_v1", str(tmp_path / "page.png"), "--templates", str(tmp_path / "t"),
                 "--out", str(tmp_path / "k.png")]) in (0, 1)
    assert "DOUBTED" not in capsys.readouterr().out
