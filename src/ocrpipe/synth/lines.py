"""Synthetic text-line images that imitate crops of printed Korean/English document lines.

:class:`LineSynth` renders a text (from :class:`~ocrpipe.synth.text.TextGen`) with one of many system
fonts, then applies what scanned and photographed documents do to a line: letter-spacing (including the wide
gaps of justified Korean text), bold, background tints and light-on-dark polarity, underlines and table rules
near the text, small rotation and shear, detector-like crop margins (tight, loose, clipped), blur, noise, low
resolution and JPEG. Output is a grayscale ``uint8`` image of height 32 (the recogniser's input height).

Deterministic: ``LineSynth(seed=s).sample(i)`` always gives the same image for the same ``(s, i)`` and fonts.
No torch here; this module is used by the training data loader and by ``ocrpipe train dump-samples``.
"""

from __future__ import annotations

import math
import os
import random
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ocrpipe.synth.charset import charset_set
from ocrpipe.synth.text import DocText, TextGen

HEIGHT = 32
DEFAULT_FONT_DIRS = (
    "/usr/share/fonts/truetype/nanum", "/usr/share/fonts/opentype/noto", "/usr/share/fonts/truetype/unfonts-core",
    "/usr/share/fonts/truetype/unfonts-extra", "/usr/share/fonts/truetype/baekmuk",
    "/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/truetype/liberation",
)
#: Script / handwriting faces that printed documents do not use.
EXCLUDE = ("Brush", "Pen", "Pilgi", "Math", "Coding")


def jpeg_round_trip(gray: np.ndarray, quality: int) -> np.ndarray:
    """A grey uint8 image after JPEG at ``quality`` (its compression artefacts); unchanged if coding fails."""
    ok, enc = cv2.imencode(".jpg", gray, [cv2.IMWRITE_JPEG_QUALITY, quality])
    decoded = cv2.imdecode(enc, cv2.IMREAD_GRAYSCALE) if ok else None
    return gray if decoded is None else decoded


@dataclass(frozen=True)
class FontFace:
    """One usable font face: file, collection index, the charset characters it covers, a sampling weight."""

    path: str
    index: int
    cover: frozenset[str]
    weight: float
    bold: bool


def _faces_in_file(path: Path) -> list[tuple[int, str]]:
    """(index, name) of the faces to use in a font file; for CJK collections only the Korean face."""
    from fontTools.ttLib import TTCollection, TTFont

    if path.suffix.lower() == ".ttc":
        coll = TTCollection(str(path), lazy=True)
        out = []
        for i, f in enumerate(coll.fonts):
            name = f["name"].getDebugName(4) or ""
            if " KR" in name and "Mono" not in name:
                out.append((i, name))
        return out
    f = TTFont(str(path), lazy=True)
    return [(0, f["name"].getDebugName(4) or path.stem)]


def _cmap_chars(path: Path, index: int) -> frozenset[str]:
    from fontTools.ttLib import TTFont

    f = TTFont(str(path), fontNumber=index, lazy=True)
    cmap = f.getBestCmap() or {}
    cs = charset_set()
    return frozenset(ch for ch in (chr(c) for c in cmap) if ch in cs)


@cache
def discover_fonts(dirs: tuple[str, ...] | None = None) -> tuple[FontFace, ...]:
    """All usable font faces under ``dirs`` (or ``$OCRPIPE_FONT_DIRS``, ``:``-separated, or the defaults)."""
    if dirs is None:
        env = os.environ.get("OCRPIPE_FONT_DIRS")
        dirs = tuple(env.split(":")) if env else DEFAULT_FONT_DIRS
    faces: list[FontFace] = []
    files = sorted({p for d in dirs if Path(d).is_dir() for p in Path(d).rglob("*")
                    if p.suffix.lower() in (".ttf", ".otf", ".ttc")})
    for path in files:
        if any(x in path.name for x in EXCLUDE):
            continue
        for index, _name in _faces_in_file(path):
            cover = _cmap_chars(path, index)
            n_hangul = sum(1 for c in cover if "\uac00" <= c <= "\ud7a3")
            if len(cover) < 60:
                continue
            korean = n_hangul >= 2000
            oblique = any(x in path.name for x in ("Italic", "Oblique"))
            weight = (1.0 if korean else 0.35) * (0.3 if oblique else 1.0)
            if "YetHangul" in path.name or "hline" in path.name:
                weight *= 0.4
            bold = any(x in path.name for x in ("Bold", "Black", "Heavy", "EB", "ExtraBold"))
            faces.append(FontFace(str(path), index, cover, weight, bold))
    if not faces:
        raise RuntimeError(f"no usable fonts found under {dirs}; install fonts-nanum / fonts-noto-cjk")
    return tuple(faces)


class LineSynth:
    """Renders random document-like text lines; deterministic per ``(seed, index)``."""

    def __init__(self, seed: int = 0, max_width: int = 400, min_chars: int = 1, max_chars: int = 25,
                 fonts: tuple[FontFace, ...] | None = None, scan_chain: float = 0.0, doc_content: float = 0.0,
                 tiny: float = 0.0) -> None:
        self.seed = seed
        self.scan_chain = scan_chain
        self.doc_content = doc_content
        """Share of lines drawn from :class:`~ocrpipe.synth.text.DocText` (fill lines, comparison tables,
        circled numerals, mixed Latin); 0 keeps the phase-1–4 stream unchanged."""
        self.tiny = tiny
        """Share of lines printed tiny: the crop is shrunk to 6-12 px high before it is scaled to 32 (the
        5-8 px disclaimers of fund factsheets); 0 keeps the earlier streams unchanged."""
        """Share of lines that get the whole office-scanner chain at once (blur, then sensor noise, then
        JPEG) on top of the independent effects; 0 keeps the phase-1–3 stream unchanged."""
        self.max_width = max_width
        self.min_chars = min_chars
        self.max_chars = max_chars
        self.fonts = fonts if fonts is not None else discover_fonts()
        self._font_cache: dict[tuple[int, int], ImageFont.FreeTypeFont] = {}

    # --- public -----------------------------------------------------------------------------------------
    def sample(self, index: int) -> tuple[np.ndarray, str]:
        """The ``index``-th sample: (gray uint8 image of height 32, label text)."""
        rng = random.Random((self.seed * 1_000_003 + index) & 0xFFFFFFFFFFFF)
        gen = DocText if self.doc_content > 0 and rng.random() < self.doc_content else TextGen
        text = gen(rng)(max_chars=rng.randint(self.min_chars, self.max_chars))
        return self.render(text, rng)

    def render(self, text: str, rng: random.Random) -> tuple[np.ndarray, str]:
        """Render ``text`` with random style and degradations: (gray uint8 of height 32, the text drawn).

        The text drawn is a prefix of ``text`` when the whole line would be wider than ``max_width``; the
        label must be that prefix, not ``text``.
        """
        face = self._pick_face(text, rng)
        size = rng.randint(20, 44)
        font = self._font(face, size)
        spacing = self._spacing(rng, size)
        text = self._fit(text, font, spacing, size)
        mask, box = self._draw(text, font, spacing, size, face, rng)
        img = self._compose(mask, box, rng)
        img, box = self._geometry(img, box, rng)
        crop = self._crop(img, box, rng)
        crop = self._degrade(crop, rng)
        if self.scan_chain > 0 and rng.random() < self.scan_chain:
            crop = self._scanner(crop, rng)
        if self.tiny > 0 and rng.random() < self.tiny:
            crop = self._tiny(crop, rng)
        return self._to_height(crop, rng), text

    # --- steps ------------------------------------------------------------------------------------------
    def _pick_face(self, text: str, rng: random.Random) -> FontFace:
        chars = set(text)
        ok = [f for f in self.fonts if chars <= f.cover]
        if not ok:
            ok = sorted(self.fonts, key=lambda f: -len(chars & f.cover))[:1]
        return rng.choices(ok, weights=[f.weight for f in ok])[0]

    def _font(self, face: FontFace, size: int) -> ImageFont.FreeTypeFont:
        key = (self.fonts.index(face), size)
        font = self._font_cache.get(key)
        if font is None:
            font = ImageFont.truetype(face.path, size, index=face.index)
            if len(self._font_cache) > 400:
                self._font_cache.clear()
            self._font_cache[key] = font
        return font

    @staticmethod
    def _spacing(rng: random.Random, size: int) -> float:
        r = rng.random()
        if r < 0.6:
            return 0.0
        if r < 0.8:
            return rng.uniform(-0.06, 0.12) * size
        if r < 0.95:
            return rng.uniform(0.15, 0.8) * size  # justified / spaced-out text
        return rng.uniform(0.8, 1.5) * size

    def _fit(self, text: str, font: ImageFont.FreeTypeFont, spacing: float, size: int) -> str:
        """Shorten ``text`` so that the final crop (height 32) stays under ``max_width``."""
        for _ in range(6):
            adv = font.getlength(text) + spacing * max(len(text) - 1, 0)
            est = adv * HEIGHT / (size * 1.15)
            if est <= self.max_width or len(text) <= 1:
                return text
            keep = max(1, int(len(text) * self.max_width / est) - 1)
            text = text[:keep].rstrip() or text[:keep]
        return text

    def _draw(self, text: str, font: ImageFont.FreeTypeFont, spacing: float, size: int, face: FontFace,
              rng: random.Random) -> tuple[np.ndarray, tuple[int, int, int, int]]:
        """Draw text (255 on 0) on a canvas with generous margins; returns (mask, ink box x0,y0,x1,y1)."""
        adv = font.getlength(text) + spacing * max(len(text) - 1, 0)
        pad = size
        w = int(adv + 2 * pad + abs(spacing) + 4)
        h = int(size * 1.5 + 2 * pad)
        canvas = Image.new("L", (w, h), 0)
        draw = ImageDraw.Draw(canvas)
        stroke = 1 if (not face.bold and rng.random() < 0.12 and size >= 24) else 0
        y = pad
        if spacing == 0.0:
            draw.text((pad, y), text, font=font, fill=255, stroke_width=stroke, stroke_fill=255)
        else:
            x = float(pad)
            for ch in text:
                draw.text((x, y), ch, font=font, fill=255, stroke_width=stroke, stroke_fill=255)
                x += font.getlength(ch) + spacing
        mask = np.asarray(canvas)
        ys = np.nonzero(mask.max(axis=1))[0]
        xs = np.nonzero(mask.max(axis=0))[0]
        if len(xs) == 0:
            return mask, (pad, pad, pad + 4, pad + size)
        # the line's box: ink extent horizontally; vertically at least the font's ascent..descent body
        asc, desc = font.getmetrics()
        y0 = min(int(ys[0]), y + int(asc * 0.25))
        y1 = max(int(ys[-1]) + 1, y + int(asc * 0.95))
        return mask, (int(xs[0]), y0, int(xs[-1]) + 1, y1)

    def _compose(self, mask: np.ndarray, box: tuple[int, int, int, int], rng: random.Random) -> np.ndarray:
        """Colours: background level/gradient/texture, text level, rules near the text."""
        h, w = mask.shape
        r = rng.random()
        if r < 0.55:
            bg = rng.uniform(225, 255)
        elif r < 0.8:
            bg = rng.uniform(170, 235)
        elif r < 0.88:
            bg = rng.uniform(110, 180)
        else:
            bg = rng.uniform(0, 90)  # light-on-dark
        fg = rng.uniform(0, max(bg - 90, 1)) if bg > 110 else rng.uniform(min(bg + 100, 255), 255)
        if bg > 110 and rng.random() < 0.4:
            fg = rng.uniform(0, 40)
        base = np.full((h, w), bg, np.float32)
        if rng.random() < 0.3:  # gentle gradient
            gx = np.linspace(-1, 1, w, dtype=np.float32)[None, :] * rng.uniform(-20, 20)
            gy = np.linspace(-1, 1, h, dtype=np.float32)[:, None] * rng.uniform(-15, 15)
            base += gx + gy
        alpha = mask.astype(np.float32) / 255.0
        rules = self._rules(mask.shape, box, rng)
        if rules is not None:
            ra, rv = rules
            base = base * (1 - ra) + rv * ra
        img = base * (1 - alpha) + fg * alpha
        return np.clip(img, 0, 255)

    @staticmethod
    def _rules(shape: tuple[int, int], box: tuple[int, int, int, int], rng: random.Random
               ) -> tuple[np.ndarray, float] | None:
        """Underlines and table-cell borders near the text (what detector crops of forms contain)."""
        if rng.random() > 0.3:
            return None
        h, w = shape
        x0, y0, x1, y1 = box
        th = y1 - y0
        layer = Image.new("L", (w, h), 0)
        d = ImageDraw.Draw(layer)
        width = rng.choice([1, 1, 1, 2])
        kind = rng.random()
        if kind < 0.35:  # underline
            yy = y1 + rng.randint(1, max(2, th // 5))
            d.line([(x0 - rng.randint(0, 6), yy), (x1 + rng.randint(0, 6), yy)], fill=255, width=width)
        else:  # table rules: horizontal above/below, sometimes vertical at the ends
            gap_t = rng.randint(int(th * 0.1), int(th * 0.5) + 2)
            gap_b = rng.randint(int(th * 0.1), int(th * 0.5) + 2)
            if rng.random() < 0.7:
                d.line([(0, y0 - gap_t), (w, y0 - gap_t)], fill=255, width=width)
            if rng.random() < 0.7:
                d.line([(0, y1 + gap_b), (w, y1 + gap_b)], fill=255, width=width)
            if rng.random() < 0.4:
                gx = rng.randint(3, max(4, th // 2))
                d.line([(x0 - gx, 0), (x0 - gx, h)], fill=255, width=width)
            if rng.random() < 0.4:
                gx = rng.randint(3, max(4, th // 2))
                d.line([(x1 + gx, 0), (x1 + gx, h)], fill=255, width=width)
        return np.asarray(layer, np.float32) / 255.0 * rng.uniform(0.5, 1.0), rng.uniform(0, 160)

    @staticmethod
    def _geometry(img: np.ndarray, box: tuple[int, int, int, int], rng: random.Random
                  ) -> tuple[np.ndarray, tuple[int, int, int, int]]:
        """Small rotation and shear (italic-like / perspective-ish); returns warped image and new box."""
        if rng.random() > 0.35:
            return img, box
        h, w = img.shape
        x0, y0, x1, y1 = box
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        ang = rng.uniform(-1.5, 1.5)
        shear = rng.uniform(-0.2, 0.2) if rng.random() < 0.4 else 0.0
        m = cv2.getRotationMatrix2D((cx, cy), ang, 1.0)
        m[0, 1] += shear
        m[0, 2] -= shear * cy
        out = cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        pts = np.array([[x0, y0, 1], [x1, y0, 1], [x0, y1, 1], [x1, y1, 1]], np.float32) @ m.T
        nb = (int(pts[:, 0].min()), int(pts[:, 1].min()), int(math.ceil(pts[:, 0].max())),
              int(math.ceil(pts[:, 1].max())))
        # a rotated box's axis-aligned hull is loose; shrink it back part of the way
        return out, nb

    @staticmethod
    def _crop(img: np.ndarray, box: tuple[int, int, int, int], rng: random.Random) -> np.ndarray:
        """Detector-like crop: tight, loose, or slightly clipped margins around the line box."""
        h, w = img.shape
        x0, y0, x1, y1 = box
        th = max(y1 - y0, 4)
        r = rng.random()
        if r < 0.35:  # tight
            mt, mb, ml, mr = (rng.uniform(-0.03, 0.06) * th for _ in range(4))
        elif r < 0.85:  # loose
            mt, mb = rng.uniform(0.03, 0.3) * th, rng.uniform(0.03, 0.3) * th
            ml, mr = rng.uniform(0.0, 0.5) * th, rng.uniform(0.0, 0.5) * th
        else:  # clipped top/bottom
            mt, mb = rng.uniform(-0.12, 0.02) * th, rng.uniform(-0.12, 0.02) * th
            ml, mr = rng.uniform(-0.03, 0.15) * th, rng.uniform(-0.03, 0.15) * th
        cy0 = max(0, int(round(y0 - mt)))
        cy1 = min(h, int(round(y1 + mb)))
        cx0 = max(0, int(round(x0 - ml)))
        cx1 = min(w, int(round(x1 + mr)))
        if cy1 - cy0 < 4 or cx1 - cx0 < 4:
            return img[max(0, y0):y1, max(0, x0):x1]
        return img[cy0:cy1, cx0:cx1]

    @staticmethod
    def _degrade(img: np.ndarray, rng: random.Random) -> np.ndarray:
        """Scan effects (ink spread or fading, speckle, hard binarisation), blur, low resolution, noise, JPEG,
        contrast."""
        img = img.astype(np.float32)
        if rng.random() < 0.15:  # toner spread (dark strokes thicken) or faded print (strokes thin)
            kernel = np.ones((2, 2), np.uint8)
            img = cv2.erode(img, kernel) if rng.random() < 0.5 else cv2.dilate(img, kernel)
        if rng.random() < 0.1:  # scanner speckle: isolated dark and light pixels
            nrng = np.random.default_rng(rng.getrandbits(32))
            spots = nrng.random(img.shape)
            amount = rng.uniform(0.002, 0.02)
            img[spots < amount / 2] = rng.uniform(0, 60)
            img[spots > 1 - amount / 2] = rng.uniform(200, 255)
        if rng.random() < 0.08:  # fax / photocopier: hard threshold around the middle of the range
            lo, hi = float(img.min()), float(img.max())
            t = lo + (hi - lo) * rng.uniform(0.35, 0.65)
            img = np.where(img > t, hi, lo).astype(np.float32)
        if rng.random() < 0.3:
            k = rng.uniform(0.3, 1.1)
            img = cv2.GaussianBlur(img, (0, 0), k)
        if rng.random() < 0.25:
            f = rng.uniform(0.4, 0.8)
            h, w = img.shape
            small = cv2.resize(img, (max(2, int(w * f)), max(2, int(h * f))), interpolation=cv2.INTER_AREA)
            img = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
        if rng.random() < 0.35:
            nrng = np.random.default_rng(rng.getrandbits(32))
            img = img + nrng.normal(0, rng.uniform(2, 12), img.shape).astype(np.float32)
        if rng.random() < 0.2:  # contrast / brightness jitter
            img = (img - 128) * rng.uniform(0.6, 1.2) + 128 + rng.uniform(-25, 25)
        img = np.clip(img, 0, 255).astype(np.uint8)
        if rng.random() < 0.3:
            img = jpeg_round_trip(img, rng.randint(25, 90))
        return img

    @staticmethod
    def _scanner(img: np.ndarray, rng: random.Random) -> np.ndarray:
        """A cheap scanner or a re-scanned copy, all effects together (the single effects of
        :meth:`_degrade` rarely coincide): optics blur, sensor noise, then strong JPEG."""
        out = cv2.GaussianBlur(img.astype(np.float32), (0, 0), rng.uniform(0.5, 1.3))
        nrng = np.random.default_rng(rng.getrandbits(32))
        out = np.clip(out + nrng.normal(0, rng.uniform(4, 13), out.shape), 0, 255).astype(np.uint8)
        return jpeg_round_trip(out, rng.randint(40, 75))

    @staticmethod
    def _tiny(img: np.ndarray, rng: random.Random) -> np.ndarray:
        """The line as a tiny print scanned at office resolution: shrunk to 6-12 px high (area average)."""
        h, w = img.shape
        th = rng.randint(6, 12)
        if h <= th:
            return img
        return cv2.resize(img, (max(4, round(w * th / h)), th), interpolation=cv2.INTER_AREA)

    def _to_height(self, img: np.ndarray, rng: random.Random) -> np.ndarray:
        h, w = img.shape
        nw = max(8, int(round(w * HEIGHT / h)))
        if nw > self.max_width:
            nw = self.max_width
        interp = cv2.INTER_AREA if h > HEIGHT else cv2.INTER_LINEAR
        return cv2.resize(img, (nw, HEIGHT), interpolation=interp)


def dump_samples(out_dir: Path, n: int = 50, seed: int = 12345, max_width: int = 400) -> Path:
    """Write ``n`` samples as ``NNNN.png`` plus ``labels.tsv`` (file name, text) for a person to inspect."""
    out_dir.mkdir(parents=True, exist_ok=True)
    synth = LineSynth(seed=seed, max_width=max_width)
    rows = []
    for i in range(n):
        img, text = synth.sample(i)
        name = f"{i:04d}.png"
        cv2.imwrite(str(out_dir / name), img)
        rows.append(f"{name}\t{text}")
    labels = out_dir / "labels.tsv"
    labels.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return labels
