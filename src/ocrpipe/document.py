"""The one result tree: quads, words, recognised lines, pages, documents and model descriptions.

Every stage takes plain numpy arrays and returns frozen dataclasses; nothing here holds hidden state.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Point = tuple[float, float]
Box = tuple[Point, Point, Point, Point]
"""Four corners in original-image pixels, clockwise from top-left."""


def quad_to_box(quad: np.ndarray) -> Box:
    """Convert a (4, 2) array to a hashable, JSON-friendly box of rounded floats."""
    q = np.asarray(quad, dtype=np.float64).reshape(4, 2)
    return tuple((round(float(x), 1), round(float(y), 1)) for x, y in q)  # type: ignore[return-value]


@dataclass(frozen=True, slots=True)
class WordSpan:
    """One word of a recogniser's reading and where it lies along the crop's reading direction.

    ``start`` and ``end`` are fractions (0..1) of the crop's width, left to right as the recogniser saw it.
    """

    text: str
    confidence: float
    start: float
    end: float


@dataclass(frozen=True, slots=True)
class RecResult:
    """The output of a recogniser for one line crop; ``words`` is empty when the recogniser gives no spans."""

    text: str
    confidence: float
    words: tuple[WordSpan, ...] = ()
    least: float | None = None
    """The lowest probability among the emitted symbols (None when the recogniser does not say): one
    doubtful letter of a word the mean hides."""

    def mirrored(self) -> RecResult:
        """The same reading with its word spans measured on the crop turned by 180 degrees."""
        spans = tuple(WordSpan(w.text, w.confidence, 1.0 - w.end, 1.0 - w.start) for w in self.words)
        return RecResult(self.text, self.confidence, spans, self.least)


@dataclass(frozen=True, slots=True)
class Word:
    """One word of a line: its text, confidence and box (original-image pixels, clockwise from top-left)."""

    text: str
    confidence: float
    box: Box

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "confidence": round(float(self.confidence), 4),
            "box": [[x, y] for x, y in self.box],
        }


@dataclass(frozen=True, slots=True)
class Line:
    """One recognised text line; ``words`` splits it into words with their own boxes (reading order)."""

    text: str
    confidence: float
    box: Box
    det_score: float = 1.0
    words: tuple[Word, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "confidence": round(float(self.confidence), 4),
            "box": [[x, y] for x, y in self.box],
            "words": [word.to_dict() for word in self.words],
        }


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a document, its lines already in reading order."""

    index: int
    width: int
    height: int
    lines: tuple[Line, ...]
    blocks: tuple[tuple[int, ...], ...] = ()
    """Indices into ``lines`` grouped by block/column, in reading order."""

    @property
    def text(self) -> str:
        return "\n".join(line.text for line in self.lines if line.text)

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "width": self.width,
            "height": self.height,
            "lines": [line.to_dict() for line in self.lines],
        }


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What a stage runs: shown by ``ocrpipe models`` and in every Document."""

    name: str
    kind: str
    version: str
    sha256: str | None
    source: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "version": self.version,
            "sha256": self.sha256,
            "source": self.source,
        }


@dataclass(frozen=True, slots=True)
class Document:
    """The result of running the pipeline on one file."""

    engine: str
    pages: tuple[Page, ...]
    timings_ms: dict[str, float] = field(default_factory=dict)
    models: tuple[ModelInfo, ...] = ()

    @property
    def text(self) -> str:
        """Page texts in reading order: lines joined by ``\\n``, pages by ``\\f``."""
        return "\f".join(page.text for page in self.pages)

    def to_dict(self) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "pages": [page.to_dict() for page in self.pages],
            "text": self.text,
            "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()},
            "models": [m.to_dict() for m in self.models],
        }


def build_document(engine: str, pages: Sequence[Page], *, timings_ms: dict[str, float] | None = None,
                   models: Sequence[ModelInfo] = (), started: float | None = None) -> Document:
    """The one way a :class:`Document` is made.

    ``timings_ms`` holds per-stage sums in milliseconds; ``total`` is the wall time since ``started`` (a
    :func:`time.perf_counter` value) when given, else the one already in ``timings_ms``, else the stage sum.
    """
    timings = dict(timings_ms or {})
    if started is not None:
        timings["total"] = (time.perf_counter() - started) * 1000.0
    elif "total" not in timings and timings:
        timings["total"] = sum(timings.values())
    return Document(engine=engine, pages=tuple(pages), timings_ms=timings, models=tuple(models))


def _box(points: Any) -> Box:
    return quad_to_box(np.asarray(points, dtype=np.float64))


def document_from_dict(data: dict[str, Any]) -> Document:
    """A Document back from its JSON (``Document.to_dict``): pages, lines, words, timings and models."""
    pages = []
    for p in data.get("pages", []):
        lines = tuple(
            Line(text=ln["text"], confidence=float(ln["confidence"]), box=_box(ln["box"]),
                 words=tuple(Word(w["text"], float(w["confidence"]), _box(w["box"])) for w in ln.get("words", [])))
            for ln in p.get("lines", []))
        pages.append(Page(index=int(p["index"]), width=int(p["width"]), height=int(p["height"]), lines=lines))
    models = tuple(ModelInfo(**m) for m in data.get("models", []))
    return Document(engine=str(data.get("engine", "")), pages=tuple(pages),
                    timings_ms=dict(data.get("timings_ms", {})), models=models)


def boxes_of(lines: Sequence[Line]) -> np.ndarray:
    """Stack line boxes into an (N, 4, 2) float32 array."""
    if not lines:
        return np.zeros((0, 4, 2), np.float32)
    return np.asarray([line.box for line in lines], dtype=np.float32)
