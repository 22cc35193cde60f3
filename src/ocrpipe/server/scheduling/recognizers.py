"""The service's recogniser: only the neural model goes through the dynamic batcher.

``auto``/``hybrid``/``hybrid_latin`` is recomposed as ``HybridRecognizer(BatchedRecognizer(ko_rec), tesseract)``
(keeping its PP-OCRv4 Latin reader, unbatched, and its calibration): every page
thread's crops meet in the batcher for the ONNX model, while Tesseract's re-reads of the doubtful lines run
in Tesseract's own bounded pool (``tesseract_threads``) beside it, never inside a batcher thread. A plain
CTC model is batched the same way; ``tesseract`` has nothing to batch and runs in its pool.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

import numpy as np

from ocrpipe.document import ModelInfo, RecResult
from ocrpipe.engine.recognize import Recognizer


class CropBatcher(Protocol):
    """What pools crops: the in-process :class:`~ocrpipe.server.scheduling.batcher.DynamicBatcher`, or a
    cluster's recogniser deployment (``ocrpipe.cluster.serve``)."""

    def __call__(self, items: Sequence[np.ndarray]) -> list[RecResult]: ...


B = TypeVar("B", bound=CropBatcher)


def input_height(recognizer: Recognizer) -> int:
    """The line height the recogniser rescales every crop to (ko_rec: 32 px, PP-OCR: 48 px)."""
    for attr in ("input_height", "height"):
        value = getattr(recognizer, attr, None)
        if isinstance(value, int) and value > 0:
            return value
    return 48


class BatchedRecognizer:
    """A :class:`~ocrpipe.engine.recognize.base.Recognizer` whose calls are pooled by a dynamic batcher.

    ``recognize`` submits the crops and waits for their futures: one wait per call (a page's crops), not
    one per crop. Name, models and input height are the wrapped model's, so results and the engine name are
    the same as without batching.
    """

    def __init__(self, inner: Recognizer, batcher: CropBatcher) -> None:
        self.inner = inner
        self.batcher = batcher
        self.name = inner.name
        self.input_height = input_height(inner)

    def recognize(self, crops: Sequence[np.ndarray]) -> list[RecResult]:
        """Results of ``crops`` in order, computed in batches shared with other callers."""
        return self.batcher(list(crops))

    def models(self) -> list[ModelInfo]:
        """The wrapped model's description."""
        return self.inner.models()


def batch_neural(recognizer: Recognizer, make_batcher: Callable[[Recognizer], B]) -> tuple[Recognizer, B | None]:
    """``recognizer`` with its neural model behind a batcher, and that batcher (None: nothing to batch).

    A hybrid keeps its Tesseract readers (their pool is sized by ``tesseract_threads``) and gets a
    :class:`BatchedRecognizer` as primary; a CTC model is batched as a whole; Tesseract alone is returned
    unchanged.
    """
    from ocrpipe.engine.recognize.ctc import CTCRecognizer
    from ocrpipe.engine.recognize.hybrid import HybridRecognizer

    if isinstance(recognizer, HybridRecognizer):
        batcher = make_batcher(recognizer.primary)
        return HybridRecognizer(BatchedRecognizer(recognizer.primary, batcher), recognizer.secondary,
                                threshold=recognizer.threshold, weight=recognizer.weight, latin=recognizer.latin,
                                third_opinion=recognizer.third_opinion, latin_first=recognizer.latin_first,
                                latin_min_conf=recognizer.latin_min_conf,
                                calibration=recognizer.calibration), batcher
    if isinstance(recognizer, CTCRecognizer):
        batcher = make_batcher(recognizer)
        return BatchedRecognizer(recognizer, batcher), batcher
    return recognizer, None
