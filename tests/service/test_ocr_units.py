"""Small pieces of the service's engine wrapper that need no model."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest

from ocrpipe.engine.recognize import load_recognizer
from ocrpipe.server.scheduling.engine import crop_aspect, lower_thread_priority, padded_cost
from ocrpipe.server.scheduling.recognizers import input_height


def test_padded_cost_counts_crops_times_the_widest_at_the_models_height() -> None:
    crops = [np.zeros((24, 100, 3), np.uint8), np.zeros((48, 480, 3), np.uint8)]
    assert crop_aspect(crops[0]) == pytest.approx(100 / 24)
    assert padded_cost(32)(crops) == pytest.approx(2 * 320)  # widest: aspect 10 -> 320 px at 32 px height
    assert padded_cost(48)(crops[:1]) == pytest.approx(200)


def test_cost_model_height_comes_from_the_model() -> None:
    ko_rec = load_recognizer("ko_rec")
    assert input_height(ko_rec) == 32  # the shipped model's own input height, not PP-OCR's 48


@pytest.mark.skipif(not hasattr(os, "setpriority"), reason="needs per-thread priorities (Linux)")
def test_lower_thread_priority_affects_only_the_calling_thread() -> None:
    seen: dict[str, int] = {}
    main_before = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    def worker() -> None:
        tid = threading.get_native_id()
        before = os.getpriority(os.PRIO_PROCESS, tid)
        lower_thread_priority(3)
        seen["delta"] = os.getpriority(os.PRIO_PROCESS, tid) - before

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert seen["delta"] == min(3, 19 - main_before)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == main_before
