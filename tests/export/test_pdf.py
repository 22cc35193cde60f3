"""Searchable PDFs from the real engine: the text a viewer extracts (pdftotext, pypdf) is the recognised text,
each extracted word lies in its word box (pdftotext's word boxes, pypdf's baseline origins), and the original
page objects are untouched."""

import importlib.util
import io
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pikepdf
import pypdf
import pytest
from PIL import Image, ImageFilter
from testsupport.pdf import assert_pdfa_2b

from ocrpipe import Pipeline
from ocrpipe.document import Document
from ocrpipe.export.pdf import overlay_pdf, searchable_pdf
from ocrpipe.samples import render_page

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(shutil.which("pdftotext") is None, reason="pdftotext (poppler-utils) missing")]

LINES = ("대한민국 헌법 제1조 국민 주권", "계약 기간: 2026. 3. 1. ~ 2027. 2. 28.",
         "Invoice No. A-2291 Total 35,000 KRW", "담당자 연락처 010-1234-5678")


def _norm(text: str) -> list[str]:
    return [" ".join(line.split()) for line in text.splitlines() if line.strip()]


def _pdftotext_words(path: Path) -> list[tuple[str, float, float, float, float, float]]:
    """(text, xMin, yMin, xMax, yMax, page width) of every word pdftotext finds, in points."""
    xml = subprocess.run(["pdftotext", "-bbox", str(path), "-"], capture_output=True, text=True, check=True).stdout
    width = float(re.search(r'<page width="([\d.]+)"', xml).group(1))  # type: ignore[union-attr]
    return [(html_unescape(m[4]), float(m[0]), float(m[1]), float(m[2]), float(m[3]), width)
            for m in re.findall(r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">(.*?)</word>',
                                xml)]


def html_unescape(text: str) -> str:
    import html

    return html.unescape(text)


def _pypdf_words(path: Path) -> list[tuple[str, float, float, float, float]]:
    """(text, x, y, page width, page height) of every text run pypdf finds on page 1: where its baseline
    starts, in points from the top-left (through the text and graphics matrices, the text layer's form too)."""
    page = pypdf.PdfReader(path).pages[0]
    width, height = float(page.mediabox.width), float(page.mediabox.height)
    runs: list[tuple[str, float, float, float, float]] = []

    def visit(text: str, cm: list[float], tm: list[float], font: object, size: float) -> None:
        if text.strip():
            x = tm[4] * cm[0] + tm[5] * cm[2] + cm[4]
            y = tm[4] * cm[1] + tm[5] * cm[3] + cm[5]
            runs.append((text.strip(), x, height - y, width, height))

    page.extract_text(visitor_text=visit)
    return runs


def _check_text_and_positions(path: Path, doc: Document) -> None:
    expected = _norm(doc.text)
    assert expected, "the engine read nothing"
    plain = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout
    assert _norm(plain) == expected
    assert _norm(pypdf.PdfReader(path).pages[0].extract_text()) == expected
    words = [w for line in doc.pages[0].lines for w in line.words]
    found = _pdftotext_words(path)
    assert [f[0] for f in found] == [w.text for w in words]
    for (_, x0, y0, x1, y1, width_pt), word in zip(found, words, strict=True):
        px = doc.pages[0].width / width_pt  # pixels per point
        xs, ys = [p[0] for p in word.box], [p[1] for p in word.box]
        tol = 1.5
        assert min(xs) - tol <= x0 * px and x1 * px <= max(xs) + tol, (word, x0 * px, x1 * px)
        assert min(ys) - tol <= y0 * px and y1 * px <= max(ys) + tol, (word, y0 * px, y1 * px)
    runs = _pypdf_words(path)
    assert [r[0] for r in runs] == [w.text for w in words]
    for (_, x, y, width_pt, _), word in zip(runs, words, strict=True):  # each baseline starts inside its box
        px = doc.pages[0].width / width_pt
        xs, ys = [p[0] for p in word.box], [p[1] for p in word.box]
        assert min(xs) - 1.5 <= x * px <= max(xs) + 1.5 and min(ys) - 1.5 <= y * px <= max(ys) + 1.5, (word, x, y)


def _image_streams(pdf_bytes: bytes) -> list[bytes]:
    with pikepdf.open(io.BytesIO(pdf_bytes)) as pdf:
        return [img.read_raw_bytes() for page in pdf.pages for img in page.get_images(recursive=False).values()]


def _page_content(pdf_bytes: bytes) -> bytes:
    """Page 1's content stream(s), decoded and joined."""
    with pikepdf.open(io.BytesIO(pdf_bytes)) as pdf:
        contents = pdf.pages[0].obj.Contents
        streams = list(contents) if isinstance(contents, pikepdf.Array) else [contents]
        return b"".join(stream.read_bytes() for stream in streams)


def _assert_original_page_kept(original: bytes, out: bytes) -> None:
    """The original page's images byte for byte (raw, still compressed as they were) and its drawing
    operators unchanged inside the new page's content (the text layer is added around them)."""
    assert _image_streams(out) == _image_streams(original)
    assert _page_content(original) in _page_content(out)
    with pikepdf.open(io.BytesIO(out)) as pdf, pikepdf.open(io.BytesIO(original)) as src:
        assert pdf.pages[0].mediabox == src.pages[0].mediabox


@pytest.fixture(scope="module")
def page_image() -> np.ndarray:
    image, _ = render_page(LINES, size=30)
    return image


def test_generated_pdf_gets_a_text_layer_and_keeps_its_page(pipeline: Pipeline, page_image, tmp_path):
    buf = io.BytesIO()
    Image.fromarray(page_image).save(buf, "PDF", resolution=150)
    original = buf.getvalue()
    doc = pipeline.run(original, filename="page.pdf")
    out = tmp_path / "out.pdf"
    out.write_bytes(overlay_pdf(original, doc))
    _check_text_and_positions(out, doc)
    _assert_original_page_kept(original, out.read_bytes())  # the scan is not recompressed


def test_scanned_image_pdf_jpeg_kept_byte_for_byte(pipeline: Pipeline, page_image, tmp_path):
    rng = np.random.default_rng(0)
    scan = Image.fromarray(page_image).rotate(1.2, expand=True, fillcolor="white").filter(ImageFilter.GaussianBlur(0.6))
    noisy = np.clip(np.asarray(scan, np.int16) + rng.normal(0, 12, (scan.height, scan.width, 1)), 0, 255)
    jpeg = io.BytesIO()
    Image.fromarray(noisy.astype(np.uint8)).save(jpeg, "JPEG", quality=80, dpi=(200, 200))
    scanned_pdf = tmp_path / "scan.pdf"
    Image.open(io.BytesIO(jpeg.getvalue())).save(scanned_pdf, "PDF", resolution=200)
    original = scanned_pdf.read_bytes()
    doc = pipeline.run(original, filename="scan.pdf")
    out = tmp_path / "out.pdf"
    out.write_bytes(searchable_pdf(original, pipeline.decode(original, filename="scan.pdf"), doc))
    _check_text_and_positions(out, doc)
    _assert_original_page_kept(original, out.read_bytes())


def test_image_to_pdf_embeds_the_jpeg_as_it_is(pipeline: Pipeline, page_image, tmp_path):
    jpeg = io.BytesIO()
    Image.fromarray(page_image).save(jpeg, "JPEG", quality=90, dpi=(150, 150))
    data = jpeg.getvalue()
    doc = pipeline.run(data, filename="page.jpg")
    out = tmp_path / "page.pdf"
    out.write_bytes(searchable_pdf(data, pipeline.decode(data, filename="page.jpg"), doc))
    _check_text_and_positions(out, doc)
    assert _image_streams(out.read_bytes()) == [data]
    with pikepdf.open(out) as pdf:
        assert float(pdf.pages[0].mediabox[2]) == pytest.approx(page_image.shape[1] * 72 / 150, abs=0.01)


def test_cli_writes_a_searchable_pdf_and_refuses_pdf_without_out(page_image, tmp_path):
    png = tmp_path / "page.png"
    Image.fromarray(page_image).save(png)
    run = [sys.executable, "-m", "ocrpipe.cli", "ocr"]
    done = subprocess.run([*run, str(png), "--format", "pdf", "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    plain = subprocess.run(["pdftotext", str(tmp_path / "out" / "page.pdf"), "-"], capture_output=True, text=True)
    assert _norm(plain.stdout)[0].startswith("대한민국")
    bad = subprocess.run([*run, str(png), "--format", "pdf"], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "invalid_argument" in bad.stderr


@pytest.mark.skipif(importlib.util.find_spec("ocrmypdf") is None, reason="OCRmyPDF missing")
def test_cli_pdfa_of_a_scanned_pdf(page_image, tmp_path):
    """``ocrpipe ocr scan.pdf --format pdf --pdfa --out out/``: PDF/A-2b whose text is the recognised text."""
    scan = tmp_path / "scan.pdf"
    Image.fromarray(page_image).save(scan, "PDF", resolution=150)
    cli = [sys.executable, "-m", "ocrpipe.cli", "ocr", str(scan)]
    done = subprocess.run([*cli, "--format", "pdf", "--pdfa", "--dpi", "150", "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    out = tmp_path / "out" / "scan.pdf"
    assert_pdfa_2b(out)
    text = subprocess.run([*cli, "--format", "text", "--dpi", "150"], capture_output=True, text=True, timeout=600,
                          check=True).stdout
    plain = subprocess.run(["pdftotext", str(out), "-"], capture_output=True, text=True, check=True).stdout
    assert _norm(plain) == _norm(text)
    assert _norm(pypdf.PdfReader(out).pages[0].extract_text()) == _norm(text)


def test_a_plain_searchable_pdf_is_not_pdfa(pipeline: Pipeline, page_image, tmp_path):
    """The PDF/A check above can fail: the same page without ``--pdfa`` makes no PDF/A claim."""
    buf = io.BytesIO()
    Image.fromarray(page_image).save(buf, "PDF", resolution=150)
    out = tmp_path / "plain.pdf"
    out.write_bytes(overlay_pdf(buf.getvalue(), pipeline.run(buf.getvalue(), filename="p.pdf")))
    with pytest.raises(AssertionError):
        assert_pdfa_2b(out)


def test_rotated_pdf_page_gets_its_text_layer_the_right_way_round(pipeline: Pipeline, page_image, tmp_path):
    """A page shown turned by /Rotate 90: ocrpipe reads the displayed page (its lines are vertical there),
    and the layer is drawn in the page's own coordinates, so viewers extract the lines upright."""
    buf = io.BytesIO()
    Image.fromarray(page_image).save(buf, "PDF", resolution=150)
    with pikepdf.open(io.BytesIO(buf.getvalue())) as pdf:
        pdf.pages[0].obj.Rotate = 90
        rotated = io.BytesIO()
        pdf.save(rotated)
    original = rotated.getvalue()
    doc = pipeline.run(original, filename="rotated.pdf")
    assert doc.pages[0].height > doc.pages[0].width  # the displayed (turned) page was read
    out = tmp_path / "out.pdf"
    out.write_bytes(overlay_pdf(original, doc))
    plain = subprocess.run(["pdftotext", str(out), "-"], capture_output=True, text=True, check=True).stdout
    assert sorted(_norm(plain)) == sorted(_norm(doc.text))
    assert _norm(plain)[0] == " ".join(LINES[0].split())  # upright: the top line comes first


def test_multipage_tiff_becomes_one_pdf_page_per_frame(pipeline: Pipeline, page_image, tmp_path):
    second, _ = render_page(("Total 35,000 KRW 합계", "서울특별시 강남구"), size=30)
    frames = [Image.fromarray(page_image), Image.fromarray(second)]
    buf = io.BytesIO()
    frames[0].save(buf, "TIFF", save_all=True, append_images=frames[1:], dpi=(150, 150), compression="tiff_lzw")
    data = buf.getvalue()
    doc = pipeline.run(data, filename="pages.tiff")
    out = tmp_path / "pages.pdf"
    out.write_bytes(searchable_pdf(data, pipeline.decode(data, filename="pages.tiff"), doc))
    reader = pypdf.PdfReader(out)
    assert len(reader.pages) == 2
    for page, frame in zip(reader.pages, frames, strict=True):  # the pages are as big as the file's dpi says
        assert float(page.mediabox.width) == pytest.approx(frame.width * 72 / 150, abs=0.01)
    for page, ocr in zip(reader.pages, doc.pages, strict=True):
        assert ocr.lines and _norm(page.extract_text()) == [" ".join(ln.text.split()) for ln in ocr.lines]
    plain = subprocess.run(["pdftotext", str(out), "-"], capture_output=True, text=True, check=True).stdout
    assert [_norm(p) for p in plain.split("\f") if p.strip()] == [_norm(p) for p in doc.text.split("\f")]
