"""Tables, report.json and the HTML report with its plots, from a synthetic results structure."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PIL import Image

from ocrpipe.evaluation import report
from ocrpipe.evaluation.scoring import aggregate


def _row(image: str, rate: float, seconds: float) -> dict[str, Any]:
    count = {"edits": int(rate * 100), "total": 100, "rate": rate}
    match = {"tp": 5, "n_gt": 10, "n_pred": 10, "precision": 0.5, "recall": 0.5, "f1": 0.5}
    return {
        "image": image,
        "seconds": seconds,
        "page_cer": count,
        "cer": count,
        "wer": count,
        "line_cer": count,
        "word_f1": match,
        "detection": match,
        "e2e": match,
        "kor_e2e": match,
    }


def results() -> dict[str, Any]:
    engines = []
    for name, rates, secs in (("fast", [0.1, 0.3], 0.2), ("slow", [0.05, 0.07], 2.0)):
        rows = [_row(f"images/{i}.png", r, secs) for i, r in enumerate(rates)]
        engines.append({"engine": name, "timed": True, "models": [], "metrics": aggregate(rows), "per_image": rows})
    return {
        "created": "now",
        "datasets": [{"name": "toy", "path": "/x/toy", "casefold": False, "images": 2, "engines": engines}],
    }


def test_terminal_and_markdown_tables() -> None:
    text = report.format_table(results())
    head, rule, fast, slow = text.splitlines()
    assert head.split()[:4] == ["dataset", "engine", "images", "errors"]
    assert fast.split()[:5] == ["toy", "fast", "2", "0", "0.200"]  # micro line CER = 40 / 200
    assert slow.split()[-1] == "2.00"
    md = report.markdown_table(results(), columns=("line CER", "s/img"))
    assert md.splitlines()[0] == "| dataset | engine | line CER | s/img |"
    assert md.splitlines()[3] == "| toy | slow | 0.060 | 2.00 |"


def test_html_report_with_plots(tmp_path: Path) -> None:
    res = results()
    report.write_json(res, tmp_path / "report.json")
    assert json.loads((tmp_path / "report.json").read_text())["datasets"][0]["name"] == "toy"
    page = report.write_html(res, tmp_path, {}).read_text()
    assert "<table>" in page and "speed_accuracy.png" in page and "toy_distribution.png" in page
    assert "per-image results (2 images)" in page and "<td>images/1.png</td><td>0.300</td>" in page
    for png in ("plots/speed_accuracy.png", "plots/toy_distribution.png"):
        with Image.open(tmp_path / png) as im:
            assert im.width > 300 and im.height > 200
