"""Line recognisers behind one interface: Tesseract LSTM and neural CTC models on ONNX Runtime."""

from __future__ import annotations

from ocrpipe.engine.recognize.base import Recognizer
from ocrpipe.engine.runtime import SessionSettings

DEFAULT_RECOGNIZER = "hybrid_latin"
"""What ``auto`` means: our ``ko_rec`` for every line, the PP-OCRv4 reader for the lines ko_rec reads without
Hangul (:mod:`ocrpipe.engine.recognize.latin`), Tesseract for the other lines ko_rec is unsure of
(:mod:`ocrpipe.engine.recognize.hybrid`), confidences calibrated (the manifest's ``calibration.hybrid_latin``).
Measured in one ``ocrpipe eval`` run against ``hybrid`` (the default before it): better on every folder of
``../shared/data`` (en_sroie line CER 0.084 -> 0.051, en_funsd 0.171 -> 0.130, ko_docs 0.0192 -> 0.0186,
ko_product_images page CER 0.207 -> 0.205, en_tesseract_pages 0.393 -> 0.388, IIIT5K words 0.719 -> 0.586) and on
our own synthetic pages; ``hybrid`` and ``tesseract`` remain available."""


LATIN_READER = "ppocrv4_rec_ch"
"""The reader ``hybrid_latin`` gives the lines ko_rec reads without Hangul (:mod:`ocrpipe.engine.recognize.latin`)."""


HYBRIDS = {"hybrid": ("ko_rec", False), "hybrid_latin": ("ko_rec", True),
           "hybrid_int8": ("ko_rec_int8", False), "hybrid_latin_int8": ("ko_rec_int8", True),
           "hybrid_latin_p5": ("ko_rec_p5", True)}
"""Hybrid recognisers by name: (primary CTC model, whether the Latin reader reads the lines without Hangul
first). The ``_int8`` ones read with the int8 copy of ko_rec (:mod:`ocrpipe.training.quantize`) and use the
calibration table of their float twin; ``hybrid_latin_p5`` is ``hybrid_latin`` with the phase-5 candidate
``ko_rec_p5`` as its primary (measured against the default, not the default)."""


def load_recognizer(name: str = "auto", settings: SessionSettings | None = None, *,
                    tesseract_threads: int = 0) -> Recognizer:
    """A recogniser by name: ``auto``, ``tesseract`` / ``tesseract:LANGS``, ``hybrid`` (the neural model with
    Tesseract re-reading its doubtful lines), ``hybrid_latin`` (the same with the PP-OCRv4 reader settling the
    lines without Hangul first), their ``_int8`` variants (:data:`HYBRIDS`), or a CTC model in the registry.

    ``settings`` shape the ONNX Runtime sessions; ``tesseract_threads`` sizes Tesseract's API pool
    (0: the number of usable CPUs).
    """
    if name == "auto":
        name = DEFAULT_RECOGNIZER
    if name in HYBRIDS:
        from ocrpipe.engine.recognize import calibration
        from ocrpipe.engine.recognize.hybrid import HybridRecognizer

        primary, latin = HYBRIDS[name]
        first = load_recognizer(LATIN_READER, settings) if latin else None
        return HybridRecognizer(load_recognizer(primary, settings),
                                load_recognizer("tesseract", settings, tesseract_threads=tesseract_threads),
                                latin_first=first, calibration=calibration.load(name.removesuffix("_int8")))
    if name == "tesseract" or name.startswith("tesseract:"):
        from ocrpipe.engine.recognize.tesseract import TesseractRecognizer

        lang = name.partition(":")[2] or "kor+eng"
        return TesseractRecognizer(lang, threads=tesseract_threads or None)
    from ocrpipe.engine.recognize.ctc import CTCRecognizer

    return CTCRecognizer.from_name(name, settings)


__all__ = ["DEFAULT_RECOGNIZER", "HYBRIDS", "LATIN_READER", "Recognizer", "load_recognizer"]
