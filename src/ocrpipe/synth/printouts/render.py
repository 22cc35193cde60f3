"""Render a layout with values in a chosen font, then apply scan effects; exact ground truth alongside."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ocrpipe.synth.printouts.layouts import Layout, Rect, Slot, Text

_FONT_DIRS = ("/usr/share/fonts/truetype/nanum", "/usr/share/fonts/opentype/noto",
              "/usr/share/fonts/truetype/unfonts-core", "/usr/share/fonts/truetype/dejavu",
              "/usr/share/fonts/truetype/baekmuk")


@dataclass(frozen=True)
class FontSet:
    """Label font (must cover Hangul) and value font, each (file, bold file, ttc index)."""

    name: str
    label: tuple[str, str, int]
    value: tuple[str, str, int]


FONT_SETS: tuple[FontSet, ...] = (
    FontSet("nanum-gothic", ("NanumGothic.ttf", "NanumGothicBold.ttf", 0),
            ("NanumGothic.ttf", "NanumGothicBold.ttf", 0)),
    FontSet("nanum-barun+dejavu-mono", ("NanumBarunGothic.ttf", "NanumBarunGothicBold.ttf", 0),
            ("DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf", 0)),
    FontSet("noto-cjk-kr", ("NotoSansCJK-Regular.ttc", "NotoSansCJK-Bold.ttc", 1),
            ("NotoSansCJK-Regular.ttc", "NotoSansCJK-Bold.ttc", 1)),
    FontSet("undotum", ("UnDotum.ttf", "UnDotumBold.ttf", 0), ("UnDotum.ttf", "UnDotumBold.ttf", 0)),
    FontSet("nanum-coding", ("NanumGothicCoding.ttf", "NanumGothicCodingBold.ttf", 0),
            ("NanumGothicCoding.ttf", "NanumGothicCodingBold.ttf", 0)),
    FontSet("nanum-square+dejavu-sans", ("NanumSquareR.ttf", "NanumSquareB.ttf", 0),
            ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", 0)),
    FontSet("unbatang+dejavu-mono", ("UnBatang.ttf", "UnBatangBold.ttf", 0),
            ("DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf", 0)),
)
REFERENCE_FONT = FONT_SETS[0]


@lru_cache(maxsize=16)
def _find(name: str) -> str:
    for d in _FONT_DIRS:
        p = Path(d) / name
        if p.exists():
            return str(p)
    raise FileNotFoundError(f"font {name} not found in {_FONT_DIRS}")


@lru_cache(maxsize=256)
def _font(spec: tuple[str, str, int], size: int, bold: bool) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(_find(spec[1] if bold else spec[0]), size, index=spec[2])


def available_font_sets() -> list[FontSet]:
    """The font sets whose files are installed."""
    out = []
    for fs in FONT_SETS:
        try:
            for spec in (fs.label, fs.value):
                _find(spec[0]), _find(spec[1])
        except FileNotFoundError:
            continue
        out.append(fs)
    return out


def render_clean(layout: Layout, values: dict[str, str] | None, fonts: FontSet = REFERENCE_FONT,
                 ink: int = 0) -> tuple[np.ndarray, dict[str, list[float]]]:
    """Draw the layout; ``values=None`` draws only the static parts (the template reference).

    Returns the grey image (H, W) uint8 and each value's tight text box [x0, y0, x1, y1].
    """
    img = Image.new("L", (layout.width, layout.height), 255)
    draw = ImageDraw.Draw(img)
    for item in layout.statics:
        if isinstance(item, Rect):
            fill = None if item.fill is None else _ink(item.fill, ink)
            draw.rectangle((item.x0, item.y0, item.x1, item.y1), fill=fill,
                           outline=_ink(0, ink) if item.width else None, width=item.width)
        else:
            _draw_text(draw, item, fonts.label, ink)
    boxes: dict[str, list[float]] = {}
    for slot in layout.slots:
        if values is not None and values.get(slot.name):
            boxes[slot.name] = _draw_slot(draw, slot, values[slot.name], fonts, ink)
    return np.asarray(img), boxes


def _ink(level: int, ink: int) -> int:
    """Map a layout grey level (0 = black) onto a printer whose black is ``ink``."""
    return int(ink + (255 - ink) * level / 255)


def _draw_text(draw: ImageDraw.ImageDraw, t: Text, spec: tuple[str, str, int], ink: int) -> None:
    font = _font(spec, t.size, t.bold)
    anchor = "ra" if t.align == "r" else "la"
    draw.text((t.x, t.y), t.text, font=font, fill=_ink(t.color, ink) if t.color == 0 else t.color, anchor=anchor)


def _draw_slot(draw: ImageDraw.ImageDraw, slot: Slot, text: str, fonts: FontSet, ink: int) -> list[float]:
    hangul = any("\uac00" <= ch <= "\ud7a3" for ch in text)
    font = _font(fonts.label if hangul else fonts.value, slot.size, False)
    x0, y0, x1, y1 = slot.box
    x = x1 - 4 if slot.align == "r" else x0 + 4
    anchor = "rm" if slot.align == "r" else "lm"
    draw.text((x, (y0 + y1) / 2), text, font=font, fill=ink, anchor=anchor)
    bx = draw.textbbox((x, (y0 + y1) / 2), text, font=font, anchor=anchor)
    return [float(v) for v in bx]


# ---- scan effects -------------------------------------------------------------------------------

def sample_effects(rng: np.random.Generator, strength: float = 1.0) -> dict[str, Any]:
    """Random scan parameters: shift, scale, rotation (±3°), blur, noise, JPEG quality, ink and paper."""
    s = strength
    return {
        "angle": float(rng.uniform(-3, 3) * s),
        "scale": float(1 + rng.uniform(-0.05, 0.05) * s),
        "dx": float(rng.uniform(-20, 20) * s),
        "dy": float(rng.uniform(-20, 20) * s),
        "blur": float(rng.uniform(0, 1.1) * s),
        "noise": float(rng.uniform(0, 9) * s),
        "jpeg": int(rng.integers(55, 96)) if rng.random() < 0.8 else 0,
        "ink": int(rng.integers(0, 70)),
        "paper": int(rng.integers(225, 256)),
        "border": int(rng.integers(150, 256)),
    }


SCAN_PAD = 32
"""The scanned image is the printout plus this many pixels of scanner bed on every side."""


def scan_matrix(width: int, height: int, fx: dict[str, Any]) -> np.ndarray:
    """The 2×3 affine mapping clean-printout pixels to scanned-image pixels."""
    m = cv2.getRotationMatrix2D((width / 2, height / 2), fx["angle"], fx["scale"])
    m[:, 2] += (fx["dx"] + SCAN_PAD, fx["dy"] + SCAN_PAD)
    return m


def apply_scan(clean: np.ndarray, fx: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
    """Simulate a scan of the printout; returns an RGB uint8 image ``SCAN_PAD`` larger on every side."""
    h, w = clean.shape[:2]
    paper = clean.astype(np.float32) * (fx["paper"] / 255.0)
    m = scan_matrix(w, h, fx)
    img = cv2.warpAffine(paper, m, (w + 2 * SCAN_PAD, h + 2 * SCAN_PAD), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=float(fx["border"]))
    if fx["blur"] > 0.05:
        img = cv2.GaussianBlur(img, (0, 0), fx["blur"])
    if fx["noise"] > 0:
        img = img + rng.normal(0, fx["noise"], img.shape).astype(np.float32)
    rgb = np.repeat(np.clip(img, 0, 255).astype(np.uint8)[:, :, None], 3, axis=2)
    tint = np.array([1.0, 0.99, 0.96], np.float32)
    rgb = np.clip(rgb.astype(np.float32) * tint, 0, 255).astype(np.uint8)
    if fx["jpeg"]:
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, format="JPEG", quality=fx["jpeg"])
        rgb = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    return rgb


def transform_box(box: list[float], m: np.ndarray) -> list[list[float]]:
    """The four corners of an axis-aligned box after the affine ``m`` (clockwise from top-left)."""
    x0, y0, x1, y1 = box
    pts = np.array([[x0, y0, 1], [x1, y0, 1], [x1, y1, 1], [x0, y1, 1]], np.float64)
    return [[round(float(x), 1), round(float(y), 1)] for x, y in pts @ m.T]


def angle_deg(m: np.ndarray) -> float:
    """Rotation angle of an affine matrix, degrees."""
    return math.degrees(math.atan2(-m[0, 1], m[0, 0]))


def turn_scan(img: np.ndarray, k: int, skew: float = 0.0) -> np.ndarray:
    """A scan as a scanner may also deliver it: skewed by ``skew`` degrees about its centre (the corners
    filled with the scan's corner colour), then turned by ``k`` quarter turns counter-clockwise."""
    h, w = img.shape[:2]
    fill = tuple(int(v) for v in np.atleast_1d(img[0, 0]))
    out = cv2.warpAffine(img, cv2.getRotationMatrix2D((w / 2, h / 2), skew, 1.0), (w, h),
                         borderMode=cv2.BORDER_CONSTANT, borderValue=fill) if skew else img
    return np.ascontiguousarray(np.rot90(out, k))
