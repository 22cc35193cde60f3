"""The text a PDF viewer would extract, with positions: lines per page from poppler's ``pdftotext
-bbox-layout``, boxes in points (top-left origin). Used to score searchable PDFs (tests, benchmarks)."""

from __future__ import annotations

import html
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ocrpipe.errors import ErrorCode, OcrError

_PAGE = re.compile(r'<page width="([\d.]+)" height="([\d.]+)">(.*?)</page>', re.S)
_LINE = re.compile(r'<line xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">(.*?)</line>', re.S)
_WORD = re.compile(r'<word [^>]*>(.*?)</word>', re.S)


@dataclass(frozen=True)
class PdfLine:
    """One extracted line: its words joined by spaces and its box (x0, y0, x1, y1) in points."""

    text: str
    box: tuple[float, float, float, float]

    def points(self, scale: float = 1.0) -> list[tuple[float, float]]:
        """The box as four corners clockwise from top-left, multiplied by ``scale`` (e.g. pixels per point)."""
        x0, y0, x1, y1 = (v * scale for v in self.box)
        return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]


@dataclass(frozen=True)
class PdfPage:
    """The extracted lines of one page and the page's size in points."""

    width: float
    height: float
    lines: tuple[PdfLine, ...]

    @property
    def text(self) -> str:
        return "\n".join(line.text for line in self.lines)


def extract(path: str | Path) -> list[PdfPage]:
    """Every page's extracted lines, in pdftotext's reading order."""
    if shutil.which("pdftotext") is None:
        raise OcrError(ErrorCode.INVALID_ARGUMENT, "pdftotext not found: apt-get install poppler-utils")
    xml = subprocess.run(["pdftotext", "-bbox-layout", str(path), "-"], capture_output=True, text=True,
                         check=True, timeout=300).stdout
    pages = []
    for width, height, body in _PAGE.findall(xml):
        lines = tuple(
            PdfLine(" ".join(html.unescape(w) for w in _WORD.findall(words)),
                    (float(x0), float(y0), float(x1), float(y1)))
            for x0, y0, x1, y1, words in _LINE.findall(body))
        pages.append(PdfPage(float(width), float(height), lines))
    return pages
