"""Score template mode against generated printouts (``python -m ocrpipe.synth.printouts`` ground truth).

Per field: *correct* (value equals the truth), *valid* (the engine vouches for it), and the one outcome
that must never happen, *silently wrong* (valid but not correct). Per page: was the right template chosen.

    python -m ocrpipe.synth.printouts --out DIR --n 200 --seed 31337
    python -m ocrpipe.templates.evaluate DIR [--templates USER_DIR] [--out summary.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ocrpipe.templates.engine import TemplateEngine
from ocrpipe.templates.schema import template_set


def same_value(kind: str, got: Any, truth: Any) -> bool:
    """Numbers compare as floats (exactly, up to float noise); everything else by equality."""
    if got is None:
        return False
    if kind == "number":
        return isinstance(got, int | float) and abs(float(got) - float(truth)) < 1e-9
    return got == truth


@dataclass
class Score:
    """Counts over a folder of printouts."""

    pages: int = 0
    template_correct: int = 0
    fields: int = 0
    correct: int = 0
    correct_valid: int = 0
    flagged: int = 0
    silently_wrong: int = 0
    numeric: int = 0
    numeric_correct: int = 0
    numeric_silently_wrong: int = 0
    page_ms: list[float] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """Rates and counts as plain data."""
        f = max(self.fields, 1)
        return {
            "pages": self.pages, "template_accuracy": self.template_correct / max(self.pages, 1),
            "fields": self.fields, "field_accuracy": self.correct / f,
            "field_accuracy_valid": self.correct_valid / f, "flagged_rate": self.flagged / f,
            "silently_wrong": self.silently_wrong, "numeric_fields": self.numeric,
            "numeric_accuracy": self.numeric_correct / max(self.numeric, 1),
            "numeric_silently_wrong": self.numeric_silently_wrong,
            "ms_per_page_mean": float(np.mean(self.page_ms)) if self.page_ms else None,
            "errors": self.errors[:50],
        }


def load_truths(folder: str | Path) -> list[tuple[Path, dict[str, Any]]]:
    """(image path, ground truth) for every page of a generated folder, in index order."""
    folder = Path(folder)
    out = []
    for line in (folder / "index.jsonl").read_text(encoding="utf-8").splitlines():
        rec = json.loads(line)
        out.append((folder / rec["image"], json.loads((folder / rec["truth"]).read_text(encoding="utf-8"))))
    return out


def score_page(score: Score, engine: TemplateEngine, image: np.ndarray, truth: dict[str, Any], name: str) -> None:
    """Run the engine on one page and add its outcome to ``score``."""
    t0 = time.perf_counter()
    result, match = engine.run_image(image)
    score.page_ms.append((time.perf_counter() - t0) * 1000)
    score.pages += 1
    chosen = result.template if result else None
    if chosen == truth["template"]:
        score.template_correct += 1
    else:
        score.errors.append({"page": name, "template": chosen, "expected": truth["template"],
                             "reason": match.reason})
    got = {f.name: f for f in result.fields} if result and chosen == truth["template"] else {}
    for fname, t in truth["fields"].items():
        score.fields += 1
        numeric = t["type"] == "number"
        score.numeric += numeric
        r = got.get(fname)
        ok = r is not None and same_value(t["type"], r.value, t["value"])
        valid = r is not None and r.valid
        score.correct += ok
        score.numeric_correct += ok and numeric
        score.correct_valid += ok and valid
        score.flagged += not valid
        if valid and not ok:
            score.silently_wrong += 1
            score.numeric_silently_wrong += numeric
        if not ok or not valid:
            score.errors.append({"page": name, "field": fname, "truth": t["value"],
                                 "value": None if r is None else r.value, "raw": None if r is None else r.raw,
                                 "valid": valid, "issues": [] if r is None else list(r.issues)})


def evaluate(engine: TemplateEngine, folder: str | Path) -> Score:
    """Score ``engine`` on every page of a generated folder."""
    score = Score()
    for path, truth in load_truths(folder):
        image = np.asarray(Image.open(path).convert("RGB"))
        score_page(score, engine, image, truth, path.name)
    return score


def main(argv: list[str] | None = None) -> int:
    """Print (and optionally write) the summary; exit 1 when a number was silently wrong."""
    ap = argparse.ArgumentParser(prog="python -m ocrpipe.templates.evaluate", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", help="a folder written by python -m ocrpipe.synth.printouts")
    ap.add_argument("--out", help="write the summary as JSON here")
    ap.add_argument("--templates", action="append", metavar="PATH",
                    help="user template file/folder added to the built-ins (repeatable)")
    args = ap.parse_args(argv)
    engine = TemplateEngine(template_set(args.templates)) if args.templates else TemplateEngine()
    summary = evaluate(engine, args.folder).summary()
    text = json.dumps(summary, ensure_ascii=False, indent=1)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    print(text)
    return 0 if summary["numeric_silently_wrong"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
