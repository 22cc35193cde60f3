"""Load an evaluation folder: ``labels.jsonl`` (one JSON object per image) plus the images it names.

Format (see ``shared/data/README.md``)::

    {"image": "images/x.png", "text": "page text, lines joined by \\n",
     "lines": [{"points": [[x, y], ...], "text": "..."}],          # optional; "###" = don't care
     "word_boxes": [{"points": ..., "text": "..."}],                # optional
     "ignore_regions": [{"points": ...}],                           # optional: text there is not in GT
     "no_text": false}                                              # optional
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ocrpipe.errors import ErrorCode, InputError
from ocrpipe.evaluation.metrics import Region

LABELS = "labels.jsonl"


@dataclass(frozen=True)
class Sample:
    """One labelled image."""

    name: str
    """The ``image`` field as written in labels.jsonl (relative path); used to key results."""
    image_path: Path
    text: str
    lines: tuple[Region, ...] = ()
    word_boxes: tuple[Region, ...] = ()
    ignore_regions: tuple[np.ndarray, ...] = ()
    no_text: bool = False
    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def has_boxes(self) -> bool:
        return bool(self.lines)


@dataclass(frozen=True)
class Dataset:
    """A loaded evaluation folder."""

    root: Path
    samples: tuple[Sample, ...]
    casefold: bool
    """Compare case-insensitively (auto: the ground truth has letters but no lower-case ones)."""

    @property
    def name(self) -> str:
        return self.root.name

    def __len__(self) -> int:
        return len(self.samples)

    def __iter__(self) -> Iterator[Sample]:
        return iter(self.samples)


def load_dataset(folder: str | Path, *, limit: int | None = None, casefold: bool | None = None) -> Dataset:
    """Read ``folder/labels.jsonl``; ``limit`` keeps the first N samples; ``casefold=None`` auto-detects."""
    root = Path(folder)
    labels = root / LABELS
    if not labels.is_file():
        raise InputError(ErrorCode.FILE_NOT_FOUND, f"{labels} not found: an evaluation folder needs {LABELS}")
    samples = []
    with labels.open(encoding="utf-8") as fh:
        for lineno, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            try:
                samples.append(parse_sample(json.loads(raw), root))
            except (ValueError, KeyError, TypeError) as exc:
                raise InputError(ErrorCode.INVALID_ARGUMENT, f"{labels}:{lineno}: bad label record ({exc})") from exc
            if limit is not None and len(samples) >= limit:
                break
    if casefold is None:
        casefold = _upper_case_only(samples)
    return Dataset(root=root, samples=tuple(samples), casefold=casefold)


def parse_sample(obj: dict[str, Any], root: Path) -> Sample:
    """One labels.jsonl record as a :class:`Sample` (paths relative to ``root``)."""
    image = str(obj["image"])
    known = {"image", "text", "lines", "word_boxes", "ignore_regions", "no_text"}
    return Sample(
        name=image,
        image_path=root / image,
        text=str(obj.get("text") or ""),
        lines=_regions(obj.get("lines")),
        word_boxes=_regions(obj.get("word_boxes")),
        ignore_regions=tuple(_points(r["points"]) for r in obj.get("ignore_regions") or ()),
        no_text=bool(obj.get("no_text", False)),
        extra={k: v for k, v in obj.items() if k not in known},
    )


def _regions(items: Any) -> tuple[Region, ...]:
    return tuple(Region(_points(r["points"]), str(r.get("text", ""))) for r in items or ())


def _points(points: Any) -> np.ndarray:
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2 or len(pts) < 3:
        raise ValueError(f"points must be a list of at least 3 [x, y] pairs, got shape {pts.shape}")
    return pts


def _upper_case_only(samples: list[Sample]) -> bool:
    letters = [c for s in samples for c in s.text if c.isalpha() and c.lower() != c.upper()]
    return bool(letters) and not any(c.islower() for c in letters)
