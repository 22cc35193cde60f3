"""The real default pipeline on a page rendered with a system Korean font, and the CLI on bad input."""

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from rapidfuzz.distance import Levenshtein

from ocrpipe import Document, ErrorCode, InputError, Pipeline
from ocrpipe.engine.preprocess import PreprocessConfig
from ocrpipe.export.render import to_hocr
from ocrpipe.samples import render_page

pytestmark = pytest.mark.integration

LINES = (
    "대한민국 헌법 제1조 국민 주권",
    "계약 기간: 2026. 3. 1. ~ 2027. 2. 28.",
    "담당자 연락처 010-1234-5678",
    "Invoice No. A-2291 Total 35,000 KRW",
    "개인정보 수집 및 이용에 동의합니다.",
)


def _cer(gt: str, pred: str) -> float:
    gt, pred = "".join(gt.split()), "".join(pred.split())
    return Levenshtein.distance(gt, pred) / len(gt)


def test_default_pipeline_reads_rendered_korean_english_page(pipeline: Pipeline):
    image, truth = render_page(LINES, size=30)
    doc = pipeline.run_image(image)
    page = doc.pages[0]
    assert len(page.lines) >= len(LINES)
    cer = _cer("\n".join(LINES), doc.text)
    assert cer < 0.05, doc.text
    # Boxes are in original pixels and overlap the rendered lines in order.
    for gt, line in zip(truth, page.lines, strict=False):
        (_, y0), (_, y1) = gt["points"][0], gt["points"][2]
        cy = np.mean([p[1] for p in line.box])
        assert y0 - 5 <= cy <= y1 + 5
    assert all(0.0 <= line.confidence <= 1.0 for line in page.lines)
    assert {"detect", "recognize", "total"} <= set(doc.timings_ms)


def test_document_json_contract(pipeline: Pipeline):
    image, _ = render_page(LINES[:2])
    doc = pipeline.run_image(image)
    data = json.loads(json.dumps(doc.to_dict(), ensure_ascii=False))
    assert set(data) >= {"engine", "pages", "text", "timings_ms", "models"}
    line = data["pages"][0]["lines"][0]
    assert set(line) == {"text", "confidence", "box", "words"} and len(line["box"]) == 4
    assert [w["text"] for w in line["words"]] == line["text"].split()
    assert data["models"][0]["sha256"]
    assert "ocr_line" in to_hocr(doc)


def test_pdf_and_skewed_scan(pipeline: Pipeline, tmp_path):
    image, _ = render_page(LINES[:3], size=32)
    pdf_path = tmp_path / "page.pdf"
    Image.fromarray(image).save(pdf_path, "PDF", resolution=150)
    doc = pipeline.run(pdf_path)
    assert isinstance(doc, Document) and len(doc.pages) == 1
    assert _cer("\n".join(LINES[:3]), doc.text) < 0.1
    skewed = np.asarray(Image.fromarray(image).rotate(3, expand=True, fillcolor="white"))
    straight = pipeline.with_config(preprocess=PreprocessConfig(deskew=True))
    doc = straight.run_image(skewed)
    assert _cer("\n".join(LINES[:3]), doc.text) < 0.1
    h, w = skewed.shape[:2]
    for line in doc.pages[0].lines:
        assert all(-2 <= x <= w + 2 and -2 <= y <= h + 2 for x, y in line.box)


def test_blank_page_gives_no_lines(pipeline: Pipeline):
    doc = pipeline.run_image(np.full((300, 400, 3), 255, np.uint8))
    assert doc.pages[0].lines == () and doc.text == ""


def test_bad_input_raises_input_error(pipeline: Pipeline):
    with pytest.raises(InputError) as err:
        pipeline.run(b"not an image")
    assert err.value.code == ErrorCode.UNSUPPORTED_MEDIA_TYPE


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "ocrpipe", *args], capture_output=True, text=True, timeout=300,
                          cwd=cwd)


def test_cli_bad_inputs_exit_nonzero_without_traceback(tmp_path, encrypted_pdf):
    from io import BytesIO

    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.png").write_text("just some text\n")
    buf = BytesIO()
    Image.new("RGB", (300, 300), "white").save(buf, "PNG")
    (tmp_path / "truncated.png").write_bytes(buf.getvalue()[:60])
    big = BytesIO()
    Image.new("1", (30000, 30000), 1).save(big, "PNG")
    (tmp_path / "huge.png").write_bytes(big.getvalue())
    (tmp_path / "locked.pdf").write_bytes(encrypted_pdf)
    expected = {
        "empty.png": "empty_input",
        "text.png": "unsupported_media_type",
        "truncated.png": "corrupt_image",
        "huge.png": "image_too_large",
        "locked.pdf": "encrypted_pdf",
    }
    for name, code in expected.items():
        res = _cli("ocr", str(tmp_path / name))
        assert res.returncode == 1, (name, res.stderr)
        assert f"[{code}]" in res.stderr, res.stderr
        assert "Traceback" not in res.stderr


def test_cli_outputs_and_visualisation(tmp_path):
    image, _ = render_page(LINES[:2])
    src = tmp_path / "in.png"
    Image.fromarray(image).save(src)
    out = tmp_path / "out"
    res = _cli("ocr", str(src), str(src), "--format", "json", "--out", str(out), "--visualize")
    assert res.returncode == 0, res.stderr
    data = json.loads((out / "in.json").read_text())
    assert data["pages"][0]["lines"]
    vis = Image.open(out / "in.vis.png")
    assert vis.size == (image.shape[1] * 2, image.shape[0])
    res = _cli("ocr", str(src), "--format", "hocr")
    assert res.returncode == 0 and "ocr_page" in res.stdout
    res = _cli("models")
    assert res.returncode == 0 and "ppocrv4_det" in res.stdout


def test_orientation_classifier_reads_upside_down_page(pipeline: Pipeline):
    image, _ = render_page(LINES[:3], size=32)
    flipped = np.ascontiguousarray(image[::-1, ::-1])
    oriented = pipeline.with_config(use_orientation=True)
    assert any(m.name == "ppocr_cls" for m in oriented.models())
    lines = sorted(line.text for line in oriented.run_image(flipped).pages[0].lines)
    for want in LINES[:3]:
        best = min(_cer(want, got) for got in lines)
        assert best < 0.15, (want, lines)


def test_long_image_is_tiled_not_shrunk(pipeline: Pipeline):
    """A 900x9000 strip (a long product page): every line stays readable and is found once."""
    lines = [f"{i:02d}번 항목 가격 {1000 * (i + 1):,}원" for i in range(12)]
    page, truth = render_page(lines, size=30, width=900, spacing=25)
    assert page.shape[0] > 2.5 * page.shape[1] and page.shape[0] > 2400
    doc = pipeline.run_image(page)
    texts = [line.text for line in doc.pages[0].lines]
    assert len(texts) == len(lines), texts
    assert _cer("\n".join(lines), doc.text) < 0.05, texts
    wide = np.ascontiguousarray(page.transpose(1, 0, 2)[::-1])  # the same strip lying on its side
    det = pipeline.detect(wide)
    assert len(det) == len(lines)
    assert all(q[0, 1] < q[3, 1] for q in det.quads)  # top-left above bottom-left: clockwise order kept


def test_trace_page_is_the_step_record_of_the_page_path(pipeline: Pipeline):
    image, _ = render_page(LINES[:3], size=30)
    trace = pipeline.trace_page(image, 2)
    n = len(trace.detection)
    assert n >= 3 and len(trace.crops.images) == n and len(trace.readings.results) == n
    assert trace.page == pipeline.process_page(image, 2)  # one path: the same page either way
    kept = sorted(r.text.strip() for r in trace.readings.results if r.text.strip())
    assert sorted(line.text for line in trace.page.lines) == kept
    assert trace.ordered.lines == trace.page.lines
    assert trace.page.index == 2 and (trace.page.height, trace.page.width) == image.shape[:2]
    # crops are cut from the prepared page at the detected quads (original pixels when nothing was rotated)
    for quad, crop in zip(trace.detection.quads, trace.crops.images, strict=True):
        side = float(np.linalg.norm(quad[3] - quad[0]))
        assert abs(crop.shape[0] - side) <= 2
    assert set(trace.timings_ms) == {"preprocess", "detect", "crop", "recognize", "postprocess"}
    assert trace.timings_ms["detect"] == trace.detection.elapsed_ms > 0
    assert trace.timings_ms["recognize"] == trace.readings.elapsed_ms > 0


def test_the_page_path_in_steps_reads_several_pages_crops_in_one_batch(pipeline: Pipeline):
    """locate_lines → read_pages → finish_page, as a bulk run on Ray splits it between actor pools: one page
    at a time gives the pages trace_page gives; two pages' crops in one recogniser call give the same lines
    and boxes (a crop's padding in a batch shifts its confidence a little)."""
    first, _ = render_page(LINES[:2], size=30)
    second, _ = render_page(LINES[2:], size=28)
    located = [pipeline.locate_lines(first, 0), pipeline.locate_lines(second, 1)]
    together = pipeline.read_pages([loc.crops for loc in located])
    assert [len(r.results) for r in together] == [len(loc.crops.images) for loc in located]
    for loc, image, pooled in zip(located, (first, second), together, strict=True):
        expected = pipeline.trace_page(image, loc.index).page
        [alone] = pipeline.read_pages([loc.crops])
        ordered, page = pipeline.finish_page(loc.index, image.shape[1], image.shape[0], loc.detection, alone)
        assert page == expected
        timings = pipeline.page_timings(loc.timings_ms, alone, ordered)
        assert set(timings) == {"preprocess", "detect", "crop", "recognize", "postprocess"}
        _, mixed = pipeline.finish_page(loc.index, image.shape[1], image.shape[0], loc.detection, pooled)
        assert [ln.box for ln in mixed.lines] == [ln.box for ln in expected.lines]
        assert _cer(expected.text, mixed.text) < 0.05


def test_run_timings_are_stage_sums_and_total_is_wall_time(pipeline: Pipeline, tmp_path):
    import time

    image, _ = render_page(LINES[:2], size=30)
    path = tmp_path / "two.pdf"
    Image.fromarray(image).save(path, save_all=True, append_images=[Image.fromarray(image)], resolution=200)
    start = time.perf_counter()
    doc = pipeline.run(path)
    wall = (time.perf_counter() - start) * 1000
    t = doc.timings_ms
    assert len(doc.pages) == 2 and t["decode"] > 0
    stages = sum(v for k, v in t.items() if k != "total")
    assert stages <= t["total"] <= wall
    doc2, traces = pipeline.run_traced(path)
    assert [tr.page for tr in traces] == list(doc2.pages) and doc2.text == doc.text
    assert all(tr.timings_ms["decode"] > 0 for tr in traces)


def test_with_recognizer_keeps_the_detector_and_reads_with_the_other_model(pipeline: Pipeline):
    primary = pipeline.recognizer.primary  # the default is the hybrid: ko_rec first
    assert pipeline.recognizer.input_height == primary.input_height == 32
    assert pipeline.recognizer.secondary.input_height == 48  # Tesseract's scaling height
    alone = pipeline.with_recognizer(primary)
    assert alone.detector is pipeline.detector and alone.config == pipeline.config
    assert alone.engine_name == f"ocrpipe/{pipeline.detector.name}+ko_rec"
    image, _ = render_page(LINES[:2], size=30)
    assert alone.process_page(image) == pipeline.process_page(image, recognize=primary.recognize)


def test_detection_memory_is_estimated_from_the_network_input_before_rendering(pipeline: Pipeline):
    from ocrpipe.engine.detect.predictor import WORK_BYTES_PER_PIXEL

    det = pipeline.detector
    a4 = pipeline.detection_memory(1654, 2339)  # A4 at 200 dpi: a 1664 x 2368 network input
    assert a4 == WORK_BYTES_PER_PIXEL * 1664 * 2368 and 800 < a4 / 2**20 < 850
    w, h = det.target_size(400, 300)  # a small page is enlarged to the network's minimum side first
    assert min(w, h) >= det.min_side and pipeline.detection_memory(400, 300) == WORK_BYTES_PER_PIXEL * w * h
    # a long receipt is detected tile by tile: it needs one tile's memory, not the whole strip's
    assert pipeline.detection_memory(800, 20000) == pipeline.detection_memory(800, det.limit_side)
    assert pipeline.detection_memory(20000, 800) == pipeline.detection_memory(det.limit_side, 800)


def _tight_line(text: str, size: int, margin: int) -> np.ndarray:
    """One line of text cropped to ``margin`` pixels around its ink, as a word or line crop comes."""
    from PIL import ImageDraw, ImageFont
    from testsupport.images import FONT

    font = ImageFont.truetype(FONT, size)
    left, top, right, bottom = font.getbbox(text)
    img = Image.new("RGB", (right - left + 2 * margin, bottom - top + 2 * margin), "white")
    ImageDraw.Draw(img).text((margin - left, margin - top), text, font=font, fill="black")
    return np.asarray(img)


TIGHT = ("Invoice", "VEGETARIAN", "TopStockResearch", "합계 35,000원", "2026-03-14", "개인정보 동의")


def test_a_tight_crop_of_one_line_is_read_whole(pipeline: Pipeline):
    """A word or line image with its ink at the edges (not a page): the detector gets a margin and no 10-20x
    enlargement (which split the line into pieces), and the whole line is read."""
    from ocrpipe.engine.detect.predictor import MAX_UPSCALE

    det = pipeline.detector
    w, h = det.target_size(120, 30)
    assert max(w, h) <= (120 + 2 * det.margin(120, 30)) * MAX_UPSCALE + det.stride
    errors = total = 0
    for size, text in zip((22, 30, 40, 28, 34, 26), TIGHT, strict=True):
        image = _tight_line(text, size, margin=2)
        page = pipeline.process_page(image)
        quads = np.asarray([ln.box for ln in page.lines], np.float32)
        assert quads.size and quads.min() >= 0 and quads[..., 0].max() < image.shape[1], text
        errors += Levenshtein.distance("".join(text.split()), "".join(page.text.split()))
        total += len("".join(text.split()))
    assert errors / total < 0.05, (errors, total)  # 0.12 (7 of 58) before the margin and the cap


def test_pages_get_no_margin_and_their_usual_scale(pipeline: Pipeline):
    """Only crops get the margin and the enlargement cap: a small page (a slip, a product image) is detected as
    it always was, since templates are made from its boxes."""
    det = pipeline.detector
    assert det.margin(600, 200) == 0 and det.margin(1240, 1754) == 0
    assert det.margin(300, 40) == 20 and det.margin(600, 150) == 32
    assert det.target_size(600, 200) == (2208, 736)  # enlarged to the minimum side, as before
