"""The shipped neural recogniser (src/ocrpipe/models/ko_rec.onnx) loads by name and reads rendered lines."""

from __future__ import annotations

import numpy as np
import pytest
from rapidfuzz.distance import Levenshtein

from ocrpipe.engine import runtime
from ocrpipe.samples import render_page

LINES = ("대한민국 헌법 제1조", "계약 기간은 2026년 3월까지", "담당자 연락처 010-1234-5678")


@pytest.fixture(scope="module")
def recognizer():
    if "ko_rec" not in runtime.load_manifest():
        pytest.skip("no ko_rec model in the manifest")
    from ocrpipe.engine.recognize import load_recognizer

    return load_recognizer("ko_rec")


def test_manifest_entry_matches_file_and_metadata(recognizer):
    spec = runtime.get_spec("ko_rec")
    assert runtime.sha256_file(spec.path) == spec.sha256
    assert recognizer.height == 32 and recognizer.channels == 1
    assert "\u1100" in recognizer.charset  # conjoining jamo: Hangul is spelled, then NFC-composed


def test_reads_rendered_korean_lines(recognizer):
    page, truth = render_page(LINES, size=32)
    crops = []
    for item in truth:
        (x0, y0), (x1, y1) = item["points"][0], item["points"][2]
        crops.append(np.ascontiguousarray(page[y0 - 4:y1 + 4, x0 - 4:x1 + 4]))
    results = recognizer.recognize(crops)
    pairs = zip(results, LINES, strict=True)
    edits = sum(Levenshtein.distance(r.text.replace(" ", ""), t.replace(" ", "")) for r, t in pairs)
    total = sum(len(t.replace(" ", "")) for t in LINES)
    assert edits / total <= 0.1, [r.text for r in results]
    assert all(0.0 < r.confidence <= 1.0 for r in results)
