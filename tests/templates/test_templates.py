"""Template mode: schema validation, registration, field post-processing and end-to-end extraction on
generated printouts (seed 777, not the seed the templates were checked on)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from ocrpipe.errors import InputError
from ocrpipe.synth.printouts import LAYOUTS, make_page
from ocrpipe.synth.printouts.render import render_clean
from ocrpipe.templates.fields import apply_checks, check_holds, normalize_number, parse_field, validate
from ocrpipe.templates.register import Pyramid, register, warp_region, warp_to_reference
from ocrpipe.templates.schema import Check, FieldSpec, Template, builtin_templates


def test_builtin_templates_load_and_cover_layouts() -> None:
    names = {t.name for t in builtin_templates()}
    assert names == set(LAYOUTS)
    for t in builtin_templates():
        assert t.reference_image.shape == (t.size[1], t.size[0])


def test_schema_rejects_bad_templates(tmp_path) -> None:
    with pytest.raises(ValueError):
        FieldSpec(name="x", region=(0.5, 0.1, 0.2, 0.3))
    with pytest.raises(ValueError):
        FieldSpec(name="d", region=(0.1, 0.1, 0.2, 0.2), type="date")
    with pytest.raises(ValueError):
        Template(name="t", device="d", version="1", size=(10, 10), reference="r.png",
                 fields=[FieldSpec(name="a", region=(0.1, 0.1, 0.2, 0.2))],
                 checks=[Check(kind="mean", fields=["a", "missing"])])
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed", encoding="utf-8")
    from ocrpipe.templates.schema import load_template

    with pytest.raises(InputError):
        load_template(bad)


def test_number_normalisation_and_validation() -> None:
    spec = FieldSpec(name="s", region=(0.1, 0.1, 0.2, 0.2), type="number", unit="D",
                     validation={"regex": r"^([+-]\d{1,2}\.\d{2}|0\.00)$", "range": [-25, 25], "step": 0.25})
    assert normalize_number("\u22121.25 D", "D") == "-1.25"
    assert normalize_number("+O.5O", None) == "+0.50"
    value, token, issues = parse_field(spec, "\u22121.25", 0.99)
    assert value == -1.25 and not issues and not validate(spec, value, token, 0.99)
    value, token, _ = parse_field(spec, "-1.30", 0.99)
    assert any("multiple" in i for i in validate(spec, value, token, 0.99))
    value, token, _ = parse_field(spec, "125", 0.99)
    assert validate(spec, value, token, 0.99)  # format and range both fail
    assert any("confidence" in i for i in validate(spec, -1.25, "-1.25", 0.2))


def test_cross_checks_flag_a_misread() -> None:
    from ocrpipe.templates.fields import FieldResult

    check = Check(kind="reciprocal", fields=["mm", "d"], constant=337.5, tolerance=0.006)
    assert check_holds(check, [7.85, 42.99])
    ok = {"mm": FieldResult("mm", "number", 7.85, "7.85", 0.99, True),
          "d": FieldResult("d", "number", 42.99, "42.99", 0.99, True)}
    assert all(r.valid for r in apply_checks([check], ok).values())
    wrong = dict(ok, mm=FieldResult("mm", "number", 7.65, "7.65", 0.99, True))
    assert not any(r.valid for r in apply_checks([check], wrong).values())
    se = Check(kind="spherical_equivalent", fields=["s", "c", "e"], tolerance=0.006)
    assert check_holds(se, [-1.25, -0.75, -1.63]) and not check_holds(se, [-1.75, -0.75, -1.63])


def test_registration_recovers_the_scan_warp() -> None:
    layout = LAYOUTS["ark_v1"]
    img, truth = make_page(layout, np.random.default_rng(5))
    ref, _ = render_clean(layout, None)
    reg = register(ref, img)
    corners = np.array([[0, 0], [layout.width, 0], [layout.width, layout.height], [0, layout.height]], float)
    m = np.array(truth["matrix"])
    expected = corners @ m[:, :2].T + m[:, 2]
    assert reg.score > 0.8
    assert np.abs(reg.to_scan(corners) - expected).max() < 5.0


def test_pyramid_levels_are_built_once() -> None:
    page = Pyramid(np.full((100, 80, 3), 200, np.uint8))
    assert page.gray.shape == (100, 80)
    assert page.level(0.25) is page.level(0.25)
    assert page.level(0.25).shape == (25, 20)


def test_warp_region_equals_the_slice_of_the_full_warp() -> None:
    layout = LAYOUTS["nct_v1"]
    img, _ = make_page(layout, np.random.default_rng(8))
    ref, _ = render_clean(layout, None)
    reg = register(ref, img)
    gray = Pyramid(img).gray
    full = warp_to_reference(gray, reg, (layout.width, layout.height))
    x0, y0, x1, y1 = 50, 120, 230, 170
    part = warp_region(gray, reg, (x0, y0, x1, y1))
    assert part.shape == (y1 - y0, x1 - x0)
    assert np.abs(part.astype(int) - full[y0:y1, x0:x1].astype(int)).max() <= 1


def test_a_wrong_template_is_given_up_after_the_probe() -> None:
    """A start whose short probe stays far below the acceptance score is not registered further."""
    img, _ = make_page(LAYOUTS["va_v1"], np.random.default_rng(9))
    wrong = next(t for t in builtin_templates() if t.name == "ark_v1")
    reg = register(wrong.reference_pyramid, Pyramid(img), levels=(0.125,), give_up_below=wrong.min_score - 0.2)
    assert reg.score < wrong.min_score


@pytest.fixture(scope="module")
def engine():
    from ocrpipe.templates.engine import TemplateEngine

    return TemplateEngine()


@pytest.mark.integration
def test_end_to_end_fields_on_unseen_seed(engine) -> None:
    from ocrpipe.templates.evaluate import Score, score_page

    rng = np.random.default_rng(777)
    score = Score()
    for key in sorted(LAYOUTS):
        img, truth = make_page(LAYOUTS[key], rng)
        score_page(score, engine, img, truth, key)
    s = score.summary()
    assert s["template_accuracy"] == 1.0, s["errors"]
    assert s["numeric_silently_wrong"] == 0, s["errors"]
    assert s["field_accuracy"] >= 0.95, s["errors"]


@pytest.mark.integration
def test_stage_timings_and_readers_are_reported(engine) -> None:
    img, _ = make_page(LAYOUTS["ark_v2"], np.random.default_rng(13))
    result, _ = engine.run_image(img)
    assert result is not None
    assert {"match", "crop", "read_primary", "read_second", "read_arbiter", "total"} <= set(result.timings_ms)
    assert engine.recognizer.name == "ko_rec" and engine.arbiter is not None


@pytest.mark.integration
def test_fields_a_holding_check_confirms_skip_the_second_reading(engine) -> None:
    """The keratometry pairs (D = 337.5 / mm) and SE = sph + cyl/2 confirm confident primary readings, so
    Tesseract reads only the other fields; the values are those of the full double reading."""
    from ocrpipe.templates.engine import TemplateEngine
    from ocrpipe.templates.fields import ONE_READING

    img, _ = make_page(LAYOUTS["ark_v1"], np.random.default_rng(21))
    result, _ = engine.run_image(img)
    assert result is not None and result.reads["primary"] == len(result.fields) == 20
    assert result.reads["second"] < 20
    skipped = [f for f in result.fields if ONE_READING in f.issues]
    assert len(skipped) == 20 - result.reads["second"]
    assert all(f.valid and "confirmed by cross-field check" in f.issues for f in skipped)
    ark = next(t for t in engine.templates if t.name == "ark_v1")
    assert {f.name for f in skipped} <= {n for c in ark.checks for n in c.fields}
    full_engine = TemplateEngine(engine.templates, recognizer=engine.recognizer, reader=engine.reader,
                                 arbiter=engine.arbiter, skip_checked=False, threads=1)  # the sequential path
    full, _ = full_engine.run_image(img)
    assert full is not None and full.reads["second"] == 20
    assert [(f.name, f.value, f.valid) for f in full.fields] == [(f.name, f.value, f.valid) for f in result.fields]


@pytest.mark.integration
def test_a_printout_smaller_in_the_scan_is_still_registered(engine) -> None:
    """A page shrunk to 85 % inside the scan: the fast starts find only a local optimum (or nothing); the
    wider starts recover the true registration."""
    from ocrpipe.templates.evaluate import same_value

    img, truth = make_page(LAYOUTS["nct_v1"], np.random.default_rng(21))
    small = cv2.resize(img, None, fx=0.85, fy=0.85, interpolation=cv2.INTER_AREA)
    canvas = np.full_like(img, 240)
    y, x = (img.shape[0] - small.shape[0]) // 3, (img.shape[1] - small.shape[1]) // 2
    canvas[y:y + small.shape[0], x:x + small.shape[1]] = small
    result, match = engine.run_image(canvas)
    assert result is not None and result.template == "nct_v1", match.reason
    assert abs(result.scale - 0.85 * np.sqrt(abs(np.linalg.det(np.array(truth["matrix"])[:, :2])))) < 0.03
    for f in result.fields:
        t = truth["fields"][f.name]
        assert same_value(t["type"], f.value, t["value"]) or not f.valid, f


@pytest.mark.integration
def test_unmatched_page_falls_back_and_says_so(engine) -> None:
    blank = np.full((700, 500, 3), 255, np.uint8)
    blank[300:320, 100:400] = 0
    result, match = engine.run_image(blank)
    assert result is None and match.template is None
    assert "no template matched" in match.reason


def _inside(img: np.ndarray, factor: float, canvas_factor: float = 1.0) -> np.ndarray:
    """``img`` resized by ``factor`` on a blank scan ``canvas_factor`` times its size (a third down)."""
    small = cv2.resize(img, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_CUBIC)
    h, w = int(img.shape[0] * canvas_factor), int(img.shape[1] * canvas_factor)
    canvas = np.full((h, w, 3), 240, np.uint8)
    y, x = (h - small.shape[0]) // 3, (w - small.shape[1]) // 2
    canvas[y:y + small.shape[0], x:x + small.shape[1]] = small
    return canvas


@pytest.mark.integration
@pytest.mark.parametrize(("factor", "canvas"), [(0.5, 1.0), (1.5, 1.5), (1.5, 2.0), (0.5, 0.5)])
def test_scale_half_to_one_and_a_half_is_matched_and_read(engine, factor: float, canvas: float) -> None:
    """The printout at 0.5× and 1.5× its size: alone in a scan of the same size, filling an enlarged scan,
    in a larger scan with a margin, and the whole scan halved."""
    from ocrpipe.templates.evaluate import same_value

    img, truth = make_page(LAYOUTS["nct_v1"], np.random.default_rng(21))
    result, match = engine.run_image(_inside(img, factor, canvas))
    assert result is not None and result.template == "nct_v1", match.reason
    true_scale = np.sqrt(abs(np.linalg.det(np.array(truth["matrix"])[:, :2])))
    assert abs(result.scale - factor * true_scale) < 0.04 * factor
    wrong = [f for f in result.fields if not same_value(truth["fields"][f.name]["type"], f.value,
                                                         truth["fields"][f.name]["value"])]
    assert not [f for f in wrong if f.valid], wrong
    assert len(wrong) <= 1, wrong


def _skewed(img: np.ndarray, degrees: float) -> np.ndarray:
    h, w = img.shape[:2]
    return cv2.warpAffine(img, cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0), (w, h),
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(235, 235, 235))


@pytest.mark.parametrize("k", [0, 1, 2, 3])
def test_the_text_lines_say_whether_a_page_lies_sideways(k: int) -> None:
    """:func:`~ocrpipe.templates.orient.turns` puts the quarter turns that bring the lines across first, on
    pages of every layout skewed ±3°, at 0.5× and 1.5× in the scan; a blank page cannot tell."""
    from ocrpipe.synth.printouts.heldout import HELDOUT
    from ocrpipe.templates.orient import turns

    rng = np.random.default_rng(404)
    for i, (key, layout) in enumerate(sorted({**LAYOUTS, **HELDOUT}.items())):
        img, _ = make_page(layout, rng)
        img = _inside(img, (0.5, 1.5)[i % 2], 1.0 if i % 2 == 0 else 1.5)
        page = np.ascontiguousarray(np.rot90(_skewed(img, 3.0 if i % 2 else -3.0), k))
        got = turns(cv2.cvtColor(page, cv2.COLOR_RGB2GRAY))
        assert set(got[:2]) == ({0, 2} if k % 2 == 0 else {1, 3}) and len(got) == 2, (key, got)
    assert turns(np.full((600, 400), 240, np.uint8)) == (0, 2, 1, 3)


@pytest.mark.integration
@pytest.mark.parametrize(("layout", "k", "skew"), [("ark_v2", 2, 3.0), ("nct_v1", 2, -3.0), ("ark_v2", 1, 3.0),
                                                   ("ark_v2", 3, -3.0), ("nct_v1", 1, -3.0), ("va_v1", 1, 3.0),
                                                   ("va_v1", 3, -3.0)])
def test_a_skewed_scan_turned_by_the_scanner_is_matched(engine, layout: str, k: int, skew: float) -> None:
    """A page skewed by ±3° and then turned by a scanner (90°, 180°, 270°; a portrait printout fed
    landscape and the reverse) is matched to its own layout and read: a sideways page is never tried as it
    lies, where a wrong layout fits it (ark_v2 turned 90° fitted nct_v1, va_v1 fitted ark_v1 at 0.92)."""
    from ocrpipe.templates.evaluate import same_value

    img, truth = make_page(LAYOUTS[layout], np.random.default_rng(5))
    result, match = engine.run_image(np.ascontiguousarray(np.rot90(_skewed(img, skew), k)))
    assert result is not None and result.template == layout, match.reason
    assert abs(abs(result.angle) - 90 * (k % 2) - 180 * (k == 2)) < 6, result.angle
    good = [f for f in result.fields if same_value(truth["fields"][f.name]["type"], f.value,
                                                    truth["fields"][f.name]["value"])]
    assert len(good) >= len(result.fields) - 1
    assert all(f.valid is False or f in good for f in result.fields)


def test_a_refused_page_says_which_rule_and_the_measured_value() -> None:
    """``match`` names the failing rule with its measured value and bounds, or the score and min_score."""
    from ocrpipe.templates.engine import TemplateEngine
    from ocrpipe.templates.register import Registration

    ark = next(t for t in builtin_templates() if t.name == "ark_v1")
    blank = np.full((ark.size[1], ark.size[0], 3), 250, np.uint8)
    blank[ark.size[1] // 2:ark.size[1] // 2 + 8, 40:-40] = 0
    page = Pyramid(ark.reference_image)
    identity = Registration(np.array([[1.0, 0, 0], [0, 1.0, 0]]), 1.0)
    assert TemplateEngine._refusal(ark, page, identity) == ""
    reason = TemplateEngine._refusal(ark, Pyramid(blank), identity)
    assert reason.startswith("pixel rule 0") and "outside [" in reason and "mean grey" in reason
    huge = Registration(np.array([[6.0, 0, 0], [0, 6.0, 0]]), 1.0)
    assert "scale 6.00 outside" in TemplateEngine._refusal(ark, page, huge)


def test_a_similarity_registration_recovers_scale_rotation_and_shift() -> None:
    """``register_similar`` on a page turned 2.5°, scaled 0.9 and shifted: one scale for both axes."""
    from ocrpipe.templates.register import register_similar

    ref = next(t for t in builtin_templates() if t.name == "ark_v1")
    img = ref.reference_image
    h, w = img.shape
    m = cv2.getRotationMatrix2D((0, 0), 2.5, 0.9)
    m[:, 2] += (30, 45)
    scan = cv2.warpAffine(img, m, (w, h), borderValue=245)
    reg = register_similar(ref.reference_pyramid, Pyramid(scan))
    assert reg.score > 0.8
    corners = np.array([[0, 0], [w, 0], [w, h], [0, h]], float)
    want = corners @ m[:, :2].T + m[:, 2]
    assert np.abs(reg.to_scan(corners) - want).max() < 6
