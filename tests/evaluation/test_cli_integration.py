"""``ocrpipe eval`` / ``ocrpipe bench`` end to end with the real engines and a real service process."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from testsupport.server import Server, run_cli

from ocrpipe.cli import main
from ocrpipe.evaluation.loadtest import format_load, load_test

pytestmark = pytest.mark.integration


def _report(path: Path) -> dict:
    return json.loads((path / "report.json").read_text(encoding="utf-8"))


def test_eval_tesseract_report_and_external_rescoring(
    labelled_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report"
    assert (
        main(
            [
                "eval",
                str(labelled_folder),
                "--engine",
                "tesseract",
                "--report",
                str(out),
                "--no-progress",
                "--worst",
                "2",
            ]
        )
        == 0
    )
    table = capsys.readouterr().out
    assert "tesseract" in table and "line CER" in table
    eng = _report(out)["datasets"][0]["engines"][0]
    m = eng["metrics"]
    assert m["images"] == 3 and m["errors"] == 1  # the corrupt image is an error row, not a crash
    broken = next(r for r in eng["per_image"] if r["image"] == "images/broken.png")
    assert broken["error"]["code"] == "corrupt_image"
    good = [r for r in eng["per_image"] if not r.get("error")]
    # whole-page Tesseract garbles a few Hangul glyphs of this synthetic page; the English line is exact
    assert all(r["line_cer"]["rate"] < 0.35 for r in good), [r["line_cer"] for r in good]
    assert all(r["e2e"]["tp"] >= 1 for r in good)
    assert m["detection"]["f1"] > 0.6
    html = (out / "index.html").read_text(encoding="utf-8")
    for rel in ["plots/speed_accuracy.png", "plots/set_distribution.png"]:
        assert rel in html and (out / rel).is_file()
    worst = list((out / "worst").rglob("*.png"))
    assert len(worst) == 2

    # the saved predictions, read back as an external engine, score exactly the same
    preds = out / "predictions" / "set" / "tesseract"
    again = tmp_path / "again"
    assert (
        main(
            [
                "eval",
                str(labelled_folder),
                "--engine",
                f"external:{preds}",
                "--report",
                str(again),
                "--no-progress",
                "--worst",
                "0",
            ]
        )
        == 0
    )
    m2 = _report(again)["datasets"][0]["engines"][0]["metrics"]
    for key in ("line_cer", "page_cer", "cer", "wer"):
        assert m2[key] == m[key], key
    assert m2["word_f1"] == m["word_f1"] and m2["detection"] == m["detection"]
    assert m2["seconds_per_image"] is not None  # recorded, but the table shows "-" for untimed engines


@pytest.mark.parametrize("engine", ["ocrpipe", "ocrpipe:tesseract", "ocrpipe:auto@ppocrv4_det_int8", "rapidocr"])
def test_eval_other_engines_run(engine: str, labelled_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / engine
    assert (
        main(
            [
                "eval",
                str(labelled_folder),
                "--engine",
                engine,
                "--limit",
                "1",
                "--report",
                str(out),
                "--no-progress",
                "--worst",
                "1",
            ]
        )
        == 0
    )
    m = _report(out)["datasets"][0]["engines"][0]["metrics"]
    assert m["errors"] == 0 and m["detection"]["recall"] > 0.5


def test_bench_local_against_tesseract(
    labelled_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bench.json"
    image = labelled_folder / "images" / "p1.png"
    assert main(["bench", str(image), "--engine", "ocrpipe", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "vs tess" in text and "detect=" in text
    res = json.loads(out.read_text())
    names = [r["engine"] for r in res["engines"]]
    assert names == ["ocrpipe", "tesseract"]
    ours = res["engines"][0]
    assert ours["documents"] == 1 and ours["speed_vs_tesseract"] > 0
    assert {"decode", "detect", "recognize"} <= set(ours["stages_ms_mean"])
    assert ours["peak_rss_mb"] > 50


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[str]:
    """A real ``ocrpipe serve`` process on a free port; its URL."""
    srv = Server(tmp_path / "data").start()
    try:
        yield srv.url
    finally:
        srv.stop()


def test_load_test_sequential_vs_batched(server: str, labelled_folder: Path, tmp_path: Path) -> None:
    files = [labelled_folder / "images" / "p1.png", labelled_folder / "images" / "p2.png"]
    res = load_test(server, files, docs=4, clients=2, batch_size=2, timeout=120, rounds=2)
    assert res["sequential"]["requests"] == 4 and res["batched"]["requests"] == 2
    assert res["sequential"]["failed_requests"] == 0 and res["batched"]["failed_requests"] == 0
    assert len(res["sequential"]["all_seconds"]) == 2 and res["rounds"] == 2
    table = format_load(res)
    assert "time sequential" in table and "time batched" in table and "saving" in table

    out = tmp_path / "load.json"
    argv = ["bench", *map(str, files), "--server", server, "--docs", "2", "--clients", "1", "--batch-size", "2"]
    assert main([*argv, "--out", str(out)]) == 0
    saved = json.loads(out.read_text())
    assert saved["documents"] == 2 and saved["batched"]["requests"] == 1


def test_load_test_with_api_key(server: str, labelled_folder: Path, tmp_path: Path) -> None:
    created = run_cli("keys", "create", "--name", "bench", "--scopes", "submit,read", data_dir=tmp_path / "data")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    files = [labelled_folder / "images" / "p1.png"]
    with pytest.raises(RuntimeError, match="API key"):
        load_test(server, files, docs=1, clients=1, batch_size=1, timeout=60)
    res = load_test(server, files, docs=2, clients=1, batch_size=2, timeout=120, api_key=key)
    assert res["sequential"]["failed_requests"] == 0 and res["batched"]["failed_requests"] == 0


def test_eval_engine_names_the_detector() -> None:
    from ocrpipe.evaluation.engines import make_engine

    engine = make_engine("ocrpipe:ko_rec@ppocrv4_det_int8")
    assert engine.pipeline.detector.name == "ppocrv4_det_int8"  # type: ignore[attr-defined]
    assert engine.pipeline.recognizer.name == "ko_rec"  # type: ignore[attr-defined]
    assert make_engine("ocrpipe:ko_rec").pipeline.detector.name == "ppocrv4_det"  # type: ignore[attr-defined]
