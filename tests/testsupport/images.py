"""Generated images: plain PNGs of a chosen size (limits, plumbing, bad-input checks) and pages of Korean
text the real engine reads."""

from __future__ import annotations

import io
from typing import Any

FONT = "/usr/share/fonts/truetype/nanum/NanumGothic.ttf"


def encode_png(image: Any) -> bytes:
    """PNG bytes of a PIL image or of an RGB/grey array."""
    from PIL import Image

    img = image if isinstance(image, Image.Image) else Image.fromarray(image)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def png(width: int = 64, height: int = 32, color: int = 255) -> bytes:
    """A plain RGB PNG of one grey level (white unless told)."""
    from PIL import Image

    return encode_png(Image.new("RGB", (width, height), (color, color, color)))


def text_page(lines: list[str], size: int = 40) -> bytes:
    """A white PNG page with ``lines`` rendered in a Korean font."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(FONT, size)
    img = Image.new("RGB", (1000, 60 + 90 * len(lines)), "white")
    draw = ImageDraw.Draw(img)
    for i, line in enumerate(lines):
        draw.text((40, 40 + 90 * i), line, font=font, fill="black")
    return encode_png(img)


def text_line(text: str, size: int = 32) -> bytes:
    """A PNG of one line of text, tightly cropped (input of ``/v1/recognition``)."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(FONT, size)
    left, top, right, bottom = font.getbbox(text)
    img = Image.new("RGB", (right - left + 16, bottom - top + 12), "white")
    ImageDraw.Draw(img).text((8 - left, 6 - top), text, font=font, fill="black")
    return encode_png(img)


def mixed_line_text(seed: int, chars: int) -> str:
    """A line of at least ``chars`` characters: Korean words with about a third English ones (the synth
    lexicons), drawn with ``seed``."""
    import random

    from ocrpipe.synth.text import english_lexicon, korean_lexicon

    rng = random.Random(seed)
    ko = [w for w in korean_lexicon() if 2 <= len(w) <= 5]
    en = [w for w in english_lexicon() if 3 <= len(w) <= 8]
    words: list[str] = []
    while len(" ".join(words)) < chars:
        words.append(rng.choice(en) if rng.random() < 0.35 else rng.choice(ko))
    return " ".join(words)


def blank_pdf(pages: int, width: int = 1654, height: int = 2339, dpi: int = 200) -> bytes:
    """A PDF of ``pages`` white pages that render to ``width`` x ``height`` pixels at ``dpi`` (A4 at 200)."""
    from PIL import Image

    buf = io.BytesIO()
    frames = [Image.new("1", (width, height), 1) for _ in range(pages)]
    frames[0].save(buf, "PDF", save_all=True, append_images=frames[1:], resolution=float(dpi))
    return buf.getvalue()
