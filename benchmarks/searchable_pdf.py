"""Searchable PDFs of scanned pages: OCRmyPDF with Tesseract vs OCRmyPDF with the ocrpipe plugin vs
``ocrpipe ocr --format pdf``, measured in the same run on the same PDF.

    python benchmarks/searchable_pdf.py ../shared/data/ko_docs [--limit 5] [--jobs 1]

The dataset's images are put into one PDF (img2pdf, lossless, at ``--dpi``; in a temporary folder, never
kept). Each system turns it into a searchable PDF; the text poppler's ``pdftotext`` extracts from each page
is scored against the page's ``labels.jsonl`` text like ``ocrpipe eval``'s page CER (whitespace-free,
order-sensitive; :func:`ocrpipe.evaluation.metrics.page_cer`), summed over pages, and so are pdftotext's
lines against the labelled lines (box-matched line CER, :func:`ocrpipe.evaluation.metrics.line_cer`).
Seconds per page are the command's wall time divided by the page count (model loading included: one process
per system), with the CPU seconds it and its subprocesses used beside them. Results go to
``benchmarks/results/searchable_pdf.md``; ``--look`` also draws the text layer of one page (``--look-page``)
of ocrpipe's output over the page (``benchmarks/results/searchable_pdf_look.png``).
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ocrpipe.evaluation.dataset import Sample

RESULTS = Path(__file__).resolve().parent / "results"


def systems(jobs: int) -> dict[str, list[str]]:
    """The commands compared, with IN and OUT placeholders."""
    ocrmypdf = [sys.executable, "-m", "ocrmypdf", "-l", "kor+eng", "--output-type", "pdf", "--jobs", str(jobs),
                "--optimize", "0", "--quiet"]
    return {
        "ocrmypdf -l kor+eng (Tesseract)": [*ocrmypdf, "--ocr-engine", "tesseract", "IN", "OUT"],
        "ocrmypdf --plugin ocrpipe.ocrmypdf_plugin": [*ocrmypdf, "--plugin", "ocrpipe.ocrmypdf_plugin", "IN", "OUT"],
        "ocrpipe ocr --format pdf": [sys.executable, "-m", "ocrpipe.cli", "ocr", "IN", "--format", "pdf",
                                     "--dpi", "DPI", "--out", "OUTDIR"],
    }


def build_pdf(paths: list[Path], dpi: int, target: Path) -> None:
    import img2pdf

    layout = img2pdf.get_fixed_dpi_layout_fun((dpi, dpi))
    target.write_bytes(img2pdf.convert([str(p) for p in paths], layout_fun=layout))


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(cmd: list[str], src: Path, out: Path, dpi: int) -> tuple[float, float]:
    """Wall seconds the command took to write ``out``, and the CPU seconds it and its subprocesses used
    (OCRmyPDF's workers, Tesseract): less swayed by other jobs on a shared machine than wall time."""
    args = [a.replace("IN", str(src)).replace("OUTDIR", str(out.parent)).replace("OUT", str(out))
            .replace("DPI", str(dpi)) if a in ("IN", "OUT", "OUTDIR", "DPI") else a for a in cmd]
    start, cpu = time.perf_counter(), _children_cpu()
    done = subprocess.run(args, capture_output=True, text=True)
    seconds, cpu = time.perf_counter() - start, _children_cpu() - cpu
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return seconds, cpu


def score(pdf: Path, samples: list[Sample], casefold: bool, dpi: int) -> tuple[float, float | None]:
    """Page CER and line CER (box-matched, as ``ocrpipe eval``; ``None`` without labelled lines) of the text
    pdftotext extracts, summed over pages; its line boxes are turned back into image pixels (``dpi``)."""
    from ocrpipe.evaluation.metrics import Region, line_cer, page_cer
    from ocrpipe.evaluation.pdftext import extract

    pages = extract(pdf)
    if len(pages) != len(samples):
        raise SystemExit(f"{pdf}: {len(pages)} pages, expected {len(samples)}")
    page_counts = [page_cer(s.text, p.text, casefold=casefold) for s, p in zip(samples, pages, strict=True)]
    line_counts = [line_cer(s.lines, [Region.of(ln.points(dpi / 72), ln.text) for ln in p.lines],
                            s.ignore_regions, casefold=casefold).count
                   for s, p in zip(samples, pages, strict=True) if s.lines]
    page = sum(c.edits for c in page_counts) / max(sum(c.total for c in page_counts), 1)
    line = sum(c.edits for c in line_counts) / max(sum(c.total for c in line_counts), 1) if line_counts else None
    return page, line


def look(pdf: Path, target: Path, page: int = 0, scale: float = 2.0) -> None:
    """The page with every extracted word's box and text drawn over it (what a viewer would select)."""
    import pypdfium2 as pdfium
    from PIL import Image, ImageDraw, ImageFont

    from ocrpipe.export.pdf import text_font_path

    doc = pdfium.PdfDocument(str(pdf))
    image = doc[page].render(scale=scale).to_pil().convert("RGB")
    faded = Image.blend(image, Image.new("RGB", image.size, "white"), 0.55)
    draw = ImageDraw.Draw(faded)
    xml = subprocess.run(["pdftotext", "-bbox", "-f", str(page + 1), "-l", str(page + 1), str(pdf), "-"],
                 capture_output=True, text=True, check=True).stdout
    for x0, y0, x1, y1, word in re.findall(
            r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">(.*?)</word>', xml):
        box = [float(v) * scale for v in (x0, y0, x1, y1)]
        draw.rectangle(box, outline=(30, 120, 220), width=1)
        font = ImageFont.truetype(text_font_path(), max(6, int((box[3] - box[1]) * 0.8)))
        draw.text((box[0], box[1]), word, fill=(200, 30, 30), font=font)
    faded.save(target)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--limit", type=int, default=None, help="first N pages only")
    parser.add_argument("--dpi", type=int, default=150, help="resolution the images are put into the PDF at")
    parser.add_argument("--jobs", type=int, default=1, help="OCRmyPDF worker processes (same for both)")
    parser.add_argument("--out", type=Path, default=RESULTS / "searchable_pdf.md")
    parser.add_argument("--look", default=str(RESULTS / "searchable_pdf_look.png"),
                        help="PNG of one page's text layer in ocrpipe's own PDF ('' to skip)")
    parser.add_argument("--look-page", type=int, default=1, help="which page (from 1) --look draws")
    args = parser.parse_args()

    from ocrpipe.evaluation.dataset import load_dataset

    ds = load_dataset(args.dataset, limit=args.limit)
    rows = []
    with tempfile.TemporaryDirectory(prefix="searchable-pdf-") as tmp:
        src = Path(tmp) / "scan.pdf"
        build_pdf([s.image_path for s in ds], args.dpi, src)
        for k, (name, cmd) in enumerate(systems(args.jobs).items()):
            out = Path(tmp) / f"out{k}" / "scan.pdf"
            out.parent.mkdir()
            load_before = os.getloadavg()[0]
            seconds, cpu = run(cmd, src, out, args.dpi)
            load = f"{load_before:.1f} → {os.getloadavg()[0]:.1f}"
            page_cer, line_cer = score(out, list(ds), ds.casefold, args.dpi)
            line = "–" if line_cer is None else f"{line_cer:.4f}"
            rows.append((name, page_cer, line, seconds / len(ds), cpu / len(ds), load))
            print(f"{name}: page CER {page_cer:.4f}, line CER {line}, {seconds / len(ds):.2f} s/page, "
                  f"{cpu / len(ds):.2f} CPU s/page, load {load}", file=sys.stderr)
            if name.startswith("ocrpipe ocr") and args.look:
                look(out, Path(args.look), page=min(args.look_page, len(ds)) - 1)
    base, base_cpu = rows[0][3], rows[0][4]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=Path(__file__).parent).stdout.strip() or "unknown"
    lines = [
        "# Searchable PDF: OCRmyPDF + Tesseract vs OCRmyPDF + ocrpipe plugin vs ocrpipe ocr --format pdf",
        "",
        f"`python benchmarks/searchable_pdf.py {args.dataset.name}"
        f"{f' --limit {args.limit}' if args.limit else ''} --jobs {args.jobs} --look-page {args.look_page}` "
        f"— {len(ds)} pages of `{ds.name}` put into one PDF at {args.dpi} dpi, all systems in the same run on "
        f"this machine ({os.cpu_count()} CPUs), ocrpipe at commit {commit} with its default engine settings "
        "(`OCRPIPE_*` unset unless said). Page CER of the text `pdftotext` extracts from each output "
        "(whitespace-free, order-sensitive, as `ocrpipe eval`), and its line CER (pdftotext's lines matched "
        "to the labelled lines by box, as `ocrpipe eval`: recognition without reading order); seconds per "
        "page = wall time of the whole command / pages (model loading included); CPU s/page = user + system "
        "CPU time of the command and its subprocesses / pages; "
        "load = the 1-minute load average when the command started → when it ended (other jobs on the "
        "machine slow every system's wall time, much less its CPU time).",
        "",
        "| system | extracted-text page CER | line CER | s/page | time vs Tesseract | CPU s/page | CPU vs Tesseract "
        "| load |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        *[f"| {name} | {cer:.4f} | {line} | {sec:.2f} | {sec / base:.2f}x | {cpu:.2f} | {cpu / base_cpu:.2f}x "
          f"| {load} |" for name, cer, line, sec, cpu, load in rows],
        "",
    ]
    args.out.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
