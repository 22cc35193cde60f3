"""Per-field Tesseract reads with a character whitelist: the independent second reading of every field.

The lead's :class:`~ocrpipe.engine.recognize.tesseract.TesseractRecognizer` reads whole lines with one fixed
configuration; a template field needs its own whitelist (``tessedit_char_whitelist``) and language, so
fields are read here with tesserocr directly. Tesseract API objects are not thread-safe: each thread keeps
its own, one per language.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import cv2
import numpy as np

from ocrpipe.templates.register import paper_level
from ocrpipe.templates.schema import Preprocess


@dataclass(frozen=True)
class Read:
    """Raw recogniser output for one field crop."""

    text: str
    confidence: float
    """Tesseract's mean word confidence, 0–1 (0 when nothing was read)."""


def prepare(crop: np.ndarray, pre: Preprocess) -> np.ndarray:
    """Grey, scaled, optionally binarised/inverted, padded with the background level."""
    gray = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY) if crop.ndim == 3 else crop
    if pre.scale != 1.0:
        interp = cv2.INTER_CUBIC if pre.scale > 1 else cv2.INTER_AREA
        gray = cv2.resize(gray, None, fx=pre.scale, fy=pre.scale, interpolation=interp)
    if pre.invert:
        gray = 255 - gray
    if pre.binarize:
        gray = cv2.threshold(cv2.GaussianBlur(gray, (3, 3), 0), 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)[1]
    if pre.pad:
        border = int(paper_level(gray))
        gray = cv2.copyMakeBorder(gray, pre.pad, pre.pad, pre.pad, pre.pad, cv2.BORDER_CONSTANT, value=border)
    return gray


class FieldReader:
    """Reads single-line field crops with Tesseract (psm 7, LSTM), thread-safe via per-thread APIs."""

    def __init__(self, tessdata: str | None = None) -> None:
        import tesserocr

        from ocrpipe.engine.recognize.tesseract import find_tessdata

        self._tesserocr = tesserocr
        self._tessdata = tessdata
        self._find = find_tessdata
        self._local = threading.local()
        self.name = "tesseract-fields"

    def _api(self, lang: str):  # type: ignore[no-untyped-def]
        apis = getattr(self._local, "apis", None)
        if apis is None:
            apis = self._local.apis = {}
        if lang not in apis:
            t = self._tesserocr
            path = self._tessdata or self._find(lang)
            api = apis[lang] = t.PyTessBaseAPI(path=path, lang=lang, psm=t.PSM.SINGLE_LINE, oem=t.OEM.LSTM_ONLY)
            # Tesseract reads a doubtful line a second time inverted (light on dark). A field's polarity is
            # known from its template (``preprocess.invert``), so that second pass is pure cost (~5 %).
            api.SetVariable("tessedit_do_invert", "0")
        return apis[lang]

    def read(self, image: np.ndarray, *, lang: str = "eng", whitelist: str | None = None) -> Read:
        """Read one prepared grey (or RGB) uint8 image; ``whitelist`` limits the characters Tesseract may output."""
        api = self._api(lang)
        api.SetVariable("tessedit_char_whitelist", whitelist or "")
        image = np.ascontiguousarray(image, np.uint8)
        depth = 1 if image.ndim == 2 else image.shape[2]
        # raw bytes: SetImage(PIL image) encodes a BMP in Python first (same pixels, ~5 % of a read)
        api.SetImageBytes(image.tobytes(), image.shape[1], image.shape[0], depth, depth * image.shape[1])
        text = " ".join(api.GetUTF8Text().split())
        confidence = api.MeanTextConf() / 100.0 if text else 0.0
        api.Clear()
        return Read(text, confidence)
