"""The OCRmyPDF plugin through the real ``ocrmypdf`` command (the venv's console script): the text layer it
makes reads like ``ocrpipe ocr`` on the same pages (line CER against the rendered ground truth within 0.005),
and OCRmyPDF's ``--skip-text`` leaves a page that has text alone while ocrpipe reads the scanned one."""

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pikepdf
import pytest
from PIL import Image
from testsupport.pdf import assert_pdfa_2b

from ocrpipe.evaluation.metrics import Region, line_cer, page_cer
from ocrpipe.evaluation.pdftext import extract
from ocrpipe.samples import render_page

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(shutil.which("pdftotext") is None, reason="pdftotext (poppler-utils) missing")]

PAGES = (
    ("대한민국 헌법 제1조 국민 주권", "계약 기간: 2026. 3. 1. ~ 2027. 2. 28.", "Invoice No. A-2291 Total 35,000 KRW"),
    ("담당자 연락처 010-1234-5678", "개인정보 수집 및 이용에 동의합니다.", "서울특별시 강남구 테헤란로 123"),
)
DPI = 150
OCRMYPDF = Path(sys.executable).with_name("ocrmypdf")  # the command pip installs with ocrpipe[pdf]


def _ocrmypdf(*args: str) -> subprocess.CompletedProcess[str]:
    if not OCRMYPDF.is_file():
        pytest.skip(f"no ocrmypdf command at {OCRMYPDF} (pip install 'ocrpipe[pdf]')")
    return subprocess.run([str(OCRMYPDF), "--plugin", "ocrpipe.ocrmypdf_plugin", "--jobs", "1", *args],
                          capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("renderer", ["auto", "fpdf2"])  # auto: the plugin's own text layer (sandwich)
def test_ocrmypdf_with_the_plugin_reads_like_ocrpipe(tmp_path, renderer: str):
    images, truths = zip(*(render_page(lines, size=30) for lines in PAGES), strict=True)
    src = tmp_path / "in.pdf"
    first, *rest = [Image.fromarray(img) for img in images]
    first.save(src, "PDF", resolution=DPI, save_all=True, append_images=rest)
    out = tmp_path / "out.pdf"
    done = _ocrmypdf("--output-type", "pdf", "--pdf-renderer", renderer, str(src), str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    ours = subprocess.run([sys.executable, "-m", "ocrpipe.cli", "ocr", "--format", "json", "--dpi", str(DPI),
                           str(src)], capture_output=True, text=True, timeout=600, check=True)
    doc = json.loads(ours.stdout)
    extracted = extract(out)
    assert len(extracted) == len(PAGES)
    for truth, page, pdf_page in zip(truths, doc["pages"], extracted, strict=True):
        gt = [Region.of(t["points"], t["text"]) for t in truth]
        scale = DPI / 72
        plugin = line_cer(gt, [Region.of(ln.points(scale), ln.text) for ln in pdf_page.lines]).count.rate
        direct = line_cer(gt, [Region.of(ln["box"], ln["text"]) for ln in page["lines"]]).count.rate
        assert abs(plugin - direct) <= 0.005, (plugin, direct, pdf_page.text)
        assert "".join(pdf_page.text.split()) == "".join("\n".join(ln["text"] for ln in page["lines"]).split())
        if renderer == "auto":  # ocrpipe's text layer keeps the words apart as well
            assert [ln.text for ln in pdf_page.lines] == [ln["text"] for ln in page["lines"]]


def _born_digital_page(text: str) -> bytes:
    """A one-page PDF with real (visible) text in a Hangul font, made with fpdf2."""
    from fpdf import FPDF

    from ocrpipe.export.pdf import text_font_path

    pdf = FPDF(unit="pt", format=(600, 200))
    pdf.add_page()
    pdf.add_font("hangul", fname=text_font_path())
    pdf.set_font("hangul", size=18)
    pdf.text(40, 80, text)
    return bytes(pdf.output())


def test_skip_text_leaves_a_page_with_text_and_reads_the_scan(tmp_path):
    """OCRmyPDF keeps deciding which pages need OCR: with ``--skip-text`` the born-digital page comes out
    with its own text only (not read again, no second layer), the scanned page gets ocrpipe's text; without
    it OCRmyPDF refuses the file (exit 6, prior OCR found) as it does with Tesseract."""
    digital = "전자 문서 Digital page 2026"
    scan, _ = render_page(PAGES[0], size=30)
    buf = io.BytesIO()
    Image.fromarray(scan).save(buf, "PDF", resolution=DPI)
    src = tmp_path / "mixed.pdf"
    with pikepdf.open(io.BytesIO(_born_digital_page(digital))) as pdf, pikepdf.open(buf) as scanned:
        pdf.pages.extend(scanned.pages)
        pdf.save(src)
    out = tmp_path / "out.pdf"
    done = _ocrmypdf("--skip-text", "--output-type", "pdf", str(src), str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    first, second = extract(out)
    assert first.text.split() == digital.split()  # its own text, once
    assert len(second.lines) == len(PAGES[0])
    assert page_cer("\n".join(PAGES[0]), second.text).rate <= 0.02, second.text  # read by ocrpipe
    refused = _ocrmypdf("--output-type", "pdf", str(src), str(tmp_path / "refused.pdf"))
    assert refused.returncode == 6, refused.stderr[-3000:]


def test_the_plain_command_makes_pdfa_with_ocrpipes_text(tmp_path):
    """``ocrmypdf --plugin ocrpipe.ocrmypdf_plugin in.pdf out.pdf`` as the README gives it: OCRmyPDF's
    default output type makes PDF/A-2b, and its text is ocrpipe's reading of the page."""
    scan, _ = render_page(PAGES[1], size=30)
    src = tmp_path / "in.pdf"
    Image.fromarray(scan).save(src, "PDF", resolution=DPI)
    out = tmp_path / "out.pdf"
    done = _ocrmypdf(str(src), str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    assert_pdfa_2b(out)
    (page,) = extract(out)
    assert page_cer("\n".join(PAGES[1]), page.text).rate <= 0.02, page.text
    with pikepdf.open(out) as pdf:
        assert "ocrpipe" in str(pdf.open_metadata().get("xmp:CreatorTool", ""))
