"""The line-recogniser interface: a batch of rectified line crops in, one result per crop out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from ocrpipe.document import ModelInfo, RecResult


@runtime_checkable
class Recognizer(Protocol):
    """A line recogniser.

    ``recognize`` takes RGB uint8 crops of shape (h, w, 3), each one text line already rotated to
    horizontal, and returns exactly one :class:`RecResult` per crop, in the same order. It must be
    safe to call from several threads at once. Implementations choose their own internal batching;
    callers may pass any number of crops (including zero).
    """

    name: str
    input_height: int
    """The crop height in pixels the recogniser reads at (crops are scaled to it); a batcher's cost model
    uses it."""

    def recognize(self, crops: Sequence[np.ndarray]) -> list[RecResult]: ...

    def models(self) -> list[ModelInfo]: ...
