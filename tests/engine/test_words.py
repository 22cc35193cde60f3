"""Word boxes: CTC alignment and Tesseract's word boxes mapped back through the crop onto the page."""

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from ocrpipe import Pipeline
from ocrpipe.document import RecResult, WordSpan
from ocrpipe.engine.pipeline import PipelineConfig
from ocrpipe.engine.recognize.ctc import word_spans
from ocrpipe.engine.recognize.tesseract import merge_spans
from ocrpipe.engine.words import line_words, proportional_spans, snap_to_gaps, span_quads

FONT = "/usr/share/fonts/truetype/nanum/NanumGothic.ttf"
LINE = "대한민국 헌법 제1조 Invoice No. A-2291 합계 35,000원"


def test_span_quads_follow_the_quad_perspective():
    quad = np.array([[10, 20], [110, 30], [110, 70], [10, 60]], np.float32)
    half = span_quads(quad, [(0.0, 0.5)])[0]
    assert np.allclose(half[0], [10, 20]) and np.allclose(half[3], [10, 60])
    assert np.allclose(half[1], [60, 25], atol=0.01) and np.allclose(half[2], [60, 65], atol=0.01)


def test_span_quads_cut_a_vertical_line_across():
    quad = np.array([[0, 0], [20, 0], [20, 100], [0, 100]], np.float32)
    q = span_quads(quad, [(0.2, 0.4)])[0]
    assert np.allclose(q, [[0, 20], [20, 20], [20, 40], [0, 40]], atol=0.01)


def test_ctc_word_spans_split_at_spaces_between_the_emitting_frames():
    charset = ["a", "b", " "]
    idx = np.array([1, 1, 0, 2, 0, 0, 3, 0, 0, 1, 0, 0])  # "ab" frames 0-3, space at 6, "a" at 9
    spans = word_spans(idx, np.full(len(idx), 0.9), charset, 1 / len(idx))
    assert [s.text for s in spans] == ["ab", "a"]
    assert spans[0].start == 0.0 and spans[1].end == 1.0
    assert spans[0].end == pytest.approx((3 + 1 + 9) / 2 / 12)  # half way from "b" to the next "a"


def test_merge_spans_joins_tesseract_script_splits():
    parts = [WordSpan("제", 0.9, 0.0, 0.1), WordSpan("1", 0.8, 0.1, 0.15), WordSpan("조", 0.9, 0.15, 0.3),
             WordSpan("Total", 0.95, 0.4, 0.9)]
    merged = merge_spans(parts, ["제1조", "Total"])
    assert [(w.text, w.start, w.end, w.confidence) for w in merged] == [("제1조", 0.0, 0.3, 0.8),
                                                                         ("Total", 0.4, 0.9, 0.95)]
    assert merge_spans(parts, ["제1조", "Totals"]) == ()


def test_snap_to_gaps_moves_boundaries_into_the_blank_columns():
    crop = np.full((20, 100), 255, np.uint8)
    crop[4:16, 5:40] = 0
    crop[4:16, 60:95] = 0  # the gap is columns 40..59
    snapped = snap_to_gaps([WordSpan("x", 1, 0.0, 0.35), WordSpan("y", 1, 0.38, 1.0)], crop)
    assert (snapped[0].start, snapped[0].end) == (0.04, 0.41)  # trimmed to the ink, one column of margin
    assert (snapped[1].start, snapped[1].end) == (0.59, 0.96)


def test_line_words_fall_back_to_proportions_when_spans_do_not_spell_the_text():
    quad = np.array([[0, 0], [90, 0], [90, 10], [0, 10]], np.float32)
    words = line_words(quad, RecResult("ab cd", 0.7, (WordSpan("abcd", 0.7, 0, 1),)), "ab cd")
    assert [w.text for w in words] == ["ab", "cd"]
    assert words[0].box[1][0] == pytest.approx(36.0) and words[1].box[0][0] == pytest.approx(54.0)
    assert [s.text for s in proportional_spans("a  b", 1.0)] == ["a", "b"]


def _render_line(text: str, size: int) -> tuple[np.ndarray, list[tuple[float, float, float, float]]]:
    font = ImageFont.truetype(FONT, size)
    img = Image.new("RGB", (40 + size * 30, size * 3), "white")
    draw = ImageDraw.Draw(img)
    x, space, boxes = 40.0, draw.textlength(" ", font=font), []
    for word in text.split():
        draw.text((x, size), word, font=font, fill="black")
        boxes.append(draw.textbbox((x, size), word, font=font))
        x += draw.textlength(word, font=font) + space
    return np.asarray(img), [_ink(np.asarray(img), box) for box in boxes]


def _ink(image: np.ndarray, box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    """The bounding box of a word's dark pixels (inside PIL's text box, which includes side bearings)."""
    x0, y0 = int(box[0]), int(box[1])
    ys, xs = np.nonzero(image[y0:int(box[3]) + 1, x0:int(box[2]) + 1, 0] < 160)
    return x0 + xs.min(), y0 + ys.min(), x0 + xs.max() + 1, y0 + ys.max() + 1


@pytest.mark.integration
@pytest.mark.parametrize("recognizer", ["ko_rec", "tesseract", "hybrid"])
@pytest.mark.parametrize("size", [22, 40])
def test_each_word_box_contains_the_words_ink(recognizer: str, size: int):
    image, ink = _render_line(LINE, size)
    page = Pipeline(PipelineConfig(recognizer=recognizer)).run_image(image).pages[0]
    words = [w for line in page.lines for w in line.words]
    line_x = [p[0] for line in page.lines for p in line.box]
    truth = LINE.split()
    if recognizer == "tesseract":  # Tesseract misreads the Latin words in this line; compare the ones it reads
        pairs = [(w, ink[truth.index(w.text)]) for w in words if w.text in truth]
        assert len(pairs) >= 5
    else:
        assert [w.text for w in words] == truth
        pairs = list(zip(words, ink, strict=True))
    for word, (x0, y0, x1, y1) in pairs:
        x0, x1 = max(x0, min(line_x)), min(x1, max(line_x))  # the line's two ends are the detector's
        xs, ys = [p[0] for p in word.box], [p[1] for p in word.box]
        assert min(xs) <= x0 + 1 and max(xs) >= x1 - 1 and min(ys) <= y0 + 1 and max(ys) >= y1 - 1, word
        assert max(xs) - min(xs) < (x1 - x0) + 2.5 * size, word  # and not the whole line


@pytest.mark.integration
def test_tesseract_word_boxes_survive_crops_without_words():
    """Noise crops give Tesseract word elements without text (tesserocr raises for those): no failure."""
    from ocrpipe.engine.recognize.tesseract import TesseractRecognizer

    rng = np.random.default_rng(0)
    crops = [np.full((30, 200, 3), 255, np.uint8)]
    crops += [((rng.random((20 + k, 60 + 7 * k, 3)) > 0.9) * 255).astype(np.uint8) for k in range(40)]
    results = TesseractRecognizer("kor+eng").recognize(crops)
    assert len(results) == len(crops)
    assert all([w.text for w in r.words] in ([], r.text.split()) for r in results)
