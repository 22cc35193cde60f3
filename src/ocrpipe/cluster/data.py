"""``ocrpipe batch --ray ADDRESS``: bulk OCR on a Ray cluster with Ray Data.

``read_binary_files`` reads the pending inputs (one block per file, so a lost block is one file to redo);
``map_batches`` hands each file to an actor pool of ``--jobs`` OCR actors, each holding one pipeline (the
models are loaded once per actor, with ``--ray-recognizer-cpus`` CPUs reserved for it); each actor decodes,
detects and recognises the file's pages with :meth:`Pipeline.run` and writes its outputs with the same atomic
functions as the local runner (:func:`ocrpipe.bulk.local.ocr_item`). The driver streams the per-file outcomes
into the progress bar and writes the summary from what is on disk.

Fault tolerance: Ray Data's actors restart and their tasks are retried (``max_restarts``/``max_task_retries``
-1) when a worker node or actor dies; a file whose attempt died is read again by another actor, and one whose
output an earlier attempt already wrote is skipped, so every input ends with exactly one output. Inputs and
``--out`` must be on a file system every node sees (one machine, or a shared mount).
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ocrpipe.bulk.cli import BatchSettings, drive
from ocrpipe.bulk.files import Item, error_record, write_error
from ocrpipe.bulk.local import Outcome, ocr_item
from ocrpipe.cluster.settings import RaySettings
from ocrpipe.errors import ErrorCode, InputError

if TYPE_CHECKING:
    import numpy as np

    from ocrpipe.engine.pipeline import PipelineConfig


class OcrActor:
    """One Ray Data actor: a pipeline loaded once, one input file per call."""

    def __init__(self, config: PipelineConfig, out: str, keys: dict[str, str]) -> None:
        from ocrpipe.engine.pipeline import Pipeline

        self.pipeline = Pipeline(config)
        self.out = Path(out)
        self.keys = keys

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list[Any]]:
        rows: dict[str, list[Any]] = {"key": [], "code": [], "pages": [], "seconds": [], "skipped": []}
        for data, path in zip(batch["bytes"], batch["path"], strict=True):
            item = Item(Path(str(path)), self.keys[_norm(str(path))])
            outcome = ocr_item(self.pipeline, item, self.out, bytes(data))
            rows["key"].append(outcome.key)
            rows["code"].append(outcome.code or "")
            rows["pages"].append(outcome.pages)
            rows["seconds"].append(outcome.seconds)
            rows["skipped"].append(outcome.skipped)
        return rows


def _norm(path: str) -> str:
    """Ray Data gives local paths without a scheme; compare absolute, normalised paths."""
    return os.path.normpath("/" + path.lstrip("/"))


def run_on_ray(config: PipelineConfig, items: list[Item], out: Path, *, jobs: int, cluster: RaySettings,
               on_outcome: Callable[[Outcome], None]) -> None:
    """Run ``items`` on the cluster at ``cluster.ray``; ``on_outcome`` as each file's outcome arrives."""
    import ray

    readable = []
    for item in items:
        if item.path.is_file():
            readable.append(item)
        else:  # read_binary_files would fail the whole run on it
            record = error_record(item, InputError(ErrorCode.FILE_NOT_FOUND, f"no such file: {item.path}"))
            write_error(item, out, record)
            on_outcome(Outcome(item.key, code=record["code"]))
    if not readable:
        return
    ray.init(address=cluster.ray, namespace=cluster.ray_namespace, log_to_driver=False,
             logging_level=logging.WARNING)
    try:
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False  # ours counts files
        ctx.print_on_execution_start = False
        keys = {_norm(str(i.path)): i.key for i in readable}
        # reading is I/O: the read tasks take little of a CPU, which stays with the OCR actors
        ds = ray.data.read_binary_files([str(i.path) for i in readable], include_paths=True,
                                        override_num_blocks=len(readable), num_cpus=0.1)
        ds = ds.map_batches(OcrActor, batch_size=1, batch_format="numpy",
                            compute=ray.data.ActorPoolStrategy(size=jobs),
                            num_cpus=cluster.ray_recognizer_cpus,
                            fn_constructor_kwargs={"config": config, "out": str(out.resolve()), "keys": keys})
        seen: set[str] = set()
        for row in ds.iter_rows():
            if row["key"] in seen:  # a retried block may report a file twice; its output is written once
                continue
            seen.add(row["key"])
            on_outcome(Outcome(row["key"], code=row["code"] or None, pages=int(row["pages"]),
                               seconds=float(row["seconds"]), skipped=bool(row["skipped"])))
    finally:
        ray.shutdown()


def run(args: argparse.Namespace) -> int:
    """``ocrpipe batch --ray ADDRESS ...``: returns the exit code."""
    from dataclasses import replace

    from ocrpipe.settings import from_args, pipeline_config

    settings = from_args(BatchSettings, args)
    cluster = from_args(RaySettings, args)
    config = pipeline_config(settings)
    if not config.threads:  # each actor's models use the CPUs reserved for it
        config = replace(config, threads=max(1, round(cluster.ray_recognizer_cpus)))

    def execute(todo: list[Item], record: Callable[[Outcome], None]) -> None:
        run_on_ray(config, todo, settings.out, jobs=settings.jobs, cluster=cluster, on_outcome=record)

    return drive(args.source, settings, execute, runner="ray")
