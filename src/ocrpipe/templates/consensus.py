"""Combine independent readings of one field into a value and a verdict.

A field is read by the primary recogniser and by Tesseract (a different model). A third, neural reader
arbitrates when those two do not agree on a valid value, or when the primary is unsure. The rules that
keep silently wrong values out:

- a value is *valid* only when at least two different readers produced it, it passes every validation of
  its field, and no other *vetoing* reader produced a different value. Neural readers veto; Tesseract
  does not: its lone dissent against two agreeing neural readers is overruled (on generated printouts
  it misreads about one field in twenty — dropped minus signs, ``+`` read as ``4`` — ten times the
  neural readers' rate), but a neural reader that sees another digit always flags the field;
- a value only one reader saw may still be returned (the best guess, e.g. the only reading that passes
  validation) but is flagged, and only a cross-field check that holds can confirm it later
  (:func:`~ocrpipe.templates.fields.apply_checks`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ocrpipe.templates.fields import DISAGREE, ONE_READING, parse_field, validate
from ocrpipe.templates.schema import FieldSpec


@dataclass(frozen=True)
class Reading:
    """One reader's text for a field, parsed and validated against the field's spec."""

    reader: str
    text: str
    confidence: float
    value: Any
    issues: tuple[str, ...]
    veto: bool = True
    """Whether this reader producing another value keeps the field from being valid."""

    @classmethod
    def of(cls, spec: FieldSpec, reader: str, text: str, confidence: float, *, veto: bool = True) -> Reading:
        """Parse and validate ``text`` as read by ``reader``."""
        value, token, issues = parse_field(spec, text, confidence)
        issues += validate(spec, value, token, confidence)
        return cls(reader, text, confidence, value, tuple(issues), veto)


@dataclass(frozen=True)
class Verdict:
    """What the readings of one field add up to."""

    value: Any
    raw: str
    confidence: float
    issues: tuple[str, ...]
    support: int
    """How many readers produced ``value``."""

    @property
    def valid(self) -> bool:
        return not self.issues


def settled(first: Reading, second: Reading) -> bool:
    """Whether two readings agree on a value, and it passes validation for at least one of them."""
    return first.value is not None and first.value == second.value and not (first.issues and second.issues)


def decide(readings: list[Reading], *, confirm: bool = True) -> Verdict:
    """The verdict of ``readings`` (in priority order: ties between values go to the earlier reader).

    Values are grouped; a group is ranked by whether any of its readings passes validation, then by how
    many readers produced it, then by priority. Within the winning group the reading with the fewest
    issues (then the earliest) speaks for it. With ``confirm`` a value needs two readers and no vetoing
    dissent to be valid; without it (a single reader by choice) validation alone decides.
    """
    groups: dict[Any, list[Reading]] = {}
    for r in readings:
        if r.value is not None:
            groups.setdefault(r.value, []).append(r)
    if not groups:
        first = readings[0]
        return Verdict(None, first.text, first.confidence, first.issues or (DISAGREE,), 0)

    def rank(item: tuple[Any, list[Reading]]) -> tuple[bool, int, int]:
        members = item[1]
        return (any(not m.issues for m in members), len(members), -readings.index(members[0]))

    value, members = max(groups.items(), key=rank)
    best = min(members, key=lambda m: len(m.issues))
    issues = best.issues
    vetoed = any(r.veto and r.value is not None and r.value != value for r in readings)
    if confirm and len(readings) == 1:
        issues = (*issues, ONE_READING)
    elif confirm and (len(members) < 2 or vetoed):
        others = ", ".join(f"{r.reader} {r.text!r}" for r in readings if r is not best)
        issues = (*issues, f"{DISAGREE} ({others})")
    return Verdict(best.value, best.text, best.confidence, issues, len(members))
