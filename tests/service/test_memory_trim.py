"""Heap trimming after idle (glibc): trims once per idle period, never while work goes on."""

from __future__ import annotations

import time

import pytest

from ocrpipe.server import memory


def test_trim_and_arena_limit_run_on_this_libc() -> None:
    assert isinstance(memory.trim(), bool)
    assert memory.limit_arenas(0) is False  # 0 leaves glibc's default
    assert memory.fix_mmap_threshold(0) is False


def test_idle_trimmer_trims_once_after_idle_and_again_after_new_work() -> None:
    work = [0]
    released: list[int] = []
    trimmer = memory.IdleTrimmer(lambda: work[0], idle_s=0.2, check_s=0.05,
                                 release=lambda: released.append(work[0]))
    try:
        for _ in range(8):  # busy: the activity count changes at every check
            work[0] += 1
            time.sleep(0.05)
        assert trimmer.trims == 0
        time.sleep(0.6)
        assert trimmer.trims == 1  # once per idle period
        work[0] += 1
        time.sleep(0.6)
        assert trimmer.trims == 2
        assert len(released) == 2  # the caches are released before each trim
    finally:
        trimmer.close()


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


@pytest.mark.integration
def test_onnx_runtime_arenas_give_their_peak_back() -> None:
    """The detector's arena keeps the peak of an A4 page until release_arenas() shrinks it."""
    import numpy as np

    from ocrpipe.engine import runtime
    from ocrpipe.engine.pipeline import Pipeline, PipelineConfig

    pipeline = Pipeline(PipelineConfig(recognizer="ko_rec"))
    page = np.full((2339, 1654, 3), 255, np.uint8)
    page[300:340, 200:1400] = 0
    before = _rss_mb()
    pipeline.trace_page(page, 0)
    memory.trim()
    kept = _rss_mb() - before
    assert kept > 100, kept  # the arena holds the run's working memory
    assert runtime.release_arenas() >= 2  # detector and recogniser
    memory.trim()
    assert _rss_mb() - before < 0.3 * kept, (kept, _rss_mb() - before)
