"""The detector predictor: resize + normalise → ONNX session → DB post-processing."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from typing import Any

import cv2
import numpy as np

from ocrpipe.document import ModelInfo
from ocrpipe.engine import runtime
from ocrpipe.engine.detect.postprocess import DBParams, boxes_from_map, order_quad
from ocrpipe.errors import EngineError, ErrorCode, Stage

TILE_ASPECT = 2.5
"""Images longer than this many times their width (or the reverse) are detected in tiles."""
TILE_OVERLAP = 256
"""Overlap between tiles in original pixels: more than the height of any line we expect to read."""
MAX_UPSCALE = 4.0
"""A small image is enlarged towards the network's minimum side at most this much: a word or line crop
enlarged 10-20x has strokes far thicker than any the detector was trained on, and DB then splits it into
pieces (full pipeline on 120 synthetic one-line crops, own material, no margin: CER 0.55 uncapped, 0.33 at
4x; with a quarter of the margin below: 0.19 at 4x, 0.21 at 3x, 0.22 at 2x; with the margin: 0.15 at 4x; 100
document-content lines with the margin: 0.28 at 4x, 0.32 at 6x, 0.50 uncapped without it)."""
SMALL_MARGIN = 0.5
"""A crop (an image too small for :data:`MAX_UPSCALE` to bring its short side to the network's minimum: under
184 px) is detected with a margin of this fraction of its short side around it (its border pixels repeated),
at most :data:`MAX_MARGIN` pixels: DB misses text that touches the image's edge, as text in a tight crop does
(the same crops at 4x: CER 0.33 without a margin, 0.19 with a quarter, 0.15 with a half; 0.29 with a whole
short side on the document-content lines). The margin does not change the scale the image is detected at, and
pages, even small ones, get none: they are detected as before (templates are made from their boxes)."""
MAX_MARGIN = 32
"""Pixels of margin at most (on ../shared/data a larger cap did not pay: in a variant that gave small pages a
margin too, 96 px gave IIIT5K word crops page CER 0.150 against 0.147 at 32 px)."""
WORK_BYTES_PER_PIXEL = 220
"""Memory one detection needs while it runs, per pixel of the network input (resized and normalised
input, ONNX Runtime's activations, probability map): the peak RSS growth of a detection measured by
``benchmarks/detect_memory.py`` on PP-OCRv4 with the memory pattern off was 201-211 B per input pixel
from 832 x 1184 to 1664 x 2368 inputs (``results/detect_memory.json``), rounded up. An A4 page at 200 dpi
(1664 x 2368 input) needs about 830 MiB."""


@dataclass(frozen=True)
class Detection:
    """Quads (N, 4, 2) float32 in the input image's pixels, clockwise from top-left, and scores (N,)."""

    quads: np.ndarray
    scores: np.ndarray
    elapsed_ms: float = 0.0
    """Wall time of the detector call (pre-op, inference, post-op)."""

    def __len__(self) -> int:
        return len(self.quads)


class TextDetector:
    """A DB text detector (PP-OCRv4 by default). Thread-safe: ONNX Runtime sessions are."""

    def __init__(self, spec: runtime.ModelSpec, session: Any, *, limit_side: int = 2400, min_side: int = 736,
                 params: DBParams | None = None) -> None:
        self.spec = spec
        self.session = session
        self.input_name = session.get_inputs()[0].name
        self.limit_side = limit_side
        self.min_side = min_side
        self.params = params or DBParams()
        self.stride = int(spec.meta.get("stride", 32))
        self.mean = np.asarray(spec.meta.get("mean", [0.5, 0.5, 0.5]), np.float32).reshape(1, 1, 3)
        self.std = np.asarray(spec.meta.get("std", [0.5, 0.5, 0.5]), np.float32).reshape(1, 1, 3)

    @property
    def name(self) -> str:
        return self.spec.name

    @classmethod
    def from_name(cls, name: str = "ppocrv4_det", *, limit_side: int = 2400, thresh: float = 0.3,
                  box_thresh: float = 0.5, unclip_ratio: float = 1.6, min_size: float = 3.0,
                  session: runtime.SessionSettings | None = None) -> TextDetector:
        """A detector from the model registry, its ONNX session run with ``session`` settings."""
        # Input sizes change with every page: the memory pattern would keep a planned block per size.
        spec, model = runtime.load_model(name, session, memory_pattern=False)
        params = DBParams(thresh=thresh, box_thresh=box_thresh, unclip_ratio=unclip_ratio, min_size=min_size)
        return cls(spec, model, limit_side=limit_side, params=params)

    def info(self) -> ModelInfo:
        return self.spec.info()

    def margin(self, width: int, height: int) -> int:
        """Pixels added around an image of this size before detection: :data:`SMALL_MARGIN` for a crop (an image
        :data:`MAX_UPSCALE` cannot bring to ``min_side``: short side under 184 px), 0 for any page."""
        short = min(width, height)
        if short * MAX_UPSCALE >= self.min_side:  # a page (even a small one) is detected as it comes
            return 0
        return min(MAX_MARGIN, int(math.ceil(SMALL_MARGIN * short)))

    def target_size(self, width: int, height: int) -> tuple[int, int]:
        """Network input size of an image of this size: enlarged until its short side is ``min_side`` where
        :data:`MAX_UPSCALE` allows, its :meth:`margin` added, long side ≤ ``limit_side``, multiples of the
        stride."""
        scale = 1.0
        if min(width, height) < self.min_side:
            scale = min(self.min_side / min(width, height), MAX_UPSCALE)
        pad = 2 * self.margin(width, height)
        width, height = width + pad, height + pad
        if max(width, height) * scale > self.limit_side:
            scale = self.limit_side / max(width, height)
        s = self.stride
        new_w = max(s, int(math.ceil(width * scale / s)) * s)
        new_h = max(s, int(math.ceil(height * scale / s)) * s)
        return new_w, new_h

    def working_memory(self, width: int, height: int) -> int:
        """Bytes a detection of a ``width`` x ``height`` image needs while it runs (known before the image
        is rendered): :data:`WORK_BYTES_PER_PIXEL` x its network input, or one tile's when it is tiled."""
        if max(height, width) > self.limit_side and max(height, width) > TILE_ASPECT * min(height, width):
            short, length = min(width, height), max(width, height)
            tile = int(self.limit_side / min(1.0, self.limit_side / short))
            width, height = short, min(length, tile)
        in_w, in_h = self.target_size(width, height)
        return WORK_BYTES_PER_PIXEL * in_w * in_h

    def network_input(self, image: np.ndarray) -> np.ndarray:
        """The (1, 3, H, W) float32 network input for an RGB image: its :meth:`margin` added, resized to
        :meth:`target_size`, BGR, normalised (also what the int8 detector is calibrated on:
        :mod:`ocrpipe.training.quantize`)."""
        height, width = image.shape[:2]
        new_w, new_h = self.target_size(width, height)
        if m := self.margin(width, height):
            image = cv2.copyMakeBorder(image, m, m, m, m, cv2.BORDER_REPLICATE)
        resized = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
        x = np.empty((1, 3, new_h, new_w), np.float32)
        # One pass per channel, written in place (7x less CPU than whole-array float temporaries on an A4
        # page). Channel c of the input is BGR channel c: PP-OCR models were trained on BGR input.
        for c in range(3):
            mean, std = float(self.mean.flat[c]), float(self.std.flat[c])
            np.multiply(resized[..., 2 - c], np.float32(1.0 / (255.0 * std)), out=x[0, c])
            x[0, c] -= np.float32(mean / std)
        return x

    def probability_map(self, image: np.ndarray) -> np.ndarray:
        """The text-probability map at network resolution for an RGB image."""
        x = self.network_input(image)
        try:
            out = self.session.run(None, {self.input_name: x})[0]
        except Exception as exc:
            raise EngineError(ErrorCode.ENGINE_FAILURE, f"detector failed: {exc}", stage=Stage.DETECT) from exc
        return out[0, 0]

    def __call__(self, image: np.ndarray) -> Detection:
        """Text quads in ``image``'s pixels, with the call's elapsed time."""
        start = time.perf_counter()
        det = self._detect(image)
        return replace(det, elapsed_ms=(time.perf_counter() - start) * 1000.0)

    def _detect(self, image: np.ndarray) -> Detection:
        height, width = image.shape[:2]
        if height < 4 or width < 4:
            return Detection(np.zeros((0, 4, 2), np.float32), np.zeros((0,), np.float32))
        if max(height, width) > self.limit_side and max(height, width) > TILE_ASPECT * min(height, width):
            return self._detect_tiled(image)
        return Detection(*self._detect_whole(image))

    def _detect_whole(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        height, width = image.shape[:2]
        prob = self.probability_map(image)
        m = self.margin(width, height)
        # The map covers the resized image (with its margin); scale back to the original size.
        quads, scores = boxes_from_map(prob, (width + 2 * m, height + 2 * m), self.params)
        if m and len(quads):
            quads = quads - np.float32(m)
            quads[..., 0] = np.clip(quads[..., 0], 0, width - 1)
            quads[..., 1] = np.clip(quads[..., 1], 0, height - 1)
        return quads, scores

    def _detect_tiled(self, image: np.ndarray) -> Detection:
        """Elongated images (long web pages, receipts, scrolling screenshots) would be shrunk until their
        text vanished; instead detect overlapping tiles along the long side at a readable scale. A box is
        kept by the tile whose core (the tile minus half the overlap at inner edges) holds its centre."""
        vertical = image.shape[0] >= image.shape[1]
        work = image if vertical else np.ascontiguousarray(image.transpose(1, 0, 2))
        length, short = work.shape[:2]
        scale = min(1.0, self.limit_side / short)
        tile = int(self.limit_side / scale)
        overlap = min(tile // 4, int(TILE_OVERLAP / scale))
        starts = list(range(0, max(1, length - overlap), tile - overlap))
        quads, scores = [], []
        for k, start in enumerate(starts):
            end = min(length, start + tile)
            q, sc = self._detect_whole(work[start:end])
            if not len(q):
                continue
            q = q.copy()
            q[:, :, 1] += start
            centre = q[:, :, 1].mean(axis=1)
            lo = start + overlap / 2 if k > 0 else -np.inf
            hi = end - overlap / 2 if end < length else np.inf
            keep = (centre >= lo) & (centre < hi)
            quads.append(q[keep])
            scores.append(sc[keep])
        if not quads:
            return Detection(np.zeros((0, 4, 2), np.float32), np.zeros((0,), np.float32))
        all_q, all_s = np.concatenate(quads), np.concatenate(scores)
        if not vertical:  # undo the transpose: swap x/y and restore clockwise-from-top-left order
            all_q = np.stack([order_quad(q[:, ::-1]) for q in all_q]) if len(all_q) else all_q
        return Detection(all_q.astype(np.float32), all_s.astype(np.float32))
