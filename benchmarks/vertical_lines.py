"""Vertical lines through the default pipeline: upright Korean columns and sideways horizontal lines.

    python benchmarks/vertical_lines.py [--n 40] [--seed 4711] [--out FILE]

Generates ``n`` top-to-bottom Korean columns (characters upright, :func:`ocrpipe.synth.columns.render_column`:
hunspell-ko words, every Korean font installed in turn, 22–56 px, scan effects) and ``n`` ordinary lines
turned by ±90° (:func:`~ocrpipe.synth.columns.render_sideways`), and reads each page with the default
pipeline as it is (``stack_vertical`` on) and, in the same run on the same page, with the vertical lines
only turned (``stack_vertical=False``, the code before). Reports the CER of the page text (lines joined,
spaces ignored) for both and their ratio. Results: ``benchmarks/results/vertical_lines.json``.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

from ocrpipe.engine.pipeline import Pipeline
from ocrpipe.evaluation.metrics import ErrorCount, cer
from ocrpipe.synth.columns import column_text, korean_fonts, render_column, render_sideways

RESULTS = Path(__file__).resolve().parent / "results" / "vertical_lines.json"


def _text(pipeline: Pipeline, image) -> str:  # type: ignore[no-untyped-def]
    return "".join(line.text for line in pipeline.run_image(image).pages[0].lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--seed", type=int, default=4711)
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args(argv)
    rng, fonts = random.Random(args.seed), korean_fonts()
    new = Pipeline.default()
    old = new.with_config(stack_vertical=False)
    rows: dict[str, list[dict[str, object]]] = {"upright_columns": [], "sideways_lines": []}
    ms: dict[str, list[float]] = {"new": [], "old": []}
    for i in range(args.n):
        face, size = fonts[i % len(fonts)], rng.randint(22, 56)
        text = column_text(rng)
        for kind, image in (("upright_columns", render_column(text, face, size, rng=rng)),
                            ("sideways_lines", render_sideways(text, face, size, rng=rng))):
            truth = text.replace(" ", "")
            got = {}
            for name, pipe in (("new", new), ("old", old)):
                t0 = time.perf_counter()
                got[name] = _text(pipe, image).replace(" ", "")
                ms[name].append((time.perf_counter() - t0) * 1000)
            rows[kind].append({"truth": truth, "font": Path(face.path).name, "size": size, **got})
    summary: dict[str, object] = {"command": " ".join(["python benchmarks/vertical_lines.py", *sys.argv[1:]]),
                                  "seed": args.seed, "n": args.n, "fonts": len(fonts)}
    for kind, items in rows.items():
        for name in ("new", "old"):
            errors = sum((cer(str(r["truth"]), str(r[name]), spaces=False) for r in items), ErrorCount(0, 0))
            summary[f"{kind}_cer_{name}"] = round(errors.rate, 4)
            summary[f"{kind}_exact_{name}"] = round(statistics.mean(r[name] == r["truth"] for r in items), 4)
        print(f"{kind}: CER {summary[f'{kind}_cer_new']:.4f} (exact {summary[f'{kind}_exact_new']:.0%}) vs "
              f"{summary[f'{kind}_cer_old']:.4f} turned only (exact {summary[f'{kind}_exact_old']:.0%})")
    summary["ms_per_page_new"] = round(statistics.mean(ms["new"]), 1)
    summary["ms_per_page_old"] = round(statistics.mean(ms["old"]), 1)
    summary["time_ratio_new_vs_old"] = round(summary["ms_per_page_new"] / summary["ms_per_page_old"], 3)  # type: ignore[operator]
    print(f"time per page {summary['ms_per_page_new']} vs {summary['ms_per_page_old']} ms "
          f"({summary['time_ratio_new_vs_old']}x)")
    summary["samples"] = {k: v[:8] for k, v in rows.items()}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(summary, ensure_ascii=False, indent=1), encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
