"""Line crops past a recogniser's width cap are cut at their word gaps, read in one batch and joined
(:mod:`ocrpipe.engine.recognize.split`): the cut points, the joining, and real long lines read by the real
recognisers (squeezed, as before, they come out far worse)."""

from __future__ import annotations

import io
from collections.abc import Iterator

import numpy as np
import pytest
from rapidfuzz.distance import Levenshtein
from testsupport.images import mixed_line_text, text_line

from ocrpipe.document import RecResult, WordSpan
from ocrpipe.engine.recognize import split
from ocrpipe.engine.recognize.split import Piece, join_readings, plan_pieces, read_split
from ocrpipe.engine.words import blank_columns


def render(text: str) -> np.ndarray:
    """The line rendered tightly cropped at 24 pt (37 px high), RGB."""
    from PIL import Image

    return np.array(Image.open(io.BytesIO(text_line(text, 24))).convert("RGB"))


LINES = [mixed_line_text(1, 300), mixed_line_text(2, 600)]


def cer(read: str, truth: str) -> float:
    return Levenshtein.distance(read, truth) / len(truth)


def test_short_crop_is_one_piece() -> None:
    crop = render("짧은 줄 short line")
    assert plan_pieces(crop, 100) == [Piece(0, crop.shape[1])]


@pytest.mark.parametrize("text", LINES)
def test_cuts_fall_in_word_gaps_and_pieces_fit(text: str) -> None:
    crop = render(text)
    height, width = crop.shape[:2]
    assert width > 100 * height  # over both caps: ko_rec 3,200/32, Tesseract 100
    pieces = plan_pieces(crop, 100)
    assert len(pieces) >= 2
    assert pieces[0].start == 0 and pieces[-1].end == width
    blank = blank_columns(crop)
    for left, right in zip(pieces, pieces[1:], strict=False):
        assert left.end == right.start and right.cut == "word"
        # the cut column and a word gap's worth of columns around it carry no ink
        half = int(split.WORD_GAP * height / 2)
        assert blank[right.start - half:right.start + half].all(), right
    assert all(p.end - p.start <= 100 * height for p in pieces)
    sizes = [p.end - p.start for p in pieces]
    assert max(sizes) < 1.6 * min(sizes)  # cut near equal divisions, not wherever the widest gap is


def test_ink_without_gaps_gets_plain_overlapping_cuts() -> None:
    crop = np.full((20, 5000, 3), 255, np.uint8)
    crop[5:15] = 0  # a solid bar along the whole line: no column is free of ink
    pieces = plan_pieces(crop, 50)
    assert len(pieces) >= 2 and all(p.end - p.start <= 50 * 20 for p in pieces)
    for left, right in zip(pieces, pieces[1:], strict=False):
        assert right.cut == "plain" and right.start < left.end  # overlapping


def test_join_offsets_spans_and_glues_by_cut_kind() -> None:
    pieces = [Piece(0, 100), Piece(100, 300, "word"), Piece(300, 400, "letter")]
    readings = [RecResult("가나 ab", 0.9, (WordSpan("가나", 0.9, 0.0, 0.4), WordSpan("ab", 0.8, 0.5, 1.0))),
                RecResult("다라마", 0.6, (WordSpan("다라마", 0.6, 0.1, 0.9),), least=0.2),
                RecResult("바 cd", 0.3, (WordSpan("바", 0.3, 0.0, 0.3), WordSpan("cd", 0.3, 0.5, 1.0)))]
    res = join_readings(pieces, readings, 400)
    assert res.text == "가나 ab 다라마바 cd"
    assert [w.text for w in res.words] == res.text.split()
    assert [(round(w.start, 3), round(w.end, 3)) for w in res.words] == [
        (0.0, 0.1), (0.125, 0.25), (0.3, 0.825), (0.875, 1.0)]
    assert res.words[2].confidence == 0.3  # the word cut in two: its halves' lower confidence
    # confidence: mean weighted by non-space characters (4, 3, 3)
    assert res.confidence == pytest.approx((4 * 0.9 + 3 * 0.6 + 3 * 0.3) / 10)
    assert res.least == 0.2


def test_plain_cut_keeps_a_letter_read_on_both_sides_once() -> None:
    pieces = [Piece(0, 110), Piece(90, 200, "plain")]
    res = join_readings(pieces, [RecResult("abc", 0.9), RecResult("cde", 0.9)], 200)
    assert res.text == "abcde"


def test_all_pieces_of_all_crops_are_read_in_one_call() -> None:
    crops = [render(LINES[0]), render("짧은 줄"), render(LINES[1])]
    calls: list[int] = []

    def read(images: list[np.ndarray]) -> list[RecResult]:
        calls.append(len(images))
        return [RecResult(f"w{i}", 1.0) for i in range(len(images))]

    out = read_split(read, crops, 100)
    n = [len(plan_pieces(c, 100)) for c in crops]
    assert calls == [sum(n)] and n[1] == 1 and len(out) == 3
    assert out[1].text == f"w{n[0]}"  # the short crop's own reading, passed through


@pytest.fixture(scope="module", params=["ko_rec", "hybrid_latin"])
def recognizer(request: pytest.FixtureRequest) -> Iterator[object]:
    from ocrpipe.engine.recognize import load_recognizer

    yield load_recognizer(request.param)


def _spans_on_their_words(res: RecResult, text: str, width: int) -> None:
    """Every word read right lies over its own ink in the whole line: its span's centre inside the rendered
    word's extent (where :func:`testsupport.images.text_line` drew it), in every piece."""
    from difflib import SequenceMatcher

    from PIL import ImageFont
    from testsupport.images import FONT

    font = ImageFont.truetype(FONT, 24)
    left = font.getbbox(text)[0]
    truth, pos = [], 0
    for word in text.split(" "):
        x0 = 8 - left + font.getlength(text[:pos])
        truth.append((word, x0, x0 + font.getlength(word)))
        pos += len(word) + 1
    read = res.words
    matcher = SequenceMatcher(a=[w.text for w in read], b=[t[0] for t in truth], autojunk=False)
    pairs = [(read[i + k], truth[j + k]) for i, j, n in matcher.get_matching_blocks() for k in range(n)]
    assert len(pairs) > 0.8 * len(truth)
    off = [w.text for w, (_, x0, x1) in pairs if not x0 <= (w.start + w.end) / 2 * width <= x1]
    assert not off, off


def _squeezed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The old behaviour: every crop read whole (the recognisers squeeze it to their cap)."""
    monkeypatch.setattr(split, "plan_pieces", lambda crop, max_aspect: [Piece(0, crop.shape[1])])


@pytest.mark.integration
def test_long_lines_read_in_pieces(recognizer, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """300 and 600 characters (4,900 and 9,500 px at 37 px high): split, the real recogniser reads them
    with a CER under 0.05 and word spans that follow the words; squeezed, the longer one is far worse."""
    crops = [render(t) for t in LINES]
    results = recognizer.recognize(crops)
    errors = [cer(r.text, t) for r, t in zip(results, LINES, strict=True)]
    assert max(errors) <= 0.05, errors
    for res, text, crop in zip(results, LINES, crops, strict=True):
        assert [w.text for w in res.words] == res.text.split()
        starts = [w.start for w in res.words]
        assert starts == sorted(starts)
        _spans_on_their_words(res, text, crop.shape[1])
    _squeezed(monkeypatch)
    old = [cer(r.text, t) for r, t in zip(recognizer.recognize(crops), LINES, strict=True)]
    assert old[1] > 0.3 and old[1] > 10 * errors[1], old
