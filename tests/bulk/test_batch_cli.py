"""``ocrpipe batch`` with local processes, through the real command line: each input's JSON equals
``ocrpipe ocr --format json`` for that file, a bad file is recorded with its code without stopping the run,
and a rerun skips what is done. Also: the base install never imports Ray."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from testsupport.bulk import PAGES, essentials, make_inputs, ocr_json
from testsupport.images import text_page
from testsupport.server import child_env


def batch(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ocrpipe", "batch", *args], capture_output=True, text=True,
                          timeout=timeout, env=child_env())


@pytest.mark.integration
def test_batch_equals_per_file_ocr_records_errors_and_resumes(tmp_path: Path) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    make_inputs(src)
    res = batch(str(src), "--out", str(out), "--jobs", "2", "--jsonl")
    assert res.returncode == 1, res.stderr  # one input failed
    assert "bad.png: error [corrupt_image]" in res.stderr
    expected = ocr_json(src, list(PAGES), tmp_path / "cli")
    for name, doc in expected.items():
        assert essentials(json.loads((out / f"{name}.json").read_text(encoding="utf-8"))) == essentials(doc)
    error = json.loads((out / "bad.png.error.json").read_text(encoding="utf-8"))
    assert (error["file"], error["code"], error["stage"]) == ("bad.png", "corrupt_image", "decode")
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert (summary["inputs"], summary["succeeded"], summary["failed"], summary["not_done"]) == (3, 2, 1, 0)
    rows = [json.loads(x) for x in (out / "lines.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["text"] for r in rows if r["file"] == "a.png"] == [ln["text"] for ln in
                                                                 expected["a.png"]["pages"][0]["lines"]]

    (src / "bad.png").write_bytes(text_page(["고친 파일"]))  # fixed: the rerun reads it, skips the others
    before = {n: (out / f"{n}.json").stat().st_mtime_ns for n in PAGES}
    res = batch(str(src), "--out", str(out), "--jobs", "1")
    assert res.returncode == 0, res.stderr
    assert "2 of 3 input(s) already done, skipped" in res.stderr
    assert {n: (out / f"{n}.json").stat().st_mtime_ns for n in PAGES} == before
    assert not (out / "bad.png.error.json").exists() and (out / "bad.png.json").is_file()
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert (summary["succeeded"], summary["failed"]) == (3, 0)


def test_the_base_install_never_imports_ray(tmp_path: Path) -> None:
    code = ("import sys; sys.modules['ray'] = None\n"  # as if Ray were not installed
            "import ocrpipe, ocrpipe.cli\n"
            "parser = ocrpipe.cli.build_parser()\n"
            "from ocrpipe.cli import main\n"
            f"rc = main(['batch', {str(tmp_path)!r}, '--ray', '127.0.0.1:1'])\n"
            "print('rc', rc)\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=child_env())
    assert res.returncode == 0, res.stderr
    assert "rc 2" in res.stdout
    assert "Ray is not installed (pip install 'ocrpipe[ray]')" in res.stderr
