"""``ocrpipe template new``: a template from one clean reference and its values, tried on other pages.

Fixtures are generated printouts (``ocrpipe.synth.printouts``): the reference is a clean page (strength 0),
the test pages are scan-degraded pages of the same layout from another seed."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from ocrpipe.cli import main
from ocrpipe.synth.printouts import LAYOUTS, make_page
from ocrpipe.templates.author import infer_spec
from ocrpipe.templates.fields import parse_field, validate
from ocrpipe.templates.schema import FieldSpec, load_template


def test_field_names_may_be_any_script() -> None:
    assert FieldSpec(name="MSDS번호", region=(0.1, 0.1, 0.2, 0.2)).name == "MSDS번호"
    with pytest.raises(ValueError, match="field name"):
        FieldSpec(name="1st", region=(0.1, 0.1, 0.2, 0.2))


def test_types_formats_and_rules_are_inferred_from_the_printed_value() -> None:
    assert infer_spec("d", "2024/01/11") == {"name": "d", "type": "date", "format": "%Y/%m/%d",
                                            "whitelist": "0123456789/",
                                            "validation": {"regex": r"^\d{4}/\d{2}/\d{2}$"}}
    sph = infer_spec("R_S", "-2.25")
    assert sph["type"] == "number" and sph["whitelist"] == "+-.0123456789"
    assert infer_spec("pd", "63 mm")["unit"] == "mm"
    msds = infer_spec("MSDS번호", "AA05999-0000026000")
    assert msds["type"] == "text" and msds["validation"]["regex"] == r"^[A-Z]{2}\d{5}\-\d{10}$"
    pid = infer_spec("pid", "00123456")
    assert pid["type"] == "text" and pid["normalize"] == "no_spaces"  # a leading zero is kept: an identifier
    name = infer_spec("이름", "황준태")
    assert name["lang"] == "kor" and name["normalize"] == "collapse"


def test_text_is_validated_as_read_without_a_silent_space_strip() -> None:
    spec = FieldSpec.model_validate({**infer_spec("이름", "황준태"), "region": (0.1, 0.1, 0.2, 0.2)})
    value, token, issues = parse_field(spec, "황 준태", 0.99)
    assert value == "황 준태"
    assert validate(spec, value, token, 0.99)  # the regex sees the space: flagged, not repaired
    ident = FieldSpec(name="pid", region=(0.1, 0.1, 0.2, 0.2), normalize="no_spaces", validation={"regex": r"^\d{4}$"})
    assert parse_field(ident, "12 34", 0.99)[0] == "1234"  # stripping spaces is the field's explicit choice


def _reference(tmp_path, key: str, seed: int) -> tuple[str, str, dict[str, str]]:
    img, truth = make_page(LAYOUTS[key], np.random.default_rng(seed), strength=0.0)
    ref = tmp_path / f"{key}.png"
    Image.fromarray(img).save(ref)
    values = {name: f["text"] for name, f in truth["fields"].items()}
    path = tmp_path / f"{key}.values.json"
    path.write_text(json.dumps(values, ensure_ascii=False), encoding="utf-8")
    return str(ref), str(path), values


@pytest.mark.integration
def test_template_new_reads_its_reference_and_unseen_scans(tmp_path, capsys) -> None:
    from ocrpipe.templates.engine import TemplateEngine
    from ocrpipe.templates.evaluate import Score, score_page

    ref, values_path, values = _reference(tmp_path, "nct_v1", 4242)
    values = {("안압평균_R" if k == "r_iop_avg" else k): v for k, v in values.items()}  # a Korean field name
    (tmp_path / "v.json").write_text(json.dumps(values, ensure_ascii=False), encoding="utf-8")
    out = tmp_path / "tpl"
    rc = main(["template", "new", ref, "--values", str(tmp_path / "v.json"), "--name", "clinic_nct", "--out", str(out)])
    assert rc == 0, capsys.readouterr()
    tpl = load_template(out / "clinic_nct.yaml")
    assert (out / "clinic_nct.png").exists() and "안압평균_R" in {f.name for f in tpl.fields}
    assert {f.name: f.label.text for f in tpl.fields if f.label}["patient_id"] == "환자번호"

    engine = TemplateEngine([tpl])
    rng = np.random.default_rng(99)
    score = Score()
    for i in range(3):
        img, truth = make_page(LAYOUTS["nct_v1"], rng)
        truth = {**truth, "template": "clinic_nct",
                 "fields": {("안압평균_R" if k == "r_iop_avg" else k): v for k, v in truth["fields"].items()}}
        score_page(score, engine, img, truth, str(i))
    s = score.summary()
    assert s["template_accuracy"] == 1.0, s["errors"]
    assert s["silently_wrong"] == 0, s["errors"]
    assert s["field_accuracy"] >= 0.9, s["errors"]


@pytest.mark.integration
def test_template_new_names_every_value_it_cannot_locate(tmp_path, capsys) -> None:
    ref, values_path, values = _reference(tmp_path, "nct_v1", 4243)
    values["lot"] = "QX-778812"
    (tmp_path / "v.json").write_text(json.dumps(values), encoding="utf-8")
    rc = main(["template", "new", ref, "--values", str(tmp_path / "v.json"), "--name", "n", "--out", str(tmp_path)])
    assert rc == 1
    assert "lot: value not found on the reference" in capsys.readouterr().err


def test_template_new_refuses_values_that_are_not_an_object(tmp_path, capsys) -> None:
    (tmp_path / "v.json").write_text("[1, 2]", encoding="utf-8")
    (tmp_path / "r.png").write_bytes(b"")
    rc = main(["template", "new", str(tmp_path / "r.png"), "--values", str(tmp_path / "v.json"), "--name", "n",
               "--out", str(tmp_path)])
    assert rc != 0
    assert "expected a JSON object" in capsys.readouterr().err


def test_a_cell_without_its_own_header_follows_the_header_of_its_column() -> None:
    from ocrpipe.templates.author import adopt_columns

    header = {"text": "A", "region": [0.75, 0.5, 0.78, 0.52], "side": "above", "follow": "x"}
    row = {"text": "1", "region": [0.08, 0.3, 0.1, 0.32], "side": "left", "follow": "y"}
    fields = [{"name": "r1_a", "region": [0.7, 0.3, 0.9, 0.35], "label": dict(row)},
              {"name": "l1_a", "region": [0.72, 0.55, 0.9, 0.6], "label": dict(row), "column": header},
              {"name": "pd", "region": [0.3, 0.8, 0.5, 0.85], "label": dict(row)}]
    adopt_columns(fields)
    assert fields[0]["column"] == header and "column" not in fields[2]


def test_cells_that_follow_a_column_are_left_out_of_matching_right_of_the_row_labels() -> None:
    tpl = {"name": "t", "device": "d", "version": "1", "size": [200, 100], "reference": "-",
           "matching": {"ignore_fields": True},
           "fields": [{"name": "s", "type": "number", "region": [0.5, 0.4, 0.7, 0.6],
                       "label": {"text": "1", "region": [0.05, 0.45, 0.1, 0.55], "side": "left", "follow": "y"},
                       "column": {"text": "S", "region": [0.6, 0.2, 0.65, 0.3], "side": "above", "follow": "x"}}]}
    from ocrpipe.templates.schema import Template

    mask = Template.model_validate(tpl).match_mask()
    assert mask is not None
    # the row from a cell's width left of the cells (not past the row label) to the right edge
    assert mask[50, 60:].max() == 0 and mask[50, :58].min() == 255
    assert mask[25, 60:].max() == 0 and mask[5, :].min() == 255  # the header row; the title above stays


@pytest.mark.integration
def test_template_new_with_no_value_found_writes_nothing(tmp_path, capsys) -> None:
    ref, _, _ = _reference(tmp_path, "nct_v1", 4243)
    (tmp_path / "v.json").write_text(json.dumps({"lot": "QX-778812"}), encoding="utf-8")
    rc = main(["template", "new", ref, "--values", str(tmp_path / "v.json"), "--name", "n",
               "--out", str(tmp_path / "out")])
    assert rc != 0
    err = capsys.readouterr().err
    assert "none of the values was found" in err and "lot" in err
    assert not (tmp_path / "out").exists()  # no YAML that would not load left in a served folder


def test_values_printed_alike_are_given_out_left_to_right_along_their_row() -> None:
    """Two cells of one row printing the same value (``17``, ``17``), their boxes a pixel apart in height
    across a row bucket: the first field listed takes the left one."""
    from ocrpipe.templates.author import Span, reading_order

    right = Span("17", (520, 359, 548, 380), 100.0, (1,))
    left = Span("17", (380, 361, 408, 381), 100.0, (0,))
    below = Span("17", (100, 420, 128, 441), 100.0, (2,))
    assert [s.lines for s in reading_order([below, right, left])] == [(0,), (1,), (2,)]
