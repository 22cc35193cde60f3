"""The bulk run's plan and files: which inputs a folder or list gives, what counts as done, atomic writes,
error records, the summary and the line tables."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ocrpipe.bulk import files
from ocrpipe.bulk.files import Item
from ocrpipe.document import Document, Line, Page
from ocrpipe.errors import EngineError, ErrorCode, InputError, OcrError, Stage


def _touch(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_a_folder_gives_its_images_and_pdfs_recursively_sorted_without_hidden_files(tmp_path: Path) -> None:
    for name in ("b.PNG", "a.pdf", "sub/c.jpg", "notes.txt", ".hidden.png", ".cache/d.png", "sub/e.tiff"):
        _touch(tmp_path / name)
    assert [i.key for i in files.plan(tmp_path)] == ["a.pdf", "b.PNG", "sub/c.jpg", "sub/e.tiff"]
    assert files.plan(tmp_path)[0].path == (tmp_path / "a.pdf").resolve()


def test_a_list_names_its_files_relative_to_the_list_once_each(tmp_path: Path) -> None:
    _touch(tmp_path / "scans" / "x" / "1.png")
    _touch(tmp_path / "scans" / "y" / "2.txt")
    listing = tmp_path / "scans" / "todo.txt"
    listing.write_text("# today\nx/1.png\n\ny/2.txt\nx/1.png\ny/missing.png\n", encoding="utf-8")
    items = files.plan(listing)
    assert [i.key for i in items] == ["x/1.png", "y/2.txt", "y/missing.png"]  # a list takes any suffix


def test_a_missing_source_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(OcrError) as err:
        files.plan(tmp_path / "nope")
    assert err.value.code == ErrorCode.FILE_NOT_FOUND


def _doc(text: str) -> Document:
    line = Line(text=text, confidence=0.9, box=((1.0, 2.0), (30.0, 2.0), (30.0, 12.0), (1.0, 12.0)))
    from ocrpipe.document import build_document

    return build_document("ocrpipe/test", [Page(index=0, width=40, height=20, lines=(line,))], timings_ms={},
                          models=[], started=0.0)


def test_done_inputs_are_skipped_and_failed_ones_retried_unless_told(tmp_path: Path) -> None:
    out = tmp_path / "out"
    a, b, c = (Item(tmp_path / n, n) for n in ("a.png", "b.png", "sub/c.png"))
    files.write_document(a, out, _doc("가"))
    files.write_error(b, out, files.error_record(b, InputError(ErrorCode.CORRUPT_IMAGE, "bad")))
    assert files.pending([a, b, c], out) == [b, c]
    assert files.pending([a, b, c], out, retry_failed=False) == [c]
    files.write_document(b, out, _doc("나"))  # a retry that succeeds clears the error record
    assert not b.error_output(out).exists() and files.is_done(b, out)


def test_the_document_file_is_the_json_of_ocr_format_json(tmp_path: Path) -> None:
    from ocrpipe.export.render import to_json

    item = Item(tmp_path / "a.png", "deep/a.png")
    doc = _doc("영수증")
    files.write_document(item, tmp_path, doc)
    assert (tmp_path / "deep" / "a.png.json").read_text(encoding="utf-8") == to_json(doc)


def test_an_interrupted_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "a.json"
    files.write_atomic(target, "old")

    with pytest.raises(TypeError):
        files.write_atomic(target, 42)  # type: ignore[arg-type]  # the write fails half-way
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


def test_error_records_carry_the_stable_code_and_stage(tmp_path: Path) -> None:
    item = Item(tmp_path / "a.pdf", "a.pdf")
    rec = files.error_record(item, InputError(ErrorCode.ENCRYPTED_PDF, "locked", stage=Stage.DECODE))
    assert rec == {"file": "a.pdf", "code": "encrypted_pdf", "message": "locked", "stage": "decode"}
    rec = files.error_record(item, EngineError(ErrorCode.ENGINE_FAILURE, "det", stage=Stage.DETECT))
    assert (rec["code"], rec["stage"]) == ("engine_failure", "detect")
    rec = files.error_record(item, ZeroDivisionError("secret detail"))
    assert rec == {"file": "a.pdf", "code": "internal_error", "message": "ZeroDivisionError", "stage": None}
    assert {rec["code"]} <= {c.value for c in ErrorCode}


def test_the_summary_counts_the_folder_from_disk_once_per_input(tmp_path: Path) -> None:
    out = tmp_path / "out"
    a, b, c = (Item(tmp_path / n, n) for n in ("a.png", "b.png", "c.png"))
    files.write_document(a, out, _doc("가"))
    files.write_document(a, out, _doc("가"))  # written twice (a retried attempt): still one output
    files.write_error(b, out, files.error_record(b, InputError(ErrorCode.CORRUPT_IMAGE, "bad")))
    summary = files.summarize([a, b, c], out, seconds=1.5, runner="local")
    assert (summary["inputs"], summary["succeeded"], summary["failed"], summary["not_done"]) == (3, 1, 1, 1)
    assert summary["errors"][0]["code"] == "corrupt_image" and summary["not_done_files"] == ["c.png"]
    assert json.loads((out / "summary.json").read_text(encoding="utf-8")) == summary


def test_line_tables_have_one_row_per_line(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    a, b = Item(tmp_path / "a.png", "a.png"), Item(tmp_path / "b.png", "b.png")
    files.write_document(a, tmp_path, _doc("가나"))
    written = files.write_lines([a, b], tmp_path, jsonl=True, parquet=True)
    assert [p.name for p in written] == ["lines.jsonl", "lines.parquet"]
    rows = [json.loads(x) for x in (tmp_path / "lines.jsonl").read_text(encoding="utf-8").splitlines()]
    assert rows == [{"file": "a.png", "page": 0, "line": 0, "text": "가나", "confidence": 0.9,
                     "box": [[1.0, 2.0], [30.0, 2.0], [30.0, 12.0], [1.0, 12.0]]}]
    assert pq.read_table(tmp_path / "lines.parquet").to_pylist() == rows


def test_temporaries_of_killed_attempts_are_removed(tmp_path: Path) -> None:
    _touch(tmp_path / "sub" / ".a.png.json.k2j3.tmp")
    _touch(tmp_path / "b.png.json", b"{}")
    assert files.remove_temporaries(tmp_path) == 1
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == ["b.png.json"]
