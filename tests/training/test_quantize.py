"""The int8 models: shipped copies match the manifest and read like their sources; the tool that makes them
runs end to end on ko_rec (a small calibration) and writes a model the engine loads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rapidfuzz.distance import Levenshtein

from ocrpipe.engine import runtime
from ocrpipe.engine.detect.predictor import TextDetector
from ocrpipe.engine.recognize import load_recognizer
from ocrpipe.samples import render_page

LINES = ("대한민국 헌법 제1조", "계약 기간은 2026년 3월까지", "Invoice No. A-2291 Total 35,000 KRW")
REPO = Path(__file__).resolve().parents[2]


def _crops() -> list[np.ndarray]:
    page, truth = render_page(LINES, size=30)
    out = []
    for item in truth:
        (x0, y0), (x1, y1) = item["points"][0], item["points"][2]
        out.append(np.ascontiguousarray(page[y0 - 4:y1 + 4, x0 - 4:x1 + 4]))
    return out


def _cer(texts: list[str]) -> float:
    edits = sum(Levenshtein.distance("".join(t.split()), "".join(g.split())) for t, g in zip(texts, LINES,
                                                                                           strict=True))
    return edits / sum(len("".join(g.split())) for g in LINES)


@pytest.mark.parametrize("name", ["ppocrv4_det_int8", "ko_rec_int8"])
def test_int8_manifest_entries_match_their_files(name):
    spec = runtime.get_spec(name)
    assert runtime.sha256_file(spec.path) == spec.sha256
    assert spec.meta["quantized_from"] in runtime.load_manifest()


def test_int8_recogniser_reads_like_its_source():
    crops = _crops()
    source, int8 = load_recognizer("ko_rec"), load_recognizer("ko_rec_int8")
    assert int8.charset == source.charset and int8.height == source.height
    a, b = source.recognize(crops), int8.recognize(crops)
    assert _cer([r.text for r in b]) <= max(0.1, _cer([r.text for r in a]) + 0.05), [r.text for r in b]


def test_int8_hybrid_uses_the_int8_primary_and_the_float_calibration():
    rec = load_recognizer("hybrid_latin_int8", tesseract_threads=1)
    assert rec.primary.name == "ko_rec_int8" and rec.latin_first is not None
    assert rec.calibration is not None


def test_int8_detector_finds_the_same_lines():
    page, truth = render_page(LINES, size=30)
    a, b = TextDetector.from_name("ppocrv4_det")(page), TextDetector.from_name("ppocrv4_det_int8")(page)
    assert len(b) == len(a) == len(truth)
    centres_a = np.sort(a.quads.mean(axis=1)[:, 1])
    centres_b = np.sort(b.quads.mean(axis=1)[:, 1])
    assert np.abs(centres_a - centres_b).max() < 4


def test_quantize_tool_writes_a_loadable_recogniser(tmp_path):
    pytest.importorskip("onnx")
    from ocrpipe.engine.recognize.ctc import CTCRecognizer
    from ocrpipe.training.quantize import QuantJob, check, load_jobs, quantize

    jobs = {j.source: j for j in load_jobs(REPO / "configs" / "quantize_int8.yaml")}
    assert set(jobs) == {"ppocrv4_det", "ko_rec"}
    job = QuantJob(**{**jobs["ko_rec"].__dict__, "out": "ko_rec_small.onnx", "samples": 16})
    out = quantize(job, tmp_path)
    spec = runtime.ModelSpec(name="ko_rec_small", kind="recognizer", source=f"file:{out}",
                             sha256=runtime.sha256_file(out), meta=runtime.get_spec("ko_rec").meta)
    rec = CTCRecognizer(spec, runtime.create_session(out))
    assert rec.charset == load_recognizer("ko_rec").charset
    assert _cer([r.text for r in rec.recognize(_crops())]) <= 0.15
    report = check(job, out, lines=40)
    assert report["synthetic_cer_int8"] < 0.2 and report["sha256"] == spec.sha256
