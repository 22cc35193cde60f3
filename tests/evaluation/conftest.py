"""Fixtures: a small labelled folder rendered here with a Korean font (never the shared data)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont
from testsupport.images import FONT

LINES = ["대한민국 서울특별시 중구", "견적서 합계 12,000원", "Invoice total 345"]


def render_page(path: Path, lines: list[str], size: int = 36) -> list[dict]:
    """Draw ``lines`` on a white page; returns labels.jsonl ``lines`` with their pixel boxes."""
    font = ImageFont.truetype(FONT, size)
    image = Image.new("L", (900, 80 + 90 * len(lines)), 255)
    draw = ImageDraw.Draw(image)
    out = []
    for i, text in enumerate(lines):
        x, y = 60, 40 + 90 * i
        draw.text((x, y), text, font=font, fill=0)
        x0, y0, x1, y1 = draw.textbbox((x, y), text, font=font)
        out.append({"points": [[x0, y0], [x1, y0], [x1, y1], [x0, y1]], "text": text})
    image.save(path)
    return out


@pytest.fixture()
def labelled_folder(tmp_path: Path) -> Path:
    """Two rendered pages plus one corrupt image (to check error rows)."""
    root = tmp_path / "set"
    (root / "images").mkdir(parents=True)
    records = []
    for name, lines in (("p1.png", LINES), ("p2.png", LINES[::-1])):
        boxes = render_page(root / "images" / name, lines)
        records.append({"image": f"images/{name}", "text": "\n".join(lines), "lines": boxes})
    (root / "images" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
    records.append({"image": "images/broken.png", "text": "없음", "lines": []})
    (root / "labels.jsonl").write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in records))
    return root
