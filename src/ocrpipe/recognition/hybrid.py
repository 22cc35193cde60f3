"""A recogniser that asks a second one about the lines the first is unsure of.

Every crop is read by the primary (fast, batched: the neural CTC model); crops whose confidence is below
``threshold`` are read again by the secondary (Tesseract), and the more confident reading is kept. The two
make different mistakes — the neural model confuses similar jamo, Tesseract garbles mixed-script lines — so
the combination is more accurate than either, at the cost of re-reading only the doubtful lines.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ocrpipe.recognition.base import Recognizer
from ocrpipe.types import ModelInfo, RecResult


class HybridRecognizer:
    """``primary`` for every crop, ``secondary`` for the doubtful ones; the more confident reading wins."""

    def __init__(self, primary: Recognizer, secondary: Recognizer, *, threshold: float = 0.95) -> None:
        self.primary = primary
        self.secondary = secondary
        self.threshold = threshold
        self.name = f"{primary.name}+{secondary.name}"

    def models(self) -> list[ModelInfo]:
        return self.primary.models() + self.secondary.models()

    def recognize(self, crops: Sequence[np.ndarray]) -> list[RecResult]:
        results = list(self.primary.recognize(crops))
        doubtful = [i for i, r in enumerate(results) if r.confidence < self.threshold]
        if doubtful:
            second = self.secondary.recognize([crops[i] for i in doubtful])
            for i, alt in zip(doubtful, second, strict=True):
                if alt.confidence > results[i].confidence:
                    results[i] = alt
        return results
