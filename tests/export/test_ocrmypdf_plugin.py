"""The OCRmyPDF plugin through the real ``ocrmypdf`` command: the text layer it makes reads like ``ocrpipe ocr``
on the same pages (line CER against the rendered ground truth within 0.005)."""

import json
import shutil
import subprocess
import sys

import pytest
from PIL import Image

from ocrpipe.evaluation.metrics import Region, line_cer
from ocrpipe.evaluation.pdftext import extract
from ocrpipe.samples import render_page

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(shutil.which("pdftotext") is None, reason="pdftotext (poppler-utils) missing")]

PAGES = (
    ("대한민국 헌법 제1조 국민 주권", "계약 기간: 2026. 3. 1. ~ 2027. 2. 28.", "Invoice No. A-2291 Total 35,000 KRW"),
    ("담당자 연락처 010-1234-5678", "개인정보 수집 및 이용에 동의합니다.", "서울특별시 강남구 테헤란로 123"),
)
DPI = 150


@pytest.mark.parametrize("renderer", ["auto", "fpdf2"])  # auto: the plugin's own text layer (sandwich)
def test_ocrmypdf_with_the_plugin_reads_like_ocrpipe(tmp_path, renderer: str):
    pytest.importorskip("ocrmypdf")
    images, truths = zip(*(render_page(lines, size=30) for lines in PAGES), strict=True)
    src = tmp_path / "in.pdf"
    first, *rest = [Image.fromarray(img) for img in images]
    first.save(src, "PDF", resolution=DPI, save_all=True, append_images=rest)
    out = tmp_path / "out.pdf"
    done = subprocess.run([sys.executable, "-m", "ocrmypdf", "--plugin", "ocrpipe.ocrmypdf_plugin", "--jobs", "1",
                           "--output-type", "pdf", "--pdf-renderer", renderer, str(src), str(out)],
                          capture_output=True, text=True, timeout=600)
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
