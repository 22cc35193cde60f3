"""Template drafts without a server: saving into the served folder (and the rollback when the folder's set
does not load), the name checks, the values checks, removal and expiry. The drafts here are made from a
built-in template's data and reference (no models are loaded: saving never reads a page)."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from ocrpipe.errors import ErrorCode
from ocrpipe.server.errors import ServiceError
from ocrpipe.server.scheduling.template_drafts import DRAFT_TTL_S, TemplateDrafts, check_name, check_values
from ocrpipe.server.scheduling.template_jobs import TemplateLibrary
from ocrpipe.templates.schema import BUILTIN_DIR


def _draft(drafts: TemplateDrafts, name: str) -> tuple[str, dict[str, Any]]:
    """A draft as :meth:`TemplateDrafts.create` leaves it, from ``ark_v1`` renamed ``name``."""
    data = yaml.safe_load((BUILTIN_DIR / "ark_v1.yaml").read_text(encoding="utf-8"))
    data["name"] = name
    draft_id = os.urandom(16).hex()
    folder = drafts.root / draft_id
    folder.mkdir(parents=True)
    shutil.copy(BUILTIN_DIR / data["reference"], folder / "reference.png")
    meta = {"id": draft_id, "created": time.time(), "values": {}, "missing": [], "dropped_labels": [],
            "template": data, "lines": []}
    (folder / "draft.json").write_text(json.dumps(meta), encoding="utf-8")
    return draft_id, data


def _code(exc: pytest.ExceptionInfo[ServiceError]) -> ErrorCode:
    return exc.value.code


@pytest.fixture
def drafts(tmp_path: Path) -> TemplateDrafts:
    (tmp_path / "served").mkdir()
    return TemplateDrafts(tmp_path / "drafts", TemplateLibrary(tmp_path / "served"))


def test_a_saved_draft_is_served_at_once_and_the_draft_is_gone(drafts: TemplateDrafts) -> None:
    draft_id, data = _draft(drafts, "clinic_ark")
    saved = drafts.save(draft_id, data)
    folder = drafts.library.folder
    assert folder is not None
    assert saved["source"] == str(folder / "clinic_ark.yaml") and not saved["replaced"]
    assert "clinic_ark" in [t.name for t in drafts.library.templates]
    written = yaml.safe_load((folder / "clinic_ark.yaml").read_text(encoding="utf-8"))
    assert written["reference"] == "clinic_ark.png" and (folder / "clinic_ark.png").is_file()
    with pytest.raises(ServiceError) as exc:
        drafts.get(draft_id)
    assert _code(exc) == ErrorCode.TEMPLATE_DRAFT_NOT_FOUND


def test_a_save_the_folder_cannot_load_is_rolled_back(drafts: TemplateDrafts) -> None:
    folder = drafts.library.folder
    assert folder is not None
    (folder / "broken.yaml").write_text("name: [unclosed\n", encoding="utf-8")
    draft_id, data = _draft(drafts, "clinic_ark")
    with pytest.raises(ServiceError) as exc:
        drafts.save(draft_id, data)
    assert _code(exc) == ErrorCode.INVALID_TEMPLATE and "broken.yaml" in exc.value.message
    assert sorted(p.name for p in folder.iterdir()) == ["broken.yaml"]  # nothing of the refused save is left
    assert "clinic_ark" not in [t.name for t in drafts.library.templates]
    assert drafts.get(draft_id)["id"] == draft_id  # the draft stays to be saved once the folder is fixed
    (folder / "broken.yaml").unlink()
    assert drafts.save(draft_id, data)["name"] == "clinic_ark"


def test_names_a_save_may_not_take(drafts: TemplateDrafts) -> None:
    folder = drafts.library.folder
    assert folder is not None
    draft_id, data = _draft(drafts, "ark_v1")
    with pytest.raises(ServiceError) as exc:
        drafts.save(draft_id, data)
    assert _code(exc) == ErrorCode.TEMPLATE_EXISTS and "built-in" in exc.value.message
    other = yaml.safe_load((BUILTIN_DIR / "ark_v1.yaml").read_text(encoding="utf-8"))
    (folder / "other_file.yaml").write_text(yaml.safe_dump({**other, "name": "taken"}), encoding="utf-8")
    shutil.copy(BUILTIN_DIR / "ark_v1.png", folder / "ark_v1.png")
    assert drafts.library.reload()
    with pytest.raises(ServiceError) as exc:
        drafts.save(draft_id, {**data, "name": "taken"})
    assert _code(exc) == ErrorCode.TEMPLATE_EXISTS and "other_file.yaml" in exc.value.message
    for bad in ("../up", "a/b", "", ".hidden", "x" * 65):
        with pytest.raises(ServiceError) as exc:
            check_name(bad)
        assert _code(exc) == ErrorCode.INVALID_TEMPLATE
    assert check_name("안과_양식-2.1") == "안과_양식-2.1"


def test_no_folder_no_save(tmp_path: Path) -> None:
    drafts = TemplateDrafts(tmp_path / "drafts", TemplateLibrary(None))
    draft_id, data = _draft(drafts, "clinic_ark")
    with pytest.raises(ServiceError) as exc:
        drafts.save(draft_id, data)
    assert _code(exc) == ErrorCode.NO_TEMPLATE_FOLDER and exc.value.http_status == 409


def test_an_edited_template_is_validated_against_its_draft(drafts: TemplateDrafts) -> None:
    draft_id, data = _draft(drafts, "clinic_ark")
    tpl = drafts.template(draft_id, {**data, "size": [1, 1], "reference": "/etc/passwd"})
    assert tuple(tpl.size) == tuple(data["size"]) and tpl.reference.endswith("reference.png")
    field, rest = data["fields"][0], data["fields"][1:]
    for broken, says in [({**data, "fields": []}, "fields"), ({**data, "min_score": 7}, "min_score"),
                         ({**data, "extra": 1}, "extra"),
                         ({**data, "fields": [{**field, "validation": {"regex": "(["}}, *rest]}, "does not compile"),
                         ({**data, "fields": [{**field, "lang": "zzz"}, *rest]}, "zzz.traineddata not found"),
                         ({**data, "fields": [{**field, "lang": "../../etc/x"}, *rest]}, "not a Tesseract language")]:
        with pytest.raises(ServiceError) as exc:
            drafts.template(draft_id, broken)
        assert _code(exc) == ErrorCode.INVALID_TEMPLATE and says in exc.value.message


def test_values_are_checked() -> None:
    assert check_values({"R_S": -2.25, "MSDS번호": "AA05999"}) == {"R_S": "-2.25", "MSDS번호": "AA05999"}
    for bad in ([], {}, {"1st": "x"}, {"a": ""}, {"a": None}, {"a": True}, {f"f{i}": "1" for i in range(201)}):
        with pytest.raises(ServiceError) as exc:
            check_values(bad)
        assert _code(exc) == ErrorCode.INVALID_ARGUMENT


def test_removal_keeps_a_reference_another_template_uses(drafts: TemplateDrafts) -> None:
    folder = drafts.library.folder
    assert folder is not None
    data = yaml.safe_load((BUILTIN_DIR / "ark_v1.yaml").read_text(encoding="utf-8"))
    shutil.copy(BUILTIN_DIR / "ark_v1.png", folder / "shared.png")
    for name in ("one", "two"):
        (folder / f"{name}.yaml").write_text(yaml.safe_dump({**data, "name": name, "reference": "shared.png"}),
                                             encoding="utf-8")
    assert drafts.library.reload()
    assert drafts.remove("one")["removed"]
    assert (folder / "shared.png").is_file() and not (folder / "one.yaml").exists()
    drafts.remove("two")
    assert sorted(p.name for p in folder.iterdir()) == []
    with pytest.raises(ServiceError) as exc:
        drafts.remove("ark_v1")
    assert _code(exc) == ErrorCode.INVALID_ARGUMENT


def test_drafts_older_than_a_day_are_removed(tmp_path: Path) -> None:
    library = TemplateLibrary(None)
    drafts = TemplateDrafts(tmp_path / "drafts", library)
    old, _ = _draft(drafts, "old_one")
    fresh, _ = _draft(drafts, "fresh_one")
    stale = time.time() - DRAFT_TTL_S - 60
    os.utime(drafts.root / old / "draft.json", (stale, stale))
    TemplateDrafts(tmp_path / "drafts", library)  # as at the next start-up
    assert not (drafts.root / old).exists() and (drafts.root / fresh).is_dir()


def test_a_reload_refuses_a_field_language_tesseract_does_not_have(drafts: TemplateDrafts) -> None:
    folder = drafts.library.folder
    assert folder is not None
    data = yaml.safe_load((BUILTIN_DIR / "ark_v1.yaml").read_text(encoding="utf-8"))
    data["fields"][0]["lang"] = "zzz"
    shutil.copy(BUILTIN_DIR / "ark_v1.png", folder / "ark_v1.png")
    (folder / "odd.yaml").write_text(yaml.safe_dump({**data, "name": "odd"}), encoding="utf-8")
    assert not drafts.library.reload()
    error = drafts.library.error or ""
    assert "odd.yaml" in error and "zzz.traineddata" in error
    assert "odd" not in [t.name for t in drafts.library.templates]
