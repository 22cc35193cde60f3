"""The detector predictor: resize + normalise → ONNX session → DB post-processing."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from ocrpipe import runtime
from ocrpipe.detection.postprocess import DBParams, boxes_from_map
from ocrpipe.types import EngineError, ErrorCode, ModelInfo, Stage


@dataclass(frozen=True)
class Detection:
    """Quads (N, 4, 2) float32 in the input image's pixels, clockwise from top-left, and scores (N,)."""

    quads: np.ndarray
    scores: np.ndarray

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
                  box_thresh: float = 0.5, unclip_ratio: float = 1.6, min_size: float = 3.0) -> TextDetector:
        spec, session = runtime.load_model(name)
        params = DBParams(thresh=thresh, box_thresh=box_thresh, unclip_ratio=unclip_ratio, min_size=min_size)
        return cls(spec, session, limit_side=limit_side, params=params)

    def info(self) -> ModelInfo:
        return self.spec.info()

    def target_size(self, width: int, height: int) -> tuple[int, int]:
        """Network input size: long side ≤ ``limit_side``, short side ≥ ``min_side``, multiples of the stride."""
        scale = 1.0
        if min(width, height) < self.min_side:
            scale = self.min_side / min(width, height)
        if max(width, height) * scale > self.limit_side:
            scale = self.limit_side / max(width, height)
        s = self.stride
        new_w = max(s, int(math.ceil(width * scale / s)) * s)
        new_h = max(s, int(math.ceil(height * scale / s)) * s)
        return new_w, new_h

    def probability_map(self, image: np.ndarray) -> np.ndarray:
        """The text-probability map at network resolution for an RGB image."""
        height, width = image.shape[:2]
        new_w, new_h = self.target_size(width, height)
        resized = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
        bgr = resized[..., ::-1].astype(np.float32) / 255.0  # PP-OCR models were trained on BGR input
        x = ((bgr - self.mean) / self.std).transpose(2, 0, 1)[None]
        try:
            out = self.session.run(None, {self.input_name: np.ascontiguousarray(x)})[0]
        except Exception as exc:
            raise EngineError(ErrorCode.ENGINE_FAILURE, f"detector failed: {exc}", stage=Stage.DETECT) from exc
        return out[0, 0]

    def __call__(self, image: np.ndarray) -> Detection:
        height, width = image.shape[:2]
        if height < 4 or width < 4:
            return Detection(np.zeros((0, 4, 2), np.float32), np.zeros((0,), np.float32))
        prob = self.probability_map(image)
        # The map covers the resized image; scale back to the original size.
        quads, scores = boxes_from_map(prob, (width, height), self.params)
        return Detection(quads, scores)
