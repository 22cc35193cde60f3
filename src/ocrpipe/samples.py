"""Render simple text pages with a system font: the bundled sample page and test fixtures."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ocrpipe.export.render import korean_font_path

SAMPLE_LINES = (
    "ocrpipe 한국어 문서 인식 예시",
    "1. 신청인은 2026년 11월 21일까지 서류를 제출하여야 한다.",
    "2. 문의: 민원실 (02) 123-4567, help@example.com",
    "3. 검사 결과: 안압 15 mmHg, 시력 1.0 (교정)",
    "The quick brown fox jumps over the lazy dog.",
    "※ 본 문서는 시험용으로 작성되었습니다.",
)


def render_page(lines: Sequence[str] = SAMPLE_LINES, *, font_path: str | None = None, size: int = 28,
                width: int = 1240, margin: int = 80, spacing: float = 1.9) -> tuple[np.ndarray, list[dict]]:
    """A white page with ``lines`` in black; returns the RGB image and ground truth
    (``[{"text", "points"}]`` with each line's ink box)."""
    font = ImageFont.truetype(font_path or korean_font_path() or "", size)
    height = int(margin * 2 + spacing * size * len(lines))
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    truth = []
    for i, text in enumerate(lines):
        y = margin + int(i * spacing * size)
        draw.text((margin, y), text, fill=(0, 0, 0), font=font)
        x0, y0, x1, y1 = draw.textbbox((margin, y), text, font=font)
        truth.append({"text": text, "points": [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]})
    return np.asarray(img), truth
