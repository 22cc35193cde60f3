"""Template from an example: one clean reference image plus the values printed on it → a template YAML.

``ocrpipe template new REFERENCE --values VALUES.json --name NAME --out DIR``:

1. the reference is read by the full pipeline (:class:`~ocrpipe.engine.pipeline.Pipeline`);
2. each value of VALUES.json is located among the recognised lines (normalised: NFKC, dashes, case and
   spaces ignored; a value may span neighbouring lines of one row, e.g. ``63`` + ``mm``, or be part of a
   longer line such as ``PD 63 mm``), values printed identically several times are given out in reading
   order in the order VALUES.json lists them;
3. its type (number / date / text), format, unit, validation regex and whitelist are inferred from the
   value as printed, and the label beside it (left on the same row, else the column header above) is
   recorded and used as the field's anchor (:mod:`ocrpipe.templates.labels`);
4. the field region is the value's ink widened towards (never into) its neighbours;
5. matching leaves the field regions out (the reference shows its example values); the template and
   the reference are written to DIR, and the reference is read again with the new template: every
   value it cannot locate or reproduce is named.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from rapidfuzz import fuzz

from ocrpipe.document import Line, Word
from ocrpipe.engine.recognize.base import Recognizer
from ocrpipe.templates.fields import normalize_text

DATE_FORMATS = ("%Y.%m.%d", "%Y-%m-%d", "%Y/%m/%d", "%d/%m/%Y", "%d.%m.%Y", "%m/%d/%Y", "%d-%m-%Y",
                "%Y.%m.%d.", "%Y년 %m월 %d일")
"""Date shapes tried in order (the first that parses the printed value wins: day-first before month-first)."""
UNITS = ("mmHg", "mm", "cm", "kg", "D", "°", "%", "logMAR", "dB", "μm", "um")
"""Units recognised after a number (as printed: ``62 mm``, ``-1.25D``)."""
MIN_SIMILARITY = 80.0
"""Lowest rapidfuzz similarity (0–100) at which a recognised span is taken for a value."""
_NUMBER = re.compile(r"^([+-]?)(\d+)(?:\.(\d+))?\s*(" + "|".join(map(re.escape, UNITS)) + r")?$")


def squash(text: str) -> str:
    """The matching key of a text: NFKC, unicode dashes as ``-``, lower case, no whitespace."""
    return "".join(normalize_text(text).lower().split())


@dataclass(frozen=True)
class Span:
    """A located value: its text as recognised and its box (x0, y0, x1, y1) in reference pixels."""

    text: str
    box: tuple[int, int, int, int]
    score: float
    lines: tuple[int, ...]
    """Indices of the recognised lines it was found in."""


def _box(line: Line | Word) -> tuple[int, int, int, int]:
    xs = [p[0] for p in line.box]
    ys = [p[1] for p in line.box]
    return int(min(xs)), int(min(ys)), int(math.ceil(max(xs))), int(math.ceil(max(ys)))


def rows_of(lines: Sequence[Line]) -> list[list[int]]:
    """Line indices grouped into rows (vertical centres within half a line height), each sorted by x."""
    order = sorted(range(len(lines)), key=lambda i: (_box(lines[i])[1] + _box(lines[i])[3]) / 2)
    rows: list[list[int]] = []
    for i in order:
        x0, y0, x1, y1 = _box(lines[i])
        cy, h = (y0 + y1) / 2, y1 - y0
        for row in rows:
            r = _box(lines[row[0]])
            if abs((r[1] + r[3]) / 2 - cy) < 0.5 * max(h, r[3] - r[1]):
                row.append(i)
                break
        else:
            rows.append([i])
    return [sorted(r, key=lambda i: _box(lines[i])[0]) for r in rows]


def _union(boxes: Sequence[tuple[int, int, int, int]]) -> tuple[int, int, int, int]:
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


def _sub_box(line: Line, text: str, start: int, end: int) -> tuple[int, int, int, int]:
    """The part of a line's box holding characters ``start:end`` of its text (proportional to length)."""
    x0, y0, x1, y1 = _box(line)
    n = max(len(text), 1)
    return (int(x0 + (x1 - x0) * start / n), y0, int(math.ceil(x0 + (x1 - x0) * end / n)), y1)


def _in_words(value: str, line: Line, index: int) -> Span | None:
    """``value`` as a run of 1–3 words of ``line`` (their own boxes), None when no run matches."""
    key, best = squash(value), None
    for a in range(len(line.words)):
        for b in range(a + 1, min(a + 3, len(line.words)) + 1):
            run = line.words[a:b]
            text = " ".join(w.text for w in run)
            score = fuzz.ratio(squash(text), key)
            if score >= MIN_SIMILARITY and (best is None or score > best.score):
                box = _union([_box(w) for w in run])
                best = Span(text, box, score - 0.5, (index,))
    return best


def candidates(value: str, lines: Sequence[Line]) -> list[Span]:
    """Every place ``value`` may be printed, best first: runs of 1–3 neighbouring lines of one row that
    equal it (normalised), then parts of single lines that contain it."""
    key = squash(value)
    if not key:
        return []
    out: list[Span] = []
    for row in rows_of(lines):
        for a in range(len(row)):
            for b in range(a + 1, min(a + 3, len(row)) + 1):
                ids = tuple(row[a:b])
                if any(_box(lines[j])[0] - _box(lines[i])[2] > _box(lines[i])[3] - _box(lines[i])[1]
                       for i, j in zip(ids, ids[1:], strict=False)):
                    break  # pieces a line height apart or more are separate items, not one value
                text = " ".join(lines[i].text for i in ids)
                score = fuzz.ratio(squash(text), key)
                if score >= MIN_SIMILARITY:
                    out.append(Span(text, _union([_box(lines[i]) for i in ids]), score - 0.1 * (len(ids) - 1), ids))
        for i in row:
            text = lines[i].text
            if len(squash(text)) <= len(key):
                continue
            if lines[i].words:  # the recogniser's own word boxes
                words = _in_words(value, lines[i], i)
                if words is not None:
                    out.append(words)
                continue
            if len(key) < 3:  # one or two characters inside a longer text: anywhere, likely wrong
                continue
            al = fuzz.partial_ratio_alignment(normalize_text(text).lower(), normalize_text(value).lower())
            if al is not None and al.score >= MIN_SIMILARITY:
                part = normalize_text(text)[al.src_start:al.src_end]
                out.append(Span(part, _sub_box(lines[i], normalize_text(text), al.src_start, al.src_end),
                                al.score - 0.5, (i,)))
    return sorted(out, key=lambda s: (-s.score, s.box[1], s.box[0]))


def reading_order(spans: list[Span]) -> list[Span]:
    """Spans in reading order: rows top to bottom (a span joins a row when its vertical centre lies within
    half a line height of the row's first span), each row left to right. (Rounding ``y / height`` to
    bucket rows split a row whose two boxes straddled a bucket edge, and gave the right value first.)"""
    rows: list[list[Span]] = []
    for sp in sorted(spans, key=lambda sp: (sp.box[1] + sp.box[3]) / 2):
        cy, h = (sp.box[1] + sp.box[3]) / 2, sp.box[3] - sp.box[1]
        if rows and abs((rows[-1][0].box[1] + rows[-1][0].box[3]) / 2 - cy) < 0.5 * max(h, 1):
            rows[-1].append(sp)
        else:
            rows.append([sp])
    return [sp for row in rows for sp in sorted(row, key=lambda sp: sp.box[0])]


def locate(values: dict[str, str], lines: Sequence[Line]) -> dict[str, Span]:
    """Each value's span; values no span matches are left out. A span (or a line) serves one value only;
    values printed the same way are assigned in reading order, in the order ``values`` lists them."""
    taken: set[int] = set()
    out: dict[str, Span] = {}
    by_key: dict[str, list[str]] = {}
    for name, v in values.items():
        by_key.setdefault(squash(v), []).append(name)
    for names in sorted(by_key.values(), key=lambda ns: -len(squash(values[ns[0]]))):
        spans = [s for s in candidates(values[names[0]], lines) if not taken & set(s.lines)]
        best = max((s.score for s in spans), default=0.0)
        chosen: list[Span] = []
        for s in spans:
            if s.score >= best - 1 and not any(set(s.lines) & set(c.lines) for c in chosen):
                chosen.append(s)
        for name, span in zip(names, reading_order(chosen), strict=False):
            out[name] = span
            taken.update(span.lines)
    return out


# ---- type, format and validation -----------------------------------------------------------------

def _shape_regex(text: str) -> str:
    """A regex of the value's shape: digit runs exact in length, letter runs of similar length, the rest
    literal (``AA05999-0000026000`` → ``[A-Z]{2}\\d{5}-\\d{10}``, ``황준태`` → ``[가-힣]{2,5}``)."""
    parts: list[str] = []
    for run in re.finditer(r"\d+|[A-Z]+|[a-z]+|[가-힣]+|\s+|.", text):
        s = run.group()
        n = len(s)
        if s[0].isdigit():
            parts.append(rf"\d{{{n}}}")
        elif s[0].isspace():
            parts.append(" ")
        elif re.fullmatch(r"[A-Z]+|[a-z]+|[가-힣]+", s):
            cls = "[A-Z]" if s[0].isupper() else "[a-z]" if s[0].islower() and s[0].isascii() else "[가-힣]"
            lo, hi = (n, n) if n <= 2 and cls != "[가-힣]" else (max(1, n - 2), n + 2)
            parts.append(cls + (f"{{{n}}}" if lo == hi else f"{{{lo},{hi}}}"))
        else:
            parts.append(re.escape(s))
    return "^" + "".join(parts) + "$"


def _date_regex(fmt: str) -> str:
    codes = {"%Y": r"\d{4}", "%m": r"\d{2}", "%d": r"\d{2}"}
    out = ""
    for piece in re.split(r"(%[Ymd])", fmt):
        out += codes.get(piece, re.escape(piece.replace(" ", "")))
    return "^" + out + "$"


def infer_spec(name: str, value: str) -> dict[str, Any]:
    """The field spec (without region) a printed value suggests: type, format, unit, whitelist, regex."""
    text = normalize_text(value)
    for fmt in DATE_FORMATS:
        try:
            datetime.strptime(text, fmt)
        except ValueError:
            continue
        compact = fmt.replace(" ", "")
        seps = "".join(sorted({c for c in re.sub(r"%[Ymd]", "", compact)}))
        return {"name": name, "type": "date", "format": compact, "whitelist": "0123456789" + seps,
                "validation": {"regex": _date_regex(fmt)}}
    m = _NUMBER.match(text)
    if m and (len(m.group(2)) <= 5 and not (len(m.group(2)) > 1 and m.group(2).startswith("0"))):
        sign, ints, decs, unit = m.groups()
        int_rx = rf"\d{{1,{len(ints) + 1}}}" if len(ints) > 1 or not decs else r"\d{1,2}"
        dec_rx = rf"\.\d{{{len(decs)}}}" if decs else ""
        # a signed decimal may be printed without a sign when it is zero (``0.00``): a sign stays allowed
        sign_rx = "[+-]?" if sign or decs else ""
        spec: dict[str, Any] = {"name": name, "type": "number",
                                "whitelist": ("+-" if sign or decs else "") + ("." if decs else "") + "0123456789",
                                "validation": {"regex": f"^{sign_rx}{int_rx}{dec_rx}$"}}
        if unit:
            spec["unit"] = unit
        return spec
    spec = {"name": name, "type": "text", "normalize": "collapse", "validation": {"regex": _shape_regex(text)}}
    if re.search(r"[가-힣]", text):
        spec["lang"] = "kor"
    elif not re.search(r"[A-Za-z]", text):
        spec["whitelist"] = "".join(sorted((set(text) - {" "}) | set("0123456789")))
        if " " not in text:  # an identifier: a space a reader puts between its digits is not part of it
            spec["normalize"] = "no_spaces"
    return spec


def canonical_value(spec: dict[str, Any], value: str) -> Any:
    """The value the template must return for the printed ``value`` (what the re-read is compared to)."""
    text = normalize_text(value)
    if spec["type"] == "number":
        m = _NUMBER.match(text)
        return float(f"{m.group(1)}{m.group(2)}.{m.group(3) or 0}") if m else None
    if spec["type"] == "date":
        return datetime.strptime(text.replace(" ", ""), spec["format"]).date().isoformat()
    return text


# ---- regions, labels and rules -------------------------------------------------------------------

def widen(box: tuple[int, int, int, int], others: Sequence[tuple[int, int, int, int]],
          ink: np.ndarray, grow: str = "right") -> tuple[int, int, int, int]:
    """The value box widened by up to 1.5 line heights (on the ``grow`` side 60 % of its width if more)
    left and right and a quarter up and down, never
    onto other text or ink (rules, borders): towards ``grow`` (the side a longer value takes: ``left`` for
    right-aligned numbers) up to 0.35 line heights from what it faces, on the other side halfway."""
    x0, y0, x1, y1 = box
    h = y1 - y0
    gap = 0.35 * h
    reach = max(1.5 * h, 0.6 * (x1 - x0))  # another font (a monospace one) prints a long value up to 60 % wider
    left = x0 - (reach if grow == "left" else 1.5 * h)
    right = x1 + (reach if grow == "right" else 1.5 * h)
    top, bottom = y0 - 0.25 * h, y1 + 0.25 * h

    def stop_left(edge: float) -> float:
        return edge + gap if grow == "left" else (edge + x0) / 2

    def stop_right(edge: float) -> float:
        return edge - gap if grow == "right" else (x1 + edge) / 2

    for ox0, oy0, ox1, oy1 in others:
        if min(y1, oy1) - max(y0, oy0) > 0.3 * h:  # same row
            if ox1 <= x0:
                left = max(left, stop_left(ox1))
            elif ox0 >= x1:
                right = min(right, stop_right(ox0))
        elif min(x1, ox1) - max(x0, ox0) > 0:  # same column
            if oy1 <= y0:
                top = max(top, (oy1 + y0) / 2)
            elif oy0 >= y1:
                bottom = min(bottom, (y1 + oy0) / 2)
    hh, w = ink.shape
    band = ink[max(0, y0):y1]
    cols: np.ndarray = np.asarray(band.any(axis=0))
    lx = next((x for x in range(x0 - 1, max(0, int(left)) - 1, -1) if cols[x]), None)
    rx = next((x for x in range(x1, min(w, int(math.ceil(right)))) if cols[x]), None)
    left = left if lx is None else max(stop_left(lx + 1), left)
    right = right if rx is None else min(stop_right(rx), right)
    rows: np.ndarray = np.asarray(ink[:, max(0, int(left)):min(w, int(right))].any(axis=1))
    ty = next((y for y in range(y0 - 1, max(0, int(top)) - 1, -1) if rows[y]), None)
    by = next((y for y in range(y1, min(hh, int(math.ceil(bottom)))) if rows[y]), None)
    top = top if ty is None else (ty + y0) / 2 + 1
    bottom = bottom if by is None else (y1 + by) / 2
    return (max(0, int(left)), max(0, int(top)), min(w, int(math.ceil(right))), min(hh, int(math.ceil(bottom))))


def ink_mask(gray: np.ndarray) -> np.ndarray:
    """Pixels clearly darker than the paper of a clean reference (the paper's edge against a scanner
    lid counts: a region must not reach past it)."""
    paper = float(np.percentile(gray, 90))
    return gray < paper - 40


def labels_for(span: Span, lines: Sequence[Line], used: set[int]
               ) -> tuple[tuple[str, tuple[int, int, int, int]] | None, tuple[str, tuple[int, int, int, int]] | None,
                          bool]:
    """(row label, column header, whether the row label is right beside the value), the first two (text,
    box) or None: the nearest static line left of it on its row, and the nearest static line above it that
    shares its columns (within 2.5 line heights, or within 8 when the row label is not right beside the
    value: a table's header above its rows)."""
    x0, y0, x1, y1 = span.box
    h = y1 - y0
    left: tuple[float, str, tuple[int, int, int, int]] | None = None
    above: tuple[float, str, tuple[int, int, int, int]] | None = None
    for i, line in enumerate(lines):
        if i in used or not squash(line.text):
            continue
        b = _box(line)
        if min(y1, b[3]) - max(y0, b[1]) > 0.3 * h and b[2] <= x0 + 2:
            if left is None or x0 - b[2] < left[0]:
                left = (x0 - b[2], line.text, b)
        elif (b[3] <= y0 + 2 and y0 - b[3] < 8 * h and min(x1, b[2]) - max(x0, b[0]) > 0
              and b[2] - b[0] <= 2 * (x1 - x0)  # a column header, not a title across the page
              and (above is None or y0 - b[3] < above[0])):
            above = (y0 - b[3], line.text, b)
    if above is not None and above[0] >= 2.5 * h and left is not None and left[0] < 3 * h:
        above = None  # a label right beside the value places it; a header rows above does not
    return (None if left is None else left[1:], None if above is None else above[1:],  # type: ignore[return-value]
            left is not None and left[0] < 3 * h)


def _label(text: str, box: tuple[int, int, int, int], side: str, size: tuple[int, int]) -> dict[str, Any]:
    w, h = size
    return {"text": text, "region": [round(max(0, box[0]) / w, 4), round(max(0, box[1]) / h, 4),
                                     round(min(w, box[2]) / w, 4), round(min(h, box[3]) / h, 4)], "side": side}


def trim_to_paper(image: np.ndarray) -> np.ndarray:
    """The image cut to its paper when it shows a margin of scanner lid or desk around it.

    The margin is what the four corners show; the paper is the rows and columns at least half of whose
    pixels differ from it. A reference with such a margin would register by the margin's edge, which
    moves from scan to scan. An image whose corners are paper is returned as it is."""
    from ocrpipe.templates.register import to_gray

    gray = to_gray(image).astype(np.int16)
    k = max(2, min(gray.shape) // 50)
    corners = np.concatenate([gray[:k, :k].ravel(), gray[:k, -k:].ravel(), gray[-k:, :k].ravel(),
                              gray[-k:, -k:].ravel()])
    paper = np.abs(gray - int(np.median(corners))) > 8
    rows = np.nonzero(paper.mean(axis=1) >= 0.5)[0]
    cols = np.nonzero(paper.mean(axis=0) >= 0.5)[0]
    if len(rows) < gray.shape[0] // 4 or len(cols) < gray.shape[1] // 4:
        return image
    return image[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]


# ---- the whole proposal ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Proposal:
    """A proposed template (as YAML-ready data) and the values that could not be located."""

    data: dict[str, Any]
    missing: tuple[str, ...]
    expected: dict[str, Any]
    """Field name → the value the template must read on the reference."""


BAND_PAD = 0.05
"""Margin (fraction of the page height) above and below the fields and labels in the matching band."""


def _matching(fields: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Matching leaves the example values out; when fields and labels fill a band of at most 70 % of the
    page height (a form's header above changing body text), it compares only that band, full width."""
    regions = [f["region"] for f in fields] + [f[k]["region"] for f in fields for k in ("label", "column") if k in f]
    out: dict[str, Any] = {"ignore_fields": True}
    if regions:
        top = max(0.0, min(r[1] for r in regions) - BAND_PAD)
        bottom = min(1.0, max(r[3] for r in regions) + BAND_PAD)
        if bottom - top <= 0.7:
            out["region"] = [0.0, round(top, 4), 1.0, round(bottom, 4)]
    return out


def propose(image: np.ndarray, values: dict[str, str], lines: Sequence[Line], *, name: str,
            device: str | None = None, version: str = "1") -> Proposal:
    """A template for ``image`` (RGB/grey reference) whose recognised ``lines`` hold ``values``."""
    from ocrpipe.templates.register import to_gray

    gray = to_gray(image)
    h, w = gray.shape
    spans = locate(values, lines)
    used = {i for s in spans.values() for i in s.lines}
    boxes = [s.box for s in spans.values()] + [_box(line) for i, line in enumerate(lines) if i not in used]
    ink = ink_mask(gray)
    fields, expected = [], {}
    for fname, value in values.items():
        span = spans.get(fname)
        if span is None:
            continue
        spec = infer_spec(fname, value)
        grow = "left" if spec["type"] == "number" else "right"  # numbers print right-aligned in columns
        x0, y0, x1, y1 = widen(span.box, [b for b in boxes if b != span.box], ink, grow)
        spec["region"] = [round(x0 / w, 4), round(y0 / h, 4), round(x1 / w, 4), round(y1 / h, 4)]
        row, column, beside = labels_for(span, lines, used)
        if row is not None:
            spec["label"] = {**_label(*row, "left", (w, h)), "follow": "xy" if beside else "y"}
            if column is not None and not beside:  # a label right beside the value places it both ways
                spec["column"] = {**_label(*column, "above", (w, h)), "follow": "x"}
        elif column is not None:
            spec["label"] = _label(*column, "above", (w, h))
        fields.append(spec)
        expected[fname] = canonical_value(spec, value)
    data = {"name": name, "device": device or name, "version": version, "page": 1,
            "description": f"made by ocrpipe template new from {len(values)} values", "size": [w, h],
            "reference": f"{name}.png", "min_score": 0.55,
            "matching": _matching(fields),
            "rules": [], "fields": fields}
    return Proposal(data, tuple(n for n in values if n not in spans), expected)



def confirm_labels(data: dict[str, Any], image: np.ndarray, recognizer: Recognizer) -> list[str]:
    """Drop every label the run-time reader does not find at its place on the reference itself (the
    full pipeline may read a short label differently); returns the dropped label texts."""
    from ocrpipe.templates.labels import find_labels
    from ocrpipe.templates.register import Registration, to_gray
    from ocrpipe.templates.schema import Label, Template

    tpl = Template.model_validate({**data, "reference": "-"})
    labels = [lab for f in tpl.fields for lab in (f.label, f.column) if lab is not None]
    identity = Registration(np.array([[1.0, 0, 0], [0, 1.0, 0]]), 1.0)
    found = find_labels(labels, tpl, to_gray(image), identity, recognizer)
    w, h = tpl.size
    ink: dict[Label, list[float]] = {}  # by label, place included: a row label "1" may be printed twice
    for lab, at in found.items():
        x0, y0, x1, y1 = tpl.pixel_box(lab.region)
        if at is not None and max(abs(at.dx), abs(at.dy)) <= 0.6 * (y1 - y0):
            b = at.box
            ink[lab] = [round(b[0] / w, 4), round(b[1] / h, 4), round(b[2] / w, 4), round(b[3] / h, 4)]
    dropped: list[str] = []
    for f in data["fields"]:
        for key in ("label", "column"):
            if key not in f:
                continue
            lab = Label.model_validate(f[key])
            if lab in ink:
                f[key] = {**f[key], "region": ink[lab]}  # offsets on scans are measured ink to ink
            else:
                dropped.append(f.pop(key)["text"])
        if "column" in f and "label" not in f:
            f["label"] = {**f.pop("column"), "follow": "xy"}
    adopt_columns(data["fields"])
    return dropped


def builtin_clash(name: str) -> str | None:
    """The file of the built-in template called ``name`` (a user template may not take it), else None."""
    from ocrpipe.templates.schema import builtin_templates

    return next((t.source for t in builtin_templates() if t.name == name), None)


def make(image: np.ndarray, values: dict[str, str], lines: Sequence[Line], recognizer: Recognizer, *, name: str,
         device: str | None = None, version: str = "1") -> tuple[Proposal, list[str]]:
    """What ``template new`` and the web page's editor propose for a reference: :func:`propose`, then
    :func:`confirm_labels` with the run-time ``recognizer``; the proposal and the label texts dropped."""
    proposal = propose(image, values, lines, name=name, device=device, version=version)
    if not proposal.data["fields"]:  # no value found: nothing to anchor (the caller names the missing ones)
        return proposal, []
    return proposal, confirm_labels(proposal.data, image, recognizer)


def adopt_columns(fields: list[dict[str, Any]]) -> None:
    """A cell placed by its row label alone (``follow: y``) whose region shares a column with cells that
    follow a column header takes the header of the nearest of them (a table whose own header the reader
    missed, or a value under the table printed in one of its columns): it then moves sideways with that
    column. The overlap must cover half the narrower region."""
    def overlap(a: list[float], b: list[float]) -> bool:
        return min(a[2], b[2]) - max(a[0], b[0]) >= 0.5 * min(a[2] - a[0], b[2] - b[0])

    headed = [f for f in fields if "column" in f]
    for f in fields:
        lab = f.get("label")
        if "column" in f or lab is None or lab.get("follow") != "y":
            continue
        near = [g for g in headed if overlap(f["region"], g["region"])]
        if near:
            best = min(near, key=lambda g: abs(g["region"][1] - f["region"][1]))
            f["column"] = dict(best["column"])


class _Dumper(yaml.SafeDumper):
    """Short lists of scalars (regions, ranges) in flow style: ``region: [0.1, 0.2, 0.3, 0.4]``."""


def _flow_list(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.Node:
    flow = all(not isinstance(v, dict | list) for v in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_Dumper.add_representer(list, _flow_list)
# a label shared by several fields is written out at each, not as a YAML alias
_Dumper.ignore_aliases = lambda self, data: True  # type: ignore[method-assign]


def write(proposal: Proposal, image: np.ndarray, out: str | Path) -> Path:
    """Validate the proposal, write ``OUT/NAME.yaml`` and the reference ``OUT/NAME.png``; the YAML path."""
    from PIL import Image

    from ocrpipe.templates.schema import load_template

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    name = proposal.data["name"]
    Image.fromarray(image).save(out / f"{name}.png", optimize=True)
    path = out / f"{name}.yaml"
    text = yaml.dump(proposal.data, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=110)
    path.write_text(f"# made by ocrpipe template new; safe to edit, check with ocrpipe template check\n{text}",
                    encoding="utf-8")
    load_template(path)  # the written file must load: a schema error names the file and the key
    return path


def same(expected: Any, got: Any) -> bool:
    """Numbers equal up to float noise, anything else exactly."""
    if isinstance(expected, float):
        return isinstance(got, int | float) and abs(float(got) - expected) < 1e-9
    return bool(got == expected)


def reproduce(proposal: Proposal, result: Any) -> list[str]:
    """Why the template's reading of its own reference falls short: one line per value not reproduced
    (``result`` is the :class:`~ocrpipe.templates.engine.TemplateResult`, None when the page did not match)."""
    problems = [f"{n}: value not found on the reference" for n in proposal.missing]
    if result is None:
        return [*problems, "the reference does not match its own template"]
    got = {f.name: f for f in result.fields}
    for fname, want in proposal.expected.items():
        f = got[fname]
        if not same(want, f.value):
            problems.append(f"{fname}: read {f.value!r} (raw {f.raw!r}), expected {want!r}")
        elif not f.valid:
            problems.append(f"{fname}: read {f.value!r} but flagged ({'; '.join(f.issues)})")
    return problems
