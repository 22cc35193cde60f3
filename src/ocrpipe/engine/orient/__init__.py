"""Text-line orientation: the PP-OCR 0°/180° classifier proposes upside-down line crops.

The classifier was trained mostly on Chinese and is unreliable on Korean (upright Korean lines can score
0.9 for 180°), so its verdict is not applied blindly: ``candidates`` returns the crops it doubts and the
pipeline reads those both ways, keeping the more confident reading.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from ocrpipe.document import ModelInfo
from ocrpipe.engine import runtime


class LineOrientation:
    """Flags crops the classifier calls 180° with probability ≥ ``threshold``."""

    def __init__(self, spec: runtime.ModelSpec, session: Any, *, threshold: float = 0.3,
                 batch_size: int = 16) -> None:
        self.spec = spec
        self.session = session
        self.input_name = session.get_inputs()[0].name
        _, self.height, self.width = spec.meta.get("input_shape", [3, 48, 192])
        self.threshold = threshold
        self.batch_size = batch_size

    @classmethod
    def default(cls, settings: runtime.SessionSettings | None = None) -> LineOrientation:
        """The PP-OCR 0°/180° classifier from the registry."""
        spec, session = runtime.load_model("ppocr_cls", settings)
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

    def candidates(self, crops: Sequence[np.ndarray]) -> list[int]:
        """Indices of the crops that may be upside down."""
        if not crops:
            return []
        return [int(i) for i in np.flatnonzero(self.predict(crops) >= self.threshold)]
