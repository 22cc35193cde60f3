"""Metric functions against hand-computed cases (Korean text, empty predictions, don't-care, duplicates)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ocrpipe.evaluation import geometry
from ocrpipe.evaluation import metrics as m
from ocrpipe.evaluation.metrics import Region


def rect(x0: float, y0: float, x1: float, y1: float, text: str = "") -> Region:
    return Region.of([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], text)


def pts(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    return rect(x0, y0, x1, y1).points


# ---- text ---------------------------------------------------------------------------------------------


def test_normalize_nfkc_middle_dot_and_whitespace() -> None:
    assert m.normalize_text("ＡＢＣ１２") == "ABC12"
    assert m.normalize_text("가ㆍ나") == m.normalize_text("가·나") == "가·나"
    assert m.normalize_text("  대한\t\n 민국  ") == "대한 민국"
    assert m.normalize_text("Total RM", casefold=True) == "total rm"


def test_cer_korean_with_and_without_spaces() -> None:
    assert m.cer("대한민국", "대한민귝") == m.ErrorCount(1, 4)
    assert m.cer("대한 민국", "대한민국") == m.ErrorCount(1, 5)
    assert m.cer("대한 민국", "대한민국", spaces=False) == m.ErrorCount(0, 4)
    assert m.page_cer("가나\n다라", "가 나 다 라").rate == 0.0
    assert math.isclose(m.page_cer("하늘을 나는 자동차", "하늘을 나는 차").rate, 2 / 8)


def test_page_cer_is_order_sensitive() -> None:
    assert m.page_cer("가나다\n라마바", "라마바\n가나다").edits == 6


def test_wer_and_word_f1_multiset() -> None:
    assert m.wer("나는 학교에 간다", "나는 학교에 갔다") == m.ErrorCount(1, 3)
    f1 = m.word_f1("a a b", "a b b c")
    assert (f1.tp, f1.n_gt, f1.n_pred) == (2, 3, 4)
    assert math.isclose(f1.f1, 4 / 7)
    assert math.isclose(f1.precision, 0.5) and math.isclose(f1.recall, 2 / 3)


def test_casefold_option() -> None:
    assert m.cer("TOTAL RM", "Total RM").edits == 4
    assert m.cer("TOTAL RM", "Total RM", casefold=True).edits == 0
    assert m.word_f1("TOTAL RM", "total rm", casefold=True).f1 == 1.0


def test_empty_prediction_and_empty_reference() -> None:
    assert m.page_cer("가나다", "") == m.ErrorCount(3, 3)
    assert m.word_f1("가 나", "") == m.MatchCount(0, 2, 0)
    assert m.word_f1("가 나", "").f1 == 0.0
    assert m.page_cer("", "").rate == 0.0
    assert m.page_cer("", "광고").rate == 1.0  # any text on a no-text image is all wrong
    assert m.word_f1("", "").f1 == 1.0


# ---- line CER -----------------------------------------------------------------------------------------


def test_line_cer_one_prediction_covering_two_gt_cells() -> None:
    gt = [rect(0, 0, 100, 20, "가나"), rect(110, 0, 200, 20, "다라")]
    pred = [rect(0, 0, 200, 20, "가나 다라")]
    res = m.line_cer(gt, pred)
    assert res.count == m.ErrorCount(0, 4)
    assert res.groups == 1


def test_line_cer_orders_pieces_left_to_right_and_rows_top_down() -> None:
    gt = [rect(0, 0, 200, 20, "가나다라"), rect(0, 30, 200, 50, "마바")]
    # predicted pieces listed in scrambled order
    pred = [rect(100, 0, 200, 20, "다라"), rect(0, 30, 200, 50, "마바"), rect(0, 0, 100, 20, "가나")]
    assert m.line_cer(gt, pred).count == m.ErrorCount(0, 6)


def test_line_cer_counts_substitution_deletion_insertion() -> None:
    gt = [rect(0, 0, 100, 20, "대한민국"), rect(0, 100, 100, 120, "서울")]
    pred = [rect(0, 0, 100, 20, "대한민귝"), rect(500, 500, 600, 520, "xyz")]
    res = m.line_cer(gt, pred)
    # 1 substitution + 2 deletions (unlinked "서울") + 3 insertions (unlinked "xyz")
    assert res.count == m.ErrorCount(6, 6)
    assert (res.unlinked_gt, res.unlinked_pred, res.ignored_pred) == (1, 1, 0)


def test_line_cer_half_of_smaller_area_rule() -> None:
    gt = [rect(0, 0, 100, 10, "가나다라마")]
    inside = [rect(60, 0, 110, 10, "라마")]  # 40 of 50 px² inside -> 80% of the smaller -> linked
    outside = [rect(80, 0, 130, 10, "라마")]  # 20 of 50 -> 40% -> not linked
    assert m.line_cer(gt, inside).count == m.ErrorCount(3, 5)
    assert m.line_cer(gt, outside).count == m.ErrorCount(5 + 2, 5)


def test_line_cer_empty_prediction_is_all_deletions() -> None:
    gt = [rect(0, 0, 100, 20, "가나"), rect(0, 30, 100, 50, "다 라")]
    assert m.line_cer(gt, []).count == m.ErrorCount(4, 4)


def test_line_cer_ignore_regions_and_dont_care() -> None:
    gt = [rect(0, 0, 100, 20, "본문"), rect(0, 200, 100, 220, "###")]
    pred = [
        rect(0, 0, 100, 20, "본문"),
        rect(300, 300, 350, 320, "로고"),  # inside the picture region -> not an insertion
        rect(0, 200, 100, 220, "흐림"),  # on the ### region -> not an insertion
        rect(600, 600, 650, 620, "잡음"),  # a real false positive
    ]
    res = m.line_cer(gt, pred, ignore=[pts(250, 250, 400, 400)])
    assert res.count == m.ErrorCount(2, 2)  # ### is not ground truth; only "잡음" counts
    assert res.ignored_pred == 2


def test_line_cer_duplicate_detection_is_inserted_text() -> None:
    gt = [rect(0, 0, 100, 20, "가나")]
    pred = [rect(0, 0, 100, 20, "가나"), rect(1, 0, 100, 20, "가나")]
    assert m.line_cer(gt, pred).count == m.ErrorCount(2, 2)


def test_line_cer_casefold() -> None:
    gt = [rect(0, 0, 100, 20, "TOTAL")]
    pred = [rect(0, 0, 100, 20, "Total")]
    assert m.line_cer(gt, pred).count.edits == 4
    assert m.line_cer(gt, pred, casefold=True).count.edits == 0


# ---- detection / end-to-end -----------------------------------------------------------------------------


def test_detection_iou_threshold_and_duplicates() -> None:
    gt = [rect(0, 0, 10, 10, "a"), rect(0, 20, 10, 30, "b")]
    pred = [rect(0, 0, 10, 10), rect(0, 0, 10, 10), rect(5, 20, 15, 30)]  # dup; IoU 50/150 = 1/3
    res = m.detection(gt, pred)
    assert res == m.MatchCount(1, 2, 3)
    assert math.isclose(res.precision, 1 / 3) and math.isclose(res.recall, 0.5)
    assert math.isclose(res.f1, 0.4)


def test_detection_dont_care_regions_are_not_counted() -> None:
    gt = [rect(0, 0, 10, 10, "a"), rect(0, 50, 40, 60, "###")]
    pred = [rect(0, 0, 10, 10), rect(0, 50, 40, 60), rect(100, 100, 120, 120)]
    assert m.detection(gt, pred) == m.MatchCount(1, 1, 3 - 1)
    assert m.detection(gt, pred, ignore=[pts(90, 90, 130, 130)]) == m.MatchCount(1, 1, 1)


def test_detection_empty_prediction() -> None:
    gt = [rect(0, 0, 10, 10, "a")]
    res = m.detection(gt, [])
    assert res == m.MatchCount(0, 1, 0)
    assert res.precision == 0.0 and res.recall == 0.0 and res.f1 == 0.0


def test_end_to_end_needs_same_text() -> None:
    gt = [rect(0, 0, 100, 20, "대한 민국"), rect(0, 30, 100, 50, "서울")]
    pred = [rect(0, 0, 100, 20, "대한민국"), rect(0, 30, 100, 50, "서을")]
    assert m.end_to_end(gt, pred) == m.MatchCount(1, 2, 2)


def test_korean_e2e_iou_above_point_one() -> None:
    gt = [rect(0, 0, 100, 20, "안녕"), rect(200, 0, 300, 20, "세계"), rect(400, 0, 500, 20, "###")]
    pred = [
        rect(50, 0, 150, 20, "안녕"),  # IoU 1000/3000 = 0.33 -> counts
        rect(290, 0, 390, 20, "세계"),  # IoU 200/3800 = 0.05 -> does not
        rect(400, 0, 500, 20, "잡음"),
    ]
    res = m.korean_e2e(gt, pred)
    assert (res.tp, res.n_gt) == (1, 2)
    assert res.recall == 0.5


def test_words_of_splits_line_by_character_offsets() -> None:
    words = m.words_of([rect(0, 0, 90, 10, "ab  cd efg")])  # normalised to "ab cd efg" (9 chars)
    assert [w.text for w in words] == ["ab", "cd", "efg"]
    np.testing.assert_allclose(geometry.bounds(words[1].points), (30, 0, 50, 10))
    np.testing.assert_allclose(geometry.bounds(words[2].points), (60, 0, 90, 10))


# ---- geometry ----------------------------------------------------------------------------------------


def test_reading_order_rows_then_columns() -> None:
    boxes = [(100, 0, 200, 20), (0, 40, 100, 60), (0, 2, 90, 22), (120, 42, 200, 58)]
    assert geometry.reading_order(boxes) == [2, 0, 1, 3]


def test_self_intersecting_quad_uses_convex_hull() -> None:
    bowtie = geometry.to_polygon([[0, 0], [10, 10], [10, 0], [0, 10]])
    assert bowtie.is_valid and math.isclose(bowtie.area, 100.0)


@pytest.mark.parametrize("points", [[[0, 0], [1, 1]], [[0, 0], [5, 0], [10, 0]]])
def test_degenerate_polygons_never_link(points: list[list[float]]) -> None:
    a = geometry.polygons([points])
    b = geometry.polygons([[[0, 0], [10, 0], [10, 10], [0, 10]]])
    assert not geometry.half_of_smaller(a, b).any()


# ---- confidence calibration ---------------------------------------------------------------------------


def test_calibration_points_per_line_alone_in_its_group() -> None:
    gt = [rect(0, 0, 100, 20, "합계 1,000"), rect(0, 40, 100, 60, "TOTAL"), rect(0, 80, 100, 100, "abcd")]
    pred = [rect(0, 0, 100, 20, "합계1,000"), rect(0, 40, 100, 60, "T0TAL"),
            rect(0, 80, 50, 100, "ab"), rect(50, 80, 100, 100, "cd"), rect(0, 200, 50, 220, "stray")]
    points = m.line_calibration(gt, pred, [0.9, 0.8, 0.7, 0.6, 0.5])
    # two predictions share the third line's group, the stray one links to nothing: both left out
    assert points == [m.CalibrationPoint(0.9, 1.0, 1.0), m.CalibrationPoint(0.8, 0.0, 0.8)]


def test_ece_is_the_weighted_gap_between_confidence_and_correctness() -> None:
    p = m.CalibrationPoint
    assert m.ece([]) is None
    assert m.ece([p(1.0, 1.0, 1.0), p(0.0, 0.0, 0.0)]) == 0.0
    # one bin [0.9, 1.0): mean confidence 0.95, half right -> 0.45
    assert m.ece([p(0.95, 1.0, 1.0), p(0.95, 0.0, 0.9)]) == pytest.approx(0.45)
    assert m.ece([p(0.95, 1.0, 1.0), p(0.95, 0.0, 0.9)], target="accuracy") == pytest.approx(0.0)
    # two bins, weighted by their share of the points
    points = [p(0.15, 0.0, 0.5), p(0.85, 1.0, 1.0), p(0.85, 1.0, 1.0), p(0.85, 1.0, 1.0)]
    assert m.ece(points) == pytest.approx(0.25 * 0.15 + 0.75 * 0.15)
