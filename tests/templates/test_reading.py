"""Template field reading: how independent readings become a value and a verdict, check rescue, and the
width-bounded batching of the neural recognisers."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from ocrpipe.templates.consensus import Reading, decide, settled
from ocrpipe.templates.fields import (
    DISAGREE,
    ONE_READING,
    FieldResult,
    apply_checks,
    confirmed_fields,
    parse_field,
)
from ocrpipe.templates.schema import Check, FieldSpec

AXIS = FieldSpec(name="ax", region=(0.1, 0.1, 0.2, 0.2), type="number", whitelist="0123456789",
                 validation={"regex": r"^\d{1,3}$", "range": [1, 180]})
TIME = FieldSpec(name="t", region=(0.1, 0.1, 0.2, 0.2), validation={"regex": r"^([01]\d|2[0-3]):[0-5]\d$"})


def _ko(spec: FieldSpec, text: str, conf: float = 0.99) -> Reading:
    return Reading.of(spec, "ko_rec", text, conf)


def _tess(spec: FieldSpec, text: str, conf: float = 0.9) -> Reading:
    return Reading.of(spec, "tesseract", text, conf, veto=False)


def _pp(spec: FieldSpec, text: str, conf: float = 0.99) -> Reading:
    return Reading.of(spec, "ppocr", text, conf)


def test_two_agreeing_readers_make_a_valid_value() -> None:
    first, second = _ko(AXIS, "127"), _tess(AXIS, "127")
    assert settled(first, second)
    v = decide([first, second])
    assert v.valid and v.value == 127.0 and v.support == 2


def test_disagreement_without_arbiter_is_flagged_with_the_primary_value() -> None:
    first, second = _ko(AXIS, "127"), _tess(AXIS, "74")
    assert not settled(first, second)
    v = decide([first, second])
    assert not v.valid and v.value == 127.0
    assert v.issues[-1].startswith(DISAGREE) and "'74'" in v.issues[-1]


def test_arbiter_agreeing_with_the_primary_overrules_tesseract() -> None:
    v = decide([_pp(AXIS, "127"), _ko(AXIS, "127"), _tess(AXIS, "74")])
    assert v.valid and v.value == 127.0 and v.support == 2


def test_a_neural_dissent_flags_even_a_majority() -> None:
    """The primary and Tesseract both read a dotted zero as 8; the arbiter's ``50`` keeps ``58`` from
    being stored as valid."""
    v = decide([_pp(AXIS, "50"), _ko(AXIS, "58", 0.74), _tess(AXIS, "58")])
    assert not v.valid and v.value == 58.0 and any(i.startswith(DISAGREE) for i in v.issues)


def test_a_value_that_passes_validation_beats_an_agreed_invalid_one() -> None:
    readings = [_pp(TIME, "17:08"), _ko(TIME, "17:68"), _tess(TIME, "17:68")]
    assert not settled(readings[1], readings[2])  # both fail the format: not settled
    v = decide(readings)
    assert v.value == "17:08" and not v.valid


def test_three_way_split_goes_to_the_first_reader_and_is_flagged() -> None:
    v = decide([_pp(AXIS, "50"), _ko(AXIS, "58"), _tess(AXIS, "68")])
    assert v.value == 50.0 and not v.valid


def test_unreadable_field_has_no_value() -> None:
    v = decide([_ko(AXIS, ""), _tess(AXIS, "")])
    assert v.value is None and not v.valid


def test_an_empty_reading_is_no_dissent() -> None:
    """A reader that sees nothing (the PP-OCR arbiter on Korean text) does not veto two agreeing readers."""
    v = decide([_pp(AXIS, ""), _ko(AXIS, "127"), _tess(AXIS, "127")])
    assert v.valid and v.value == 127.0


def test_single_reader_mode_trusts_validation_alone() -> None:
    assert decide([_ko(AXIS, "127")], confirm=False).valid
    assert not decide([_ko(AXIS, "127")]).valid
    assert not decide([_ko(AXIS, "250")], confirm=False).valid  # out of range


def test_a_holding_check_confirms_a_disputed_reading() -> None:
    check = Check(kind="reciprocal", fields=["mm", "d"], constant=337.5, tolerance=0.006)
    disputed = FieldResult("mm", "number", 7.85, "7.85", 0.99, False, issues=(f"{DISAGREE} (tesseract '785')",))
    good_d = FieldResult("d", "number", 42.99, "42.99", 0.99, True)
    assert confirmed_fields([check], {"mm": disputed, "d": good_d}) == {"mm", "d"}
    out = apply_checks([check], {"mm": disputed, "d": good_d}, rescue=True)
    assert out["mm"].valid and out["d"].valid
    wrong_d = FieldResult("d", "number", 43.99, "43.99", 0.99, True)
    assert confirmed_fields([check], {"mm": disputed, "d": wrong_d}) == set()
    out = apply_checks([check], {"mm": disputed, "d": wrong_d}, rescue=True)
    assert not out["mm"].valid and not out["d"].valid


def test_a_single_reading_is_valid_only_through_a_holding_check() -> None:
    mm = FieldSpec(name="mm", region=(0.1, 0.1, 0.2, 0.2), type="number", validation={"regex": r"^\d\.\d{2}$"})
    d = FieldSpec(name="d", region=(0.1, 0.1, 0.2, 0.2), type="number", validation={"regex": r"^\d{2}\.\d{2}$"})
    check = Check(kind="reciprocal", fields=["mm", "d"], constant=337.5, tolerance=0.006)
    lone = decide([_ko(mm, "7.85")])
    assert not lone.valid and lone.issues == (ONE_READING,)

    def result(spec: FieldSpec, text: str) -> FieldResult:
        v = decide([_ko(spec, text)])
        return FieldResult(spec.name, "number", v.value, v.raw, v.confidence, v.valid, issues=v.issues)

    out = apply_checks([check], {"mm": result(mm, "7.85"), "d": result(d, "42.99")}, rescue=True)
    assert out["mm"].valid and out["d"].valid and "confirmed by cross-field check" in out["mm"].issues
    out = apply_checks([check], {"mm": result(mm, "7.85"), "d": result(d, "42.39")}, rescue=True)
    assert not out["mm"].valid and not out["d"].valid


@pytest.mark.integration
def test_ctc_batches_bound_padding_and_match_single_reads() -> None:
    from ocrpipe.engine.recognize import load_recognizer

    rec = load_recognizer("ko_rec")
    widths = {i: w for i, w in enumerate([40, 44, 52, 60, 90, 100, 118, 300, 310])}
    chunks = rec._chunks(sorted(widths), widths)
    assert sorted(i for c in chunks for i in c) == sorted(widths)
    for c in chunks:
        assert len(c) <= rec.batch_size
        assert max(widths[i] for i in c) <= min(widths[i] for i in c) * (1 + rec.max_pad)

    crops = []
    for text in ["7", "-1.25", "2025.03.05", "17111911", "+12.50 D", "56mm", "44.12"]:
        (w, _), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.9, 2)
        img = np.full((40, w + 12, 3), 235, np.uint8)
        cv2.putText(img, text, (6, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (20, 20, 20), 2, cv2.LINE_AA)
        crops.append(img)
    batched = rec.recognize(crops)
    singles = [rec.recognize([c])[0] for c in crops]
    assert [r.text for r in batched] == [r.text for r in singles]


def test_a_rule_grazing_a_field_is_neither_read_nor_taken_for_a_neighbour() -> None:
    """A table rule along the top of a field region, or a box edge down its side, is painted over: no
    ink at the edges remains, while a value cut at the edge (a minus sign) still is."""
    from ocrpipe.templates.engine import clear_rules, ink_at_edge

    crop = np.full((40, 160), 235, np.uint8)
    cv2.putText(crop, "1234", (40, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.8, 20, 2)
    assert ink_at_edge(crop) == ""
    ruled = crop.copy()
    ruled[1:3, :] = 30  # a rule across the top
    ruled[:, 157:159] = 30  # a box edge down the right side
    assert ink_at_edge(ruled) == ""
    assert (clear_rules(ruled)[1:3, :].min() > 128) and (clear_rules(ruled)[:, 157:159].min() > 128)
    cut = crop.copy()
    cut[18:22, 0:12] = 20  # a minus sign the region cuts
    assert ink_at_edge(cut) == "left"


def test_a_text_reader_that_sees_nothing_gives_no_value() -> None:
    from ocrpipe.templates.fields import NOTHING_READ

    name = FieldSpec.model_validate({"name": "name", "type": "text", "lang": "kor", "region": [0, 0, 1, 1]})
    value, _, issues = parse_field(name, "  ", 0.0)
    assert value is None and issues == [NOTHING_READ]
    v = decide([Reading.of(name, "ppocrv4_rec_ch", "", 0.0), Reading.of(name, "ko_rec", "황준태", 0.95),
                Reading.of(name, "tesseract-fields", "황준태", 0.9, veto=False)])
    assert v.valid and v.value == "황준태"


def test_look_alikes_are_fitted_to_the_field_format_only_when_one_variant_fits() -> None:
    from ocrpipe.templates.fields import fit_format, fit_whitelist

    code = r"^[A-Z]{2}\d{5}\-\d{10}$"
    assert fit_format("AAO5281-5839653066", code) == "AA05281-5839653066"
    assert fit_format("A5", r"^[A-Z]{2}$") == "AS"  # a letter read as a digit
    assert fit_format("AA05281-5839653066", code) == "AA05281-5839653066"
    assert fit_format("OO", r"^[A-Z0-9]{2}$") == "OO"  # matches as read: kept
    assert fit_format("O", r"^(0|O0)$") == "0"
    assert fit_format("SO", r"^(50|S0|5O)$") == "SO"  # several variants fit: kept as read
    assert fit_whitelist("AAO5l-1", "0123456789A-") == "AA051-1"



def test_one_small_glyph_in_a_wide_region_is_ink() -> None:
    """A lone ``1`` in a label's search window, or a minus sign at a field's edge, is ink even though the
    region's grey hardly varies (standard deviation under 8)."""
    from ocrpipe.templates.engine import ink_at_edge
    from ocrpipe.templates.register import has_ink

    rng = np.random.default_rng(0)
    crop = np.clip(rng.normal(235, 3, (25, 252)), 0, 255).astype(np.uint8)
    assert not has_ink(crop)
    crop[8:18, 60:62] = 120
    assert crop.std() < 8 and has_ink(crop)
    edge = np.clip(rng.normal(235, 3, (40, 200)), 0, 255).astype(np.uint8)
    edge[18:21, 0:8] = 120
    assert edge.std() < 8 and ink_at_edge(edge) == "left"


def test_a_minus_sign_left_outside_a_signed_number_region_is_seen() -> None:
    """``-1.50`` whose region starts at the ``1``: the sign lies in the strip left of the region, no ink
    crosses the region's edge, and the field must not pass as ``1.50``."""
    from ocrpipe.templates.engine import sign_outside
    from ocrpipe.templates.register import Registration

    page = np.full((60, 300), 240, np.uint8)
    cv2.putText(page, "1.50", (120, 42), cv2.FONT_HERSHEY_SIMPLEX, 1.0, 30, 2)
    identity = Registration(np.array([[1.0, 0, 0], [0, 1.0, 0]]), 1.0)
    box = (116, 10, 220, 54)
    assert not sign_outside(page, identity, box)
    page[30:33, 104:113] = 30  # the minus, 3 px left of the region
    assert sign_outside(page, identity, box)
