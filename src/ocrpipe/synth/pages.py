"""Synthetic pages with line boxes -- evaluation and tuning folders of our own.

:func:`english_page` lays out lines of :class:`EnglishText` (receipts, forms, codes, URLs, prose) on paper
(one column, or label/value pairs as on receipts and forms), with one Latin font per page;
:func:`korean_page` does the same with Korean document lines (:class:`~ocrpipe.synth.text.TextGen` and
:class:`~ocrpipe.synth.text.DocText`) and a Korean font. Either page is optionally degraded like a scan or a
fax (blur, noise, JPEG, low resolution). :func:`write_dataset` writes pages in the evaluation format
(``labels.jsonl`` with ``text`` and ``lines`` [{points, text}], ``images/``) so ``ocrpipe eval`` scores them
exactly like ``../shared/data`` folders. Deterministic per ``(seed, index)``; nothing here comes from the
evaluation data.
"""

from __future__ import annotations

import json
import random
import string
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ocrpipe.synth.lines import FontFace, discover_fonts, jpeg_round_trip
from ocrpipe.synth.text import EN_WORDS, DocText, TextGen, english_lexicon

TLDS = ("com", "org", "net", "io", "co.uk", "com.my", "edu", "gov")
UNITS_LATIN = ("kg", "g", "cm", "mm", "m", "km", "ml", "L", "%", "kWh", "MB", "GB", "pcs", "oz", "lb", "in", "ft")


class EnglishText:
    """Lines of English documents: receipt items and totals, form fields, codes, URLs and e-mails, prose."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.lex = english_lexicon()
        self.kinds = (self.receipt_item, self.total, self.form_field, self.code_line, self.url, self.prose,
                      self.heading, self.address, self.date_line, self.measure)

    def __call__(self) -> str:
        return " ".join(self.rng.choice(self.kinds)().split())

    def _word(self) -> str:
        return self.rng.choice(EN_WORDS if self.rng.random() < 0.4 else self.lex)

    def _case(self, text: str) -> str:
        r = self.rng.random()
        return text.upper() if r < 0.35 else text.title() if r < 0.6 else text

    def _price(self) -> str:
        return f"{self.rng.uniform(0, 10 ** self.rng.randint(1, 4)):,.2f}"

    def receipt_item(self) -> str:
        r = self.rng
        name = self._case(" ".join(self._word() for _ in range(r.randint(1, 3))))
        qty = r.choice(["", f"{r.randint(1, 12)} x ", f"{r.randint(1, 5)} @ "])
        return f"{qty}{name} {r.choice(['', 'RM', '$'])}{self._price()}"

    def total(self) -> str:
        r = self.rng
        label = r.choice(["TOTAL", "Subtotal", "SUB TOTAL", "CASH", "CHANGE", "Tax 6%", "GST", "Rounding",
                          "Amount Due", "Balance", "VISA", "Discount"])
        return f"{label}{r.choice([' ', ': ', ' : '])}{r.choice(['', 'RM ', '$', 'USD '])}{self._price()}"

    def form_field(self) -> str:
        r = self.rng
        label = r.choice(["Name", "Date", "Phone", "Fax", "Company", "Account No", "Invoice No", "Ref",
                          "Customer ID", "Order #", "Approved by", "Signature", "Department", "Class"])
        value = r.choice([self._case(" ".join(self._word() for _ in range(r.randint(1, 2)))),
                          str(r.randint(10, 10 ** 8)), f"{r.choice(string.ascii_uppercase)}{r.randint(1, 9)}"])
        return f"{label}{r.choice([': ', ' : ', ' - ', ' '])}{value}"

    def code_line(self) -> str:
        r = self.rng
        pool = string.ascii_uppercase + string.digits
        code = "-".join("".join(r.choice(pool) for _ in range(r.randint(2, 6))) for _ in range(r.randint(1, 3)))
        return r.choice(["", "SKU ", "S/N ", "Model ", "Part No. ", "Lot ", "ID "]) + code

    def url(self) -> str:
        r = self.rng
        host = f"{self._word().lower()}{r.choice(['', str(r.randint(1, 99))])}.{r.choice(TLDS)}"
        return r.choice([f"www.{host}", f"https://{host}/{self._word().lower()}",
                         f"{self._word().lower()}.{self._word().lower()}@{host}", f"http://{host}"])

    def prose(self) -> str:
        r = self.rng
        words = [self._word() for _ in range(r.randint(3, 9))]
        words[0] = words[0].capitalize()
        return " ".join(words) + r.choice(["", ".", ",", ";", ":"])

    def heading(self) -> str:
        return " ".join(self._word() for _ in range(self.rng.randint(1, 4))).upper()

    def address(self) -> str:
        r = self.rng
        return f"{r.randint(1, 999)} {self._word().title()} {r.choice(['Street', 'Road', 'Ave', 'Jalan', 'Blvd'])}, " \
               f"{self._word().title()} {r.randint(10000, 99999)}"

    def date_line(self) -> str:
        r = self.rng
        d, mo, y = r.randint(1, 28), r.randint(1, 12), r.randint(1990, 2030)
        return r.choice([f"{d:02d}/{mo:02d}/{y}", f"{y}-{mo:02d}-{d:02d} {r.randint(0, 23):02d}:{r.randint(0, 59):02d}",
                         f"{r.choice(['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug'])} {d}, {y}"])

    def measure(self) -> str:
        r = self.rng
        return f"{self._word().title()} {r.choice([str(r.randint(1, 999)), f'{r.uniform(0, 99):.1f}'])} " \
               f"{r.choice(UNITS_LATIN)}"


def latin_faces(fonts: tuple[FontFace, ...] | None = None) -> list[FontFace]:
    """Fonts that cover printable ASCII (upright faces preferred by their sampling weight)."""
    ascii_chars = set(string.ascii_letters + string.digits + string.punctuation)
    return [f for f in (fonts or discover_fonts()) if ascii_chars <= f.cover]


def korean_faces(fonts: tuple[FontFace, ...] | None = None) -> list[FontFace]:
    """Fonts with (nearly) all the Hangul syllables of the charset, upright."""
    return [f for f in (fonts or discover_fonts()) if sum("\uac00" <= c <= "\ud7a3" for c in f.cover) >= 2300
            and not any(x in f.path for x in ("Italic", "Oblique"))]


def english_page(seed: int, index: int, *, degrade: float = 0.5, fonts: list[FontFace] | None = None
                 ) -> tuple[np.ndarray, list[dict]]:
    """One synthetic English page: RGB uint8 image and its lines ``[{"points", "text"}]`` (ink boxes).

    ``degrade`` is the chance that the page is scanned/faxed (blur, noise, JPEG, low resolution, binarised).
    """
    rng = random.Random(seed * 1_000_003 + index)
    gen = EnglishText(rng)
    return _page(rng, gen, gen.total, gen._price, fonts or latin_faces(), degrade)


def korean_page(seed: int, index: int, *, degrade: float = 0.5, fonts: list[FontFace] | None = None
                ) -> tuple[np.ndarray, list[dict]]:
    """One synthetic Korean document page (as :func:`english_page`), half its lines from ``DocText``."""
    rng = random.Random(seed * 1_000_003 + index)
    plain, doc = TextGen(rng), DocText(rng)

    def line() -> str:
        return (doc if rng.random() < 0.5 else plain)(max_chars=40)

    def value() -> str:
        return plain.number()

    return _page(rng, line, line, value, fonts or korean_faces(), degrade)


def _page(rng: random.Random, gen: Callable[[], str], left: Callable[[], str], right: Callable[[], str],
          faces: list[FontFace], degrade: float) -> tuple[np.ndarray, list[dict]]:
    face = rng.choices(faces, weights=[f.weight for f in faces])[0]
    size = rng.choice([12, 14, 16, 18, 20, 22, 26, 30, 36])
    font = ImageFont.truetype(face.path, size, index=face.index)
    width = rng.choice([600, 800, 1000])
    n = rng.randint(6, 16)
    two_col = rng.random() < 0.4
    paper = rng.randint(215, 255)
    ink = rng.randint(0, 70)
    height = int(40 + n * size * rng.uniform(1.6, 2.4) + 40)
    img = Image.new("L", (width, height), paper)
    draw = ImageDraw.Draw(img)
    lines: list[dict] = []
    y = rng.randint(20, 50)
    margin = rng.randint(20, 60)
    for _ in range(n):
        if y + size * 1.5 > height - 10:
            break
        texts = [left() if two_col and rng.random() < 0.5 else gen()]
        xs = [margin + rng.randint(0, 20)]
        if two_col:
            texts.append(right())
            xs.append(width - margin - int(draw.textlength(texts[-1], font=font)))
        for text, x in zip(texts, xs, strict=True):
            box = _draw_fitted(draw, (x, y), text, font, width - margin, ink)
            if box is not None:
                lines.append({"points": box[0], "text": box[1]})
        y += int(size * rng.uniform(1.5, 2.3))
    page = np.asarray(img)
    if rng.random() < degrade:
        page = _scan(page, rng)
    return cv2.cvtColor(page, cv2.COLOR_GRAY2RGB), lines


def _draw_fitted(draw: ImageDraw.ImageDraw, xy: tuple[int, int], text: str, font: ImageFont.FreeTypeFont,
                 right: int, ink: int) -> tuple[list[list[int]], str] | None:
    """Draw ``text`` (cut at a word so it ends before ``right``); its ink box and the text drawn."""
    words = text.split()
    while words and xy[0] + draw.textlength(" ".join(words), font=font) > right:
        words.pop()
    if not words:
        return None
    drawn = " ".join(words)
    draw.text(xy, drawn, font=font, fill=ink)
    x0, y0, x1, y1 = (int(round(v)) for v in draw.textbbox(xy, drawn, font=font))
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]], drawn


def _scan(page: np.ndarray, rng: random.Random) -> np.ndarray:
    """Whole-page scan/fax effects: blur, low resolution, noise, hard threshold, JPEG."""
    out: np.ndarray = page.astype(np.float32)
    nrng = np.random.default_rng(rng.getrandbits(32))
    if rng.random() < 0.5:
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.4, 1.1))
    if rng.random() < 0.4:
        h, w = out.shape
        f = rng.uniform(0.5, 0.8)
        small = cv2.resize(out, (int(w * f), int(h * f)), interpolation=cv2.INTER_AREA)
        out = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    if rng.random() < 0.6:
        out = out + nrng.normal(0, rng.uniform(3, 14), out.shape).astype(np.float32)
    if rng.random() < 0.15:  # fax
        out = np.where(out > rng.uniform(110, 170), 255.0, 0.0).astype(np.float32)
    out8: np.ndarray = np.clip(out, 0, 255).astype(np.uint8)
    if rng.random() < 0.6:
        out8 = jpeg_round_trip(out8, rng.randint(35, 85))
    return out8


def write_dataset(out: Path, n: int, seed: int, *, degrade: float = 0.5, language: str = "en") -> Path:
    """Write ``n`` pages of :func:`english_page` (``language="en"``) or :func:`korean_page` (``"ko"``) as an
    evaluation folder (``labels.jsonl`` + ``images/``)."""
    (out / "images").mkdir(parents=True, exist_ok=True)
    make, faces = (english_page, latin_faces()) if language == "en" else (korean_page, korean_faces())
    rows = []
    for i in range(n):
        page, lines = make(seed, i, degrade=degrade, fonts=faces)
        name = f"images/{language}_{seed}_{i:04d}.png"
        cv2.imwrite(str(out / name), page)
        rows.append({"image": name, "text": "\n".join(ln["text"] for ln in lines), "lines": lines})
    labels = out / "labels.jsonl"
    labels.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return labels
