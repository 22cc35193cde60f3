"""Small pieces of the service's engine wrapper that need no model."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest

from ocrpipe.server.scheduling.engine import crop_aspect, lower_thread_priority, padded_width


def test_padded_width_counts_crops_times_the_widest_at_the_model_height() -> None:
    crops = [np.zeros((24, 100, 3), np.uint8), np.zeros((48, 480, 3), np.uint8)]
    assert crop_aspect(crops[0]) == pytest.approx(100 / 24)
    assert padded_width(crops, height=32) == pytest.approx(2 * 320)  # widest: 480 px at 48 px -> 320 at 32
    assert padded_width(crops[:1], height=32) == pytest.approx(100 / 24 * 32)
    assert padded_width(crops, height=48) == pytest.approx(2 * 480)


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
