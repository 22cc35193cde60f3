"""Finding completely written printouts in the watched folder, by polling.

Polling rather than file-system events: clinic PCs often share the device's output folder over SMB, where
change notifications are unreliable, and an event only says that a write happened, not that it ended — the
size and modification time must be watched until they stop changing either way. A scan of a folder of a
few thousand files costs milliseconds.

A file is ready once its size and modification time have not changed for ``settle_s`` (and it could be
opened, which a file still held for writing on Windows cannot). It is reported again only if it changes.
"""

from __future__ import annotations

import fnmatch
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_PATTERNS = ("*.png", "*.jpg", "*.jpeg", "*.tif", "*.tiff", "*.bmp", "*.webp", "*.pdf")


@dataclass(frozen=True)
class Found:
    """A file that has stopped changing."""

    path: Path
    size: int
    mtime_ns: int


@dataclass
class _Seen:
    size: int
    mtime_ns: int
    since: float  # monotonic time this (size, mtime) was first observed


@dataclass
class FolderScanner:
    """Call :meth:`scan` repeatedly; it returns the files that became ready since the last call."""

    root: Path
    patterns: tuple[str, ...] = DEFAULT_PATTERNS
    recursive: bool = False
    settle_s: float = 1.0
    exclude: tuple[Path, ...] = ()
    _watching: dict[Path, _Seen] = field(default_factory=dict)
    _reported: dict[Path, tuple[int, int]] = field(default_factory=dict)

    def _candidates(self) -> Iterator[os.DirEntry[str]]:
        stack = [self.root]
        excluded = {p.resolve() for p in self.exclude}
        while stack:
            folder = stack.pop()
            try:
                entries = list(os.scandir(folder))
            except OSError:
                continue
            for e in entries:
                if e.name.startswith("."):
                    continue
                if e.is_dir(follow_symlinks=False):
                    if self.recursive and Path(e.path).resolve() not in excluded:
                        stack.append(Path(e.path))
                elif e.is_file() and any(fnmatch.fnmatch(e.name.lower(), p) for p in self.patterns):
                    yield e

    def scan(self, now: float | None = None) -> list[Found]:
        """Files whose size and mtime have been stable for ``settle_s``, not reported before as they are."""
        now = time.monotonic() if now is None else now
        ready: list[Found] = []
        present: set[Path] = set()
        for e in self._candidates():
            path = Path(e.path)
            present.add(path)
            try:
                st = e.stat()
            except OSError:
                continue
            key = (st.st_size, st.st_mtime_ns)
            if self._reported.get(path) == key:
                continue
            seen = self._watching.get(path)
            if seen is None or (seen.size, seen.mtime_ns) != key:
                self._watching[path] = _Seen(st.st_size, st.st_mtime_ns, now)
                continue
            if now - seen.since >= self.settle_s and _openable(path):
                ready.append(Found(path, st.st_size, st.st_mtime_ns))
                self._reported[path] = key
                del self._watching[path]
        for gone in [p for p in self._watching if p not in present]:
            del self._watching[gone]
        for gone in [p for p in self._reported if p not in present]:
            del self._reported[gone]
        return ready

    @property
    def settling(self) -> int:
        """How many files are still being written (or waiting out ``settle_s``)."""
        return len(self._watching)


def _openable(path: Path) -> bool:
    try:
        with open(path, "rb"):
            return True
    except OSError:
        return False
