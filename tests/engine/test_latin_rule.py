"""Lines without Hangul read by the Latin reader: the rule on real RecResults, and the real hybrid_latin
recogniser (ko_rec + Tesseract + PP-OCRv4) on rendered lines."""

import numpy as np
import pytest
from rapidfuzz.distance import Levenshtein

from ocrpipe.document import RecResult, WordSpan
from ocrpipe.engine.recognize import latin


def test_only_lines_read_without_hangul_go_to_the_latin_reader():
    assert latin.wants_latin(RecResult("TOTAL RM 12.50", 0.9))
    assert not latin.wants_latin(RecResult("합계 12,500원", 0.9))
    assert not latin.wants_latin(RecResult("  ", 0.9))


def test_a_latin_reading_is_kept_only_when_it_is_latin_and_confident_enough():
    ko = RecResult("T0TAL RN 12.5O", 0.80)
    assert latin.accept(ko, RecResult("TOTALRM12.50", 0.95), min_conf=0.85)
    assert not latin.accept(ko, RecResult("TOTALRM12.50", 0.70), min_conf=0.85)
    # a zh/en model's reading of a line ko_rec misread: Chinese, not kept
    assert not latin.accept(ko, RecResult("合计12.50", 0.99))
    assert not latin.accept(ko, RecResult("", 0.99))
    assert not latin.accept(RecResult("합계", 0.5), RecResult("TOTAL", 0.99))


def test_spaces_come_from_the_primary_reading():
    assert latin.transfer_spaces("SUBTOTAL:RM2,871.44", "SUB TOTAL : RM 2,871.44") == "SUB TOTAL : RM 2,871.44"
    # aligned through substitutions: the reader's characters, the primary's word breaks
    assert latin.transfer_spaces("TOTALRM12.50", "T0TAL RN 12.5O") == "TOTAL RM 12.50"
    # the reader's own spaces stay; a primary without spaces adds none
    assert latin.transfer_spaces("By tombstones trustworthier", "Bytombstones") == "By tombstones trustworthier"
    assert latin.transfer_spaces("abc", "") == "abc"


def test_choose_merges_text_and_reuses_word_spans():
    ko = RecResult("T0TAL RN", 0.70, (WordSpan("T0TAL", 0.7, 0.0, 0.55), WordSpan("RN", 0.7, 0.55, 1.0)))
    out = latin.choose(ko, RecResult("fallback", 0.9), RecResult("TOTALRM", 0.96), min_conf=0.85)
    assert out.text == "TOTAL RM" and out.confidence == 0.96
    assert [(w.text, w.start, w.end) for w in out.words] == [("TOTAL", 0.0, 0.55), ("RM", 0.55, 1.0)]
    fallback = RecResult("fallback", 0.9)
    assert latin.choose(ko, fallback, RecResult("TOTALRM", 0.5), min_conf=0.85) is fallback


def _line_crop(text: str, size: int = 30) -> np.ndarray:
    from ocrpipe.samples import render_page

    image, truth = render_page([text], size=size, margin=20)
    (x0, y0), (x1, y1) = truth[0]["points"][0], truth[0]["points"][2]
    pad = size // 4
    return np.ascontiguousarray(image[max(0, y0 - pad): y1 + pad, max(0, x0 - pad): x1 + pad])


@pytest.mark.integration
def test_real_hybrid_latin_reads_both_scripts_and_keeps_spaces():
    from ocrpipe.engine.recognize import load_recognizer

    rec = load_recognizer("hybrid_latin")
    assert rec.latin_first is not None and rec.latin_first.name == "ppocrv4_rec_ch"
    assert [m.name for m in rec.models()][-1] == "ppocrv4_rec_ch"
    lines = ("개인정보 수집 및 이용에 동의합니다.", "Invoice No. A-2291 Total 35,000 KRW")
    for result, text in zip(rec.recognize([_line_crop(t) for t in lines]), lines, strict=True):
        assert Levenshtein.distance("".join(text.split()), "".join(result.text.split())) / len(text) < 0.1, result
        assert 0.0 <= result.confidence <= 1.0
    english = rec.recognize([_line_crop(lines[1])])[0]
    assert len(english.text.split()) >= 5, english.text  # PP-OCRv4 alone drops most spaces


def test_an_unsure_mostly_latin_reading_also_goes_to_the_latin_reader():
    assert latin.hangul_share("TOTAL 가") == pytest.approx(1 / 6)
    assert latin.wants_latin(RecResult("Invoice 뇨 2291", 0.80))  # a Latin word read as Hangul, unsure
    assert not latin.wants_latin(RecResult("Invoice 뇨 2291", 0.95))  # sure: left to the hybrid
    assert not latin.wants_latin(RecResult("계약서 No. 1", 0.50))  # 3 of 7 Hangul: a Korean line
