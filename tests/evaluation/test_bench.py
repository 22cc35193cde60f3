"""Input collection and the pure parts of ``ocrpipe bench`` (timing itself is never asserted)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ocrpipe.errors import ErrorCode, InputError
from ocrpipe.evaluation import bench


def test_collect_inputs_from_files_plain_folders_and_datasets(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    (plain / "sub").mkdir(parents=True)
    for name in ("a.png", "sub/b.jpg", "notes.txt"):
        (plain / name).write_bytes(b"x")
    assert [p.name for p in bench.collect_inputs([str(plain)])] == ["a.png", "b.jpg"]

    ds = tmp_path / "ds"
    ds.mkdir()
    rows = [{"image": "x.png", "text": "a", "render_dpi": 150}, {"image": "y.png", "text": "b"}]
    (ds / "labels.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    files = bench.collect_inputs([str(ds)], limit=5)
    assert files == [ds / "x.png", ds / "y.png"]
    assert bench.RENDER_DPI[ds / "x.png"] == 150.0 and (ds / "y.png") not in bench.RENDER_DPI
    assert bench.collect_inputs([str(ds), str(plain)], limit=3)[-1].name == "a.png"

    with pytest.raises(InputError) as err:
        bench.collect_inputs([str(tmp_path / "missing.png")])
    assert err.value.code == ErrorCode.FILE_NOT_FOUND


def test_latency_summary_and_table() -> None:
    lat = bench._latency([0.1, 0.2, 0.3, 0.4, 1.0])
    assert lat == {"mean": 0.4, "p50": 0.3, "p95": 1.0, "max": 1.0}
    rows = [
        {
            "engine": "ocrpipe",
            "documents": 5,
            "latency_s": lat,
            "throughput_docs_per_s": 2.5,
            "peak_rss_mb": 900.0,
            "rss_before_mb": 100.0,
            "stages_ms_mean": {"detect": 150.0, "recognize": 200.0},
        },
        {
            "engine": "tesseract",
            "documents": 5,
            "latency_s": {**lat, "mean": 0.8},
            "throughput_docs_per_s": 1.2,
            "peak_rss_mb": 950.0,
            "rss_before_mb": 900.0,
            "stages_ms_mean": {"recognize": 800.0},
        },
    ]
    text = bench.format_local(rows, rows[1])
    ours = next(line for line in text.splitlines() if line.startswith("ocrpipe"))
    assert ours.split()[-3:] == ["900", "800", "2.00x"]  # peak, growth, speed ratio vs Tesseract
    assert "detect=150  recognize=200" in text


def test_peak_rss_is_reported() -> None:
    mem = bench.rss_mb()
    assert mem["peak_rss_mb"] >= mem.get("rss_mb", 0) > 0
