"""Inputs and reference outputs of the bulk tests: generated text pages, and ``ocrpipe ocr --format json`` of
each file (the real command line) to compare ``ocrpipe batch`` with."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from .images import text_page
from .server import child_env

PAGES = {"a.png": ["진료비 영수증 2026-03-14", "Total 48,500 KRW"],
         "sub/b.png": ["환자 번호 A-20931 김민지"]}


def essentials(doc: dict[str, Any]) -> dict[str, Any]:
    """Everything of a Document but its timings (wall times differ between runs)."""
    return {k: v for k, v in doc.items() if k != "timings_ms"}


def make_inputs(folder: Path, pages: dict[str, list[str]] = PAGES, *, bad: bool = True) -> None:
    for name, lines in pages.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(text_page(lines))
    if bad:
        (folder / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")


def ocr_json(folder: Path, names: list[str], out: Path) -> dict[str, dict[str, Any]]:
    """``ocrpipe ocr NAMES --format json --out OUT`` (one process), each file's Document by name."""
    res = subprocess.run([sys.executable, "-m", "ocrpipe", "ocr", *[str(folder / n) for n in names],
                          "--format", "json", "--out", str(out)],
                         capture_output=True, text=True, timeout=300, env=child_env())
    assert res.returncode == 0, res.stderr
    return {n: json.loads((out / (Path(n).stem + ".json")).read_text(encoding="utf-8")) for n in names}
