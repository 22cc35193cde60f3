"""Saved predictions from ocrpipe JSON, NAVER CLOVA OCR and Kakao OCR, and their file layouts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ocrpipe.errors import ErrorCode, InputError, OcrError
from ocrpipe.evaluation.engines import make_engine
from ocrpipe.evaluation.external import ExternalEngine, parse_response


def _clova_word(text: str, confidence: float, line_break: bool, x0: int, y0: int, x1: int, y1: int) -> dict[str, Any]:
    """One word as CLOVA OCR's V2 response carries it (an axis-aligned box, clockwise from the top left)."""
    corners = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
    return {"valueType": "ALL", "inferText": text, "inferConfidence": confidence, "type": "NORMAL",
            "lineBreak": line_break, "boundingPoly": {"vertices": [{"x": x, "y": y} for x, y in corners]}}


CLOVA = {
    "version": "V2",
    "requestId": "r1",
    "timestamp": 1,
    "images": [
        {
            "uid": "u",
            "name": "page",
            "inferResult": "SUCCESS",
            "message": "SUCCESS",
            "fields": [
                _clova_word("대한", 0.99, False, 10, 10, 50, 30),
                _clova_word("민국", 0.98, True, 60, 10, 100, 30),
                _clova_word("서울", 0.97, True, 10, 50, 50, 70),
            ],
        }
    ],
}
KAKAO = {
    "result": [
        {"boxes": [[10, 50], [50, 50], [50, 70], [10, 70]], "recognition_words": ["서울"]},
        {"boxes": [[10, 10], [50, 10], [50, 30], [10, 30]], "recognition_words": ["대한"]},
        {"boxes": [[60, 10], [100, 10], [100, 30], [60, 30]], "recognition_words": ["민국"]},
    ]
}
OCRPIPE = {
    "engine": "x",
    "pages": [
        {
            "index": 0,
            "width": 120,
            "height": 80,
            "lines": [{"text": "대한 민국", "confidence": 0.9, "box": [[10, 10], [100, 10], [100, 30], [10, 30]]}],
        }
    ],
    "text": "대한 민국",
}


def test_clova_fields_join_into_lines_at_line_breaks() -> None:
    pred = parse_response(CLOVA)
    lines = pred.doc.pages[0].lines
    assert [ln.text for ln in lines] == ["대한 민국", "서울"]
    assert lines[0].box == ((10.0, 10.0), (100.0, 10.0), (100.0, 30.0), (10.0, 30.0))
    assert pred.words is not None and [w.text for w in pred.words] == ["대한", "민국", "서울"]


def test_kakao_boxes_are_put_in_reading_order() -> None:
    pred = parse_response(KAKAO)
    assert pred.doc.text == "대한\n민국\n서울"  # file order was 서울, 대한, 민국
    assert len(pred.words or ()) == 3


def test_ocrpipe_json_and_unknown_format() -> None:
    assert parse_response(OCRPIPE).doc.text == "대한 민국"
    assert parse_response({"document": OCRPIPE}).doc.text == "대한 민국"
    with pytest.raises(InputError) as err:
        parse_response({"foo": 1}, source="x.json")
    assert err.value.code == ErrorCode.INVALID_ARGUMENT


def test_folder_layout_by_image_name_or_stem(tmp_path: Path) -> None:
    (tmp_path / "a.png.json").write_text(json.dumps(CLOVA, ensure_ascii=False))
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "b.json").write_text(json.dumps(KAKAO, ensure_ascii=False))
    engine = make_engine(f"external:{tmp_path}")
    assert not engine.timed
    assert "서울" in engine(Path("/data/set/images/a.png")).doc.text
    assert "서울" in engine(Path("/data/set/images/b.jpg")).doc.text
    with pytest.raises(InputError) as err:
        engine(Path("/data/set/images/missing.png"))
    assert err.value.code == ErrorCode.FILE_NOT_FOUND


def test_jsonl_and_json_index_files(tmp_path: Path) -> None:
    jsonl = tmp_path / "preds.jsonl"
    jsonl.write_text(
        "\n".join(
            [
                json.dumps({"image": "images/a.png", "response": CLOVA}, ensure_ascii=False),
                json.dumps({"image": "b.png", **KAKAO}, ensure_ascii=False),
            ]
        )
    )
    engine = ExternalEngine(jsonl)
    assert engine(Path("/x/images/a.png")).doc.pages[0].lines[0].text == "대한 민국"
    assert len(engine(Path("/x/images/b.png")).doc.pages[0].lines) == 3
    index = tmp_path / "preds.json"
    index.write_text(json.dumps({"a.png": OCRPIPE}, ensure_ascii=False))
    assert ExternalEngine(index)(Path("/y/a.png")).doc.text == "대한 민국"


def test_missing_prediction_path_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InputError) as err:
        make_engine(f"external:{tmp_path / 'nope'}")
    assert err.value.code == ErrorCode.FILE_NOT_FOUND
    with pytest.raises(OcrError) as err:  # a usage error (exit code 2), not a bad input file
        make_engine("no-such-engine")
    assert not isinstance(err.value, InputError)
    assert err.value.code == ErrorCode.INVALID_ARGUMENT
