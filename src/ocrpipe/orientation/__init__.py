"""Text-line orientation: the PP-OCR 0°/180° classifier, used to flip upside-down line crops."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from ocrpipe import runtime
from ocrpipe.types import ModelInfo


class LineOrientation:
    """Flips crops the classifier calls 180° with probability ≥ ``threshold``."""

    def __init__(self, spec: runtime.ModelSpec, session: Any, *, threshold: float = 0.9,
                 batch_size: int = 16) -> None:
        self.spec = spec
        self.session = session
        self.input_name = session.get_inputs()[0].name
        _, self.height, self.width = spec.meta.get("input_shape", [3, 48, 192])
        self.threshold = threshold
        self.batch_size = batch_size

    @classmethod
    def default(cls) -> LineOrientation:
        spec, session = runtime.load_model("ppocr_cls")
        return cls(spec, session)

    def info(self) -> ModelInfo:
        return self.spec.info()

    def _prepare(self, crop: np.ndarray) -> np.ndarray:
        h, w = crop.shape[:2]
        new_w = min(self.width, max(1, int(math.ceil(self.height * w / max(h, 1)))))
        resized = cv2.resize(crop[..., ::-1], (new_w, self.height)).astype(np.float32) / 255.0
        out = np.zeros((3, self.height, self.width), np.float32)
        out[:, :, :new_w] = ((resized - 0.5) / 0.5).transpose(2, 0, 1)
        return out

    def predict(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """Probability that each crop is upside down, shape (N,)."""
        out = np.zeros(len(crops), np.float32)
        for start in range(0, len(crops), self.batch_size):
            chunk = crops[start:start + self.batch_size]
            x = np.stack([self._prepare(c) for c in chunk])
            probs = self.session.run(None, {self.input_name: x})[0]
            out[start:start + len(chunk)] = probs[:, 1]
        return out

    def correct(self, crops: Sequence[np.ndarray]) -> list[np.ndarray]:
        flipped = self.predict(crops) >= self.threshold
        return [np.ascontiguousarray(np.rot90(c, 2)) if f else c for c, f in zip(crops, flipped, strict=True)]
