"""``python -m ocrpipe.synth.printouts --out DIR --n 30 --seed S``: write synthetic printouts + ground truth."""

from __future__ import annotations

import argparse

from ocrpipe.synth.printouts.generate import generate
from ocrpipe.synth.printouts.heldout import HELDOUT
from ocrpipe.synth.printouts.layouts import LAYOUTS


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and generate the pages."""
    ap = argparse.ArgumentParser(prog="python -m ocrpipe.synth.printouts", description=__doc__)
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--n", type=int, default=30, help="number of pages")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--layouts", nargs="*", choices=sorted({**LAYOUTS, **HELDOUT}),
                    help="these layouts (default: those of the built-in templates; held out: "
                         + ", ".join(sorted(HELDOUT)) + ")")
    ap.add_argument("--strength", type=float, default=1.0, help="scale of the scan effects (0 = clean)")
    ap.add_argument("--values", action="store_true",
                    help="also write <page>.values.json (field -> printed value) for ocrpipe template new")
    args = ap.parse_args(argv)
    paths = generate(args.out, args.n, args.seed, args.layouts, args.strength, args.values)
    print(f"wrote {len(paths)} printouts to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
