"""Outputs of a Document: JSON, plain text, hOCR (with word boxes), and a visualisation PNG with a
Korean-capable font. ALTO is in :mod:`ocrpipe.export.alto`, the searchable PDF in :mod:`ocrpipe.export.pdf`."""

from __future__ import annotations

import html
import json
import subprocess
from collections.abc import Callable
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ocrpipe.document import Document, Line, Page

FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/nanum/NanumGothic.ttf",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/unfonts-core/UnDotum.ttf",
    "/usr/share/fonts/truetype/baekmuk/gulim.ttf",
)


def to_json(doc: Document, *, indent: int | None = 2) -> str:
    return json.dumps(doc.to_dict(), ensure_ascii=False, indent=indent)


def to_text(doc: Document) -> str:
    return doc.text + "\n"


def _bbox(box: tuple) -> tuple[int, int, int, int]:
    xs, ys = [p[0] for p in box], [p[1] for p in box]
    return int(min(xs)), int(min(ys)), int(max(xs)), int(max(ys))


def to_hocr(doc: Document, *, title: str = "ocrpipe") -> str:
    """An hOCR 1.2 document: one ``ocr_page`` per page, ``ocr_carea`` per block, ``ocr_line`` per line."""
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN" '
        '"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">',
        '<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="ko" lang="ko">',
        f"<head><title>{html.escape(title)}</title>",
        '<meta http-equiv="Content-Type" content="text/html;charset=utf-8"/>',
        f'<meta name="ocr-system" content="{html.escape(doc.engine)}"/>',
        '<meta name="ocr-capabilities" content="ocr_page ocr_carea ocr_line ocrx_word"/></head><body>',
    ]
    for page in doc.pages:
        pid = page.index + 1
        out.append(f'<div class="ocr_page" id="page_{pid}" title="bbox 0 0 {page.width} {page.height}; '
                   f'ppageno {page.index}">')
        blocks = page.blocks or (tuple(range(len(page.lines))),)
        for b, block in enumerate(blocks, 1):
            if not block:
                continue
            x0, y0, x1, y1 = _union([page.lines[i].box for i in block])
            out.append(f'<div class="ocr_carea" id="block_{pid}_{b}" title="bbox {x0} {y0} {x1} {y1}">')
            for i in block:
                line = page.lines[i]
                lx0, ly0, lx1, ly1 = _bbox(line.box)
                conf = round(line.confidence * 100)
                out.append(f'<span class="ocr_line" id="line_{pid}_{i + 1}" title="bbox {lx0} {ly0} {lx1} {ly1}; '
                           f'x_wconf {conf}">')
                if line.words:
                    out.extend(_word_spans(line, f"{pid}_{i + 1}"))
                else:
                    out.extend(_words(line.text.split(), (lx0, ly0, lx1, ly1), conf, f"{pid}_{i + 1}"))
                out.append("</span>")
            out.append("</div>")
        out.append("</div>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def _union(boxes: list[tuple]) -> tuple[int, int, int, int]:
    bbs = [_bbox(b) for b in boxes]
    return min(b[0] for b in bbs), min(b[1] for b in bbs), max(b[2] for b in bbs), max(b[3] for b in bbs)


def _word_spans(line: Line, prefix: str) -> list[str]:
    """Word spans with the words' own boxes."""
    out = []
    for k, word in enumerate(line.words, 1):
        x0, y0, x1, y1 = _bbox(word.box)
        out.append(f'<span class="ocrx_word" id="word_{prefix}_{k}" title="bbox {x0} {y0} {x1} {y1}; '
                   f'x_wconf {round(word.confidence * 100)}">{html.escape(word.text)}</span>')
    return out


def _words(words: list[str], bbox: tuple[int, int, int, int], conf: int, prefix: str) -> list[str]:
    """Word spans with boxes estimated by splitting the line box in proportion to word lengths (for a
    Document made without word boxes)."""
    x0, y0, x1, y1 = bbox
    total = sum(len(w) for w in words) + max(0, len(words) - 1)
    out, pos = [], 0
    for k, word in enumerate(words, 1):
        wx0 = x0 + (x1 - x0) * pos // max(total, 1)
        pos += len(word)
        wx1 = x0 + (x1 - x0) * pos // max(total, 1)
        pos += 1
        out.append(f'<span class="ocrx_word" id="word_{prefix}_{k}" title="bbox {wx0} {y0} {wx1} {y1}; '
                   f'x_wconf {conf}">{html.escape(word)}</span>')
    return out


@cache
def korean_font_path() -> str | None:
    """A font file that has Hangul glyphs (fontconfig first, then well-known Debian paths)."""
    try:
        found = subprocess.run(["fc-match", "-f", "%{file}", ":lang=ko"], capture_output=True, text=True,
                               timeout=5, check=False).stdout.strip()
        if found and Path(found).is_file():
            return found
    except (OSError, subprocess.SubprocessError):
        pass
    return next((p for p in FONT_CANDIDATES if Path(p).is_file()), None)


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    path = korean_font_path()
    return ImageFont.truetype(path, size) if path else ImageFont.load_default()


def _confidence_colour(confidence: float) -> tuple[int, int, int]:
    """Blue for confident lines, orange for doubtful, red for likely wrong."""
    if confidence >= 0.8:
        return (30, 120, 220)
    return (230, 140, 20) if confidence >= 0.5 else (220, 40, 40)


def visualize(image: np.ndarray, page: Page) -> Image.Image:
    """Side by side: the page with numbered boxes, and the recognised text laid out at the same places."""
    base = Image.fromarray(image).convert("RGB")
    w, h = base.size
    canvas = Image.new("RGB", (w * 2, h), "white")
    overlay = base.copy()
    draw_l = ImageDraw.Draw(overlay)
    draw_r = ImageDraw.Draw(canvas)
    for line in page.lines:
        pts = [tuple(p) for p in line.box]
        colour = _confidence_colour(line.confidence)
        draw_l.polygon(pts, outline=colour, width=2)
        shifted = [(x + w, y) for x, y in pts]
        draw_r.polygon(shifted, outline=colour, width=1)
        x0, y0, x1, y1 = _bbox(line.box)
        size = max(8, int((y1 - y0) * 0.75))
        font = _font(size)
        text_w = draw_r.textlength(line.text, font=font) or 1
        if text_w > (x1 - x0) and size > 8:
            font = _font(max(8, int(size * (x1 - x0) / text_w)))
        draw_r.text((x0 + w + 1, y0), line.text, fill=(0, 0, 0), font=font)
    canvas.paste(overlay, (0, 0))
    return canvas


def _alto(doc: Document) -> str:
    from ocrpipe.export.alto import to_alto

    return to_alto(doc)


FORMATS: dict[str, Callable[[Document], str]] = {"json": to_json, "text": to_text, "hocr": to_hocr, "alto": _alto}
"""The text outputs of a Document by name (the searchable PDF is in :mod:`ocrpipe.export.pdf`)."""
SUFFIXES = {"json": ".json", "text": ".txt", "hocr": ".hocr", "alto": ".alto.xml", "pdf": ".pdf"}
