"""Layouts kept out of the built-in templates, for judging ``ocrpipe template new`` on what it never saw.

- ``rm_slip_v1``: a refraction report slip in sections (``<R>`` / ``<L>``, rows ``1``, ``2``, ``AVE`` under
  the columns ``S``, ``C``, ``A``, then ``PD``) whose columns move 0–110 px with the printer font, the
  way firmware prints wider fonts further right;
- ``ko_form_v1``: a Korean examination form with a fixed header block (이름, 등록번호, 검사일, MSDS번호)
  above body text that changes from page to page;
- ``kr_tk_v1``: a Korean tonometer/keratometer report in two sections (``[안압 IOP]`` with the columns
  ``1회``, ``2회``, ``평균``; ``[각막곡률 K]`` with ``K1``, ``K2``, ``AXIS``; rows ``우안`` / ``좌안``) under a
  Korean patient header, whose columns move 0–70 px with the printer font by other steps than the slip's.

Neither has a template in the package: a test or a benchmark makes one with ``template new`` from one
clean page (``make_page(..., strength=0)``) and its values, then reads scan-degraded pages of the layout.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from ocrpipe.synth.printouts.layouts import (
    AX,
    CYL,
    DIGITS,
    IOP,
    IOPAVG,
    KD,
    PD,
    PID,
    SPH,
    Layout,
    Rect,
    Slot,
    Text,
    _date,
    _date_spec,
    _diopter,
    _pid,
    fmt_signed,
)

SHIFTS = (0, 80, 95, 110, 40, 60, 100)
"""Column shift (px) of ``rm_slip_v1`` per font set, in :data:`~ocrpipe.synth.printouts.render.FONT_SETS`
order."""
COLUMNS_FROM = 150
"""Everything of ``rm_slip_v1`` right of this x moves with the font."""


def shift_columns(layout: Layout, dx: float, from_x: float = COLUMNS_FROM) -> Layout:
    """``layout`` with every text, rule and slot starting right of ``from_x`` moved ``dx`` px right."""
    statics: list[Text | Rect] = []
    for item in layout.statics:
        if isinstance(item, Text) and item.x >= from_x:
            statics.append(replace(item, x=item.x + dx))
        elif isinstance(item, Rect) and item.x0 >= from_x:
            statics.append(replace(item, x0=item.x0 + dx, x1=item.x1 + dx))
        else:
            statics.append(item)
    slots = tuple(replace(s, box=(s.box[0] + dx, s.box[1], s.box[2] + dx, s.box[3])) if s.box[0] >= from_x else s
                  for s in layout.slots)
    return replace(layout, statics=tuple(statics), slots=slots)


def _slip_variant(layout: Layout, font_index: int, rng: np.random.Generator) -> Layout:
    return shift_columns(layout, SHIFTS[font_index % len(SHIFTS)])


def sample_slip(rng: np.random.Generator) -> dict[str, str]:
    """Two readings and their average per eye, PD, patient id and date."""
    y, mo, d, h, mi = _date(rng)
    vals = {"patient_id": _pid(rng), "date": f"{y:04d}/{mo:02d}/{d:02d}"}
    for eye in ("r", "l"):
        sph, cyl, ax = _diopter(rng, -10.0, 5.0), _diopter(rng, -3.0, 0.0), int(rng.integers(1, 181))
        for row in ("1", "2", "ave"):
            vals[f"{eye}{row}_s"] = fmt_signed(sph + (0.25 * int(rng.integers(-1, 2)) if row != "ave" else 0))
            vals[f"{eye}{row}_c"] = fmt_signed(min(0.0, cyl + (0.25 * int(rng.integers(-1, 2)) if row != "ave"
                                                                else 0)))
            vals[f"{eye}{row}_a"] = str(int(np.clip(ax + (int(rng.integers(-3, 4)) if row != "ave" else 0), 1, 180)))
    vals["pd"] = str(int(rng.integers(54, 73)))
    return vals


def _rm_slip_v1() -> Layout:
    st: list[Text | Rect] = [
        Text(40, 30, "REF  RM-800", 28, bold=True), Text(40, 76, "ID", 22), Text(40, 122, "DATE", 22),
        Rect(20, 166, 700, 169, fill=0),
    ]
    slots = [Slot("patient_id", (110, 68, 400, 108), PID, align="l"),
             Slot("date", (110, 114, 400, 154), _date_spec("%Y/%m/%d", r"^\d{4}/\d{2}/\d{2}$"), align="l")]
    y = 186
    for eye in ("r", "l"):
        st.append(Text(40, y, f"<{eye.upper()}>", 24, bold=True))
        st += [Text(320, y + 4, "S", 22, align="r"), Text(450, y + 4, "C", 22, align="r"),
               Text(540, y + 4, "A", 22, align="r")]
        y += 44
        for row, label in (("1", "1"), ("2", "2"), ("ave", "AVE")):
            st.append(Text(60, y + 8, label, 22, bold=row == "ave"))
            slots += [Slot(f"{eye}{row}_s", (200, y, 324, y + 42), SPH, size=26),
                      Slot(f"{eye}{row}_c", (334, y, 454, y + 42), CYL, size=26),
                      Slot(f"{eye}{row}_a", (470, y, 544, y + 42), AX, size=26)]
            y += 48
        y += 16
    st += [Rect(20, y, 700, y + 3, fill=0), Text(40, y + 24, "PD", 24, bold=True)]
    pd = {**PD, "whitelist": DIGITS, "validation": {"regex": r"^\d{2}$", "range": [45, 80]}}
    slots.append(Slot("pd", (200, y + 14, 300, y + 58), pd))
    st.append(Text(40, y + 100, "NIDEK-LIKE REFRACTOMETER  v3", 20))
    return Layout("rm_slip_v1", "RM-800", "3", 1, "Refraction report slip in sections, columns move with the font",
                  720, y + 160, tuple(st), tuple(slots), sample_slip, extra={"variant": _slip_variant})


SURNAMES = "김이박최정강조윤장임한오서신권황안송류홍"
GIVEN = "민서준지현우수영하은도윤태희성진아연호재"
BODY = ("상기 환자는 본원에서 시행한 검사 결과를 통보합니다.", "검사 결과는 참고용이며 진료 시 의사와 상담하십시오.",
        "다음 내원 시 본 통보서를 지참하여 주십시오.", "검사 항목: 굴절 검사, 안압 검사, 시력 검사",
        "특이 소견 없음. 정기 검진을 권장합니다.", "안경 처방은 검사 후 3개월 이내에 사용하십시오.",
        "콘택트렌즈 착용자는 검사 전 착용을 중지하였습니다.", "산동 검사 후 4시간 동안 운전을 삼가십시오.",
        "녹내장 가족력: 없음", "당뇨병성 망막병증 선별 검사 권고", "우안 시력 저하 호소, 추적 관찰 예정",
        "좌안 결막 충혈 소견, 안약 처방", "야간 운전 시 눈부심 호소", "인공눈물 1일 4회 점안",
        "다음 검사 예정일은 접수처에 문의하십시오.", "본 통보서는 재발급이 가능합니다.")


def sample_form(rng: np.random.Generator) -> dict[str, str]:
    """A Korean name, registration number, date and an MSDS-style number."""
    y, mo, d, _, _ = _date(rng)
    name = SURNAMES[int(rng.integers(0, len(SURNAMES)))] + "".join(
        GIVEN[int(i)] for i in rng.integers(0, len(GIVEN), size=int(rng.integers(1, 3))))
    msds = f"AA{int(rng.integers(0, 100000)):05d}-{int(rng.integers(0, 10**10)):010d}"
    return {"name": name, "reg_no": _pid(rng), "date": f"{y:04d}.{mo:02d}.{d:02d}", "msds": msds}


def _form_variant(layout: Layout, font_index: int, rng: np.random.Generator) -> Layout:
    """Body text that changes from page to page: 6–12 of :data:`BODY` in random order."""
    n = int(rng.integers(6, 13))
    lines = [BODY[int(i)] for i in rng.permutation(len(BODY))[:n]]
    body = tuple(Text(50, 340 + 44 * i, t, 22) for i, t in enumerate(lines))
    return replace(layout, statics=layout.statics + body)


def _ko_form_v1() -> Layout:
    name = {"type": "text", "lang": "kor", "validation": {"regex": r"^[가-힣]{2,4}$"}}
    msds = {"type": "text", "normalize": "no_spaces", "whitelist": DIGITS + "A-",
            "validation": {"regex": r"^AA\d{5}-\d{10}$"}}
    st: list[Text | Rect] = [
        Text(400, 28, "검사 결과 통보서", 30, bold=True, align="r"), Text(420, 36, "밝은눈 안과", 22),
        Rect(30, 80, 770, 290, width=2),
        Text(50, 100, "이름", 22), Text(50, 150, "등록번호", 22), Text(50, 200, "검사일", 22),
        Text(50, 250, "MSDS번호", 22), Rect(30, 310, 770, 312, fill=0),
    ]
    slots = (Slot("name", (190, 92, 450, 132), name, align="l"),
             Slot("reg_no", (190, 142, 450, 182), PID, align="l"),
             Slot("date", (190, 192, 450, 232), _date_spec("%Y.%m.%d", r"^\d{4}\.\d{2}\.\d{2}$"), align="l"),
             Slot("msds", (190, 242, 600, 282), msds, align="l"))
    return Layout("ko_form_v1", "FORM-1", "1", 1, "Korean examination form: fixed header, changing body", 800, 920,
                  tuple(st), slots, sample_form, extra={"variant": _form_variant})


TK_SHIFTS = (0, 50, 70, 30, 60, 20, 40)
"""Column shift (px) of ``kr_tk_v1`` per font set."""


def _tk_variant(layout: Layout, font_index: int, rng: np.random.Generator) -> Layout:
    return shift_columns(layout, TK_SHIFTS[font_index % len(TK_SHIFTS)], from_x=180)


def _name(rng: np.random.Generator) -> str:
    return SURNAMES[int(rng.integers(0, len(SURNAMES)))] + "".join(
        GIVEN[int(i)] for i in rng.integers(0, len(GIVEN), size=int(rng.integers(1, 3))))


def sample_tk(rng: np.random.Generator) -> dict[str, str]:
    """A Korean name, chart number, date; two IOP readings and their mean, K1, K2 and axis per eye."""
    y, mo, d, _, _ = _date(rng)
    vals = {"name": _name(rng), "chart": _pid(rng), "date": f"{y:04d}-{mo:02d}-{d:02d}"}
    for eye in ("r", "l"):
        a, b = int(rng.integers(9, 25)), int(rng.integers(9, 25))
        vals |= {f"{eye}_iop1": str(a), f"{eye}_iop2": str(b), f"{eye}_iop_avg": f"{(a + b) / 2:.1f}"}
        k1 = _diopter(rng, 40.0, 46.0)
        vals |= {f"{eye}_k1": f"{k1:.2f}", f"{eye}_k2": f"{k1 + _diopter(rng, 0.0, 2.5):.2f}",
                 f"{eye}_kax": str(int(rng.integers(1, 181)))}
    return vals


def _kr_tk_v1() -> Layout:
    name = {"type": "text", "lang": "kor", "validation": {"regex": r"^[가-힣]{2,4}$"}}
    kd = {**KD, "unit": None}
    st: list[Text | Rect] = [
        Text(40, 24, "안압·각막 검사 결과", 28, bold=True), Text(40, 80, "환자명", 22), Text(40, 126, "차트번호", 22),
        Text(40, 172, "검사일", 22), Rect(20, 214, 740, 217, fill=0),
    ]
    slots = [Slot("name", (170, 72, 430, 112), name, align="l"), Slot("chart", (170, 118, 430, 158), PID, align="l"),
             Slot("date", (170, 164, 430, 204), _date_spec("%Y-%m-%d", r"^\d{4}-\d{2}-\d{2}$"), align="l")]
    y = 232
    sections: tuple[tuple[str, tuple[str, ...], tuple[tuple[str, dict[str, Any]], ...]], ...] = (
        ("[안압 IOP]", ("1회", "2회", "평균"), (("iop1", IOP), ("iop2", IOP), ("iop_avg", IOPAVG))),
        ("[각막곡률 K]", ("K1", "K2", "AXIS"), (("k1", kd), ("k2", kd), ("kax", AX))))
    for title, heads, specs in sections:
        st.append(Text(40, y, title, 24, bold=True))
        st += [Text(x, y + 44, h, 22, align="r") for x, h in zip((330, 470, 610), heads, strict=True)]
        y += 88
        for eye, label in (("r", "우안"), ("l", "좌안")):
            st.append(Text(60, y + 8, label, 22))
            slots += [Slot(f"{eye}_{key}", (x0, y, x0 + 124, y + 42), spec, size=26)
                      for x0, (key, spec) in zip((210, 350, 490), specs, strict=True)]
            y += 48
        y += 24
    st += [Rect(20, y, 740, y + 3, fill=0), Text(40, y + 24, "TONO-KERATO  TK-2000  ver 1.2", 20)]
    return Layout("kr_tk_v1", "TK-2000", "1", 1, "Korean tonometer/keratometer report in sections, columns move",
                  760, y + 90, tuple(st), tuple(slots), sample_tk, extra={"variant": _tk_variant})


HELDOUT: dict[str, Layout] = {lay.key: lay for lay in (_rm_slip_v1(), _ko_form_v1(), _kr_tk_v1())}
"""Layouts without a built-in template (see the module docstring)."""


def layout_for_page(layout: Layout, font_index: int, rng: np.random.Generator) -> Layout:
    """The layout as printed on one page: its ``variant`` applied (font-dependent columns, body text)."""
    variant: Any = layout.extra.get("variant")
    return variant(layout, font_index, rng) if variant is not None else layout
