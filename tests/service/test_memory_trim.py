"""Heap trimming after idle (glibc): trims once per idle period, never while work goes on."""

from __future__ import annotations

import time

from ocrpipe.server import memory


def test_trim_and_arena_limit_run_on_this_libc() -> None:
    assert isinstance(memory.trim(), bool)
    assert memory.limit_arenas(0) is False  # 0 leaves glibc's default
    assert memory.fix_mmap_threshold(0) is False


def test_idle_trimmer_trims_once_after_idle_and_again_after_new_work() -> None:
    work = [0]
    trimmer = memory.IdleTrimmer(lambda: work[0], idle_s=0.2, check_s=0.05)
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
    finally:
        trimmer.close()
