"""The template file format (YAML, validated with pydantic).

A template describes one fixed layout (device, version, page)::

    name: ark_v1
    device: ARK-530
    version: "1"
    page: 1
    size: [640, 960]              # reference pixel size; regions below are fractions of it
    reference: ark_v1.png         # the layout's static parts, rendered or scanned clean (beside the YAML)
    min_score: 0.6                # minimum registration correlation to accept the layout
    rules:                        # pixel rules checked on the registered page
      - {region: [0.05, 0.03, 0.95, 0.08], mean: [0, 110]}
    anchors:                      # optional local re-alignment: a reference patch searched near its place
      - {name: krt_band, region: [0.03, 0.48, 0.2, 0.53], search: 0.02}
    fields:
      - name: r_sph
        region: [0.2, 0.33, 0.45, 0.38]
        anchor: krt_band          # optional: the region moves with the anchor's residual offset
        type: number              # number | text | date | enum
        unit: D
        whitelist: "+-.0123456789"
        validation: {regex: '^([+-]\\d{1,2}\\.\\d{2}|0\\.00)$', range: [-25, 25], step: 0.25}
    checks:                       # cross-field consistency; a failed check invalidates its fields
      - {kind: spherical_equivalent, fields: [r_sph, r_cyl, r_se], tolerance: 0.006}
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ocrpipe.errors import ErrorCode, InputError
from ocrpipe.templates.register import Pyramid

Region = tuple[float, float, float, float]


def _check_region(v: Region) -> Region:
    x0, y0, x1, y1 = v
    if not (0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1):
        raise ValueError(f"region {list(v)} must be [x0, y0, x1, y1] fractions with x0 < x1, y0 < y1")
    return v


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PixelRule(_Strict):
    """Mean grey level (0–255) and/or dark-pixel fraction inside a region must lie in the given ranges."""

    region: Region
    mean: tuple[float, float] | None = None
    dark_fraction: tuple[float, float] | None = None

    _region = field_validator("region")(_check_region)


class Anchor(_Strict):
    """A patch of the reference looked up again near its place on the registered page."""

    name: str
    region: Region
    search: float = Field(0.02, gt=0, le=0.2)
    min_score: float = Field(0.5, ge=-1, le=1)

    _region = field_validator("region")(_check_region)


class Preprocess(_Strict):
    """How a field crop is prepared for the Tesseract reading (the neural readers take the crop as cut).

    Binarising (Otsu) is the default: on generated printouts with scan noise and JPEG it lifts Tesseract's
    field accuracy from about 88 % to 95 % (``benchmarks/templates.py`` reports the readers' agreement).
    """

    scale: float = Field(1.5, gt=0.2, le=6)
    binarize: bool = True
    invert: bool = False
    pad: int = Field(12, ge=0, le=64)


class Validation(_Strict):
    """Format and value checks of one field (all given checks must pass)."""

    regex: str | None = None
    range: tuple[float, float] | None = None
    step: float | None = Field(None, gt=0)
    allowed: list[Any] | None = None

    @field_validator("regex")
    @classmethod
    def _compiles(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                re.compile(v)
            except re.error as exc:  # not a ValueError: pydantic would let it through as a crash
                raise ValueError(f"regex {v!r} does not compile: {exc}") from exc
        return v


FIELD_NAME = re.compile(r"^[^\W\d]\w*$")
"""A field name: letters of any script, digits and ``_``, not starting with a digit (``r_sph``, ``MSDS번호``)."""


class Label(_Strict):
    """The printed label a field is placed against, found again on every page by reading its row.

    ``side: left`` — the label is left of the value on its row ("right of ``PD``"): the field follows the
    label vertically, and horizontally too unless a ``column`` header is given. ``side: above`` — a column
    header ("under ``S``"): the field follows it horizontally. When the label is not found on a page the
    field is flagged, never guessed.
    """

    text: str = Field(min_length=1)
    region: Region
    """Where the label is printed on the reference."""
    side: Literal["left", "above"] = "left"
    follow: Literal["xy", "x", "y"] = "xy"
    """Which of the label's offsets the field takes: ``y`` for a row label far left of a table's cells
    (their columns move on their own), ``x`` for a column header, ``xy`` for a label right beside it."""
    search: float = Field(0.25, gt=0, le=1)
    """How far (fraction of the page width) from its reference place the label is looked for."""

    _region = field_validator("region")(_check_region)


class FieldSpec(_Strict):
    """One field: where it is, what it holds, how to read and validate it."""

    name: str
    region: Region
    anchor: str | None = None
    label: Label | None = None
    """Row label (or, with ``side: above``, column header) the region moves with (see :class:`Label`)."""
    column: Label | None = None
    """A column header the region follows horizontally, in addition to a row ``label``."""
    normalize: Literal["collapse", "no_spaces", "none"] = "collapse"
    """How a text field's reading is normalised before validation: ``collapse`` (NFKC, runs of spaces as
    one), ``no_spaces`` (every space removed: for IDs a reader may split), ``none`` (NFKC only)."""
    type: Literal["number", "text", "date", "enum"] = "text"
    unit: str | None = None
    format: str | None = None
    """``strptime`` format of a date field (value is returned as ISO ``YYYY-MM-DD``)."""
    whitelist: str | None = None
    lang: str = "eng"
    preprocess: Preprocess = Preprocess()
    validation: Validation = Validation()
    min_confidence: float = Field(0.6, ge=0, le=1)

    _region = field_validator("region")(_check_region)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not FIELD_NAME.match(v):
            raise ValueError(f"field name {v!r} must be letters (any script), digits and '_', not starting "
                             "with a digit")
        return v

    @model_validator(mode="after")
    def _date_needs_format(self) -> FieldSpec:
        if self.type == "date" and not self.format:
            raise ValueError(f"date field {self.name!r} needs a 'format' (strptime)")
        if self.type == "enum" and not (self.validation.allowed):
            raise ValueError(f"enum field {self.name!r} needs validation.allowed")
        return self


class Check(_Strict):
    """A cross-field consistency check.

    kinds: ``reciprocal`` (a·b ≈ constant, e.g. corneal radius mm × power D ≈ 337.5), ``mean`` (last field ≈
    mean of the others), ``spherical_equivalent`` (se ≈ sph + cyl/2), ``logmar`` (b ≈ −log10 a),
    ``order`` (values non-decreasing in the listed order).
    """

    kind: Literal["reciprocal", "mean", "spherical_equivalent", "logmar", "order"]
    fields: list[str] = Field(min_length=2)
    constant: float | None = None
    tolerance: float = Field(0.01, ge=0)


class Matching(_Strict):
    """Which part of the reference the page is registered on.

    ``region``: only this block (e.g. a form's header) is compared, so body text that changes from page
    to page does not pull the score down. ``ignore_fields``: the field regions are left out of the
    comparison (a reference that still shows its example values, as ``template new`` writes it)."""

    region: Region | None = None
    ignore_fields: bool = False

    @field_validator("region")
    @classmethod
    def _region_ok(cls, v: Region | None) -> Region | None:
        return None if v is None else _check_region(v)


class Template(_Strict):
    """A fixed-layout template (see the module docstring for the YAML form)."""

    name: str
    device: str
    version: str
    page: int = 1
    description: str = ""
    size: tuple[int, int]
    reference: str
    min_score: float = Field(0.6, ge=-1, le=1)
    matching: Matching = Matching()
    rules: list[PixelRule] = []
    anchors: list[Anchor] = []
    fields: list[FieldSpec] = Field(min_length=1)
    checks: list[Check] = []
    source: str | None = Field(None, exclude=True)
    """The YAML path the template was loaded from (set by :func:`load_template`)."""

    @model_validator(mode="after")
    def _names_resolve(self) -> Template:
        names = [f.name for f in self.fields]
        if len(set(names)) != len(names):
            raise ValueError("field names must be unique")
        anchors = {a.name for a in self.anchors}
        for f in self.fields:
            if f.anchor and f.anchor not in anchors:
                raise ValueError(f"field {f.name!r} uses unknown anchor {f.anchor!r}")
        for c in self.checks:
            missing = set(c.fields) - set(names)
            if missing:
                raise ValueError(f"check {c.kind} names unknown fields {sorted(missing)}")
            if c.kind == "reciprocal" and c.constant is None:
                raise ValueError("a reciprocal check needs 'constant'")
        return self

    @cached_property
    def reference_image(self) -> np.ndarray:
        """The reference rendering, grey uint8, resized to ``size`` if needed."""
        path = Path(self.reference)
        if not path.is_absolute() and self.source:
            path = Path(self.source).parent / path
        img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if img is None:
            raise InputError(ErrorCode.FILE_NOT_FOUND, f"template {self.name}: reference image {path} not readable",
                             stage=None)
        if (img.shape[1], img.shape[0]) != tuple(self.size):
            img = cv2.resize(img, tuple(self.size), interpolation=cv2.INTER_AREA)
        return img

    @cached_property
    def reference_pyramid(self) -> Pyramid:
        """The reference's registration pyramid, built once per template and reused for every page."""
        return Pyramid(self.reference_image, self.match_mask())

    def match_mask(self) -> np.ndarray | None:
        """The registration mask of :class:`Matching` (255: compared), None when the whole page is."""
        m = self.matching
        if m.region is None and not m.ignore_fields:
            return None
        w, h = self.size
        mask = np.full((h, w), 255, np.uint8)
        if m.region is not None:
            x0, y0, x1, y1 = self.pixel_box(m.region)
            mask[:] = 0
            mask[y0:y1, x0:x1] = 255
        if m.ignore_fields:  # the values, and the column headers that move with them
            headers = [lab for f in self.fields for lab in (f.label, f.column)
                       if lab is not None and lab.side == "above"]
            for region in [f.region for f in self.fields] + [lab.region for lab in headers]:
                x0, y0, x1, y1 = self.pixel_box(region)
                mask[y0:y1, x0:x1] = 0
            for x0, y0, y1 in self._floating_rows():
                mask[y0:y1, x0:] = 0
        return mask

    def _floating_rows(self) -> list[tuple[int, int, int]]:
        """(x0, y0, y1) of every row of cells that follow a column header sideways, and of the header:
        the columns may lie anywhere right of the row labels on a page (a wider font prints them further
        right), so that whole band is left out of matching, from the row labels' right edge."""
        floating = [f for f in self.fields for lab in (f.label, f.column)
                    if lab is not None and lab.side == "above" and "x" in lab.follow]
        if not floating:
            return []
        row_ends = [self.pixel_box(lab.region)[2] for f in floating for lab in (f.label, f.column)
                    if lab is not None and lab.side == "left"]
        cells = [self.pixel_box(f.region) for f in floating]
        x0 = min(b[0] for b in cells)
        x0 = max(max(row_ends, default=0) + 2, x0 - max(b[2] - b[0] for b in cells))
        out = [(x0, b[1], b[3]) for b in cells]
        for f in floating:
            for lab in (f.label, f.column):
                if lab is not None and lab.side == "above":
                    b = self.pixel_box(lab.region)
                    out.append((x0, b[1] - (b[3] - b[1]) // 2, b[3] + (b[3] - b[1]) // 2))
        return out

    def pixel_box(self, region: Region) -> tuple[int, int, int, int]:
        """A fractional region in reference pixels (x0, y0, x1, y1)."""
        w, h = self.size
        return (int(round(region[0] * w)), int(round(region[1] * h)), int(round(region[2] * w)),
                int(round(region[3] * h)))


def load_template(path: str | Path) -> Template:
    """Read and validate one template YAML; errors name the file and the offending key."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InputError(ErrorCode.FILE_NOT_FOUND, f"template {path} not found", stage=None) from exc
    except yaml.YAMLError as exc:
        raise InputError(ErrorCode.INVALID_ARGUMENT, f"template {path}: invalid YAML: {exc}", stage=None) from exc
    if not isinstance(data, dict):
        raise InputError(ErrorCode.INVALID_ARGUMENT, f"template {path}: expected a mapping at top level", stage=None)
    try:
        return Template.model_validate({**data, "source": str(path)})
    except ValueError as exc:
        raise InputError(ErrorCode.INVALID_ARGUMENT, f"template {path}: {exc}", stage=None) from exc


BUILTIN_DIR = Path(__file__).resolve().parent / "builtin"


def builtin_templates() -> list[Template]:
    """The templates shipped with ocrpipe (one YAML + reference PNG per layout)."""
    return [load_template(p) for p in sorted(BUILTIN_DIR.glob("*.yaml"))]


def load_templates(paths: Sequence[str | Path] | None = None) -> list[Template]:
    """Templates from files/folders (every ``*.yaml`` inside), or the built-in ones when ``paths`` is empty."""
    if not paths:
        return builtin_templates()
    out: list[Template] = []
    for p in map(Path, paths):
        files = sorted(p.glob("*.yaml")) + sorted(p.glob("*.yml")) if p.is_dir() else [p]
        out.extend(load_template(f) for f in files)
    return out


def template_set(paths: Sequence[str | Path] | None = None) -> list[Template]:
    """The built-in templates plus every template in ``paths`` (files or folders of ``*.yaml``/``*.yml``).

    A user template never replaces a built-in silently: two templates with one name are an error that
    names both files."""
    out = builtin_templates() + (load_templates(paths) if paths else [])
    seen: dict[str, Template] = {}
    for t in out:
        if t.name in seen:
            raise InputError(ErrorCode.INVALID_ARGUMENT, f"template name {t.name!r} is used twice: by "
                             f"{seen[t.name].source} and by {t.source}", stage=None)
        seen[t.name] = t
    return out
