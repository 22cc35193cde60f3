"""The hybrid recogniser's selection rule: real RecResults through ``choose``, and the real ko_rec + Tesseract
hybrid on rendered lines."""

import numpy as np
import pytest
from rapidfuzz.distance import Levenshtein

from ocrpipe.document import RecResult
from ocrpipe.engine.recognize.hybrid import (
    THRESHOLD,
    WEIGHT,
    binarise,
    choose,
    disputed,
    has_hangul,
    should_ask,
)


def test_only_unsure_primary_readings_are_asked():
    assert should_ask(RecResult("계약 기간", THRESHOLD - 0.01))
    assert not should_ask(RecResult("계약 기간", THRESHOLD))
    assert should_ask(RecResult("x", 0.97), threshold=0.98)


def test_agreeing_readings_keep_the_primary_text():
    primary, secondary = RecResult("계약 기간: 2026", 0.90), RecResult("계약기간:2026", 0.95)
    assert not disputed(primary, secondary)
    out = choose(primary, secondary)
    assert out.text == "계약 기간: 2026"
    # Two readers agreeing: the confidence is the better of the two on the primary's scale.
    assert out.confidence == pytest.approx(1 - WEIGHT * 0.05)


def test_confidences_are_compared_on_one_scale():
    # Tesseract at 0.85 is expected to make 0.3 * 0.15 = 4.5 % errors, ko_rec at 0.90 about 10 %.
    out = choose(RecResult("TOTAl RN", 0.90), RecResult("TOTAL RM", 0.85))
    assert out.text == "TOTAL RM"
    assert out.confidence == pytest.approx(1 - WEIGHT * 0.15)
    # The old rule ("more confident wins") would have kept ko_rec here; a weak Tesseract still loses.
    kept = choose(RecResult("TOTAl RN", 0.90), RecResult("T0TAI", 0.60))
    assert kept == RecResult("TOTAl RN", 0.90)


def test_an_empty_secondary_never_wins():
    primary = RecResult("###", 0.40)
    assert not disputed(primary, RecResult("", 0.0))
    assert choose(primary, RecResult("", 0.0)) == primary


def test_third_opinion_decides_a_dispute():
    primary, secondary = RecResult("Peiel", 0.93), RecResult("Paid", 0.60)
    # Calibration alone keeps the primary (0.3 * 0.40 = 0.12 > 0.07) ...
    assert choose(primary, secondary).text == "Peiel"
    # ... but when ko_rec reads the binarised crop closer to Tesseract's text, its first reading was unstable.
    assert choose(primary, secondary, RecResult("Paicl", 0.8)).text == "Paid"
    # A third reading that confirms the primary leaves the decision to the calibrated confidences.
    assert choose(primary, secondary, RecResult("Peiel", 0.9)).text == "Peiel"


def test_hangul_detection_and_binarisation():
    assert has_hangul("Total 합계") and has_hangul("ㄱ") and not has_hangul("TOTAL RM 12.50")
    crop = np.full((20, 60, 3), 200, np.uint8)
    crop[5:15, 10:50] = 40
    bw = binarise(crop)
    assert bw.shape == crop.shape and set(np.unique(bw)) == {0, 255}
    assert bw[10, 20, 0] == 0 and bw[0, 0, 0] == 255


LINES = (
    "개인정보 수집 및 이용에 동의합니다.",
    "Invoice No. A-2291 Total 35,000 KRW",
)


def _line_crop(text: str, size: int = 30) -> np.ndarray:
    from ocrpipe.samples import render_page

    image, truth = render_page([text], size=size, margin=20)
    (x0, y0), (x1, y1) = truth[0]["points"][0], truth[0]["points"][2]
    pad = size // 4
    return np.ascontiguousarray(image[max(0, y0 - pad): y1 + pad, max(0, x0 - pad): x1 + pad])


def _cer(gt: str, pred: str) -> float:
    gt, pred = "".join(gt.split()), "".join(pred.split())
    return Levenshtein.distance(gt, pred) / len(gt)


@pytest.mark.integration
def test_real_hybrid_reads_korean_and_english_lines():
    from ocrpipe.engine.recognize import load_recognizer
    from ocrpipe.engine.recognize.tesseract import TesseractRecognizer

    hybrid = load_recognizer("hybrid")
    assert isinstance(hybrid.latin, TesseractRecognizer) and hybrid.latin.lang == "eng"
    crops = [_line_crop(t) for t in LINES]
    for result, text in zip(hybrid.recognize(crops), LINES, strict=True):
        assert _cer(text, result.text) < 0.1, result.text
        assert 0.0 <= result.confidence <= 1.0
    # Asking about every line sends the Korean one to kor+eng Tesseract and the English one to eng alone,
    # and the rule still keeps a right reading for both.
    hybrid.threshold = 1.01
    for result, text in zip(hybrid.recognize(crops), LINES, strict=True):
        assert _cer(text, result.text) < 0.1, result.text
