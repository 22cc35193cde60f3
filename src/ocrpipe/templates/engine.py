"""Template mode: match the layout from pixels, register, cut field regions, read, validate.

No text detection runs here. Matching registers the page against every template's reference rendering
(ECC at ¼ resolution, a few milliseconds each), keeps the templates whose correlation reaches their
``min_score`` and whose pixel rules hold on the registered page, and picks the best; the winner is then
registered again at ½ resolution. Pages no template accepts go to the general pipeline (:meth:`process`).
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import cv2
import numpy as np

from ocrpipe.recognition.base import Recognizer
from ocrpipe.templates.fields import FieldResult, apply_checks, enum_similarity, parse_field, validate
from ocrpipe.templates.reader import FieldReader, prepare
from ocrpipe.templates.register import Registration, register, tight_crop, to_gray, warp_to_reference
from ocrpipe.templates.schema import Anchor, FieldSpec, PixelRule, Template, load_templates
from ocrpipe.types import RecResult

DEFAULT_RECOGNIZER = "ppocrv4_rec_ch"
"""First reader of Latin/digit fields (PP-OCRv4 recogniser from the model registry)."""
MAX_ANGLE = 10.0
SCALE_RANGE = (0.25, 5.0)


@dataclass(frozen=True)
class Candidate:
    """How one template fared against a page."""

    name: str
    score: float
    rules_ok: bool
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"template": self.name, "score": round(self.score, 4), "rules_ok": self.rules_ok,
                "reason": self.reason}


@dataclass(frozen=True)
class Match:
    """The chosen template, its registration and every candidate considered."""

    template: Template | None
    registration: Registration | None
    candidates: tuple[Candidate, ...]

    @property
    def reason(self) -> str:
        """Why no template was chosen (empty when one was)."""
        if self.template is not None:
            return ""
        best = max(self.candidates, key=lambda c: c.score, default=None)
        if best is None:
            return "no templates loaded"
        return f"no template matched; best {best.name}: {best.reason or f'score {best.score:.3f}'}"


@dataclass(frozen=True)
class TemplateResult:
    """Fields read from one page with one template."""

    template: str
    device: str
    version: str
    page: int
    score: float
    fields: tuple[FieldResult, ...]
    angle: float = 0.0
    scale: float = 1.0
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def valid(self) -> bool:
        """True when every field is valid."""
        return all(f.valid for f in self.fields)

    def field(self, name: str) -> FieldResult:
        """The result of one field by name."""
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {"mode": "template", "template": self.template, "device": self.device, "version": self.version,
                "page": self.page, "score": round(self.score, 4), "angle": round(self.angle, 3),
                "scale": round(self.scale, 4), "valid": self.valid, "fields": [f.to_dict() for f in self.fields],
                "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()}}


def rule_holds(rule: PixelRule, gray: np.ndarray) -> tuple[bool, float]:
    """Whether a pixel rule holds on a registered grey page; also returns the region's mean."""
    h, w = gray.shape
    x0, y0, x1, y1 = rule.region
    patch = gray[int(y0 * h):max(int(y1 * h), int(y0 * h) + 1), int(x0 * w):max(int(x1 * w), int(x0 * w) + 1)]
    mean = float(patch.mean())
    ok = True
    if rule.mean is not None:
        ok = rule.mean[0] <= mean <= rule.mean[1]
    if rule.dark_fraction is not None:
        frac = float((patch < 128).mean())
        ok = ok and rule.dark_fraction[0] <= frac <= rule.dark_fraction[1]
    return ok, mean


def anchor_offset(anchor: Anchor, tpl: Template, warped_gray: np.ndarray) -> tuple[int, int]:
    """Residual (dx, dy) of an anchor patch on the registered page, (0, 0) when it is not found."""
    x0, y0, x1, y1 = tpl.pixel_box(anchor.region)
    w, h = tpl.size
    mx, my = int(anchor.search * w), int(anchor.search * h)
    sx0, sy0 = max(0, x0 - mx), max(0, y0 - my)
    window = warped_gray[sy0:min(h, y1 + my), sx0:min(w, x1 + mx)]
    patch = tpl.reference_image[y0:y1, x0:x1]
    if window.shape[0] < patch.shape[0] or window.shape[1] < patch.shape[1] or patch.std() < 1:
        return 0, 0
    res = cv2.matchTemplate(window, patch, cv2.TM_CCOEFF_NORMED)
    _, best, _, loc = cv2.minMaxLoc(res)
    if best < anchor.min_score:
        return 0, 0
    return loc[0] + sx0 - x0, loc[1] + sy0 - y0


class TemplateEngine:
    """Matches pages against templates and extracts validated fields; safe to share between threads."""

    def __init__(self, templates: list[Template] | None = None, *, recognizer: Recognizer | None = None,
                 reader: FieldReader | None = None, threads: int = 1, double_read: bool = True) -> None:
        from ocrpipe.recognition import load_recognizer

        self.templates = list(templates) if templates is not None else load_templates()
        self.recognizer = recognizer or load_recognizer(DEFAULT_RECOGNIZER)
        self.reader = reader or FieldReader()
        self.double_read = double_read
        self.threads = max(1, threads)
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="template") if self.threads > 1 else None
        for t in self.templates:
            _ = t.reference_image  # load once, before threads share the template

    _default: TemplateEngine | None = None
    _lock = threading.Lock()

    @classmethod
    def default(cls) -> TemplateEngine:
        """The shared engine with the built-in templates."""
        with cls._lock:
            if cls._default is None:
                cls._default = cls()
            return cls._default

    # ---- matching ------------------------------------------------------------------------------

    def _candidate(self, tpl: Template, gray: np.ndarray) -> tuple[Candidate, Registration]:
        reg = register(tpl.reference_image, gray, levels=(0.125, 0.25))
        if reg.score < tpl.min_score:
            return Candidate(tpl.name, reg.score, False, f"score {reg.score:.3f} < {tpl.min_score}"), reg
        if not (SCALE_RANGE[0] <= reg.scale <= SCALE_RANGE[1]) or abs(reg.angle) > MAX_ANGLE:
            return Candidate(tpl.name, reg.score, False, f"implausible warp (scale {reg.scale:.2f}, "
                                                         f"angle {reg.angle:.1f}°)"), reg
        warped = warp_to_reference(gray, reg, tpl.size)
        for i, rule in enumerate(tpl.rules):
            ok, mean = rule_holds(rule, warped)
            if not ok:
                return Candidate(tpl.name, reg.score, False, f"pixel rule {i} failed (mean {mean:.0f})"), reg
        return Candidate(tpl.name, reg.score, True), reg

    def match(self, image: np.ndarray) -> Match:
        """Pick the template for ``image`` (RGB or grey) from pixels alone."""
        gray = to_gray(image)
        results = [self._candidate(t, gray) for t in self.templates]
        ok = [(c, r, t) for (c, r), t in zip(results, self.templates, strict=True) if c.rules_ok]
        candidates = tuple(c for c, _ in results)
        if not ok:
            return Match(None, None, candidates)
        cand, reg, tpl = max(ok, key=lambda x: x[0].score)
        fine = register(tpl.reference_image, gray, levels=(0.5,), init=reg.matrix)
        if fine.score < cand.score - 0.2:  # refinement diverged: keep the coarse warp
            fine = reg
        return Match(tpl, fine, candidates)

    # ---- extraction ----------------------------------------------------------------------------

    def _cut(self, spec: FieldSpec, tpl: Template, warped: np.ndarray, reg: Registration,
             offsets: dict[str, tuple[int, int]]) -> tuple[np.ndarray, tuple]:
        x0, y0, x1, y1 = tpl.pixel_box(spec.region)
        dx, dy = offsets.get(spec.anchor or "", (0, 0))
        x0, x1 = max(0, x0 + dx), min(tpl.size[0], x1 + dx)
        y0, y1 = max(0, y0 + dy), min(tpl.size[1], y1 + dy)
        box = tuple(map(tuple, reg.to_scan(np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], float))))
        return tight_crop(warped[y0:y1, x0:x1]), box

    def _primary(self, specs: list[FieldSpec], crops: list[np.ndarray]) -> list[RecResult]:
        """First reading: the neural recogniser in one batch. Korean fields are read by Tesseract ``kor``
        too; an enum keeps whichever reading is closer to an allowed value, free text keeps Tesseract's."""
        out = self.recognizer.recognize(crops)
        for i, s in enumerate(specs):
            if "kor" in s.lang:
                read = self.reader.read(prepare(crops[i], s.preprocess), lang=s.lang, whitelist=s.whitelist)
                kor = RecResult(read.text, read.confidence)
                if s.type != "enum" or enum_similarity(kor.text, s) >= enum_similarity(out[i].text, s):
                    out[i] = kor
        return out

    def _finish(self, spec: FieldSpec, crop: np.ndarray, box: tuple, first: RecResult) -> FieldResult:
        value, token, issues = parse_field(spec, first.text, first.confidence)
        issues += validate(spec, value, token, first.confidence)
        agree = True
        if self.double_read and "kor" not in spec.lang:
            second = self.reader.read(prepare(crop, spec.preprocess), lang=spec.lang, whitelist=spec.whitelist)
            alt_value, _, _ = parse_field(spec, second.text, second.confidence)
            agree = alt_value == value
            if not agree:
                issues.append(f"second reading disagrees ({second.text!r})")
        result = FieldResult(spec.name, spec.type, value, first.text, first.confidence, not issues,
                             spec.unit, box, tuple(issues))  # type: ignore[arg-type]
        return result if agree else replace(result, valid=False)

    def extract(self, image: np.ndarray, tpl: Template, reg: Registration) -> tuple[FieldResult, ...]:
        """Read every field of ``tpl`` from ``image`` registered by ``reg``; cross-checks applied.

        A field whose two readings (neural recogniser, Tesseract with the field's whitelist) disagree is
        valid again only if a cross-field check it belongs to holds with the first reading.
        """
        rgb = image if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
        warped = warp_to_reference(rgb[:, :, :3], reg, tpl.size)
        offsets = {a.name: anchor_offset(a, tpl, to_gray(warped)) for a in tpl.anchors}
        specs = list(tpl.fields)
        cut = [self._cut(s, tpl, warped, reg, offsets) for s in specs]
        crops = [c for c, _ in cut]
        firsts = self._primary(specs, crops)
        args = list(zip(specs, crops, [b for _, b in cut], firsts, strict=True))
        if self._pool is not None:
            results = list(self._pool.map(lambda a: self._finish(*a), args))
        else:
            results = [self._finish(*a) for a in args]
        by_name = {r.name: r for r in results}
        checked = apply_checks(tpl.checks, by_name, rescue=True)
        return tuple(checked[s.name] for s in specs)

    def run_image(self, image: np.ndarray) -> tuple[TemplateResult | None, Match]:
        """Match and extract; the result is None when no template matched (see ``Match.reason``)."""
        t0 = time.perf_counter()
        match = self.match(image)
        t1 = time.perf_counter()
        if match.template is None or match.registration is None:
            return None, match
        tpl, reg = match.template, match.registration
        fields = self.extract(image, tpl, reg)
        t2 = time.perf_counter()
        timings = {"match": (t1 - t0) * 1000, "read": (t2 - t1) * 1000, "total": (t2 - t0) * 1000}
        return TemplateResult(tpl.name, tpl.device, tpl.version, tpl.page, reg.score, fields, reg.angle, reg.scale,
                              timings), match

    def process(self, image: np.ndarray, pipeline: Any | None = None) -> dict[str, Any]:
        """Template mode when a template matches, else the general pipeline; the result says which."""
        result, match = self.run_image(image)
        if result is not None:
            out = result.to_dict()
            out["candidates"] = [c.to_dict() for c in match.candidates]
            return out
        if pipeline is None:
            from ocrpipe.pipeline import Pipeline

            pipeline = Pipeline.default()
        doc = pipeline.run_image(image)
        return {"mode": "pipeline", "reason": match.reason, "candidates": [c.to_dict() for c in match.candidates],
                "document": doc.to_dict()}
