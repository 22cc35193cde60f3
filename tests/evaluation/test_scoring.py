"""Dataset loading, per-document scoring, folder aggregation and error rows."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from ocrpipe.document import Document, Line, Page
from ocrpipe.errors import ErrorCode, InputError
from ocrpipe.evaluation import Prediction, aggregate, evaluate_folder, load_dataset, score_document
from ocrpipe.evaluation.metrics import Region


def quad(x0: float, y0: float, x1: float, y1: float) -> list[list[float]]:
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]


def doc_of(*lines: tuple[list[list[float]], str]) -> Document:
    page = Page(0, 300, 200, tuple(Line(t, 1.0, tuple(map(tuple, q))) for q, t in lines))  # type: ignore[arg-type]
    return Document(engine="test", pages=(page,))


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    records = [
        {
            "image": "images/a.png",
            "text": "안녕 세계\n서울",
            "lines": [
                {"points": quad(0, 0, 100, 20), "text": "안녕 세계"},
                {"points": quad(0, 40, 50, 60), "text": "서울"},
            ],
            "ignore_regions": [{"points": quad(200, 100, 300, 200), "reason": "picture"}],
        },
        {"image": "images/b.png", "text": "", "no_text": True},
        {"image": "images/c.png", "text": "only page text"},
    ]
    (tmp_path / "labels.jsonl").write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in records))
    return tmp_path


def test_load_dataset_fields(folder: Path) -> None:
    ds = load_dataset(folder)
    assert len(ds) == 3 and not ds.casefold
    a, b, _ = ds.samples
    assert a.image_path == folder / "images/a.png"
    assert [r.text for r in a.lines] == ["안녕 세계", "서울"]
    assert len(a.ignore_regions) == 1 and a.ignore_regions[0].shape == (4, 2)
    assert b.no_text and b.text == ""
    assert len(load_dataset(folder, limit=2)) == 2


def test_casefold_auto_detects_upper_case_ground_truth(tmp_path: Path) -> None:
    (tmp_path / "labels.jsonl").write_text(json.dumps({"image": "x.jpg", "text": "TOTAL RM 9.00"}))
    assert load_dataset(tmp_path).casefold
    assert not load_dataset(tmp_path, casefold=False).casefold


def test_missing_or_bad_labels_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError) as err:
        load_dataset(tmp_path)
    assert err.value.code == ErrorCode.FILE_NOT_FOUND
    (tmp_path / "labels.jsonl").write_text('{"image": "x.png", "lines": [{"points": [[0, 0]]}]}\n')
    with pytest.raises(InputError) as err:
        load_dataset(tmp_path)
    assert err.value.code == ErrorCode.INVALID_ARGUMENT and "labels.jsonl:1" in str(err.value)


def test_score_document_perfect_and_picture_text(folder: Path) -> None:
    a = load_dataset(folder).samples[0]
    doc = doc_of((quad(0, 0, 100, 20), "안녕 세계"), (quad(0, 40, 50, 60), "서울"), (quad(220, 120, 280, 140), "로고"))
    row = score_document(a, doc)
    assert row["line_cer"]["rate"] == 0.0 and row["line_cer"]["ignored_pred"] == 1
    assert row["detection"]["precision"] == 1.0 and row["detection"]["recall"] == 1.0
    assert row["e2e"]["f1"] == 1.0
    # the page text includes the logo text, which page CER counts (it is not box-aware)
    assert row["page_cer"]["edits"] == 2
    assert row["kor_e2e"]["tp"] == 3 and row["kor_e2e"]["n_gt"] == 3


def test_score_document_uses_engine_words_when_given(folder: Path) -> None:
    a = load_dataset(folder).samples[0]
    doc = doc_of((quad(0, 0, 100, 20), "안녕 세계"))
    words = (Region.of(quad(0, 0, 30, 20), "안녕"), Region.of(quad(70, 0, 100, 20), "세계"))
    row = score_document(a, Prediction(doc, words))
    assert row["kor_e2e"]["tp"] == 2  # "서울" missed


def test_page_only_sample_has_no_box_metrics(folder: Path) -> None:
    c = load_dataset(folder).samples[2]
    row = score_document(c, doc_of((quad(0, 0, 10, 10), "only page text")))
    assert row["page_cer"]["rate"] == 0.0 and row["line_cer"] is None and row["detection"] is None


def test_evaluate_folder_error_rows_and_aggregation(folder: Path) -> None:
    def run(path: Path) -> Document:
        if path.name == "c.png":
            raise RuntimeError("engine exploded")
        if path.name == "b.png":
            return doc_of((quad(0, 0, 10, 10), "광고"))  # false text on a no-text image
        return doc_of((quad(0, 0, 100, 20), "안녕 세계"), (quad(0, 40, 50, 60), "서을"))

    summary = evaluate_folder(folder, run, progress=False)
    rows = summary["per_image"]
    assert [r["image"] for r in rows] == ["images/a.png", "images/b.png", "images/c.png"]
    assert rows[2]["error"]["code"] == "RuntimeError" and "exploded" in rows[2]["error"]["message"]
    assert rows[2]["page_cer"]["edits"] == len("onlypagetext")  # an error is scored as an empty prediction
    agg = summary["metrics"]
    assert agg["images"] == 3 and agg["errors"] == 1
    # page CER micro: a: 1 edit / 6, b: 2 / 0, c: 12 / 12  -> 15 / 18
    assert math.isclose(agg["page_cer"], 15 / 18, rel_tol=1e-5)
    # macro mean of per-image rates: (1/6 + 1.0 + 1.0) / 3
    assert math.isclose(agg["page_cer_mean"], (1 / 6 + 2) / 3, rel_tol=1e-5)
    assert math.isclose(agg["line_cer"], 1 / 6, rel_tol=1e-5)  # only image a has boxes


def test_kor_e2e_macro_and_micro() -> None:
    rows = [
        {"kor_e2e": {"tp": 1, "n_gt": 2, "n_pred": 2, "precision": 0.5, "recall": 0.5, "f1": 0.5}},
        {"kor_e2e": {"tp": 3, "n_gt": 3, "n_pred": 3, "precision": 1.0, "recall": 1.0, "f1": 1.0}},
    ]
    agg = aggregate(rows)
    assert math.isclose(agg["kor_e2e"]["accuracy_micro"], 0.8)
    assert math.isclose(agg["kor_e2e"]["accuracy_macro"], 0.75)


def test_line_confidences_are_scored_and_aggregated_into_ece(folder: Path) -> None:
    a, _, c = load_dataset(folder).samples
    page = Page(0, 300, 200, (Line("안녕 세계", 0.9, tuple(map(tuple, quad(0, 0, 100, 20)))),  # type: ignore[arg-type]
                              Line("서을", 0.8, tuple(map(tuple, quad(0, 40, 50, 60))))))  # type: ignore[arg-type]
    row = score_document(a, Document(engine="test", pages=(page,)))
    assert row["calibration"] == [[0.9, 1.0, 1.0], [0.8, 0.0, 0.5]]
    # a one-line image without boxes (a word crop) pairs its one predicted line with the page text
    one = Page(0, 300, 200, (Line("only page text", 0.7, tuple(map(tuple, quad(0, 0, 9, 9)))),))  # type: ignore[arg-type]
    assert score_document(c, Document(engine="test", pages=(one,)))["calibration"] == [[0.7, 1.0, 1.0]]
    agg = aggregate([row])["calibration"]
    assert agg["lines"] == 2 and agg["line_accuracy"] == 0.5
    assert agg["ece"] == pytest.approx(0.5 * 0.1 + 0.5 * 0.8)
    assert agg["ece_cer"] == pytest.approx(0.5 * 0.1 + 0.5 * 0.3)
