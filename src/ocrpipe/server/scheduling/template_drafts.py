"""Template drafts: the web page's template editor, on the machinery of ``ocrpipe template new``.

A draft is a reference image (cut to its paper) plus the template proposed for it
(:func:`ocrpipe.templates.author.make`), kept in ``DATA_DIR/template-drafts/<id>/`` until saved or a day
old. The editor changes the template's data (fields moved, resized, renamed, retyped) and sends it back
whole: :meth:`TemplateDrafts.try_on` reads a page with it alone, :meth:`TemplateDrafts.save` writes it into
the served folder (``--templates``) and reloads the :class:`TemplateLibrary`, so it is in service at once;
a set the new file breaks is rolled back, never left refused.
"""

from __future__ import annotations

import json
import re
import shutil
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ocrpipe.errors import ErrorCode, OcrError
from ocrpipe.server.errors import ServiceError
from ocrpipe.server.scheduling.template_jobs import TemplateLibrary

if TYPE_CHECKING:
    from ocrpipe.document import Line
    from ocrpipe.templates.engine import TemplateEngine
    from ocrpipe.templates.schema import Template

DRAFT_TTL_S = 24 * 3600.0
"""How long an unsaved draft is kept."""
MAX_VALUES = 200
TEMPLATE_NAME = re.compile(r"^[^\W_][\w.-]{0,63}$")
"""A template name, also its file names: letters (any script), digits, ``_``, ``.`` and ``-``."""
_DRAFT_ID = re.compile(r"^[0-9a-f]{32}$")


def check_values(values: Any) -> dict[str, str]:
    """The editor's values (field name → value as printed), or ``invalid_argument`` saying what is wrong."""
    from ocrpipe.templates.schema import FIELD_NAME

    if not isinstance(values, dict) or not values:
        raise ServiceError(ErrorCode.INVALID_ARGUMENT, "values: expected a JSON object of field name -> printed value")
    if len(values) > MAX_VALUES:
        raise ServiceError(ErrorCode.INVALID_ARGUMENT, f"values: at most {MAX_VALUES} fields, got {len(values)}")
    out: dict[str, str] = {}
    for k, v in values.items():
        if not FIELD_NAME.match(str(k)):
            raise ServiceError(ErrorCode.INVALID_ARGUMENT, f"values: field name {k!r} must be letters (any script), "
                               "digits and '_', not starting with a digit")
        if not isinstance(v, str | int | float) or isinstance(v, bool) or not str(v).strip():
            raise ServiceError(ErrorCode.INVALID_ARGUMENT, f"values: {k!r} needs the value printed on the reference")
        out[str(k)] = str(v)
    return out


def check_name(name: str) -> str:
    """A template name fit for its file names, or ``invalid_template``."""
    if not TEMPLATE_NAME.match(name):
        raise ServiceError(ErrorCode.INVALID_TEMPLATE, f"template name {name!r}: 1-64 letters, digits, '_', '.' or "
                           "'-', starting with a letter or digit")
    return name


class TemplateDrafts:
    """The drafts of one service, on disk under ``root``; every method is blocking (call off the event loop)."""

    def __init__(self, root: Path, library: TemplateLibrary) -> None:
        self.root = root
        self.library = library
        self._lock = threading.Lock()
        self._expire()  # a reference may show a patient's data: none outlives its day, restarts included

    # ---- drafts ------------------------------------------------------------------------------------

    def create(self, image: np.ndarray, values: dict[str, str], lines: list[Line], *, name: str,
               device: str | None = None, version: str = "1") -> dict[str, Any]:
        """A new draft for the reference ``image`` (already cut to its paper) whose pipeline reading is
        ``lines``; the template is read back on the reference at once (``check``)."""
        from PIL import Image

        from ocrpipe.templates.author import builtin_clash, make

        check_name(name)
        clash = builtin_clash(name)
        if clash:
            raise ServiceError(ErrorCode.TEMPLATE_EXISTS, f"{name!r} is a built-in template ({clash})")
        self._expire()
        proposal, dropped = make(image, values, lines, self.library.engine().recognizer, name=name,
                                 device=device or None, version=version or "1")
        if not proposal.data["fields"]:
            raise ServiceError(ErrorCode.INVALID_ARGUMENT, "none of the values was found on the reference "
                               f"({', '.join(proposal.missing)}): enter them as printed there")
        draft_id = uuid.uuid4().hex
        folder = self.root / draft_id
        folder.mkdir(parents=True)
        Image.fromarray(image).save(folder / "reference.png")
        meta = {"id": draft_id, "created": time.time(), "values": values, "missing": list(proposal.missing),
                "dropped_labels": sorted(set(dropped)), "template": proposal.data,
                "lines": [{"text": ln.text, "box": [list(map(float, p)) for p in ln.box]} for ln in lines]}
        (folder / "draft.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
        return {**self._view(meta), "check": self.try_on(draft_id, proposal.data, None)}

    def get(self, draft_id: str) -> dict[str, Any]:
        """The draft as the editor shows it (template, values, missing values, dropped labels, lines)."""
        return self._view(self._meta(draft_id))

    def discard(self, draft_id: str) -> None:
        """Remove a draft and its reference image."""
        self._meta(draft_id)
        shutil.rmtree(self.root / draft_id, ignore_errors=True)

    def reference_path(self, draft_id: str) -> Path:
        """The draft's reference image (PNG)."""
        self._meta(draft_id)
        return self.root / draft_id / "reference.png"

    def _meta(self, draft_id: str) -> dict[str, Any]:
        path = self.root / draft_id / "draft.json"
        if not _DRAFT_ID.match(draft_id) or not path.is_file():
            raise ServiceError(ErrorCode.TEMPLATE_DRAFT_NOT_FOUND,
                               f"no template draft {draft_id!r} (unknown, saved or older than a day)")
        meta: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return meta

    @staticmethod
    def _view(meta: dict[str, Any]) -> dict[str, Any]:
        w, h = meta["template"]["size"]
        return {"id": meta["id"], "template": meta["template"], "values": meta["values"], "missing": meta["missing"],
                "dropped_labels": meta["dropped_labels"], "lines": meta["lines"], "width": w, "height": h,
                "reference_url": f"/v1/admin/templates/drafts/{meta['id']}/reference"}

    def _expire(self) -> None:
        if not self.root.is_dir():
            return
        for folder in self.root.iterdir():
            meta = folder / "draft.json"
            if folder.is_dir() and (not meta.is_file() or time.time() - meta.stat().st_mtime > DRAFT_TTL_S):
                shutil.rmtree(folder, ignore_errors=True)

    # ---- the edited template -----------------------------------------------------------------------

    def template(self, draft_id: str, data: Any) -> Template:
        """The editor's template data validated against the draft (its size and reference are the draft's)."""
        from ocrpipe.templates.schema import Template

        meta = self._meta(draft_id)
        if not isinstance(data, dict):
            raise ServiceError(ErrorCode.INVALID_TEMPLATE, "template: expected a JSON object")
        check_name(str(data.get("name", "")))
        data = {**data, "size": meta["template"]["size"], "reference": str(self.root / draft_id / "reference.png")}
        data.pop("source", None)
        try:
            tpl = Template.model_validate(data)
        except ValueError as exc:
            raise ServiceError(ErrorCode.INVALID_TEMPLATE, f"template: {_first_errors(exc)}") from exc
        for spec in tpl.fields:
            _check_lang(spec.name, spec.lang)
        return tpl

    def _engine(self, tpl: Template) -> TemplateEngine:
        """An engine with only ``tpl``, on the served engine's readers (no models loaded again)."""
        from ocrpipe.templates.engine import TemplateEngine

        base = self.library.engine()
        return TemplateEngine([tpl], recognizer=base.recognizer, reader=base.reader, arbiter=base.arbiter, threads=1)

    def try_on(self, draft_id: str, data: Any, image: np.ndarray | None,
               values: dict[str, str] | None = None) -> dict[str, Any]:
        """``image`` (None: the draft's reference) read with the edited template alone: whether it matched
        (score, or why not), and every field's value, validity, issues and box. On the reference each field
        printed in ``values`` (default: the draft's; the editor sends them renamed with their fields) is
        compared with its value too (``problems``)."""
        from ocrpipe.templates.author import canonical_value, same

        tpl = self.template(draft_id, data)
        on_reference = image is None
        page = self._reference(draft_id) if image is None else image
        result, match = self._engine(tpl).run_image(page)
        out: dict[str, Any] = {"matched": result is not None, "reason": match.reason,
                               "candidates": [c.to_dict() for c in match.candidates],
                               "width": int(page.shape[1]), "height": int(page.shape[0])}
        if result is not None:
            out.update(result.to_dict())
        if on_reference:
            if values is None:
                values = self._meta(draft_id)["values"]
            problems = [] if result is not None else ["the reference does not match its own template"]
            for f in (result.fields if result is not None else ()):
                if f.name not in values:
                    continue
                spec = next(s for s in data["fields"] if s.get("name") == f.name)
                try:
                    want = canonical_value(spec, values[f.name])
                except (ValueError, KeyError):
                    want = values[f.name]
                if not same(want, f.value):
                    problems.append(f"{f.name}: read {f.value!r} (raw {f.raw!r}), expected {want!r}")
                elif not f.valid:
                    problems.append(f"{f.name}: read {f.value!r} but flagged ({'; '.join(f.issues)})")
            out["problems"] = problems
        return out

    # ---- saving ------------------------------------------------------------------------------------

    def save(self, draft_id: str, data: Any, *, replace: bool = False) -> dict[str, Any]:
        """Write the edited template and its reference into the served folder and reload it; the saved
        template's listing entry. The draft is removed once it is in service."""
        from ocrpipe.templates.author import builtin_clash

        folder = self.library.folder
        if folder is None:
            raise ServiceError(ErrorCode.NO_TEMPLATE_FOLDER, "this server has no template folder to save into; "
                               "start it with --templates DIR (or OCRPIPE_TEMPLATES)")
        tpl = self.template(draft_id, data)
        name = tpl.name
        clash = builtin_clash(name)
        if clash:
            raise ServiceError(ErrorCode.TEMPLATE_EXISTS, f"{name!r} is a built-in template ({clash})")
        yaml_path, png_path = folder / f"{name}.yaml", folder / f"{name}.png"
        other = next((t.source for t in self.library.templates
                      if t.name == name and t.source and Path(t.source) != yaml_path), None)
        if other:
            raise ServiceError(ErrorCode.TEMPLATE_EXISTS, f"template {name!r} is already served from {other}")
        with self._lock:
            if yaml_path.exists() and not replace:
                raise ServiceError(ErrorCode.TEMPLATE_EXISTS,
                                   f"{yaml_path} exists; save with replace to overwrite it")
            backup = {p: p.read_bytes() for p in (yaml_path, png_path) if p.is_file()}
            self._write(draft_id, data, folder, name)
            if not self.library.reload():
                reason = self.library.error or "the template set did not load"
                self._restore(backup, (yaml_path, png_path))
                self.library.reload()
                raise ServiceError(ErrorCode.INVALID_TEMPLATE, f"not saved: {reason}")
        shutil.rmtree(self.root / draft_id, ignore_errors=True)
        entry = next(t for t in self.library.listing()["templates"] if t["name"] == name)
        return {**entry, "replaced": bool(backup)}

    def remove(self, name: str) -> dict[str, Any]:
        """Take a user template out of service: its YAML (and its reference, when no other file names it)
        leave the folder and the set is reloaded. Built-ins cannot be removed."""
        from ocrpipe.templates.author import builtin_clash

        served = self.library.templates  # one snapshot: the folder watch may swap the set meanwhile
        tpl = next((t for t in served if t.name == name), None)
        if tpl is None or tpl.source is None:
            raise ServiceError(ErrorCode.NOT_FOUND, f"no template {name!r} in service")
        if builtin_clash(name):
            raise ServiceError(ErrorCode.INVALID_ARGUMENT, f"{name!r} is a built-in template; it cannot be removed")
        source, reference = Path(tpl.source).resolve(), _reference_file(tpl)
        shared = any(t.source != tpl.source and _reference_file(t) == reference for t in served)
        with self._lock:
            source.unlink(missing_ok=True)
            if not shared and reference is not None and reference.parent == source.parent:
                reference.unlink(missing_ok=True)
            self.library.reload()
        return {"name": name, "source": str(source), "removed": True, "reload_error": self.library.error}

    def _reference(self, draft_id: str) -> np.ndarray:
        from PIL import Image

        with Image.open(self.root / draft_id / "reference.png") as img:
            return np.asarray(img.convert("RGB"))

    def _write(self, draft_id: str, data: dict[str, Any], folder: Path, name: str) -> None:
        from ocrpipe.templates.author import Proposal, write

        image = self._reference(draft_id)
        meta = self._meta(draft_id)
        data = {k: v for k, v in data.items() if k != "source"}
        data.update(size=meta["template"]["size"], reference=f"{name}.png")
        try:
            write(Proposal(data, (), {}), image, folder)
        except OcrError as exc:
            raise ServiceError(ErrorCode.INVALID_TEMPLATE, exc.message) from exc

    @staticmethod
    def _restore(backup: dict[Path, bytes], paths: tuple[Path, ...]) -> None:
        for p in paths:
            if p in backup:
                p.write_bytes(backup[p])
            else:
                p.unlink(missing_ok=True)


_LANG = re.compile(r"^[A-Za-z_]{2,16}(\+[A-Za-z_]{2,16}){0,3}$")


def _check_lang(field: str, lang: str) -> None:
    """A field's Tesseract language(s) must be installed: a typo is the editor's error, not the server's."""
    from ocrpipe.engine.recognize.tesseract import find_tessdata
    from ocrpipe.errors import EngineError

    if not _LANG.match(lang):
        raise ServiceError(ErrorCode.INVALID_TEMPLATE, f"field {field!r}: lang {lang!r} is not a Tesseract "
                           "language name such as 'kor' or 'kor+eng'")
    try:
        find_tessdata(lang)
    except EngineError as exc:
        raise ServiceError(ErrorCode.INVALID_TEMPLATE, f"field {field!r}: lang {lang!r}: {exc.message}") from exc


def _reference_file(tpl: Template) -> Path | None:
    """Where a loaded template's reference image is (None: a template not loaded from a file)."""
    if tpl.source is None:
        return None
    path = Path(tpl.reference)
    return (path if path.is_absolute() else Path(tpl.source).parent / path).resolve()


def _first_errors(exc: ValueError, n: int = 3) -> str:
    """A pydantic error's first ``n`` problems on one line (location: message)."""
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return str(exc)
    parts = [f"{'.'.join(map(str, e.get('loc', ())))}: {e.get('msg', '')}" for e in errors()[:n]]
    return "; ".join(parts) or str(exc)

