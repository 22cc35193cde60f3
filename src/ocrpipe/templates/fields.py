"""Field post-processing: normalisation, typed parsing, validation and cross-field checks.

Principle: a value is only ``valid`` when every check that could catch a misread passed: confidence above
the field's threshold, format regex, range, step, allowed values and every cross-field check it is part
of. Anything doubtful is returned with ``valid=False`` and the reasons in ``issues``, never dropped and
never silently accepted.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from rapidfuzz import fuzz

from ocrpipe.templates.schema import Check, FieldSpec

DISAGREE = "readings disagree"
"""Prefix of the issue a field gets when no two independent readers agree on its value."""
NOTHING_READ = "nothing read"
"""The issue of a text field whose reader returned no text."""
ONE_READING = "only one reading"
"""The issue of a field read by one reader only (its value still needs a cross-field check to be valid)."""

_LETTER_FOR_DIGIT = {"O": "0", "I": "1", "S": "5", "B": "8", "Z": "2"}
"""Capital letters a digit may be misread for, the other way round (a code's letter read as a digit)."""
_MINUS = dict.fromkeys(map(ord, "\u2212\u2012\u2013\u2014\u2010\u2011\ufe63\uff0d"), "-")
_DIGIT_LOOKALIKES = str.maketrans({"O": "0", "o": "0", "D": "0", "Q": "0", "l": "1", "I": "1", "|": "1",
                                   "i": "1", "S": "5", "s": "5", "B": "8", "Z": "2", "z": "2", "g": "9", ",": "."})


@dataclass(frozen=True)
class FieldResult:
    """One extracted field (``box``: four corners in original-image pixels, clockwise from top-left)."""

    name: str
    type: str
    value: Any
    raw: str
    confidence: float
    valid: bool
    unit: str | None = None
    box: tuple[tuple[float, float], ...] = ()
    issues: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "value": self.value, "raw": self.raw,
                "confidence": round(self.confidence, 4), "valid": self.valid, "unit": self.unit,
                "box": [[round(x, 1), round(y, 1)] for x, y in self.box], "issues": list(self.issues)}

    def invalidate(self, reason: str) -> FieldResult:
        """A copy marked invalid with one more reason."""
        return replace(self, valid=False, issues=(*self.issues, reason))


def normalize_text(raw: str) -> str:
    """NFKC, unicode minus/dashes → ``-``, whitespace collapsed."""
    s = unicodedata.normalize("NFKC", raw).translate(_MINUS)
    return " ".join(s.split())


def normalize_number(raw: str, unit: str | None) -> str:
    """The numeric token of ``raw``: unit suffix dropped, look-alike letters mapped to digits, no spaces."""
    s = normalize_text(raw)
    if unit:
        s = re.sub(re.escape(unit) + r"\s*$", "", s, flags=re.IGNORECASE)
    s = re.sub(r"\s*(mmhg|mm|d|°)\s*$", "", s, flags=re.IGNORECASE)
    s = s.translate(_DIGIT_LOOKALIKES).replace(" ", "")
    return s


def fit_whitelist(text: str, whitelist: str) -> str:
    """``text`` with each character outside ``whitelist`` that a reader confuses with a digit (``O`` for
    ``0``, ``l`` for ``1``, ...) written as that digit when the whitelist holds it: what Tesseract's
    whitelist does by itself, applied to a neural reader's output too. Other characters stay (and fail
    the field's format)."""
    allowed = set(whitelist)
    out = []
    for c in text:
        mapped = c.translate(_DIGIT_LOOKALIKES) if c not in allowed else c
        out.append(mapped if mapped in allowed else c)
    return "".join(out)


MAX_LOOKALIKES = 4
"""Most look-alike characters of one reading :func:`fit_format` tries both ways (2⁴ variants)."""


def fit_format(text: str, regex: str) -> str:
    """``text`` when it matches ``regex``; else the one variant with some of its digit look-alike letters
    (``O``, ``l``, ``S``...) written as digits that matches, when exactly one does, or failing that the
    one with some digits written as the capital letters they resemble; else ``text``. A code ``AAO5281``
    under ``[A-Z]{2}`` + five digits is ``AA05281``; a reading two variants fit stays as read (and fails the
    format). Validity still needs a second reader to agree on the value."""
    if re.fullmatch(regex, text):
        return text
    back = {v: k for k, v in _LETTER_FOR_DIGIT.items()}
    for swap in (lambda c: c.translate(_DIGIT_LOOKALIKES) if ord(c) in _DIGIT_LOOKALIKES else None,
                 lambda c: back.get(c)):
        spots = [i for i, c in enumerate(text) if swap(c) is not None]
        if not spots or len(spots) > MAX_LOOKALIKES:
            continue
        fits = set()
        for bits in range(1, 2 ** len(spots)):
            chars = list(text)
            for k, i in enumerate(spots):
                if bits >> k & 1:
                    chars[i] = swap(chars[i]) or chars[i]
            if re.fullmatch(regex, variant := "".join(chars)):
                fits.add(variant)
        if len(fits) == 1:
            return fits.pop()
    return text


def _snap_enum(text: str, allowed: list[Any]) -> tuple[str | None, float]:
    """The allowed value closest to ``text`` and its similarity (0–1)."""
    scored = [(str(a), fuzz.ratio(text.replace(" ", ""), str(a).replace(" ", "")) / 100.0) for a in allowed]
    best = max(scored, key=lambda t: t[1])
    return best if best[1] > 0 else (None, 0.0)


def enum_similarity(text: str, spec: FieldSpec) -> float:
    """How close ``text`` is to the nearest allowed value of an enum field (0–1)."""
    return _snap_enum(normalize_text(text), spec.validation.allowed or [])[1]


def parse_field(spec: FieldSpec, raw: str, confidence: float) -> tuple[Any, str, list[str]]:
    """(value, normalised token, issues) for one read; ``value`` is None when it cannot be parsed."""
    issues: list[str] = []
    if spec.type == "number":
        token = normalize_number(raw, spec.unit)
        try:
            value: Any = float(token) if token else None
        except ValueError:
            value = None
        if value is None or not math.isfinite(value):
            return None, token, ["not a number"]
        return value, token, issues
    token = normalize_text(raw)
    if spec.whitelist and spec.type == "text":
        token = fit_whitelist(token, spec.whitelist)
    if spec.type == "date":
        compact = token.replace(" ", "").translate(_DIGIT_LOOKALIKES)
        try:
            return datetime.strptime(compact, spec.format or "").date().isoformat(), compact, issues
        except ValueError:
            return None, compact, [f"not a date in format {spec.format}"]
    if spec.type == "enum":
        allowed = spec.validation.allowed or []
        best, sim = _snap_enum(token, allowed)
        if best is None or sim < 0.6:
            return None, token, [f"not one of {allowed}"]
        if sim < 1.0:
            issues.append(f"snapped {token!r} to {best!r} (similarity {sim:.2f})")
        return best, token, issues
    if spec.normalize == "no_spaces":
        token = token.replace(" ", "")
    elif spec.normalize == "none":
        token = unicodedata.normalize("NFKC", raw).strip()
    if not token:  # a reader that saw nothing gives no value: it neither supports nor vetoes one
        return None, token, [NOTHING_READ]
    if spec.validation.regex:
        token = fit_format(token, spec.validation.regex)
    return token, token, issues


def validate(spec: FieldSpec, value: Any, token: str, confidence: float) -> list[str]:
    """Every validation failure of a parsed value (empty list: valid)."""
    v = spec.validation
    issues = []
    if confidence < spec.min_confidence:
        issues.append(f"confidence {confidence:.2f} < {spec.min_confidence:.2f}")
    if v.regex and not re.fullmatch(v.regex, token):
        issues.append(f"format {token!r} does not match {v.regex}")
    if value is None:
        return issues
    if spec.type == "number":
        if v.range and not v.range[0] <= value <= v.range[1]:
            issues.append(f"{value} outside [{v.range[0]}, {v.range[1]}]")
        if v.step and abs(value / v.step - round(value / v.step)) > 1e-6:
            issues.append(f"{value} is not a multiple of {v.step}")
        if v.allowed is not None and not any(abs(value - float(a)) < 1e-9 for a in v.allowed):
            issues.append(f"{value} not among the allowed values")
    elif v.allowed is not None and spec.type != "enum" and value not in [str(a) for a in v.allowed]:
        issues.append(f"{value!r} not among the allowed values")
    return issues


def check_holds(check: Check, values: list[float]) -> bool:
    """Whether a cross-field check holds for the given values (in ``check.fields`` order)."""
    tol = check.tolerance
    if check.kind == "reciprocal":
        a, b = values
        return a > 0 and abs((check.constant or 0.0) / a - b) <= tol
    if check.kind == "mean":
        *parts, avg = values
        return abs(sum(parts) / len(parts) - avg) <= tol
    if check.kind == "spherical_equivalent":
        sph, cyl, se = values
        return abs(sph + cyl / 2 - se) <= tol
    if check.kind == "logmar":
        dec, lm = values
        return dec > 0 and abs(-math.log10(dec) - lm) <= tol
    if check.kind == "order":
        return all(x <= y + tol for x, y in zip(values, values[1:], strict=False))
    raise ValueError(check.kind)


def _numbers(check: Check, results: dict[str, FieldResult]) -> list[float] | None:
    vals = [results[name].value for name in check.fields]
    return None if any(not isinstance(v, int | float) for v in vals) else [float(v) for v in vals]


def confirmed_fields(checks: list[Check], results: dict[str, FieldResult]) -> set[str]:
    """The fields of every cross-field check that holds with the current values."""
    out: set[str] = set()
    for check in checks:
        vals = _numbers(check, results)
        if vals is not None and check_holds(check, vals):
            out.update(check.fields)
    return out


def apply_checks(checks: list[Check], results: dict[str, FieldResult], *, rescue: bool = False
                 ) -> dict[str, FieldResult]:
    """Invalidate every field of a failed (or unverifiable) cross-field check.

    With ``rescue``, a field whose only issue is that its readers disagree becomes valid again when a check
    it belongs to holds: the check confirms the chosen reading independently.
    """
    out = dict(results)
    for check in checks:
        vals = _numbers(check, results)
        if vals is None:
            reason = f"{check.kind} check unverifiable (a field is unreadable)"
        elif check_holds(check, vals):
            continue
        else:
            pairs = ", ".join(f"{n}={results[n].value}" for n in check.fields)
            reason = f"{check.kind} check failed: {pairs}"
        for name in check.fields:
            out[name] = out[name].invalidate(reason)
    if rescue:
        for name in confirmed_fields(checks, results):
            r = out[name]
            if not r.valid and r.issues and all(i.startswith((DISAGREE, ONE_READING)) for i in r.issues):
                out[name] = replace(r, valid=True, issues=(*r.issues, "confirmed by cross-field check"))
    return out
