"""hOCR carries each word's own box (not the line split in proportion to characters) and is well-formed XHTML."""

import re
from itertools import pairwise

from lxml import etree

from ocrpipe.document import Document, Line, Page, Word
from ocrpipe.export.render import to_hocr


def _doc() -> Document:
    # The first word is short but wide: a proportional split of the line would put the boundary elsewhere.
    w1 = Word("A", 0.9, ((10, 10), (120, 10), (120, 40), (10, 40)))
    w2 = Word("계약서류", 0.6, ((130, 12), (170, 12), (170, 41), (130, 41)))
    line = Line("A 계약서류", 0.75, ((8, 8), (172, 8), (172, 42), (8, 42)), words=(w1, w2))
    bare = Line("no words <&>", 0.9, ((0, 60), (120, 60), (120, 90), (0, 90)))
    return Document("ocrpipe/test", (Page(0, 200, 100, (line, bare)),))


def _words(hocr: str) -> list[tuple[str, tuple[int, ...], int]]:
    root = etree.fromstring(hocr.encode("utf-8"))  # well-formed XML, or this raises
    ns = {"h": "http://www.w3.org/1999/xhtml"}
    out = []
    for span in root.iterfind(".//h:span[@class='ocrx_word']", ns):
        bbox = tuple(int(v) for v in re.search(r"bbox (\d+) (\d+) (\d+) (\d+)", span.get("title")).groups())
        conf = int(re.search(r"x_wconf (\d+)", span.get("title")).group(1))
        out.append((span.text, bbox, conf))
    return out


def test_hocr_words_have_their_own_boxes():
    words = _words(to_hocr(_doc()))
    assert words[:2] == [("A", (10, 10, 120, 40), 90), ("계약서류", (130, 12, 170, 41), 60)]


def test_hocr_without_word_boxes_splits_the_line():
    words = _words(to_hocr(_doc()))[2:]
    assert [w[0] for w in words] == ["no", "words", "<&>"]
    boxes = [w[1] for w in words]
    assert boxes[0][0] == 0 and boxes[-1][2] == 120 and all(a[2] <= b[0] for a, b in pairwise(boxes))
