"""Drawings for the HTML report: an image with ground-truth and predicted boxes, and the predicted text.

Left half: the page with ground-truth lines (green), ignore regions (grey) and predictions (red).
Right half: the predicted text written at its box positions, in a Korean-capable font.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from ocrpipe.evaluation.dataset import Sample
from ocrpipe.evaluation.scoring import Prediction, lines_of

FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/nanum/NanumGothic.ttf",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/unfonts-core/UnDotum.ttf",
    "/usr/share/fonts/truetype/baekmuk/gulim.ttf",
)
GT, PRED, IGNORE = (20, 160, 60), (220, 40, 40), (150, 150, 150)


@cache
def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """A Hangul-capable TrueType font at ``size`` px (PIL's bitmap font if none is installed)."""
    for path in FONT_CANDIDATES:
        if Path(path).is_file():
            return ImageFont.truetype(path, size)
    return ImageFont.load_default()


def draw_comparison(sample: Sample, pred: Prediction | None, *, max_side: int = 1400) -> Image.Image:
    """Side-by-side drawing of ``sample`` (with its ground-truth boxes) and the prediction."""
    with Image.open(sample.image_path) as im:
        base = im.convert("RGB")
    scale = min(1.0, max_side / max(base.size))
    if scale < 1.0:
        base = base.resize((max(1, int(base.width * scale)), max(1, int(base.height * scale))))
    w, h = base.size
    canvas = Image.new("RGB", (w * 2, h), "white")
    left = ImageDraw.Draw(base)
    right = ImageDraw.Draw(canvas)

    def sc(points: object) -> list[tuple[float, float]]:
        return [(float(x) * scale, float(y) * scale) for x, y in points]  # type: ignore[attr-defined]

    for ignored in sample.ignore_regions:
        left.polygon(sc(ignored), outline=IGNORE, width=2)
    for gt in sample.lines:
        left.polygon(sc(gt.points), outline=GT, width=1)
    for line in lines_of(pred.doc) if pred is not None else []:
        pts = sc(line.points)
        left.polygon(pts, outline=PRED, width=2)
        right.polygon([(x + w, y) for x, y in pts], outline=(230, 180, 180), width=1)
        _fit_text(right, line.text, pts, offset=w)
    canvas.paste(base, (0, 0))
    return canvas


def _fit_text(draw: ImageDraw.ImageDraw, text: str, pts: list[tuple[float, float]], *, offset: int) -> None:
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    x0, y0, x1, y1 = min(xs), min(ys), max(xs), max(ys)
    size = max(7, int((y1 - y0) * 0.8))
    f = font(size)
    width = draw.textlength(text, font=f) or 1.0
    if width > (x1 - x0) and size > 7:
        f = font(max(7, int(size * (x1 - x0) / width)))
    draw.text((x0 + offset + 1, y0), text, fill=(0, 0, 0), font=f)
