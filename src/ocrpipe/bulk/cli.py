"""``ocrpipe batch INPUT_DIR_OR_LIST --out DIR``: bulk OCR in local processes (``--ray`` is added by
:mod:`ocrpipe.cluster.cli`)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from ocrpipe.settings import EngineSettings

if TYPE_CHECKING:
    from collections.abc import Callable

    from ocrpipe.bulk.files import Item
    from ocrpipe.bulk.local import Outcome

    Execute = Callable[[list[Item], Callable[[Outcome], None]], None]
    """Runs the pending inputs, reporting each outcome as it finishes."""

Runner = Literal["local", "ray"]


class BatchSettings(EngineSettings):
    """``ocrpipe batch``: the engine options, where to write, how many workers."""

    model_config = SettingsConfigDict(env_prefix="OCRPIPE_", extra="ignore", frozen=True,
                                      use_attribute_docstrings=True)

    out: Path = Path("ocrpipe-batch")
    """output folder: one <input>.json per input (<input>.error.json when it failed) and summary.json"""
    jobs: int = Field(default=1, ge=1, le=256)
    """files read at once: local processes, or with --ray the Ray actors (each loads the models once)"""
    jsonl: bool = False
    """also write lines.jsonl: one row per recognised line (file, page, line, text, confidence, box)"""
    parquet: bool = False
    """also write lines.parquet with the same rows (needs pyarrow)"""
    retry_failed: bool = True
    """a rerun tries the inputs that failed before again (done ones are always skipped)"""


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``batch`` subcommand."""
    from ocrpipe.settings import add_flags

    p = subparsers.add_parser(
        "batch", help="OCR a folder or a list of files into one Document JSON each (resumable)",
        description="OCR every image and PDF of a folder (recursively) or of a list file (one path per line) "
                    "into OUT/<path>.json, the same JSON as `ocrpipe ocr --format json`. A rerun skips the "
                    "inputs already done; a file that cannot be read gets OUT/<path>.error.json with its error "
                    "code and the run goes on. OUT/summary.json counts the whole folder. Exit code 1 when an "
                    "input failed.")
    p.add_argument("source", metavar="INPUT_DIR_OR_LIST", type=Path, help="a folder, or a text file of paths")
    add_flags(p.add_argument_group("output"), BatchSettings, skip=EngineSettings.model_fields)
    add_flags(p.add_argument_group("engine (each flag is also an OCRPIPE_<NAME> variable; flags win)"),
              EngineSettings)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """The local runner: plan, run what is pending, summarise. Returns the exit code."""
    from dataclasses import replace

    from ocrpipe.bulk.local import run_local, threads_per_process
    from ocrpipe.settings import from_args, pipeline_config

    settings = from_args(BatchSettings, args)
    config = pipeline_config(settings)
    config = replace(config, threads=threads_per_process(config.threads, settings.jobs))

    def execute(todo: list[Item], record: Callable[[Outcome], None]) -> None:
        run_local(config, todo, settings.out, jobs=settings.jobs, on_outcome=record)

    return drive(args.source, settings, execute, runner="local")


def drive(source: Path, settings: BatchSettings, execute: Execute, *, runner: Runner) -> int:
    """Plan the run, hand the pending inputs to ``execute(todo, record)`` with a progress bar, then write the
    summary (and line tables). The same for every runner; returns the exit code (1 when an input failed)."""
    from ocrpipe.bulk.files import pending, plan, remove_temporaries, summarize, write_lines
    from ocrpipe.bulk.local import progress

    items = plan(source)
    out = settings.out
    out.mkdir(parents=True, exist_ok=True)
    remove_temporaries(out)
    todo = pending(items, out, retry_failed=settings.retry_failed)
    skipped = len(items) - len(todo)
    if skipped:
        print(f"ocrpipe batch: {skipped} of {len(items)} input(s) already done, skipped", file=sys.stderr)
    start = time.perf_counter()
    bar = progress(len(items), initial=skipped)
    failures = 0
    finished: list[float] = []

    def record(outcome: Outcome) -> None:
        nonlocal failures
        failures += outcome.code is not None
        finished.append(time.perf_counter())
        bar.update(1)
        bar.set_postfix(failed=failures, refresh=False)
        if outcome.code is not None:
            print(f"ocrpipe batch: {outcome.key}: error [{outcome.code}]", file=sys.stderr)

    try:
        if todo:
            execute(todo, record)
    finally:
        bar.close()
        remove_temporaries(out)
        steady = (len(finished) - 1) / (finished[-1] - finished[0]) if len(finished) > 2 else None
        summary = summarize(items, out, seconds=time.perf_counter() - start, runner=runner,
                            steady_files_per_s=steady)
    write_lines(items, out, jsonl=settings.jsonl, parquet=settings.parquet)
    print(f"ocrpipe batch: {summary['succeeded']} succeeded, {summary['failed']} failed, "
          f"{summary['not_done']} not done; summary in {out / 'summary.json'}", file=sys.stderr)
    return 1 if summary["failed"] or summary["not_done"] else 0
