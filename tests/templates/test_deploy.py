"""User templates beside the built-ins: ``--templates`` adds, a duplicate name is refused naming both files,
``list`` shows what is loaded, ``check`` and ``match`` say why a page is refused, scanner rotations."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from ocrpipe.cli import main
from ocrpipe.errors import InputError
from ocrpipe.synth.printouts import LAYOUTS, make_page
from ocrpipe.templates.schema import BUILTIN_DIR, template_set


def _user_copy(folder: Path, builtin: str, name: str) -> Path:
    """A user template: a built-in's YAML and reference under another name."""
    folder.mkdir(parents=True, exist_ok=True)
    data = yaml.safe_load((BUILTIN_DIR / f"{builtin}.yaml").read_text(encoding="utf-8"))
    data.update(name=name, device=f"{data['device']}-clinic", reference=f"{name}.png")
    shutil.copy(BUILTIN_DIR / f"{builtin}.png", folder / f"{name}.png")
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def test_user_templates_are_added_to_the_builtins(tmp_path) -> None:
    _user_copy(tmp_path / "t", "nct_v1", "clinic_nct")
    names = [t.name for t in template_set([tmp_path / "t"])]
    assert "clinic_nct" in names and {"ark_v1", "ark_v2", "nct_v1", "va_v1"} <= set(names)


def test_a_duplicate_name_is_refused_naming_both_files(tmp_path, capsys) -> None:
    path = _user_copy(tmp_path / "t", "nct_v1", "ark_v1")
    with pytest.raises(InputError) as err:
        template_set([tmp_path / "t"])
    assert str(path) in err.value.message and str(BUILTIN_DIR / "ark_v1.yaml") in err.value.message
    assert main(["template", "list", "--templates", str(tmp_path / "t")]) != 0
    assert "used twice" in capsys.readouterr().err


def test_list_shows_name_device_version_and_source(tmp_path, capsys) -> None:
    path = _user_copy(tmp_path / "t", "nct_v1", "clinic_nct")
    assert main(["template", "list", "--templates", str(tmp_path / "t")]) == 0
    rows = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert ["clinic_nct", "NT-510-clinic", "v1", "p1", str(path)] in rows
    assert any(r[0] == "ark_v1" for r in rows)


def test_the_option_does_not_swallow_images() -> None:
    from ocrpipe.cli import parse_args

    args = parse_args(["template", "run", "a.png", "--templates", "DIR", "b.png", "--templates", "D2", "c.png"])
    assert args.images == ["a.png", "b.png", "c.png"] and args.templates == ["DIR", "D2"]
    with pytest.raises(SystemExit):
        parse_args(["template", "list", "stray"])


@pytest.mark.integration
def test_run_reads_with_a_user_template_and_check_says_why_a_page_is_refused(tmp_path, capsys) -> None:
    _user_copy(tmp_path / "t", "nct_v1", "clinic_nct")
    img, _ = make_page(LAYOUTS["va_v1"], np.random.default_rng(5))
    Image.fromarray(img).save(tmp_path / "va.png")
    rc = main(["template", "check", "clinic_nct", str(tmp_path / "va.png"), "--templates", str(tmp_path / "t"),
               "--out", str(tmp_path / "d.png")])
    out = capsys.readouterr().out
    assert rc == 1 and "REFUSED: " in out and ("min_score 0.6" in out or "no registration" in out)
    assert "score -1.000" not in out or "no registration" in out


@pytest.mark.integration
def test_a_page_scanned_upside_down_or_sideways_is_matched() -> None:
    from ocrpipe.templates.engine import TemplateEngine

    engine = TemplateEngine([t for t in template_set() if t.name == "nct_v1"])
    img, truth = make_page(LAYOUTS["nct_v1"], np.random.default_rng(21))
    for k in (1, 2):
        result, match = engine.run_image(np.ascontiguousarray(np.rot90(img, k)))
        assert result is not None, match.reason
        got = {f.name: f.value for f in result.fields}
        right = sum(got[n] == t["value"] for n, t in truth["fields"].items())
        assert right >= len(truth["fields"]) - 1
