"""Eye-clinic device printout layouts: static drawing items, value slots and value samplers.

Each :class:`Layout` is one (device, version, page). Coordinates are pixels of the clean printout
(``width`` × ``height``). Slots are where values are printed; each carries the template field spec that
``export_template`` writes into the shipped YAML, so generator and template share one geometry.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Text:
    """A static text drawn at (x, y) (top of the text's bounding box)."""

    x: float
    y: float
    text: str
    size: int = 22
    bold: bool = False
    align: str = "l"
    color: int = 0


@dataclass(frozen=True)
class Rect:
    """A rectangle: filled when ``fill`` is set, outlined when ``width`` > 0."""

    x0: float
    y0: float
    x1: float
    y1: float
    fill: int | None = None
    width: int = 0


@dataclass(frozen=True)
class Slot:
    """A value slot: text is vertically centred in the box and aligned left or right."""

    name: str
    box: tuple[float, float, float, float]
    spec: dict[str, Any]
    align: str = "r"
    size: int = 28


@dataclass(frozen=True)
class Layout:
    """One printout layout (device, version, page)."""

    key: str
    device: str
    version: str
    page: int
    title: str
    width: int
    height: int
    statics: tuple[Text | Rect, ...]
    slots: tuple[Slot, ...]
    sample: Callable[[np.random.Generator], dict[str, str]]
    rules: tuple[dict[str, Any], ...] = ()
    checks: tuple[dict[str, Any], ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)


# ---- value formatting ------------------------------------------------------------------------------

def _q(x: float, places: str = "0.01") -> Decimal:
    return Decimal(str(x)).quantize(Decimal(places), rounding=ROUND_HALF_UP)


def fmt_signed(x: float, places: str = "0.01") -> str:
    """Diopters as devices print them: explicit sign, fixed decimals, plain ``0.00`` for zero."""
    d = _q(x, places)
    if d == 0:
        return f"{abs(d)}"
    return f"+{d}" if d > 0 else f"{d}"


def _diopter(rng: np.random.Generator, lo: float, hi: float) -> float:
    steps = int(round((hi - lo) / 0.25))
    return lo + 0.25 * int(rng.integers(0, steps + 1))


def _date(rng: np.random.Generator) -> tuple[int, int, int, int, int]:
    return (int(rng.integers(2019, 2027)), int(rng.integers(1, 13)), int(rng.integers(1, 29)),
            int(rng.integers(8, 19)), int(rng.integers(0, 60)))


def _pid(rng: np.random.Generator) -> str:
    return "".join(str(int(d)) for d in rng.integers(0, 10, size=8))


def _refraction(rng: np.random.Generator, eye: str) -> dict[str, str]:
    sph = _diopter(rng, -12.0, 6.0)
    cyl = _diopter(rng, -4.0, 0.0)
    se = Decimal(fmt_signed(sph)) + Decimal(fmt_signed(cyl)) / 2
    return {f"{eye}_sph": fmt_signed(sph), f"{eye}_cyl": fmt_signed(cyl),
            f"{eye}_ax": str(int(rng.integers(1, 181))), f"{eye}_se": fmt_signed(float(se))}


def _kerato(rng: np.random.Generator, eye: str) -> dict[str, str]:
    out = {}
    r1 = round(float(rng.uniform(7.2, 8.4)), 2)
    r2 = round(r1 - float(rng.uniform(0.0, 0.35)), 2)
    for k, r in (("k1", r1), ("k2", r2)):
        mm = _q(r)
        out[f"{eye}_{k}_mm"] = f"{mm}"
        out[f"{eye}_{k}_d"] = f"{_q(337.5 / float(mm))}"
    return out


def sample_ark(rng: np.random.Generator, date_style: str) -> dict[str, str]:
    """Auto-refractor/keratometer values (printed strings)."""
    y, mo, d, h, mi = _date(rng)
    date = f"{y:04d}.{mo:02d}.{d:02d}" if date_style == "ymd" else f"{d:02d}/{mo:02d}/{y:04d}"
    vals = {"patient_id": _pid(rng), "date": date, "exam_time": f"{h:02d}:{mi:02d}"}
    for eye in ("r", "l"):
        vals.update(_refraction(rng, eye))
        vals.update(_kerato(rng, eye))
    vals["pd"] = f"{int(rng.integers(54, 73))} mm"
    return vals


def sample_nct(rng: np.random.Generator) -> dict[str, str]:
    """Non-contact tonometer: three readings per eye and their average (mmHg)."""
    y, mo, d, h, mi = _date(rng)
    vals = {"patient_id": _pid(rng), "date": f"{y:04d}-{mo:02d}-{d:02d}", "exam_time": f"{h:02d}:{mi:02d}"}
    for eye in ("r", "l"):
        base = int(rng.integers(9, 26))
        reads = [int(np.clip(base + rng.integers(-2, 3), 6, 35)) for _ in range(3)]
        for i, v in enumerate(reads, 1):
            vals[f"{eye}_iop{i}"] = str(v)
        vals[f"{eye}_iop_avg"] = f"{_q(sum(reads) / 3, '0.1')}"
    return vals


VA_DECIMALS = ("0.05", "0.1", "0.15", "0.2", "0.3", "0.4", "0.5", "0.6", "0.7", "0.8", "0.9", "1.0", "1.2",
               "1.5", "2.0")
VA_CHARTS = ("한천석", "진용한", "ETDRS")


def logmar(decimal: str) -> str:
    """logMAR printed with two decimals (minus sign for better than 1.0)."""
    v = _q(-math.log10(float(decimal)))
    return "0.00" if v == 0 else f"{v}"


def sample_va(rng: np.random.Generator) -> dict[str, str]:
    """Visual-acuity chart results: decimal acuity and logMAR, uncorrected and corrected."""
    y, mo, d, _, _ = _date(rng)
    vals = {"patient_id": _pid(rng), "date": f"{y:04d}.{mo:02d}.{d:02d}",
            "chart": VA_CHARTS[int(rng.integers(0, len(VA_CHARTS)))]}
    for eye in ("r", "l"):
        i_u = int(rng.integers(0, len(VA_DECIMALS)))
        i_b = int(rng.integers(i_u, len(VA_DECIMALS)))
        for kind, i in (("ucva", i_u), ("bcva", i_b)):
            vals[f"{eye}_{kind}"] = VA_DECIMALS[i]
            vals[f"{eye}_{kind}_logmar"] = logmar(VA_DECIMALS[i])
    return vals


# ---- field specs --------------------------------------------------------------------------------

DIGITS = "0123456789"
SIGNED = "+-.0123456789"

PID = {"type": "text", "normalize": "no_spaces", "whitelist": DIGITS, "validation": {"regex": r"^\d{8}$"}}
TIME = {"type": "text", "normalize": "no_spaces", "whitelist": DIGITS + ":",
        "validation": {"regex": r"^([01]\d|2[0-3]):[0-5]\d$"}}
SPH = {"type": "number", "unit": "D", "whitelist": SIGNED,
       "validation": {"regex": r"^([+-]\d{1,2}\.\d{2}|0\.00)$", "range": [-25, 25], "step": 0.25}}
CYL = {"type": "number", "unit": "D", "whitelist": SIGNED,
       "validation": {"regex": r"^(-\d{1,2}\.\d{2}|0\.00)$", "range": [-10, 0], "step": 0.25}}
AX = {"type": "number", "unit": "°", "whitelist": DIGITS, "validation": {"regex": r"^\d{1,3}$", "range": [1, 180]}}
SE = {"type": "number", "unit": "D", "whitelist": SIGNED,
      "validation": {"regex": r"^([+-]\d{1,2}\.\d{2}|0\.00)$", "range": [-30, 30]}}
KMM = {"type": "number", "unit": "mm", "whitelist": DIGITS + ".",
       "validation": {"regex": r"^\d\.\d{2}$", "range": [5.5, 10.5]}}
KD = {"type": "number", "unit": "D", "whitelist": DIGITS + ".",
      "validation": {"regex": r"^\d{2}\.\d{2}$", "range": [32, 62]}}
PD = {"type": "number", "unit": "mm", "whitelist": DIGITS + "m ",
      "validation": {"regex": r"^\d{2}$", "range": [45, 80]}}
IOP = {"type": "number", "unit": "mmHg", "whitelist": DIGITS, "validation": {"regex": r"^\d{1,2}$", "range": [3, 60]}}
IOPAVG = {"type": "number", "unit": "mmHg", "whitelist": DIGITS + ".",
          "validation": {"regex": r"^\d{1,2}\.\d$", "range": [3, 60]}}
VA = {"type": "number", "whitelist": DIGITS + ".",
      "validation": {"regex": r"^\d\.\d{1,2}$", "allowed": [float(v) for v in VA_DECIMALS]}}
LOGMAR = {"type": "number", "unit": "logMAR", "whitelist": SIGNED,
          "validation": {"regex": r"^-?\d\.\d{2}$", "range": [-0.4, 1.4]}}


def _date_spec(fmt: str, regex: str) -> dict[str, Any]:
    return {"type": "date", "format": fmt, "whitelist": DIGITS + "./-", "validation": {"regex": regex}}


def _k_checks() -> tuple[dict[str, Any], ...]:
    return tuple({"kind": "reciprocal", "fields": [f"{e}_{k}_mm", f"{e}_{k}_d"], "constant": 337.5,
                  "tolerance": 0.006} for e in ("r", "l") for k in ("k1", "k2"))


def _se_checks() -> tuple[dict[str, Any], ...]:
    return tuple({"kind": "spherical_equivalent", "fields": [f"{e}_sph", f"{e}_cyl", f"{e}_se"],
                  "tolerance": 0.006} for e in ("r", "l"))


def _ref_row(eye: str, y: int) -> list[Slot]:
    return [Slot(f"{eye}_sph", (128, y, 280, y + 44), SPH, size=26),
            Slot(f"{eye}_cyl", (288, y, 410, y + 44), CYL, size=26),
            Slot(f"{eye}_ax", (418, y, 490, y + 44), AX, size=26),
            Slot(f"{eye}_se", (496, y, 616, y + 44), SE, size=26)]


# ---- the layouts --------------------------------------------------------------------------------

def _ark_v1() -> Layout:
    st: list[Text | Rect] = [
        Rect(20, 20, 620, 80, fill=0),
        Text(36, 36, "AUTO REF/KERATOMETER", 26, bold=True, color=255),
        Text(604, 36, "ARK-530", 26, bold=True, align="r", color=255),
        Text(40, 112, "환자번호", 22), Text(40, 162, "검사일", 22),
        Rect(20, 210, 620, 214, fill=0),
        Text(40, 230, "굴절검사 REF", 24, bold=True),
        Text(276, 282, "SPH", 20, align="r"), Text(406, 282, "CYL", 20, align="r"),
        Text(486, 282, "AX", 20, align="r"), Text(612, 282, "SE", 20, align="r"),
        Text(50, 326, "R", 26, bold=True), Text(50, 381, "L", 26, bold=True),
        Rect(20, 440, 620, 444, fill=0),
        Text(40, 460, "각막곡률 KRT", 24, bold=True),
        Text(330, 505, "mm", 20, align="r"), Text(480, 505, "D", 20, align="r"),
        Rect(20, 750, 620, 754, fill=0),
        Text(40, 776, "PD", 24, bold=True), Text(380, 776, "VD 12.00 mm", 22),
        Text(40, 880, "서울 밝은눈 안과", 22), Text(600, 880, "02-123-4567", 22, align="r"),
    ]
    slots = [
        Slot("patient_id", (180, 100, 460, 142), PID, align="l"),
        Slot("date", (180, 150, 380, 192), _date_spec("%Y.%m.%d", r"^\d{4}\.\d{2}\.\d{2}$"), align="l"),
        Slot("exam_time", (400, 150, 520, 192), TIME, align="l"),
    ]
    for eye, y in (("r", 318), ("l", 373)):
        slots += _ref_row(eye, y)
    y = 540
    for eye in ("r", "l"):
        for k in ("k1", "k2"):
            st.append(Text(50, y + 8, f"{eye.upper()} {k.upper()}", 22))
            slots += [Slot(f"{eye}_{k}_mm", (190, y, 332, y + 42), KMM),
                      Slot(f"{eye}_{k}_d", (350, y, 482, y + 42), KD)]
            y += 50
    slots.append(Slot("pd", (110, 766, 330, 808), PD, align="l"))
    return Layout("ark_v1", "ARK-530", "1", 1, "Auto refractor/keratometer ARK-530, firmware 1", 640, 960,
                  tuple(st), tuple(slots), lambda rng: sample_ark(rng, "ymd"),
                  rules=({"region": [0.05, 0.03, 0.95, 0.08], "mean": [0, 110]},),
                  checks=_k_checks() + _se_checks())


def _ark_v2() -> Layout:
    st: list[Text | Rect] = [
        Rect(20, 20, 620, 92, width=3), Rect(28, 28, 612, 84, width=1),
        Text(40, 42, "ARK-530A", 26, bold=True), Text(600, 44, "REF/KRT  Ver 2.1", 22, align="r"),
        Text(40, 122, "등록번호", 22), Text(40, 172, "측정일시", 22),
        Text(40, 222, "동공간거리", 22),
        Rect(20, 262, 620, 300, fill=200), Text(36, 268, "굴절 검사 결과", 22, bold=True),
        Text(276, 312, "구면", 20, align="r"), Text(406, 312, "난시", 20, align="r"),
        Text(486, 312, "축", 20, align="r"), Text(612, 312, "등가", 20, align="r"),
        Text(40, 356, "우안 R", 22, bold=True), Text(40, 411, "좌안 L", 22, bold=True),
        Rect(20, 470, 620, 508, fill=200), Text(36, 476, "각막 곡률 (mm / D)", 22, bold=True),
        Text(40, 880, "REF/KRT AUTO MODE", 20), Text(600, 880, "밝은눈 안과", 20, align="r"),
    ]
    slots = [
        Slot("patient_id", (180, 110, 460, 152), PID, align="l"),
        Slot("date", (180, 160, 380, 202), _date_spec("%d/%m/%Y", r"^\d{2}/\d{2}/\d{4}$"), align="l"),
        Slot("exam_time", (400, 160, 520, 202), TIME, align="l"),
        Slot("pd", (180, 210, 400, 252), PD, align="l"),
    ]
    for eye, y in (("r", 348), ("l", 403)):
        slots += _ref_row(eye, y)
    y = 530
    for eye, label in (("r", "우"), ("l", "좌")):
        for k in ("k1", "k2"):
            st.append(Text(40, y + 8, f"{label} {k.upper()}", 22))
            slots += [Slot(f"{eye}_{k}_mm", (230, y, 372, y + 42), KMM),
                      Slot(f"{eye}_{k}_d", (420, y, 562, y + 42), KD)]
            y += 52
    return Layout("ark_v2", "ARK-530", "2", 1, "Auto refractor/keratometer ARK-530A, firmware 2", 640, 960,
                  tuple(st), tuple(slots), lambda rng: sample_ark(rng, "dmy"),
                  rules=({"region": [0.05, 0.035, 0.95, 0.08], "mean": [150, 255]},
                         {"region": [0.45, 0.28, 0.95, 0.305], "mean": [150, 235]}),
                  checks=_k_checks() + _se_checks())


def _nct_v1() -> Layout:
    st: list[Text | Rect] = [
        Rect(20, 20, 620, 76, fill=128),
        Text(36, 32, "NON-CONTACT TONOMETER", 24, bold=True), Text(604, 32, "NT-510", 24, bold=True, align="r"),
        Text(40, 102, "환자번호", 22), Text(40, 152, "검사일", 22),
        Rect(20, 210, 620, 520, width=3), Rect(20, 262, 620, 265, fill=0),
        Text(40, 222, "안압", 24, bold=True),
        Text(250, 224, "1", 22, align="r"), Text(350, 224, "2", 22, align="r"), Text(450, 224, "3", 22, align="r"),
        Text(590, 224, "평균", 22, align="r"),
        Text(50, 310, "우안 R", 24, bold=True), Text(50, 410, "좌안 L", 24, bold=True),
        Text(40, 546, "단위: mmHg", 22), Text(40, 596, "공기압 보정 ON", 22),
        Text(40, 680, "서울 밝은눈 안과", 22),
    ]
    slots = [
        Slot("patient_id", (180, 90, 460, 132), PID, align="l"),
        Slot("date", (180, 140, 380, 182), _date_spec("%Y-%m-%d", r"^\d{4}-\d{2}-\d{2}$"), align="l"),
        Slot("exam_time", (400, 140, 520, 182), TIME, align="l"),
    ]
    for eye, y in (("r", 300), ("l", 400)):
        slots += [Slot(f"{eye}_iop{i}", (x - 70, y, x, y + 46), IOP) for i, x in ((1, 255), (2, 355), (3, 455))]
        slots.append(Slot(f"{eye}_iop_avg", (490, y, 595, y + 46), IOPAVG))
    checks = tuple({"kind": "mean", "fields": [f"{e}_iop1", f"{e}_iop2", f"{e}_iop3", f"{e}_iop_avg"],
                    "tolerance": 0.051} for e in ("r", "l"))
    return Layout("nct_v1", "NT-510", "1", 1, "Non-contact tonometer NT-510", 640, 760, tuple(st), tuple(slots),
                  sample_nct, rules=({"region": [0.05, 0.035, 0.95, 0.09], "mean": [70, 175]},), checks=checks)


def _va_v1() -> Layout:
    st: list[Text | Rect] = [
        Rect(20, 20, 64, 580, fill=0),
        Text(90, 30, "시력 검사 결과  VISUAL ACUITY", 26, bold=True),
        Text(90, 92, "환자번호", 22), Text(440, 92, "검사일", 22), Text(90, 142, "시표", 22),
        Text(440, 142, "검사거리 5 m", 22),
        Rect(80, 200, 780, 203, fill=0),
        Text(330, 218, "나안 UCVA", 22, bold=True, align="r"), Text(470, 218, "logMAR", 20, align="r"),
        Text(620, 218, "교정 BCVA", 22, bold=True, align="r"), Text(760, 218, "logMAR", 20, align="r"),
        Rect(80, 255, 780, 257, fill=0),
        Text(100, 286, "우안 R", 24, bold=True), Text(100, 366, "좌안 L", 24, bold=True),
        Rect(80, 430, 780, 433, fill=0),
        Text(90, 460, "VA-770 시력표 프로젝터", 20), Text(770, 540, "밝은눈 안과", 20, align="r"),
    ]
    slots = [
        Slot("patient_id", (200, 80, 420, 122), PID, align="l"),
        Slot("date", (540, 80, 760, 122), _date_spec("%Y.%m.%d", r"^\d{4}\.\d{2}\.\d{2}$"), align="l"),
        Slot("chart", (200, 130, 420, 172),
             {"type": "enum", "lang": "kor", "validation": {"allowed": list(VA_CHARTS)}}, align="l", size=26),
    ]
    for eye, y in (("r", 276), ("l", 356)):
        slots += [Slot(f"{eye}_ucva", (220, y, 332, y + 46), VA),
                  Slot(f"{eye}_ucva_logmar", (370, y, 472, y + 46), LOGMAR),
                  Slot(f"{eye}_bcva", (510, y, 622, y + 46), VA),
                  Slot(f"{eye}_bcva_logmar", (660, y, 762, y + 46), LOGMAR)]
    checks = tuple({"kind": "logmar", "fields": [f"{e}_{k}", f"{e}_{k}_logmar"], "tolerance": 0.006}
                   for e in ("r", "l") for k in ("ucva", "bcva"))
    return Layout("va_v1", "VA-770", "1", 1, "Visual acuity chart projector VA-770 result slip", 800, 600,
                  tuple(st), tuple(slots), sample_va,
                  rules=({"region": [0.03, 0.05, 0.075, 0.95], "mean": [0, 90]},), checks=checks)


LAYOUTS: dict[str, Layout] = {lay.key: lay for lay in (_ark_v1(), _ark_v2(), _nct_v1(), _va_v1())}
