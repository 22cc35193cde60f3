"""Template mode: match the layout from pixels, register, cut field regions, read, validate.

No text detection runs here. Matching ranks the templates by a thumbnail of the page's inked area (and its
aspect) and registers the best two first: when exactly one of them accepts the page strongly, the other
scores less, and its labels (read at its refined warp, then reused for the fields) confirm it, the rest are
not registered (:meth:`TemplateEngine._first_pass`). Otherwise it registers the page against
every template's reference rendering (ECC at ⅛ resolution from a few starting warps, each probed briefly so a
wrong template is dropped after a few iterations), keeps the templates whose correlation reaches their
``min_score`` and whose pixel rules hold, and picks the best; only the winner is refined, at ¼ resolution. A
page no template accepts (or a weak winner) is tried once more from a wider range of starting scales; a page
still unmatched goes to the general pipeline (:meth:`process`). Pyramids are built once per page and once per
template.

Reading (see :mod:`ocrpipe.templates.consensus`): only the field regions are resampled from the grey scan.
Every field crop of a page goes to the primary neural recogniser in one width-bucketed batch, and then every
field is read a second time by Tesseract with the field's whitelist (on the engine's threads) — except the
fields whose confident primary readings a cross-field check already confirms (:data:`CHECKED_SKIP_ABOVE`).
A field whose two readings do not agree on a valid value, or whose primary reading is doubtful, is read a
third time by a different neural model (batched over the page) unless a cross-field check that holds
already confirms it. A value is valid only when two different readers produced it and no neural reader saw
something else.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from ocrpipe.engine.recognize.base import Recognizer
from ocrpipe.engine.runtime import usable_cpus
from ocrpipe.templates.consensus import Reading, decide, settled
from ocrpipe.templates.fields import FieldResult, apply_checks, confirmed_fields
from ocrpipe.templates.labels import Found, find_labels
from ocrpipe.templates.orient import turns
from ocrpipe.templates.reader import FieldReader, prepare
from ocrpipe.templates.register import (
    INK_CONTRAST,
    Pyramid,
    Registration,
    has_ink,
    paper_level,
    register,
    register_similar,
    tight_crop,
    warp_region,
)
from ocrpipe.templates.schema import Anchor, FieldSpec, Label, PixelRule, Template, load_templates

if TYPE_CHECKING:
    from ocrpipe.engine.pipeline import Pipeline

DEFAULT_RECOGNIZER = "ko_rec"
"""Primary reader of every field: ocrpipe's own CRNN (32 px grey input), 6–10× cheaper per crop than
PP-OCRv4 rec and the most accurate of the three readers on generated printouts (99.85 % of 9,300 fields)."""
DEFAULT_ARBITER = "ppocrv4_rec_ch"
"""Third reader (PP-OCRv4 rec zh/en), only for fields the first two readings leave undecided. About 8× the
primary's cost per crop, and on generated printouts it read every Latin/digit field right (9,300 fields),
so it also goes first when three readings all differ."""
DOUBT_BELOW = 0.9
"""Primary confidence (mean symbol probability) under which the arbiter reads the field even when Tesseract
agrees: both can misread the dotted zero of a monospace font as ``8`` alike. Measured on generated
printouts (9,300 fields): the one wrong primary reading Tesseract agreed with scored 0.74, every wrong
primary reading scored under 0.94, and 3 % of all fields score under 0.9."""
DOUBT_BELOW_ALONE = 0.95
"""The same for a field the arbiter cannot read (Korean text: PP-OCRv4 zh/en has no Hangul): under it the
field stays flagged even when Tesseract agrees. On 100 generated Korean names (seeds 9191, 5150, 27182)
ko_rec and Tesseract agreed on a wrong name twice (희 read as 회 by both), at primary confidences 0.915 and
0.931; 5 right names scored under 0.95."""
LEAST_ALONE = 0.85
"""And the lowest symbol probability of the primary reading under which such a field stays flagged: one
misread syllable in a three-syllable name hides in the mean (송재희 read 송재회 by both readers at mean
0.973, least symbol 0.822, seed 14142). On 100 Korean names of the tuning seeds, 8 right ones had a least
symbol under 0.85."""
CHECKED_SKIP_ABOVE = DOUBT_BELOW
"""Primary confidence from which a field confirmed by a cross-field check that holds on the primary values
alone (e.g. K in D = 337.5 / K in mm to 0.006; SE = sph + cyl/2; the mean of three IOP readings) skips the
second reading. Such a check is the stronger confirmation: a misread digit breaks the identity unless
another field of the check is misread to match it exactly, while Tesseract alone misreads about one field in
twenty. It is the confirmation :func:`~ocrpipe.templates.fields.apply_checks` already accepts for a value
only one reader produced."""
MAX_ANGLE = 10.0
SCALE_RANGE = (0.25, 5.0)
COARSE = 0.125
"""Pyramid level at which every template is tried."""
FINE = (0.25,)
"""Levels at which the chosen template's registration is refined (adding ½ cost about 15 ms a page and did
not improve field accuracy on 80 generated printouts)."""
STARTS = (1.0, 0.94)
"""Starting scales (relative to the reference fitted to the scan) of the first matching pass."""
WIDE_STARTS = (0.88, 0.82, 0.76, 0.7, 0.64, 0.58, 0.52)
"""Further starting scales (a printout that fills less of the scan), tried only when no template matched
from :data:`STARTS` or the winner scored weakly (:data:`WEAK_MARGIN`)."""
CONFIRMED = "labels confirm the layout"
"""Reason of a candidate whose labels were read at their places (see :meth:`TemplateEngine._by_labels`)."""
LOW_SCORE = "registration score"
"""Start of the reason of a candidate refused on its score alone."""
RESCUE_MIN_LABELS = 4
"""Labels a template must place fields against for :meth:`TemplateEngine._rescue` to consider it."""
RESCUE_FOUND = 2 / 3
"""Share of its labels a template refused on its score must show at their places to be accepted."""
PROBE_SLACK = 0.2
"""A template whose best short probe stays this far below its ``min_score`` is not registered further."""
RANKED = 2
"""Templates registered first, the best by :func:`thumbnail` correlation (less the aspect mismatch,
:data:`ASPECT_WEIGHT`): a page one of them accepts strongly,
with its labels confirming it, while the others refuse it, is decided without registering the rest (each
wrong template costs 5–30 ms of ECC probes); any other outcome registers every template as before."""
THUMB = 24
"""Side of the :func:`thumbnail` (pixels) templates are ranked by."""
ASPECT_WEIGHT = 0.3
"""Weight of the inked areas' aspect mismatch (``|log(w/h) - log(w'/h')|``) subtracted from the thumbnail
correlation when ranking: the thumbnail is square, so a slip and a form whose grey patterns correlate lose
their most telling difference. On the tuning seeds (9191, 5150, 27182, 14142; 30 held-out-layout pages
each) the true template ranked among the first two on 86 of 120 pages by correlation alone, 105 with it
(weights 0 / 0.3 / 1: 86 / 105 / 94)."""
WEAK_MARGIN = 0.2
"""A winner scoring less than this above its ``min_score`` is registered again from :data:`WIDE_STARTS`
(ECC from a start too far off can settle in a local optimum with a middling score, e.g. 0.79 where the
true alignment scores 0.96); the better registration is kept."""


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
    labels: Mapping[Label, Found | None] | None = field(default=None, compare=False, repr=False)
    """The chosen template's labels as the primary recogniser found them at ``registration`` while
    matching, when it read them there (:meth:`TemplateEngine.extract` then does not read them again)."""
    doubted: tuple[str, ...] = ()
    """Why :meth:`TemplateEngine.run_image` doubted winners (their fields mostly failed,
    :data:`DOUBTED_BELOW`), one sentence each, and a last one when it kept a doubted winner because every
    turn's was; empty from :meth:`TemplateEngine.match`."""

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
    reads: dict[str, int] = field(default_factory=dict)
    """Field crops read by each reader: ``primary``, ``second`` (Tesseract) and ``arbiter``."""

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


def _rule_measure(rule: PixelRule, mean: float) -> str:
    """The measured value against the rule's bounds, as a reason."""
    if rule.mean is not None and not rule.mean[0] <= mean <= rule.mean[1]:
        return f"mean grey {mean:.0f} outside [{rule.mean[0]:g}, {rule.mean[1]:g}]"
    return f"dark fraction outside [{rule.dark_fraction[0]:g}, {rule.dark_fraction[1]:g}] (mean grey {mean:.0f})" \
        if rule.dark_fraction is not None else f"mean grey {mean:.0f}"


def rule_holds(rule: PixelRule, gray: np.ndarray) -> tuple[bool, float]:
    """Whether a pixel rule holds on a registered grey page; also returns the region's mean."""
    h, w = gray.shape
    x0, y0, x1, y1 = rule.region
    patch = gray[int(y0 * h):max(int(y1 * h), int(y0 * h) + 1), int(x0 * w):max(int(x1 * w), int(x0 * w) + 1)]
    return rule_holds_on(rule, patch)


def rule_holds_on(rule: PixelRule, patch: np.ndarray) -> tuple[bool, float]:
    """Whether a pixel rule holds on its region, already cut from the registered page; also the mean."""
    mean = float(patch.mean())
    ok = True
    if rule.mean is not None:
        ok = rule.mean[0] <= mean <= rule.mean[1]
    if rule.dark_fraction is not None:
        frac = float((patch < 128).mean())
        ok = ok and rule.dark_fraction[0] <= frac <= rule.dark_fraction[1]
    return ok, mean


def anchor_offset(anchor: Anchor, tpl: Template, gray: np.ndarray, reg: Registration) -> tuple[int, int]:
    """Residual (dx, dy) of an anchor patch on the registered page, (0, 0) when it is not found.

    Only the search window around the anchor is resampled from the grey scan ``gray``."""
    x0, y0, x1, y1 = tpl.pixel_box(anchor.region)
    w, h = tpl.size
    mx, my = int(anchor.search * w), int(anchor.search * h)
    sx0, sy0 = max(0, x0 - mx), max(0, y0 - my)
    window = warp_region(gray, reg, (sx0, sy0, min(w, x1 + mx), min(h, y1 + my)))
    patch = tpl.reference_image[y0:y1, x0:x1]
    if window.shape[0] < patch.shape[0] or window.shape[1] < patch.shape[1] or patch.std() < 1:
        return 0, 0
    res = cv2.matchTemplate(window, patch, cv2.TM_CCOEFF_NORMED)
    _, best, _, loc = cv2.minMaxLoc(res)
    if best < anchor.min_score:
        return 0, 0
    return loc[0] + sx0 - x0, loc[1] + sy0 - y0


def thumbnail(gray: np.ndarray) -> tuple[np.ndarray, float]:
    """A cheap global descriptor of a page or a reference: its inked area (Otsu ink, 1st to 99th percentile
    of the ink's rows and columns, so a scan's margins, its position and its scale drop out) resized to
    :data:`THUMB` × :data:`THUMB`, zero-mean and unit-norm (a dot product is then a correlation), and the
    log of that area's aspect (width / height)."""
    small = cv2.resize(gray, None, fx=COARSE, fy=COARSE, interpolation=cv2.INTER_AREA) \
        if min(gray.shape[:2]) * COARSE >= 2 * THUMB else gray
    ink = _ink(small) > 0
    ys, xs = np.nonzero(ink)
    if len(ys) >= 16:
        y0, y1 = np.percentile(ys, (1, 99)).astype(int)
        x0, x1 = np.percentile(xs, (1, 99)).astype(int)
        if y1 - y0 >= 4 and x1 - x0 >= 4:
            small = small[y0:y1 + 1, x0:x1 + 1]
    aspect = float(np.log(small.shape[1] / small.shape[0]))
    out = cv2.resize(small, (THUMB, THUMB), interpolation=cv2.INTER_AREA).astype(np.float32).ravel()
    out -= out.mean()
    norm = float(np.linalg.norm(out))
    return (out / norm if norm > 0 else out), aspect


def _labels(tpl: Template) -> list[Label]:
    """The distinct labels a template places fields against."""
    return list(dict.fromkeys(lab for f in tpl.fields for lab in (f.label, f.column) if lab is not None))


def unrotate(reg: Registration, k: int, shape: tuple[int, ...]) -> Registration:
    """A registration onto ``np.rot90(page, k)`` expressed as one onto ``page`` (of ``shape`` (H, W))."""
    h, w = shape[:2]
    back = {1: [[0, -1, w - 1], [1, 0, 0]], 2: [[-1, 0, w - 1], [0, -1, h - 1]], 3: [[0, 1, 0], [-1, 0, h - 1]]}[k]
    a = np.vstack([np.array(back, np.float64), [0, 0, 1]])
    m = np.vstack([reg.matrix, [0, 0, 1]])
    return Registration((a @ m)[:2], reg.score)


EDGE = 2
"""Columns at each side of a field region in which ink means the region cuts through text."""


def _ink(crop: np.ndarray) -> np.ndarray:
    """Ink (Otsu on a lightly blurred copy) of a grey crop, uint8 0/255."""
    return cv2.threshold(cv2.GaussianBlur(crop, (3, 3), 0), 0, 255, cv2.THRESH_BINARY_INV | cv2.THRESH_OTSU)[1]


def clear_rules(crop: np.ndarray) -> np.ndarray:
    """The grey field crop with printed rules painted over in the paper's grey: a horizontal run of ink
    over 60 % of the crop's width, or a vertical one over its whole height (a box edge). A field region
    grazing a table rule or a box edge (registration is off by a pixel or two) otherwise shows a bar
    the readers take for a character, and ink at both its edges. Text has neither: a field region is
    taller than its text, and no glyph stroke runs over most of a region several characters wide."""
    h, w = crop.shape[:2]
    if h < 4 or w < 8 or not has_ink(crop):
        return crop
    ink = _ink(crop)
    if ink.mean() > 127:  # a dark field (inverted print): no paper to tell the rules by
        return crop
    rules = cv2.bitwise_or(cv2.morphologyEx(ink, cv2.MORPH_OPEN, np.ones((1, max(8, int(0.6 * w))), np.uint8)),
                           cv2.morphologyEx(ink, cv2.MORPH_OPEN, np.ones((max(4, h - 1), 1), np.uint8)))
    if not rules.any():
        return crop
    out = crop.copy()
    out[cv2.dilate(rules, np.ones((3, 3), np.uint8)) > 0] = int(paper_level(crop))
    return out


def ink_at_edge(crop: np.ndarray, *, cleared: bool = False) -> str:
    """``left``/``right`` when ink (Otsu) lies in the outermost :data:`EDGE` columns of a field region on
    two rows or more: the region cuts through a neighbour's text or its own value (a minus sign);
    ``""`` when both edges are clear. Printed rules are not ink here (see :func:`clear_rules`; with
    ``cleared`` the crop is :func:`clear_rules`' output already)."""
    if crop.shape[1] <= 4 * EDGE or not has_ink(crop):
        return ""
    if not cleared:
        crop = clear_rules(crop)
    if not has_ink(crop):
        return ""
    ink = _ink(crop) > 0
    if ink.mean() > 0.5:  # a dark field (inverted print): no paper to tell the edges by
        return ""
    left = ink[:, :EDGE].any(axis=1).sum() >= 2
    right = ink[:, -EDGE:].any(axis=1).sum() >= 2
    return "left" if left else "right" if right else ""


SIGN_STRIP = 0.3
"""Width of the strip left of a signed number's region that :func:`sign_outside` looks at, as a share of
the region's height (``template new`` leaves 0.35 of a line height, about half the region's height,
between a number's region and its left neighbour)."""


def _signed(spec: FieldSpec) -> bool:
    """Whether a number field's format lets it start with a sign (then a sign left outside is a misread)."""
    rx = spec.validation.regex or ""
    return spec.type == "number" and ("[+-]" in rx or "-?" in rx or "[-+]" in rx)


def sign_outside(gray: np.ndarray, reg: Registration, box: tuple[int, int, int, int]) -> bool:
    """Whether a dash lies in the narrow strip just left of a field region, on the middle half of its height
    (where a minus sign prints): a region placed a little right of its value leaves the sign outside, and
    ``1.50`` would be read for ``-1.50`` with no ink at the region's edge."""
    x0, y0, x1, y1 = box
    h = y1 - y0
    # no clear_rules here: in so narrow a strip a minus sign is as wide as a rule (and a table's rules lie
    # along a row's edges, not its middle)
    strip = warp_region(gray, reg, (max(0, x0 - max(3, int(SIGN_STRIP * h))), y0 + h // 4, x0, y1 - h // 4))
    if strip.size == 0 or strip.shape[1] < 2 or not has_ink(strip):
        return False
    ink = (strip < int(paper_level(strip)) - INK_CONTRAST // 2).astype(np.uint8)
    n, _, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    # a dash: flat (at most a fifth of the region's height, twice as wide as tall), clear of the strip's top
    # and bottom; a neighbour's letter or digit reaching into the strip is taller
    return any(stats[i, cv2.CC_STAT_HEIGHT] <= max(2, h // 5) and stats[i, cv2.CC_STAT_WIDTH] >= 3
               and stats[i, cv2.CC_STAT_WIDTH] >= 1.5 * stats[i, cv2.CC_STAT_HEIGHT]
               and stats[i, cv2.CC_STAT_TOP] > 0
               and stats[i, cv2.CC_STAT_TOP] + stats[i, cv2.CC_STAT_HEIGHT] < strip.shape[0] for i in range(1, n))


def _unanchored(spec: FieldSpec, result: FieldResult, found: dict[Label, Found | None]) -> FieldResult:
    """The result, with no value and flagged, when a label it is placed against was not found."""
    missing = [lab.text for lab in (spec.label, spec.column) if lab is not None and found.get(lab) is None]
    if not missing:
        return result
    return replace(result, value=None, valid=False,
                   issues=tuple(f"label {t!r} not found on the page" for t in missing))


DOUBTED_BELOW = 0.5
"""Share of valid fields under which :meth:`TemplateEngine.run_image` doubts a winner its labels did not
confirm (a built-in has none) and matches the page in its next quarter turn, keeping the result with more
valid fields. A wrong layout's fields fail: nct_v1 accepted a kr_tk_v1 page upside down (score 0.85, its
pixel rule held) and read 0 of its 11 fields valid, where the right template reads nearly all."""


def _valid(result: TemplateResult) -> int:
    return sum(f.valid for f in result.fields)


def _doubted(result: TemplateResult, match: Match) -> str:
    """Why a result is doubted (:data:`DOUBTED_BELOW`: its labels did not confirm it, and too few of its
    fields are valid), ``""`` when it is not."""
    confirmed = any(c.name == result.template and c.reason.endswith(CONFIRMED) for c in match.candidates)
    n, valid = len(result.fields), _valid(result)
    if confirmed or valid >= DOUBTED_BELOW * n:
        return ""
    return (f"{result.template} fitted the page at angle {result.angle:.1f}° (score {result.score:.3f}) but "
            f"no labels confirm it and only {valid} of {n} fields read valid (a winner needs "
            f"{DOUBTED_BELOW:.0%} unless its labels confirm it)")


class TemplateEngine:
    """Matches pages against templates and extracts validated fields; safe to share between threads.

    ``recognizer`` reads every field first, ``reader`` (Tesseract) second, ``arbiter`` third where needed.
    With ``double_read=False`` only the first reading is taken and validation alone decides validity
    (for authoring, never for stored results). With ``skip_checked`` (the default) a field whose confident
    primary reading is confirmed by a cross-field check that holds is not read a second time. ``threads``
    Tesseract reads run in parallel (default: 2, or 1 on a single CPU).
    """

    def __init__(self, templates: list[Template] | None = None, *, recognizer: Recognizer | None = None,
                 reader: FieldReader | None = None, arbiter: Recognizer | None = None, threads: int | None = None,
                 double_read: bool = True, skip_checked: bool = True) -> None:
        from ocrpipe.engine.recognize import load_recognizer

        self.templates = list(templates) if templates is not None else load_templates()
        self.recognizer = recognizer or load_recognizer(DEFAULT_RECOGNIZER)
        self.reader = reader or FieldReader()
        self.double_read = double_read
        self.skip_checked = skip_checked
        self.arbiter = arbiter or (load_recognizer(DEFAULT_ARBITER) if double_read else None)
        self.threads = max(1, threads if threads is not None else min(2, usable_cpus()))
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="template") if self.threads > 1 else None
        charset = getattr(self.arbiter, "charset", None)
        self._arbiter_hangul = charset is None or "가" in set(charset)
        for t in self.templates:  # build the reference pyramids once, before threads share the templates
            for factor in (COARSE, *FINE):
                t.reference_pyramid.level(factor)
        thumbs = [thumbnail(t.reference_pyramid.gray) for t in self.templates]
        self._thumbs = np.stack([v for v, _ in thumbs]) if thumbs else np.zeros((0, THUMB * THUMB), np.float32)
        self._aspects = np.array([a for _, a in thumbs], np.float64)
        self.ranked = RANKED
        """Templates registered first (0: every template at once, as before the ranking)."""

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

    def _candidate(self, tpl: Template, page: Pyramid, starts: tuple[float, ...]) -> tuple[Candidate, Registration]:
        reg = register(tpl.reference_pyramid, page, levels=(COARSE,), shrink=starts,
                       give_up_below=tpl.min_score - PROBE_SLACK, enough=tpl.min_score + WEAK_MARGIN)
        if reg.score <= -1:
            return Candidate(tpl.name, reg.score, False, "no registration: from every starting scale the warp "
                             "left ±30 % of its start, turned over 10° or sheared (is it this layout?)"), reg
        if reg.score < tpl.min_score:
            return Candidate(tpl.name, reg.score, False,
                             f"{LOW_SCORE} {reg.score:.3f} < min_score {tpl.min_score}"), reg
        refused = self._refusal(tpl, page, reg)
        return Candidate(tpl.name, reg.score, not refused, refused), reg

    @staticmethod
    def _refusal(tpl: Template, page: Pyramid, reg: Registration) -> str:
        """Why a registered template is refused apart from its score: an implausible warp or a pixel rule
        that fails (with the measured value and the bounds); ``""`` when nothing refuses it."""
        if not (SCALE_RANGE[0] <= reg.scale <= SCALE_RANGE[1]) or abs(reg.angle) > MAX_ANGLE:
            return f"implausible warp (scale {reg.scale:.2f} outside [{SCALE_RANGE[0]}, {SCALE_RANGE[1]}], " \
                   f"or angle {reg.angle:.1f}° beyond ±{MAX_ANGLE:g}°)"
        for i, rule in enumerate(tpl.rules):
            ok, mean = rule_holds_on(rule, warp_region(page.gray, reg, tpl.pixel_box(rule.region)))
            if not ok:
                return f"pixel rule {i} (region {list(rule.region)}) failed: {_rule_measure(rule, mean)}"
        return ""

    def _rescue(self, results: list[tuple[Candidate, Registration]], page: Pyramid
                ) -> list[tuple[Candidate, Registration]]:
        """Templates refused on their score alone, by less than :data:`PROBE_SLACK`, that place fields
        against :data:`RESCUE_MIN_LABELS` labels or more, are accepted when at least
        :data:`RESCUE_FOUND` of those labels are read at their places: a layout whose columns move
        with the printer font correlates worse with its reference than a fixed one, while its labels
        still say which layout it is."""
        out = []
        for (c, r), t in zip(results, self.templates, strict=True):
            labels = _labels(t)
            if (c.rules_ok or not c.reason.startswith(LOW_SCORE) or c.score < t.min_score - PROBE_SLACK
                    or len(labels) < RESCUE_MIN_LABELS or self._refusal(t, page, r)):
                out.append((c, r))
                continue
            found = find_labels(labels, t, page.gray, r, self.recognizer, self.arbiter, 1 / 3)
            n = sum(v is not None for v in found.values())
            if n >= RESCUE_FOUND * len(labels):
                c = Candidate(c.name, c.score, True, f"{c.reason}, but {n} of {len(labels)} labels read at "
                                                     f"their places: {CONFIRMED}")
            else:
                c = Candidate(c.name, c.score, False, f"{c.reason}; labels found: {n} of {len(labels)} "
                                                      f"(accepted from {RESCUE_FOUND:.0%})")
            out.append((c, r))
        return out

    def _each_template(self, page: Pyramid, starts: tuple[float, ...], only: list[int] | None = None
                       ) -> list[tuple[Candidate, Registration]]:
        """Every template (or those of index ``only``) tried against ``page`` (in parallel on the engine's
        threads: ECC releases the GIL)."""
        tpls = self.templates if only is None else [self.templates[i] for i in only]
        if self._pool is None:
            return [self._candidate(t, page, starts) for t in tpls]
        return list(self._pool.map(lambda t: self._candidate(t, page, starts), tpls))

    def _first_pass(self, page: Pyramid) -> tuple[Match | None, list[tuple[Candidate, Registration]]]:
        """The templates ranked best by :func:`thumbnail` are registered first; the page is decided from
        them alone (a :class:`Match`) only when exactly one of them is accepted strongly (``min_score`` +
        :data:`WEAK_MARGIN`), any other accepted one scores less, and at least half its labels are read at
        their places. That is the outcome :meth:`_match` reaches with every template registered (a weaker
        ranked one loses to it whether its labels confirm it or not), unless some template not ranked also
        accepted the page and had its own labels confirmed. Otherwise every template is registered (the ranked ones
        are not registered again) and the results are returned in template order."""
        n = len(self.templates)
        if not 0 < self.ranked < n:
            return None, self._each_template(page, STARTS)
        thumb, aspect = thumbnail(page.gray)
        fit = self._thumbs @ thumb - ASPECT_WEIGHT * np.abs(self._aspects - aspect)
        order = [int(i) for i in np.argsort(-fit, kind="stable")]
        first = dict(zip(order[:self.ranked], self._each_template(page, STARTS, order[:self.ranked]), strict=True))
        accepted = [i for i in order[:self.ranked] if first[i][0].rules_ok]
        strong = [i for i in accepted if first[i][0].score >= self.templates[i].min_score + WEAK_MARGIN]
        best = strong[0] if len(strong) == 1 else order[0]
        (c, r), tpl = first[best], self.templates[best]
        labels = _labels(tpl)
        if len(strong) == 1 and all(first[i][0].score < c.score for i in accepted if i != best) and labels:
            # refined before the labels are read: read at the final warp, they serve extraction too
            fine = register(tpl.reference_pyramid, page, levels=FINE, init=r.matrix)
            if fine.score < c.score - 0.2:  # refinement diverged: keep the coarse warp
                fine = r
            found = find_labels(labels, tpl, page.gray, fine, self.recognizer)
            if 2 * sum(v is not None for v in found.values()) >= len(labels):
                skipped = tuple(Candidate(t.name, -1.0, False, "not registered: the page was matched to "
                                          f"{tpl.name} (ranked among the first {self.ranked}, the only one "
                                          "of them accepted strongly, its labels confirm it)")
                                for i, t in enumerate(self.templates) if i not in first)
                return Match(tpl, fine, (Candidate(c.name, c.score, True, CONFIRMED),
                                         *(first[i][0] for i in order[:self.ranked] if i != best), *skipped),
                             found), []
        rest = [i for i in range(n) if i not in first]
        first.update(zip(rest, self._each_template(page, STARTS, rest), strict=True))
        return None, [first[i] for i in range(n)]

    def match(self, image: np.ndarray | Pyramid) -> Match:
        """Pick the template for ``image`` (RGB or grey, or its :class:`Pyramid`) from pixels alone.

        The page is matched in the quarter turns its text lines allow (:func:`~ocrpipe.templates.orient.turns`:
        as it lies, then upside down, when its lines run across; turned by 90° then 270° when they run down;
        all four when that cannot be told), the first turn some template accepts deciding; the registration
        returned maps the reference onto the page as given. A page lying sideways is not tried as it lies:
        a wrong layout can fit it (va_v1 turned by 90° correlated 0.92 with ark_v1 and passed its rules).
        :meth:`run_image` goes on to the next turn when the fields of a winner its labels do not confirm
        mostly fail (:data:`DOUBTED_BELOW`)."""
        page = image if isinstance(image, Pyramid) else Pyramid(image)
        first = None
        for m in self._turned_matches(page):
            if m.template is not None:
                return m
            first = first or m
        return first or self._match(page)

    def _turned_matches(self, page: Pyramid) -> Iterator[Match]:
        """:meth:`_match` in each of the page's :func:`~ocrpipe.templates.orient.turns` in turn, lazily, the
        registrations mapping the reference onto the page as given (the labels found stay valid: they are
        offsets in the reference's frame)."""
        if not self.templates:
            return
        ks = turns(page.gray)
        # a page lying sideways is tried both ways up from the usual starts before either gets the slower
        # tries (wider starts, labels read under a similarity): upside down, those run through every template
        plan = [(k, True) for k in ks] + [(k, False) for k in ks] if ks == (1, 3) else [(k, False) for k in ks]
        pages = {0: page}
        for k, quick in plan:
            if k not in pages:
                pages[k] = Pyramid(np.ascontiguousarray(np.rot90(page.gray, k)))
            turned = self._match(pages[k], quick=quick)
            if k and turned.registration is not None:
                turned = replace(turned, registration=unrotate(turned.registration, k, page.gray.shape))
            yield turned

    def _match(self, page: Pyramid, quick: bool = False) -> Match:
        """:meth:`match` on the page as it lies; ``quick``: no template accepting it from :data:`STARTS`
        ends there (no wider starts, rescue or similarity)."""
        page.level(COARSE)  # built once, before the templates are tried side by side
        decided, results = self._first_pass(page)
        if decided is not None:
            return decided
        if quick and not any(c.rules_ok for c, _ in results):
            return Match(None, None, tuple(c for c, _ in results))
        if not any(c.rules_ok for c, _ in results):
            results = self._each_template(page, STARTS + WIDE_STARTS)
        if not any(c.rules_ok for c, _ in results):
            results = self._rescue(results, page)
        ok = [(c, r, t) for (c, r), t in zip(results, self.templates, strict=True) if c.rules_ok]
        candidates = tuple(c for c, _ in results)
        if len(ok) > 1 or any(c.score < t.min_score + WEAK_MARGIN for c, _, t in ok):
            # several layouts fit, or one fits weakly (a slip can correlate 0.66 with a form's header
            # band at half its size): the labels say which
            ok, candidates = self._by_labels(ok, page, candidates)
        # judged after the labels' verdicts: a labelled template whose registration came near but whose
        # labels were not found there counts too (its affine warp may be what broke)
        broke = any(not c.rules_ok and (c.score <= -1 or c.score >= t.min_score - PROBE_SLACK)
                    and len(_labels(t)) >= RESCUE_MIN_LABELS for c, t in zip(candidates, self.templates, strict=True))
        if (all(c.score < t.min_score + WEAK_MARGIN and not c.reason.endswith(CONFIRMED) for c, _, t in ok)
                or (broke and not any(_labels(t) for _, _, t in ok))):
            # nothing, or only a weak unconfirmed fit, or only unlabelled ones while a labelled template's
            # affine registration broke down or came near (a built-in can fit a slip's page at 0.87): a
            # labelled template registered by a similarity and confirmed by its labels wins
            similar, candidates = self._similar(page, candidates)
            if similar:
                cand, reg, tpl = max(similar, key=lambda x: x[0].score)
                return Match(tpl, reg, candidates)
            if not ok:
                return Match(None, None, candidates)
        cand, reg, tpl = max(ok, key=lambda x: (x[0].reason.endswith(CONFIRMED), x[0].score))
        if cand.score < tpl.min_score + WEAK_MARGIN:
            retry, retry_reg = self._candidate(tpl, page, WIDE_STARTS)
            if retry.rules_ok and retry.score > cand.score:
                cand, reg = retry, retry_reg
                candidates = tuple(retry if c.name == tpl.name else c for c in candidates)
        fine = register(tpl.reference_pyramid, page, levels=FINE, init=reg.matrix)
        if fine.score < cand.score - 0.2:  # refinement diverged: keep the coarse warp
            fine = reg
        return Match(tpl, fine, candidates)

    def _similar(self, page: Pyramid, candidates: tuple[Candidate, ...]
                 ) -> tuple[list[tuple[Candidate, Registration, Template]], tuple[Candidate, ...]]:
        """The last try for a page no template accepted: every template that places fields against at
        least :data:`RESCUE_MIN_LABELS` labels is registered by a similarity
        (:func:`~ocrpipe.templates.register.register_similar`) and accepted when its pixel rules hold
        and :data:`RESCUE_FOUND` of its labels are read at their places (the score alone does not
        accept: a similarity correlates less than an affine warp)."""
        ok, changed = [], {}
        for t in self.templates:
            labels = _labels(t)
            if len(labels) < RESCUE_MIN_LABELS:
                continue
            reg = register_similar(t.reference_pyramid, page)
            if reg.score < t.min_score - PROBE_SLACK:
                continue
            refused = self._refusal(t, page, reg)
            found = {} if refused else find_labels(labels, t, page.gray, reg, self.recognizer, self.arbiter, 1 / 3)
            n = sum(v is not None for v in found.values())
            prior = next((c.reason or f"score {c.score:.3f}" for c in candidates if c.name == t.name), "")
            if not refused and n >= RESCUE_FOUND * len(labels):
                c = Candidate(t.name, reg.score, True, f"{prior}; registered by a similarity (score "
                                                       f"{reg.score:.3f}): {n} of {len(labels)} labels read at "
                                                       f"their places: {CONFIRMED}")
                ok.append((c, reg, t))
            else:
                c = Candidate(t.name, reg.score, False, f"{prior}; registered by a similarity: "
                              + (refused or f"labels found: {n} of {len(labels)} (accepted from {RESCUE_FOUND:.0%})"))
            changed[t.name] = c
        return ok, tuple(changed.get(c.name, c) for c in candidates)

    def _by_labels(self, ok: list[tuple[Candidate, Registration, Template]], page: Pyramid,
                   candidates: tuple[Candidate, ...]
                   ) -> tuple[list[tuple[Candidate, Registration, Template]], tuple[Candidate, ...]]:
        """When several templates accept a page, those placing fields against labels read their labels:
        a template at least half of whose labels are found is confirmed (it wins over unconfirmed ones,
        whatever their scores: registration scores of different references do not compare), one with
        fewer is refused."""
        kept, changed = [], {}
        for c, r, t in ok:
            labels = _labels(t)
            if not labels or c.reason.endswith(CONFIRMED):  # nothing to read, or read already (a rescue)
                kept.append((c, r, t))
                continue
            found = find_labels(labels, t, page.gray, r, self.recognizer)
            n = sum(v is not None for v in found.values())
            if 2 * n >= len(labels):
                c = Candidate(c.name, c.score, True, CONFIRMED)
                kept.append((c, r, t))
            else:
                c = Candidate(c.name, c.score, False, f"labels found: {n} of {len(labels)} (half needed)")
            changed[c.name] = c
        return kept, tuple(changed.get(c.name, c) for c in candidates)

    # ---- extraction ----------------------------------------------------------------------------

    def _arbiter_reads(self, spec: FieldSpec) -> bool:
        """Whether the arbiter may vote on a field: not on a Korean field when its charset has no Hangul
        (PP-OCRv4 zh/en reads a Korean name as nothing, or as a Chinese character, and would veto it)."""
        return self._arbiter_hangul or "kor" not in spec.lang

    def _box(self, spec: FieldSpec, tpl: Template, offsets: dict[str, tuple[int, int]],
             found: dict[Label, Found | None] | None = None) -> tuple[int, int, int, int]:
        """The field's region in reference pixels, moved by its anchor's residual offset, or by its row
        label's offset (horizontally by its column header's, when it has one)."""
        x0, y0, x1, y1 = tpl.pixel_box(spec.region)
        dx, dy = offsets.get(spec.anchor or "", (0, 0))
        for lab in (spec.label, spec.column):
            at = (found or {}).get(lab) if lab is not None else None
            if lab is not None and at is not None:
                dx = at.dx if "x" in lab.follow else dx
                dy = at.dy if "y" in lab.follow else dy
        w, h = tpl.size
        return max(0, x0 + dx), max(0, y0 + dy), min(w, x1 + dx), min(h, y1 + dy)

    def _tesseract(self, spec: FieldSpec, crop: np.ndarray) -> Reading:
        """Tesseract's reading of one field (with the field's language, whitelist and preprocessing)."""
        read = self.reader.read(prepare(crop, spec.preprocess), lang=spec.lang, whitelist=spec.whitelist)
        return Reading.of(spec, self.reader.name, read.text, read.confidence, veto=False)

    def _second(self, specs: list[FieldSpec], crops: list[np.ndarray]) -> list[Reading]:
        """Tesseract's reading of every given field (in parallel on the engine's threads)."""
        if self._pool is None:
            return [self._tesseract(s, c) for s, c in zip(specs, crops, strict=True)]
        return list(self._pool.map(self._tesseract, specs, crops))

    def _confirmed_by_checks(self, tpl: Template, specs: list[FieldSpec], boxes: list[tuple[int, int, int, int]],
                             readings: list[list[Reading]], reg: Registration) -> set[int]:
        """Fields whose primary reading needs no second reading: confident (:data:`CHECKED_SKIP_ABOVE`),
        valid on its own, and part of a cross-field check that holds with the primary values alone."""
        if not self.skip_checked or not tpl.checks:
            return set()
        firsts = self._verdicts(tpl, boxes, readings, reg)
        confirmed = confirmed_fields(tpl.checks, firsts)
        return {i for i, s in enumerate(specs) if s.name in confirmed and not readings[i][0].issues
                and readings[i][0].confidence >= CHECKED_SKIP_ABOVE}

    def _verdicts(self, tpl: Template, boxes: list[tuple[int, int, int, int]], readings: list[list[Reading]],
                  reg: Registration) -> dict[str, FieldResult]:
        """Field results from the readings so far, cross-field checks applied."""
        results = {}
        for s, (x0, y0, x1, y1), got in zip(tpl.fields, boxes, readings, strict=True):
            v = decide(got, confirm=self.double_read)
            box = tuple(map(tuple, reg.to_scan(np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], float))))
            results[s.name] = FieldResult(s.name, s.type, v.value, v.raw, v.confidence, v.valid, s.unit,
                                          box, v.issues)  # type: ignore[arg-type]
        return apply_checks(tpl.checks, results, rescue=True)

    def extract(self, image: np.ndarray | Pyramid, tpl: Template, reg: Registration,
                timings: dict[str, float] | None = None, reads: dict[str, int] | None = None,
                labels: Mapping[Label, Found | None] | None = None) -> tuple[FieldResult, ...]:
        """Read every field of ``tpl`` from ``image`` registered by ``reg``; cross-checks applied.

        Only the field regions (and anchor search windows) are resampled from the grey scan. Every field
        is read by the primary recogniser (one batch) and by Tesseract. The arbiter reads, in one batch,
        the fields those two leave undecided or the primary is unsure of (:data:`DOUBT_BELOW`), unless a
        cross-field check that holds already confirms the chosen value. ``labels``: the template's labels
        as the primary found them at ``reg`` (:attr:`Match.labels`), not read by it again.
        """
        timings = {} if timings is None else timings
        t0 = time.perf_counter()
        gray = image.gray if isinstance(image, Pyramid) else Pyramid(image).gray
        offsets = {a.name: anchor_offset(a, tpl, gray, reg) for a in tpl.anchors}
        specs = list(tpl.fields)
        placed = [lab for s in specs for lab in (s.label, s.column) if lab is not None]
        found = find_labels(placed, tpl, gray, reg, self.recognizer, self.arbiter, known=labels) if placed else {}
        boxes = [self._box(s, tpl, offsets, found) for s in specs]
        raw_crops = [clear_rules(warp_region(gray, reg, b)) for b in boxes]
        crossing = {s.name: side for s, c in zip(specs, raw_crops, strict=True)
                    if (side := ink_at_edge(c, cleared=True))}
        crossing |= {s.name: "left" for s, b in zip(specs, boxes, strict=True)
                     if s.name not in crossing and _signed(s) and sign_outside(gray, reg, b)}
        crops = [tight_crop(c) for c in raw_crops]
        rgb = [cv2.cvtColor(c, cv2.COLOR_GRAY2RGB) for c in crops]
        t1 = time.perf_counter()
        # The primary reads alone, before any Tesseract read starts: a model run splits every layer over
        # the cores and waits for its slowest part, so Tesseract threads beside it (4 busy threads on 2
        # cores) stretched a 12 ms batch to 30 ms, more than they gained.
        primary = self.recognizer.recognize(rgb)
        readings = [[Reading.of(s, self.recognizer.name, r.text, r.confidence)]
                    for s, r in zip(specs, primary, strict=True)]
        t2 = time.perf_counter()
        timings.update(crop=(t1 - t0) * 1000, read_primary=(t2 - t1) * 1000)
        checked_by: set[int] = set()
        if self.double_read:
            checked_by = self._confirmed_by_checks(tpl, specs, boxes, readings, reg)
            todo = [i for i in range(len(specs)) if i not in checked_by]
            for i, second in zip(todo, self._second([specs[i] for i in todo], [crops[i] for i in todo]), strict=True):
                readings[i].append(second)
        t3 = time.perf_counter()
        checked = self._verdicts(tpl, boxes, readings, reg)
        confirmed = confirmed_fields(tpl.checks, checked)
        def unsure(i: int) -> bool:
            if self._arbiter_reads(specs[i]):
                return readings[i][0].confidence < DOUBT_BELOW
            least = primary[i].least
            return readings[i][0].confidence < DOUBT_BELOW_ALONE or (least is not None and least < LEAST_ALONE)

        doubtful = [i for i, s in enumerate(specs) if len(readings[i]) == 2
                    and (not settled(*readings[i]) or unsure(i))
                    and not (checked[s.name].valid and s.name in confirmed)]
        undecided = [i for i in doubtful if self._arbiter_reads(specs[i])]
        # a doubtful field no third reader can read stays flagged even when the two readings agree
        unarbitrated = {specs[i].name: readings[i][0].confidence for i in doubtful if i not in undecided}
        if undecided and self.arbiter is not None:
            thirds = self.arbiter.recognize([rgb[i] for i in undecided])
            for i, r in zip(undecided, thirds, strict=True):  # the arbiter first: it breaks three-way ties
                readings[i].insert(0, Reading.of(specs[i], self.arbiter.name, r.text, r.confidence))
            checked = self._verdicts(tpl, boxes, readings, reg)
        timings.update(read_second=(t3 - t2) * 1000, read_arbiter=(time.perf_counter() - t3) * 1000)
        if reads is not None:
            reads.update(primary=len(specs), second=len(specs) - len(checked_by) if self.double_read else 0,
                         arbiter=len(undecided) if self.arbiter is not None else 0)
        out = [_unanchored(s, checked[s.name], found) for s in specs]
        least = {s.name: p.least for s, p in zip(specs, primary, strict=True)}
        out = [r.invalidate(f"doubtful reading (primary confidence {unarbitrated[r.name]:.3f}, least symbol "
                            f"{least[r.name] or 0:.3f}; needs {DOUBT_BELOW_ALONE} and {LEAST_ALONE}) and no third "
                            "reader for its script") if r.name in unarbitrated and r.valid else r for r in out]
        return tuple(r.invalidate(f"ink crosses the field's {crossing[r.name]} edge (a neighbour's text, or "
                                  "the value is cut)") if r.name in crossing else r for r in out)

    def run_image(self, image: np.ndarray) -> tuple[TemplateResult | None, Match]:
        """Match and extract: the one verdict on a page (``template run``, ``check`` and ``match`` and the
        server all take it). The result is None when no template matched (see ``Match.reason``); a winner
        whose fields mostly fail is doubted and the page's next turn tried (``Match.doubted`` says why)."""
        t0 = time.perf_counter()
        page = Pyramid(image)
        spent = {"match": 0.0, "read": 0.0}
        best: tuple[TemplateResult, Match] | None = None
        unmatched: Match | None = None
        doubts: list[str] = []
        t1 = t0
        for match in self._turned_matches(page):
            t2 = time.perf_counter()
            spent["match"] += (t2 - t1) * 1000
            if match.template is None or match.registration is None:
                unmatched, t1 = unmatched or match, t2
                continue
            tpl, reg = match.template, match.registration
            timings: dict[str, float] = {}
            reads: dict[str, int] = {}
            fields = self.extract(page, tpl, reg, timings, reads, match.labels)
            t1 = time.perf_counter()
            spent["read"] += (t1 - t2) * 1000
            result = TemplateResult(tpl.name, tpl.device, tpl.version, tpl.page, reg.score, fields, reg.angle,
                                    reg.scale, timings, reads)
            if best is None or _valid(result) > _valid(best[0]):
                best = result, match
            doubt = _doubted(result, match)
            if not doubt:
                break
            doubts.append(doubt)
        if best is None:
            return None, unmatched if unmatched is not None else self._match(page)
        result, match = best
        result.timings_ms.update(spent, total=(time.perf_counter() - t0) * 1000)
        if doubts and _doubted(result, match):
            doubts.append(f"every fit was doubted: kept {result.template}, the one with the most valid fields")
        return result, replace(match, doubted=tuple(doubts)) if doubts else match

    def process(self, image: np.ndarray, pipeline: Pipeline | None = None) -> dict[str, Any]:
        """Template mode when a template matches, else the general page path on the same decoded image
        (:meth:`Pipeline.run_image`); the result says which."""
        result, match = self.run_image(image)
        if result is not None:
            out = result.to_dict()
            out["candidates"] = [c.to_dict() for c in match.candidates]
            if match.doubted:
                out["doubted"] = list(match.doubted)
            return out
        if pipeline is None:
            from ocrpipe.engine.pipeline import Pipeline

            pipeline = Pipeline.default()
        doc = pipeline.run_image(image)
        return {"mode": "pipeline", "reason": match.reason, "candidates": [c.to_dict() for c in match.candidates],
                "document": doc.to_dict()}
