"""Score predictions saved by another engine or a cloud API (``--engine external:PATH``).

Three response formats are recognised per file, automatically:

* **ocrpipe JSON** -- ``{"pages": [{"lines": [{"text", "box": [[x, y] x4]}]}]}`` (``ocrpipe ocr --format
  json``; also accepted under a top-level ``"document"`` key).
* **NAVER CLOVA OCR** (General) -- ``{"images": [{"fields": [{"inferText", "inferConfidence",
  "boundingPoly": {"vertices": [{"x", "y"} x4]}, "lineBreak"}]}]}``. Fields are words; consecutive fields up
  to one with ``lineBreak: true`` form a line (without ``lineBreak`` every field is its own line).
* **Kakao OCR** -- ``{"result": [{"boxes": [[x, y] x4], "recognition_words": ["..."]}]}``; every item is
  one box (word or phrase).

Layout of ``PATH`` (predictions are matched to images by file name):

* a **folder** holding one response per image, named ``<image file name>.json`` (``x.png.json``) or
  ``<image stem>.json`` (``x.json``), optionally inside the same sub-folders as in labels.jsonl;
* a **.jsonl file**, one object per image: ``{"image": "x.png", "response": {...}}`` (``image`` may be the
  file name or the path written in labels.jsonl; the response may also sit at the top level);
* a **.json file** holding one object ``{"x.png": {...response...}, ...}``.

Boxes must be in the original image's pixels. Lines are put in ocrpipe's reading order.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ocrpipe.document import Document, Line, Page, build_document, quad_to_box
from ocrpipe.errors import ErrorCode, InputError
from ocrpipe.evaluation.engines import Engine
from ocrpipe.evaluation.metrics import Region
from ocrpipe.evaluation.scoring import Prediction


class ExternalEngine(Engine):
    """Reads saved predictions instead of running OCR (``timed = False``)."""

    timed = False

    def __init__(self, path: Path) -> None:
        if not path.exists():
            raise InputError(ErrorCode.FILE_NOT_FOUND, f"external predictions {path} not found")
        self.path = path
        self.name = f"external:{path.name}"
        self._index: dict[str, Any] | None = None
        if path.is_file():
            self._index = _load_index(path)

    def __call__(self, path: Path, dpi: float | None = None) -> Prediction:
        response = self._find(path)
        return parse_response(response, source=path.name)

    def _find(self, image: Path) -> Any:
        if self._index is not None:
            for key in (image.name, image.stem, str(image)):
                if key in self._index:
                    return self._index[key]
            tail = [k for k in self._index if str(image).endswith("/" + k.lstrip("./"))]
            if tail:
                return self._index[tail[0]]
        else:
            parents = [self.path, *(self.path / p for p in _rel_parents(image))]
            for folder in parents:
                for name in (image.name + ".json", image.stem + ".json"):
                    if (folder / name).is_file():
                        return _read_json(folder / name)
        raise InputError(ErrorCode.FILE_NOT_FOUND, f"no external prediction for {image.name} in {self.path}")


def _rel_parents(image: Path) -> list[str]:
    # e.g. .../ko_docs/images/x.png -> try PATH/images/ too
    return [image.parent.name] if image.parent.name else []


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(ErrorCode.INVALID_ARGUMENT, f"{path}: not valid JSON ({exc})") from exc


def _load_index(path: Path) -> dict[str, Any]:
    if path.suffix == ".jsonl":
        index: dict[str, Any] = {}
        for lineno, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
                key = str(obj["image"])
            except (ValueError, KeyError, TypeError) as exc:
                raise InputError(ErrorCode.INVALID_ARGUMENT, f'{path}:{lineno}: need an "image" key') from exc
            response = obj.get("response", obj)
            index[key] = response
            index.setdefault(Path(key).name, response)
        return index
    data = _read_json(path)
    if not isinstance(data, dict):
        raise InputError(ErrorCode.INVALID_ARGUMENT, f"{path}: expected an object keyed by image file name")
    return data


def parse_response(obj: Any, *, source: str = "") -> Prediction:
    """A :class:`Prediction` from an ocrpipe / CLOVA / Kakao response object (format auto-detected)."""
    if isinstance(obj, dict) and "document" in obj and isinstance(obj["document"], dict):
        obj = obj["document"]
    if isinstance(obj, dict) and "pages" in obj:
        return _from_ocrpipe(obj)
    if isinstance(obj, dict) and "images" in obj:
        return _from_clova(obj)
    if isinstance(obj, dict) and "result" in obj:
        return _from_kakao(obj)
    raise InputError(
        ErrorCode.INVALID_ARGUMENT,
        f"{source}: unknown prediction format (expected ocrpipe 'pages', CLOVA 'images' or Kakao 'result')",
    )


def _quad(points: Any) -> np.ndarray:
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(pts) != 4:
        x0, y0 = pts.min(axis=0)
        x1, y1 = pts.max(axis=0)
        pts = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
    return pts


def _doc(engine: str, lines: list[Line]) -> Document:
    """A one-page document of ``lines`` in reading order; the page size is the lines' extent (CLOVA and
    Kakao responses carry none)."""
    from ocrpipe.engine.order import ordered_page

    w = int(max((p[0] for ln in lines for p in ln.box), default=0))
    h = int(max((p[1] for ln in lines for p in ln.box), default=0))
    return build_document(engine, (ordered_page(0, w, h, lines),))


def _from_ocrpipe(obj: dict[str, Any]) -> Prediction:
    pages = obj.get("pages") or []
    lines = []
    for ln in (pages[0].get("lines") or []) if pages else []:
        text = " ".join(str(ln.get("text", "")).split())
        if text:
            lines.append(Line(text, float(ln.get("confidence", 1.0)), quad_to_box(_quad(ln["box"]))))
    page = Page(
        0,
        int(pages[0].get("width", 0)) if pages else 0,
        int(pages[0].get("height", 0)) if pages else 0,
        tuple(lines),
    )
    return Prediction(build_document(str(obj.get("engine", "external/ocrpipe")), (page,)))


def _from_clova(obj: dict[str, Any]) -> Prediction:
    images = obj.get("images") or []
    fields = (images[0].get("fields") or []) if images else []
    words: list[Line] = []
    breaks: list[bool] = []
    for f in fields:
        text = " ".join(str(f.get("inferText", "")).split())
        verts = (f.get("boundingPoly") or {}).get("vertices") or []
        if not text or len(verts) < 3:
            continue
        quad = _quad([[v.get("x", 0), v.get("y", 0)] for v in verts])
        words.append(Line(text, float(f.get("inferConfidence", 1.0)), quad_to_box(quad)))
        breaks.append(bool(f.get("lineBreak", False)))
    if any(breaks):
        lines, current = [], []
        for word, brk in zip(words, breaks, strict=True):
            current.append(word)
            if brk:
                lines.append(_merge(current))
                current = []
        if current:
            lines.append(_merge(current))
    else:
        lines = list(words)
    return Prediction(_doc("external/clova", lines), tuple(Region.of(w.box, w.text) for w in words))


def _merge(words: list[Line]) -> Line:
    pts = np.asarray([p for w in words for p in w.box], dtype=np.float64)
    x0, y0 = pts.min(axis=0)
    x1, y1 = pts.max(axis=0)
    quad = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
    conf = float(np.mean([w.confidence for w in words]))
    return Line(" ".join(w.text for w in words), conf, quad_to_box(quad))


def _from_kakao(obj: dict[str, Any]) -> Prediction:
    lines = []
    for item in obj.get("result") or []:
        text = " ".join(" ".join(str(w) for w in item.get("recognition_words") or []).split())
        boxes = item.get("boxes")
        if text and boxes:
            lines.append(Line(text, 1.0, quad_to_box(_quad(boxes))))
    return Prediction(_doc("external/kakao", lines), tuple(Region.of(ln.box, ln.text) for ln in lines))
