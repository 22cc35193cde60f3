"""Fixtures of the upload-client integration tests: the real server (``ocrpipe serve --grpc-port``) and the
real client (``ocrpipe client watch``) as subprocesses, generated device printouts on a seed the templates
were not tuned on, a result command that records each run, and read-only looks at the server database and
the client spool."""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from testsupport.server import Server, child_env, kill9, stop_process

from ocrpipe.server.security.devcerts import CertFiles

SEED = 4242  # templates were checked on seed 11; other tests use 777, the benchmark 2026

ENV = child_env(PYTHONUNBUFFERED="1")

HOOK = '''
import json, os, sys, time
doc = json.load(sys.stdin)
assert doc == json.load(open(sys.argv[1], encoding="utf-8")), "stdin and {json_path} differ"
time.sleep(float(os.environ.get("HOOK_SLEEP", "0")))
with open(os.environ["HOOK_LOG"], "a", encoding="utf-8") as fh:
    fh.write(f"{doc['job_id']}\\t{doc['status']}\\t{os.path.basename(doc['source_file'])}\\n")
'''


class GrpcServer(Server):
    """``python -m ocrpipe serve --grpc-port P`` with its data (and SQLite database) in ``root/server-data``."""

    serve_grpc = True

    def __init__(self, root: Path, *args: str, tls: CertFiles | None = None) -> None:
        super().__init__(root / "server-data", *args, env={"PYTHONUNBUFFERED": "1"}, tls=tls)

    def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.db_url.removeprefix("sqlite:///")) as db:
            return db.execute(sql, args).fetchall()


class WatchClient:
    """``python -m ocrpipe client watch DIR`` with a spool and the recording result command."""

    def __init__(self, root: Path, folder: Path, target: str, *args: str, hook_sleep: float = 0.0) -> None:
        self.root, self.folder, self.target, self.args = root, folder, target, list(args)
        self.spool = root / "spool"
        self.hook_log = root / "hook.log"
        self.hook = root / "hook.py"
        self.hook.write_text(HOOK)
        self.env = {**ENV, "HOOK_LOG": str(self.hook_log), "HOOK_SLEEP": str(hook_sleep)}
        self.proc: subprocess.Popen[bytes] | None = None
        self.runs = 0
        self.on_result = f"{sys.executable} {self.hook} {{json_path}}"

    @property
    def log_path(self) -> Path:
        return self.root / f"client-{self.runs}.log"

    def command(self, *extra: str) -> list[str]:
        return [sys.executable, "-m", "ocrpipe", "client", "watch", str(self.folder), "--server", self.target,
                "--spool", str(self.spool), "--on-result", self.on_result,
                "--settle", "0.5", "--scan-interval", "0.2", "--max-backoff", "2", "--poll-interval", "5",
                *self.args, *extra]

    def start(self, *extra: str) -> WatchClient:
        self.runs += 1
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the process
        self.proc = subprocess.Popen(self.command(*extra), stdout=log, stderr=subprocess.STDOUT, env=self.env)
        return self

    def log(self) -> str:
        return "\n".join((self.root / f"client-{i}.log").read_text(errors="replace")
                         for i in range(1, self.runs + 1) if (self.root / f"client-{i}.log").exists())

    def stop(self) -> int | None:
        stop_process(self.proc)
        return self.proc.returncode if self.proc else None

    def kill9(self) -> None:
        kill9(self.proc)

    def spool_rows(self) -> list[tuple[str, str, str | None, str | None]]:
        """(path, state, job_id, error_code) of every spooled file."""
        db_file = self.spool / "spool.sqlite3"
        if not db_file.exists():
            return []
        with sqlite3.connect(db_file, timeout=10) as db:
            try:
                return db.execute("SELECT path, state, job_id, error_code FROM files").fetchall()
            except sqlite3.OperationalError as exc:  # the client created the file but not yet its table
                if "no such table" in str(exc):
                    return []
                raise

    def states(self) -> dict[str, str]:
        return {Path(p).name: s for p, s, _, _ in self.spool_rows()}

    def hook_runs(self) -> list[tuple[str, str, str]]:
        if not self.hook_log.exists():
            return []
        return [tuple(line.split("\t")) for line in self.hook_log.read_text().splitlines()]  # type: ignore[misc]


@pytest.fixture(scope="module")
def printouts(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Eight generated printouts (every layout twice) on an unseen seed."""
    from ocrpipe.synth.printouts import generate

    return generate(tmp_path_factory.mktemp("printouts"), 8, SEED)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def drop(src: Path, folder: Path, name: str | None = None, slow: bool = False) -> Path:
    """Copy a printout into the watched folder, as a device would (``slow``: in pieces, 0.3 s apart)."""
    dest = folder / (name or src.name)
    if not slow:
        shutil.copyfile(src, dest)
        return dest
    data = src.read_bytes()
    with open(dest, "wb") as fh:
        for i in range(0, len(data), len(data) // 4 + 1):
            fh.write(data[i:i + len(data) // 4 + 1])
            fh.flush()
            time.sleep(0.3)
    return dest


@pytest.fixture
def cleanup() -> Iterator[list[Any]]:
    """Things with ``stop()`` to stop at the end of the test, whatever happens."""
    items: list[Any] = []
    yield items
    for item in reversed(items):
        item.stop()
