"""Synthetic vertical lines: Korean (or mixed) text set top to bottom with every character upright, as on
signs, packaging and book spines, on a small page with mild scan effects.

Used by the vertical-line tests and ``benchmarks/vertical_lines.py``. Texts come from the hunspell-ko
lexicon (:func:`ocrpipe.synth.text.korean_lexicon`), never from the evaluation data.
"""

from __future__ import annotations

import random

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ocrpipe.synth.lines import FontFace, discover_fonts, jpeg_round_trip
from ocrpipe.synth.text import korean_lexicon


def korean_fonts() -> list[FontFace]:
    """The discovered faces that cover Hangul (at least 2,000 syllables), upright ones only."""
    return [f for f in discover_fonts() if sum("\uac00" <= c <= "\ud7a3" for c in f.cover) >= 2000
            and not any(x in f.path for x in ("Italic", "Oblique"))]


def column_text(rng: random.Random, words: int = 2) -> str:
    """``words`` lexicon words of 2–5 syllables, space separated, sometimes followed by a number."""
    lex = [w for w in korean_lexicon() if 2 <= len(w) <= 5]
    text = " ".join(rng.choice(lex) for _ in range(words))
    return text + (f" {rng.randint(1, 99)}" if rng.random() < 0.3 else "")


def render_column(text: str, face: FontFace, size: int, *, rng: random.Random | None = None,
                  pitch: float = 1.15, noise: bool = True) -> np.ndarray:
    """An RGB page with ``text`` set as one top-to-bottom column, characters upright and centred in cells
    ``pitch`` × ``size`` high (a space: half a cell); with ``noise``, blur, grain and JPEG as a scan."""
    rng = rng or random.Random(0)
    font = ImageFont.truetype(face.path, size, index=face.index)
    cell = int(round(pitch * size))
    height = sum(cell // 2 if ch == " " else cell for ch in text)
    margin = 2 * size
    img = Image.new("L", (size + 2 * margin, height + 2 * margin), 255 - rng.randint(0, 25))
    draw = ImageDraw.Draw(img)
    y = margin
    ink = rng.randint(0, 60)
    for ch in text:
        if ch == " ":
            y += cell // 2
            continue
        x0, y0, x1, y1 = draw.textbbox((0, 0), ch, font=font)
        draw.text((margin + (size - (x1 - x0)) / 2 - x0, y + (cell - (y1 - y0)) / 2 - y0), ch, font=font, fill=ink)
        y += cell
    gray = np.asarray(img)
    if noise:
        gray = cv2.GaussianBlur(gray, (0, 0), rng.uniform(0.3, 0.9))
        grain = np.random.default_rng(rng.randint(0, 2**31)).normal(0, rng.uniform(2, 8), gray.shape)
        gray = jpeg_round_trip(np.clip(gray + grain, 0, 255).astype(np.uint8), rng.randint(60, 90))
    return cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB)


def render_sideways(text: str, face: FontFace, size: int, *, rng: random.Random | None = None,
                    turn: int | None = None) -> np.ndarray:
    """An RGB page with ``text`` as an ordinary horizontal line turned by 90° (a line printed along a spine):
    a tall quad whose crop must be turned, not stacked. ``turn``: 1 counter-clockwise (reads bottom to
    top), −1 clockwise (top to bottom); default drawn from ``rng``."""
    rng = rng or random.Random(0)
    font = ImageFont.truetype(face.path, size, index=face.index)
    probe = ImageDraw.Draw(Image.new("L", (1, 1)))
    x0, y0, x1, y1 = probe.textbbox((0, 0), text, font=font)
    margin = 2 * size
    img = Image.new("L", (int(x1 - x0) + 2 * margin, int(y1 - y0) + 2 * margin), 250)
    ImageDraw.Draw(img).text((margin - x0, margin - y0), text, font=font, fill=rng.randint(0, 60))
    k = turn if turn is not None else (1 if rng.random() < 0.5 else -1)
    gray = np.ascontiguousarray(np.rot90(np.asarray(img), k))
    return cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB)
