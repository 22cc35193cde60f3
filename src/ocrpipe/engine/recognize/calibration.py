"""Calibrated line confidence: a small fitted table maps a recogniser's raw confidence to the chance that the
line is read exactly right.

The table (``x``: raw confidences, ``y``: probabilities, both increasing) is fitted by isotonic regression on
tuning material only (``benchmarks/calibrate.py``: our synthetic pages, never ``../shared/data``) and stored
in the model manifest under ``calibration``, keyed by recogniser name; :func:`load` reads it. Between knots
the map is linear, outside them it is clamped. ``y`` is made strictly increasing (by a negligible amount), so
the order of two readings' confidences -- which the 180-degree orientation check compares -- never changes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ocrpipe.document import RecResult, WordSpan


@dataclass(frozen=True)
class Calibration:
    """A monotone map from raw line confidence to P(line exactly right)."""

    x: tuple[float, ...]
    y: tuple[float, ...]
    fitted_on: str = ""

    def __call__(self, confidence: float) -> float:
        return float(np.interp(confidence, self.x, self.y))

    def apply(self, result: RecResult) -> RecResult:
        """``result`` with its line and word confidences mapped."""
        words = tuple(WordSpan(w.text, self(w.confidence), w.start, w.end) for w in result.words)
        return RecResult(result.text, self(result.confidence), words, result.least)

    def to_dict(self) -> dict[str, Any]:
        return {"x": [round(v, 5) for v in self.x], "y": [round(v, 6) for v in self.y], "fitted_on": self.fitted_on}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibration:
        x, y = tuple(float(v) for v in data["x"]), tuple(float(v) for v in data["y"])
        if len(x) != len(y) or len(x) < 2 or any(b <= a for a, b in zip(x, x[1:], strict=False)):
            raise ValueError("a calibration table needs two or more increasing x knots, one y per knot")
        return cls(x, y, str(data.get("fitted_on", "")))


def fit_isotonic(confidence: Sequence[float], correct: Sequence[float], *, knots: int = 20,
                 fitted_on: str = "") -> Calibration:
    """Isotonic regression of ``correct`` (0/1) on ``confidence``, summarised as a table of ``knots`` points.

    The points are grouped into ``knots`` bins of equal count (by confidence); the bins' mean correctness is
    made non-decreasing by pooling adjacent violators, weighted by bin size; each knot sits at its bin's mean
    confidence.
    """
    conf = np.asarray(confidence, dtype=np.float64)
    hit = np.asarray(correct, dtype=np.float64)
    if len(conf) < 2 * knots:
        raise ValueError(f"need at least {2 * knots} points to fit {knots} knots, got {len(conf)}")
    order = np.argsort(conf, kind="stable")
    bins = [b for b in np.array_split(order, knots) if len(b)]
    xs = [float(conf[b].mean()) for b in bins]
    blocks = [[float(hit[b].mean()), float(len(b)), 1] for b in bins]  # value, weight, bins pooled
    pooled: list[list[float]] = []
    for block in blocks:
        pooled.append(block)
        while len(pooled) > 1 and pooled[-2][0] > pooled[-1][0]:
            v2, w2, n2 = pooled.pop()
            v1, w1, n1 = pooled.pop()
            pooled.append([(v1 * w1 + v2 * w2) / (w1 + w2), w1 + w2, n1 + n2])
    ys = [v for v, _, n in pooled for _ in range(int(n))]
    x_out, y_out = _strictly_increasing(xs, ys)
    return Calibration(x_out, y_out, fitted_on)


def _strictly_increasing(xs: list[float], ys: list[float]) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Merge knots with equal x; lift flat stretches of y by 1e-6 per knot (order-preserving, no visible change)."""
    x_out: list[float] = []
    y_out: list[float] = []
    for x, y in zip(xs, ys, strict=True):
        if x_out and x <= x_out[-1]:
            y_out[-1] = max(y_out[-1], y)
            continue
        x_out.append(x)
        y_out.append(y)
    for k in range(1, len(y_out)):
        y_out[k] = max(y_out[k], y_out[k - 1] + 1e-6)
    return tuple(x_out), tuple(min(1.0, y) for y in y_out)


def load(name: str) -> Calibration | None:
    """The manifest's calibration table for recogniser ``name``, if it has one."""
    from ocrpipe.engine.runtime import MANIFEST

    data = json.loads(MANIFEST.read_text(encoding="utf-8")).get("calibration", {})
    return Calibration.from_dict(data[name]) if name in data else None
