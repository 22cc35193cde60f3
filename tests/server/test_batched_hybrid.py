"""The service recomposes a hybrid around its batcher: every reader and setting of the hybrid is kept."""

import numpy as np
import pytest

from ocrpipe.server.scheduling.batcher import DynamicBatcher
from ocrpipe.server.scheduling.recognizers import BatchedRecognizer, batch_neural


@pytest.mark.integration  # loads ko_rec, Tesseract and PP-OCRv4
def test_batched_hybrid_latin_keeps_its_latin_reader_and_calibration():
    from ocrpipe.engine.recognize import load_recognizer
    from ocrpipe.engine.recognize.calibration import Calibration
    from ocrpipe.samples import render_page

    rec = load_recognizer("hybrid_latin")
    rec.calibration = Calibration((0.0, 1.0), (0.0, 0.5))
    batchers: list[DynamicBatcher] = []

    def make(neural):  # type: ignore[no-untyped-def]
        batchers.append(DynamicBatcher(neural.recognize, max_wait_ms=1.0))
        return batchers[-1]

    batched, batcher = batch_neural(rec, make)
    try:
        assert isinstance(batched.primary, BatchedRecognizer) and batcher is batchers[0]
        assert batched.latin_first is rec.latin_first and batched.latin_min_conf == rec.latin_min_conf
        assert batched.calibration is rec.calibration and batched.name == rec.name
        page, truth = render_page(["Invoice No. A-2291 Total 35,000 KRW"], size=30, margin=20)
        (x0, y0), (x1, y1) = truth[0]["points"][0], truth[0]["points"][2]
        crop = np.ascontiguousarray(page[y0 - 6:y1 + 6, x0 - 6:x1 + 6])
        direct, via_batcher = rec.recognize([crop])[0], batched.recognize([crop])[0]
        assert via_batcher == direct and direct.confidence <= 0.5  # the calibration applied once
    finally:
        batcher.close()
