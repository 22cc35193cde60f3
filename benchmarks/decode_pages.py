"""Lazy decoding: what knowing a document's page sizes costs, against decoding every page, in one run.

    python benchmarks/decode_pages.py [--pages 50] [--dpi 200] [--repeat 3]

Generates a PDF of ``--pages`` scanned-looking A4 pages and, in this process:

* ``eager``  -- ``load_pages`` (every page rendered, as the service did before ``open_pages``);
* ``sizes``  -- ``open_pages`` and ``page_size(i)`` of every page, nothing rendered (what a scheduler
  needs to check a memory budget);
* ``one``    -- ``open_pages`` and ``render(k)`` of one page in the middle.

Prints the best wall time of ``--repeat`` runs and the bytes of page images each one holds at its end, and
writes ``benchmarks/results/decode_pages.json`` with the ratios against ``eager``.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def make_pdf(pages: int) -> bytes:
    """``pages`` scanned-looking A4 pages (a generated text page at 150 dpi, JPEG inside the PDF)."""
    from PIL import Image

    from ocrpipe.samples import render_page

    lines = [f"청구서 2026-{k:03d} 합계 35,000원 Invoice total KRW" for k in range(20)]
    image, _ = render_page(lines, size=28)
    sheet = Image.new("RGB", (1240, 1754), "white")
    sheet.paste(Image.fromarray(image).crop((0, 0, min(1240, image.shape[1]), min(1754, image.shape[0]))))
    buf = io.BytesIO()
    sheet.save(buf, "PDF", save_all=True, append_images=[sheet] * (pages - 1), resolution=150)
    return buf.getvalue()


def best_of(fn: Callable[[], int], repeat: int) -> tuple[float, int]:
    """Best wall seconds of ``repeat`` calls, and the bytes the last call reported holding."""
    best, held = float("inf"), 0
    for _ in range(repeat):
        start = time.perf_counter()
        held = fn()
        best = min(best, time.perf_counter() - start)
    return best, held


def main(argv: list[str] | None = None) -> int:
    from ocrpipe.engine.decode import load_pages, open_pages

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pages", type=int, default=50)
    ap.add_argument("--dpi", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    data = make_pdf(args.pages)

    def eager() -> int:
        return sum(page.nbytes for page in load_pages(data, dpi=args.dpi))

    def sizes() -> int:
        with open_pages(data, dpi=args.dpi) as src:
            total = sum(w * h * 3 for w, h in (src.page_size(i) for i in range(len(src))))
        assert total > 0
        return 0

    def one() -> int:
        with open_pages(data, dpi=args.dpi) as src:
            return int(src.render(len(src) // 2).nbytes)

    rows: dict[str, Any] = {}
    for name, fn in (("eager", eager), ("sizes", sizes), ("one", one)):
        seconds, held = best_of(fn, args.repeat)
        rows[name] = {"seconds": round(seconds, 4), "page_bytes_held": held}
    base = rows["eager"]["seconds"]
    for row in rows.values():
        row["ratio_to_eager"] = round(row["seconds"] / base, 4)
    out = {"pdf_bytes": len(data), "pages": args.pages, "dpi": args.dpi, "repeat": args.repeat, "results": rows}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "decode_pages.json").write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    for name, row in rows.items():
        print(f"{name:<6} {row['seconds'] * 1000:9.1f} ms  x{row['ratio_to_eager']:<7} "
              f"{row['page_bytes_held'] / 2**20:8.1f} MiB of page images held", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
