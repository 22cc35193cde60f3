"""Tesseract LSTM as a line recogniser (``kor+eng`` via tesserocr), tuned for single-line crops.

Each crop is converted to gray, scaled to a fixed x-height-friendly height, padded with background and read
with page-segmentation mode 7 (one text line). A small pool of ``PyTessBaseAPI`` objects (one per worker
thread; an API object is not thread-safe) reads crops in parallel: tesserocr releases the GIL while
Tesseract runs. (No OMP_THREAD_LIMIT is set: the tesserocr wheel's libtesseract is built without OpenMP, and
setting it process-wide deadlocks torch's OpenMP thread pool.)
"""

from __future__ import annotations

import os
import queue
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from ocrpipe.document import ModelInfo, RecResult, WordSpan
from ocrpipe.engine import runtime
from ocrpipe.engine.recognize.split import read_split
from ocrpipe.engine.words import snap_to_gaps
from ocrpipe.errors import EngineError, ErrorCode, Stage

TESSDATA_CANDIDATES = (
    "/usr/share/tesseract-ocr/5/tessdata",
    "/usr/share/tesseract-ocr/4.00/tessdata",
    "/usr/share/tessdata",
    "/usr/local/share/tessdata",
)


def find_tessdata(langs: str) -> str:
    """The tessdata folder holding every ``+``-separated language (``TESSDATA_PREFIX`` first)."""
    wanted = [f"{lang}.traineddata" for lang in langs.split("+")]
    env = os.environ.get("TESSDATA_PREFIX")
    for folder in ([env] if env else []) + list(TESSDATA_CANDIDATES):
        if folder and all((Path(folder) / w).is_file() for w in wanted):
            return folder
    raise EngineError(
        ErrorCode.MODEL_NOT_FOUND,
        f"Tesseract language data {', '.join(wanted)} not found; install it with "
        "`apt-get install tesseract-ocr-kor tesseract-ocr-eng` or set TESSDATA_PREFIX",
    )


LINE_PAD = 12
"""Background pixels added around each line image (Tesseract wants margins)."""
MAX_ASPECT = 100
"""Longest line, in multiples of its height, Tesseract is given: longer crops are read in pieces cut at their
word gaps (:mod:`ocrpipe.engine.recognize.split`; the neural recognisers do the same past their width cap);
an unbounded strip made Tesseract itself fail. :func:`prepare_line` still caps its output at it."""


def prepare_line(crop: np.ndarray, height: int = 48, pad: int = LINE_PAD) -> Image.Image:
    """Gray, scaled to ``height`` px, padded with the background colour (Tesseract wants margins)."""
    gray = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY) if crop.ndim == 3 else crop
    h, w = gray.shape
    scale = height / max(h, 1)
    new_w = min(height * MAX_ASPECT, max(1, int(round(w * scale))))
    interp = cv2.INTER_CUBIC if scale > 1 else cv2.INTER_AREA
    gray = cv2.resize(gray, (new_w, height), interpolation=interp)
    border = int(np.median(np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])))
    gray = cv2.copyMakeBorder(gray, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=border)
    return Image.fromarray(gray)


def latin_share(text: str) -> float:
    """Share of ASCII letters among the non-space characters."""
    chars = [c for c in text if not c.isspace()]
    if not chars:
        return 0.0
    return sum(c.isascii() and c.isalpha() for c in chars) / len(chars)


def merge_spans(spans: Sequence[WordSpan], words: Sequence[str]) -> tuple[WordSpan, ...]:
    """Tesseract's word boxes joined up to the words of its text (it splits a word where the script changes,
    ``제1조`` into three); empty when they do not spell the same words."""
    out: list[WordSpan] = []
    k = 0
    for word in words:
        parts: list[WordSpan] = []
        while k < len(spans) and len("".join(p.text for p in parts)) < len(word):
            parts.append(spans[k])
            k += 1
        if not parts or "".join(p.text for p in parts) != word:
            return ()
        conf = min(p.confidence for p in parts)
        out.append(WordSpan(word, conf, parts[0].start, max(p.end for p in parts)))
    return tuple(out) if k == len(spans) else ()


class TesseractRecognizer:
    """Reads line crops with Tesseract's LSTM engine.

    ``lang="kor+eng"`` with ``route=True`` (the default) does not load Tesseract's combined model: the
    combined model often reads Korean words as Latin look-alikes. Each line is read with the first
    language; lines that come out mostly Latin, or with a confidence below ``retry_below`` (the Korean
    model reads English as confident-looking digit soup only rarely), are read again with the others,
    and the most confident reading wins. ``route=False`` passes ``lang`` to Tesseract unchanged.
    """

    def __init__(self, lang: str = "kor+eng", *, threads: int | None = None, height: int = 48,
                 psm: int = 7, route: bool = True, latin_threshold: float = 0.4, retry_below: float = 0.8,
                 variables: dict[str, str] | None = None) -> None:
        import tesserocr

        self._tesserocr = tesserocr
        self.lang = lang
        self.height = height
        self.input_height = height
        self.psm = psm
        self.tessdata = find_tessdata(lang)
        self.threads = threads or runtime.usable_cpus()
        self.variables = dict(variables or {})
        self.latin_threshold = latin_threshold
        self.retry_below = retry_below
        self.name = f"tesseract-{lang}"
        langs = lang.split("+") if route else [lang]
        self._pools: dict[str, queue.SimpleQueue] = {}
        for code in langs:
            self._pools[code] = queue.SimpleQueue()
            for _ in range(self.threads):
                self._pools[code].put(self._new_api(code))
        self._models: list[ModelInfo] | None = None
        self._executor = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="tesseract")

    def _new_api(self, lang: str):  # type: ignore[no-untyped-def]
        tesserocr = self._tesserocr
        api = tesserocr.PyTessBaseAPI(path=self.tessdata, lang=lang, psm=self.psm,
                                      oem=tesserocr.OEM.LSTM_ONLY)
        for key, value in self.variables.items():
            api.SetVariable(key, value)
        return api

    @contextmanager
    def _api(self, lang: str) -> Iterator[object]:
        pool = self._pools[lang]
        api = pool.get()
        try:
            yield api
        finally:
            pool.put(api)

    def _read(self, image: Image.Image, lang: str, pad: int = LINE_PAD) -> RecResult:
        with self._api(lang) as api:
            api.SetImage(image)  # type: ignore[attr-defined]
            text = api.GetUTF8Text()  # type: ignore[attr-defined]
            conf = api.MeanTextConf()  # type: ignore[attr-defined]
            words = self._word_spans(api, image.width - 2 * pad, pad)
        text = " ".join(text.split())
        words = merge_spans(words, text.split())
        return RecResult(text, max(0.0, min(1.0, conf / 100.0)) if text else 0.0, words)

    def _word_spans(self, api: object, width: int, pad: int) -> tuple[WordSpan, ...]:
        """Tesseract's own word boxes (its result iterator), as fractions of the unpadded crop width."""
        level = self._tesserocr.RIL.WORD
        iterator = api.GetIterator()  # type: ignore[attr-defined]
        if iterator is None:
            return ()
        spans = []
        for word in self._tesserocr.iterate_level(iterator, level):
            try:
                text = word.GetUTF8Text(level)
            except RuntimeError:  # tesserocr raises for a word element without text
                continue
            box = word.BoundingBox(level)
            if not text or not text.strip() or box is None:
                continue
            x0, x1 = (box[0] - pad) / max(width, 1), (box[2] - pad) / max(width, 1)
            conf = max(0.0, min(1.0, word.Confidence(level) / 100.0))
            spans.append(WordSpan(text.strip(), conf, min(max(x0, 0.0), 1.0), min(max(x1, 0.0), 1.0)))
        return tuple(spans)

    @property
    def languages(self) -> tuple[str, ...]:
        """The languages lines are read with, in routing order (one entry when ``route`` is off)."""
        return tuple(self._pools)

    def read_line(self, crop: np.ndarray, lang: str) -> RecResult:
        """One crop read with one of :attr:`languages` only, without routing."""
        if crop.size == 0 or min(crop.shape[:2]) < 2:
            return RecResult("", 0.0)
        res = self._read(prepare_line(crop, self.height), lang)
        return RecResult(res.text, res.confidence, snap_to_gaps(res.words, crop))

    def needs_others(self, first: RecResult) -> bool:
        """Whether a first-language reading is unsure or mostly Latin, so the other languages read it too."""
        return first.confidence < self.retry_below or latin_share(first.text) >= self.latin_threshold

    def routed(self, first: RecResult, others: Sequence[RecResult]) -> RecResult:
        """The routing rule: ``first`` unless :meth:`needs_others`, then the most confident reading."""
        best = first
        if self.needs_others(first):
            for alt in others:
                if alt.confidence > best.confidence:
                    best = alt
        return best

    def _read_one(self, crop: np.ndarray) -> RecResult:
        if crop.size == 0 or min(crop.shape[:2]) < 2:
            return RecResult("", 0.0)
        image = prepare_line(crop, self.height)
        first, *others = self._pools
        best = self._read(image, first)
        if others and self.needs_others(best):
            best = self.routed(best, [self._read(image, lang) for lang in others])
        return RecResult(best.text, best.confidence, snap_to_gaps(best.words, crop))

    def recognize(self, crops: Sequence[np.ndarray]) -> list[RecResult]:
        """One result per crop, read in parallel by the API pool; a crop longer than :data:`MAX_ASPECT` times
        its height is read in pieces cut at its word gaps."""
        if not crops:
            return []
        try:
            return read_split(lambda pieces: list(self._executor.map(self._read_one, pieces)), crops, MAX_ASPECT)
        except RuntimeError as exc:
            raise EngineError(ErrorCode.ENGINE_FAILURE, f"tesseract failed: {exc}", stage=Stage.RECOGNIZE) from exc

    def models(self) -> list[ModelInfo]:
        if self._models is None:
            version = self._tesserocr.tesseract_version().split()[1]
            self._models = [
                ModelInfo(name=f"tesseract/{lang}", kind="recognizer", version=f"tesseract {version}",
                          sha256=runtime.sha256_file(Path(self.tessdata) / f"{lang}.traineddata"),
                          source=str(Path(self.tessdata) / f"{lang}.traineddata"))
                for lang in self.lang.split("+")
            ]
        return list(self._models)
