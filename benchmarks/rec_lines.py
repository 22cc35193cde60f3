"""Line recognisers on held-out synthetic line sets, by kind of content: CER of each model, same run.

    python benchmarks/rec_lines.py [--model ko_rec ...] [--onnx FILE ...] [--n 400] [--seed 31337] [--out FILE]

Sets (all from :class:`ocrpipe.synth.lines.LineSynth` at ``--seed`` and seeds derived from it, none used by
any training config: those use 1-5, 41, 7001 and validation 999/1000):

- ``plain``: the ko_rec 1-3 generator (Korean, English, numbers, codes, receipts; the training validation mix);
- ``doc``: the document-content generator only (fill lines, comparison-table cells, circled numerals,
  ``ㆍ 「」 ∼ ※``, Latin codes such as ``Class C1``, URLs and units, law references);
- ``tiny``: ``doc`` content printed 6-12 px high and scaled up (5-8 px disclaimers);
- ``scan``: ``plain`` content through the whole scanner chain (blur, sensor noise, strong JPEG).

Greedy CTC as the engine reads (``CTCRecognizer.recognize``); CER on NFC text, spaces kept. Writes
``benchmarks/results/rec_lines.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import unicodedata
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rec_throughput import load  # noqa: E402

from ocrpipe.evaluation.metrics import cer  # noqa: E402
from ocrpipe.synth.lines import LineSynth  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "rec_lines.json"
SETS: dict[str, dict[str, float]] = {"plain": {}, "doc": {"doc_content": 1.0},
                                     "tiny": {"doc_content": 1.0, "tiny": 1.0}, "scan": {"scan_chain": 1.0}}


def line_set(kind: str, n: int, seed: int) -> list[tuple[np.ndarray, str]]:
    """``n`` rendered lines (RGB crop, text) of one kind."""
    opts = SETS[kind]
    synth = LineSynth(seed=seed + list(SETS).index(kind), max_width=288, max_chars=18,
                      doc_content=opts.get("doc_content", 0.0), tiny=opts.get("tiny", 0.0),
                      scan_chain=opts.get("scan_chain", 0.0))
    out = []
    for i in range(n):
        img, text = synth.sample(i)
        rgb = np.repeat(img[..., None], 3, axis=2) if img.ndim == 2 else img
        out.append((np.ascontiguousarray(rgb), text))
    return out


def score(rec: Any, lines: list[tuple[np.ndarray, str]]) -> dict[str, float]:
    """CER and exact-line rate of ``rec`` on ``lines``."""
    errors = chars = exact = 0
    for start in range(0, len(lines), 32):
        part = lines[start:start + 32]
        for (_, truth), got in zip(part, rec.recognize([c for c, _ in part]), strict=True):
            t, p = unicodedata.normalize("NFC", truth), unicodedata.normalize("NFC", got.text)
            e = cer(t, p)
            errors, chars, exact = errors + e.edits, chars + e.total, exact + (t == p)
    return {"cer": round(errors / max(chars, 1), 4), "exact": round(exact / max(len(lines), 1), 4)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", action="append", help="a registry model name (repeatable; default ko_rec)")
    ap.add_argument("--onnx", action="append", help="an exported CTC model file (repeatable)")
    ap.add_argument("--n", type=int, default=400)
    ap.add_argument("--seed", type=int, default=31337)
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args(argv)
    names = [(m, load(model=m)) for m in args.model or ([] if args.onnx else ["ko_rec"])]
    names += [(f, load(onnx=f)) for f in args.onnx or []]
    sets = {kind: line_set(kind, args.n, args.seed) for kind in SETS}
    table = {name: {kind: score(rec, lines) for kind, lines in sets.items()} for name, rec in names}
    print(f"{'model':50s} " + " ".join(f"{k:>14s}" for k in SETS) + "   (CER / exact lines)")
    for name, row in table.items():
        print(f"{name[-50:]:50s} " + " ".join(f"{row[k]['cer']:7.4f}/{row[k]['exact']:.3f}" for k in SETS))
    result = {"command": " ".join(["python benchmarks/rec_lines.py", *(argv if argv is not None else sys.argv[1:])]),
              "n": args.n, "seed": args.seed, "sets": {k: v for k, v in SETS.items()}, "results": table}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
