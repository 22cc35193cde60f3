"""``ocrpipe batch --ray`` on a real two-node Ray cluster (separate ``ray start`` processes; decode tasks, a
detector and a recogniser actor pool): the outputs equal per-file ``ocrpipe ocr``, and killing the worker
node mid-run still ends with every file done once."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from testsupport.bulk import PAGES, essentials, make_inputs, ocr_json
from testsupport.server import child_env, wait_for

pytestmark = [pytest.mark.ray, pytest.mark.integration, pytest.mark.timeout(600)]

# on 1-CPU nodes: two detector actors (0.4 CPU) and two recogniser actors (0.3), room left for the read and
# decode tasks (0.1 each); the recognisers take two files per call
RAY_ARGS = ["--det-actors", "2", "--rec-actors", "2", "--ray-detector-cpus", "0.4", "--ray-recognizer-cpus", "0.3",
            "--rec-batch-files", "2"]


def test_a_folder_on_ray_equals_per_file_ocr(cluster, tmp_path: Path) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    make_inputs(src)
    res = subprocess.run([sys.executable, "-m", "ocrpipe", "batch", str(src), "--out", str(out),
                          "--ray", cluster.address, *RAY_ARGS], capture_output=True, text=True, timeout=400,
                         env=child_env())
    assert res.returncode == 1, res.stderr  # bad.png failed, the rest went on
    expected = ocr_json(src, list(PAGES), tmp_path / "cli")
    for name, doc in expected.items():
        assert essentials(json.loads((out / f"{name}.json").read_text(encoding="utf-8"))) == essentials(doc)
    assert json.loads((out / "bad.png.error.json").read_text(encoding="utf-8"))["code"] == "corrupt_image"
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert (summary["runner"], summary["succeeded"], summary["failed"]) == ("ray", 2, 1)


def test_killing_the_worker_node_mid_run_still_completes_every_file_once(cluster, tmp_path: Path) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    names = {f"p{i:02d}.png": [f"페이지 {i} 진료비 영수증", f"Line {i} total 48,500"] for i in range(8)}
    make_inputs(src, names, bad=False)
    worker = next(n for n in cluster.nodes if not n.head and n.alive())
    # one actor of each pool, so that the actors restarted after the loss fit on the head alone;
    # --rec-pool-pages: the two files' crops in one recogniser call
    proc = subprocess.Popen([sys.executable, "-m", "ocrpipe", "batch", str(src), "--out", str(out),
                             "--ray", cluster.address, *RAY_ARGS, "--det-actors", "1", "--rec-actors", "1",
                             "--rec-pool-pages"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=child_env())
    try:
        wait_for(lambda: len(list(out.glob("p*.png.json"))) >= 2 or proc.poll() is not None, 300,
                 "the first outputs")
        done_before = len(list(out.glob("p*.png.json")))
        assert done_before < len(names), "the run ended before the node could be killed"
        cluster.kill_node(worker)
        killed_at = time.monotonic()
        stdout, stderr = proc.communicate(timeout=400)
    finally:
        if proc.poll() is None:
            proc.kill()
        cluster.add_worker()  # the next tests get their two nodes back
    assert proc.returncode == 0, stderr
    assert not worker.alive()
    outputs = sorted(p.name for p in out.rglob("*") if p.is_file() and p.name != "summary.json")
    assert outputs == sorted(f"{n}.json" for n in names)  # one each: no error record, no temporary left
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert (summary["inputs"], summary["succeeded"], summary["failed"], summary["not_done"]) == (8, 8, 0, 0)
    for name in names:
        doc = json.loads((out / f"{name}.json").read_text(encoding="utf-8"))
        assert doc["pages"] and doc["pages"][0]["lines"], name
    print(f"killed the worker after {done_before}/8 files; the run ended "
          f"{time.monotonic() - killed_at:.1f} s later")
