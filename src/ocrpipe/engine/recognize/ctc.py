"""A neural CTC line recogniser on ONNX Runtime.

Loads any CTC model from the registry whose ONNX metadata carries its charset (``character``, one symbol
per line; class 0 is the CTC blank): ocrpipe's own Korean model (``ko_rec``, gray input, height 32) or the
PP-OCRv4 zh/en model inside ``rapidocr_onnxruntime`` (BGR input, height 48, space appended as last class).
Crops are resized to the model height, sorted by width and batched so that no crop is padded by more than
``max_pad`` of its width (compute grows with the padded width: one batch of mixed widths costs more than
several homogeneous ones), padded with their background colour, and decoded greedily.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Iterator, Sequence
from typing import Any

import cv2
import numpy as np

from ocrpipe.document import ModelInfo, RecResult, WordSpan
from ocrpipe.engine import runtime
from ocrpipe.engine.recognize.split import read_split
from ocrpipe.engine.words import snap_to_gaps
from ocrpipe.errors import EngineError, ErrorCode, Stage


def ctc_greedy_decode(probs: np.ndarray, charset: Sequence[str], lengths: np.ndarray | None = None,
                      frame_width: np.ndarray | None = None) -> list[RecResult]:
    """Best-path decoding of (N, T, C) probabilities: collapse repeats, drop blanks (class 0).

    ``lengths`` (N,) limits each row to its valid time steps (the rest is padding). Confidence is the
    mean probability of the emitted symbols. The text is NFC-normalised, so a model whose charset spells
    Hangul as conjoining jamo (initial, vowel, final) yields composed syllables. ``frame_width`` (N,) is
    the share of each crop's width that one time step covers (default: ``1 / lengths``); it places the
    word spans of each result (see :func:`word_spans`).
    """
    best = probs.argmax(axis=2)
    best_p = probs.max(axis=2)
    results = []
    for n in range(probs.shape[0]):
        t_max = int(lengths[n]) if lengths is not None else probs.shape[1]
        idx, p = best[n, :t_max], best_p[n, :t_max]
        keep = np.ones_like(idx, dtype=bool)
        keep[1:] = idx[1:] != idx[:-1]
        keep &= idx != 0
        chars = [charset[i - 1] for i in idx[keep] if i - 1 < len(charset)]
        conf = float(p[keep].mean()) if keep.any() else 0.0
        step = float(frame_width[n]) if frame_width is not None else 1.0 / max(t_max, 1)
        words = word_spans(idx, p, charset, step)
        least = float(p[keep].min()) if keep.any() else None
        results.append(RecResult(unicodedata.normalize("NFC", "".join(chars)), conf, words, least))
    return results


def _symbol_runs(idx: np.ndarray, p: np.ndarray, charset: Sequence[str]) -> list[tuple[str, int, int, float]]:
    """Each emitted symbol of a best path with its first and last frame and its mean probability."""
    if not len(idx):
        return []
    starts = np.flatnonzero(np.r_[True, idx[1:] != idx[:-1]])
    ends = np.r_[starts[1:], len(idx)] - 1
    means = np.add.reduceat(p.astype(np.float64), starts) / (ends - starts + 1)
    n = len(charset)
    return [(charset[k - 1], s, e, m) for k, s, e, m in zip(idx[starts].tolist(), starts.tolist(), ends.tolist(),
                                                             means.tolist(), strict=True) if 0 < k <= n]


def word_spans(idx: np.ndarray, p: np.ndarray, charset: Sequence[str], frame_width: float) -> tuple[WordSpan, ...]:
    """Words of one best path (split at spaces) with their extent as fractions of the crop's width.

    A CTC model emits each symbol on a frame or two inside the symbol's ink, so the boundary between two
    words is put half way between the last frame of one and the first frame of the next; the first word
    starts at the crop's left edge and the last one ends at its right edge (the crop is the line box).
    """
    words: list[list[tuple[str, int, int, float]]] = [[]]
    for run in _symbol_runs(idx, p, charset):
        if run[0].isspace():
            words.append([])
        else:
            words[-1].append(run)
    words = [w for w in words if w]
    out = []
    for k, word in enumerate(words):
        start = 0.0 if k == 0 else (words[k - 1][-1][2] + word[0][1] + 1) / 2 * frame_width
        end = 1.0 if k == len(words) - 1 else (word[-1][2] + words[k + 1][0][1] + 1) / 2 * frame_width
        text = unicodedata.normalize("NFC", "".join(r[0] for r in word))
        conf = sum(r[3] for r in word) / len(word)
        out.append(WordSpan(text, conf, min(max(start, 0.0), 1.0), min(max(end, 0.0), 1.0)))
    return tuple(out)


class CTCRecognizer:
    """Neural CTC recogniser (thread-safe; batches internally)."""

    def __init__(self, spec: runtime.ModelSpec, session: Any, *, batch_size: int = 32,
                 max_width: int = 3200, max_pad: float = 0.25) -> None:
        self.spec = spec
        self.session = session
        self.name = spec.name
        self.batch_size = batch_size
        meta = session.get_modelmeta().custom_metadata_map
        if "character" not in meta:
            raise EngineError(ErrorCode.MODEL_NOT_FOUND, f"model {spec.name} has no 'character' metadata")
        self.charset = meta["character"].split("\n")
        if spec.meta.get("space_char"):
            self.charset.append(" ")
        inp = session.get_inputs()[0]
        self.input_name = inp.name
        self.height = int(spec.meta.get("input_height", meta.get("input_height", inp.shape[2])))
        self.input_height = self.height
        self.channels = int(spec.meta.get("channels", meta.get("input_channels", inp.shape[1])))
        self.mean = float(spec.meta.get("mean", meta.get("mean", 0.5)))
        self.std = float(spec.meta.get("std", meta.get("std", 0.5)))
        self.bgr = self.channels == 3 and bool(spec.meta.get("bgr", True))
        self.max_width = max_width
        self.max_pad = max_pad

    @classmethod
    def from_name(cls, name: str, settings: runtime.SessionSettings | None = None, **kwargs: Any) -> CTCRecognizer:
        """A CTC model from the registry, its ONNX session run with ``settings``."""
        spec, session = runtime.load_model(name, settings)
        return cls(spec, session, **kwargs)

    def models(self) -> list[ModelInfo]:
        return [self.spec.info()]

    def _resize(self, crop: np.ndarray) -> np.ndarray:
        img = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY) if self.channels == 1 and crop.ndim == 3 else crop
        if self.bgr and img.ndim == 3:
            img = img[..., ::-1]
        h, w = img.shape[:2]
        new_w = min(self.max_width, max(1, int(math.ceil(w * self.height / max(h, 1)))))
        interp = cv2.INTER_AREA if h > self.height else cv2.INTER_LINEAR
        return cv2.resize(np.ascontiguousarray(img), (new_w, self.height), interpolation=interp)

    def _batch(self, images: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        width = max(8, max(img.shape[1] for img in images))
        width = int(math.ceil(width / 8) * 8)
        c = self.channels
        x = np.empty((len(images), c, self.height, width), np.float32)
        widths = np.zeros(len(images), np.int64)
        for i, img in enumerate(images):
            arr = img.astype(np.float32).reshape(self.height, img.shape[1], c)
            edge = np.concatenate([arr[0], arr[-1], arr[:, 0], arr[:, -1]]).reshape(-1, c)
            background = np.median(edge, axis=0)
            padded = np.empty((self.height, width, c), np.float32)
            padded[:] = background
            padded[:, : img.shape[1]] = arr
            x[i] = ((padded / 255.0 - self.mean) / self.std).transpose(2, 0, 1)
            widths[i] = img.shape[1]
        return x, widths

    def _chunks(self, order: list[int], widths: dict[int, int]) -> list[list[int]]:
        """Consecutive runs of the width-sorted crops: at most ``batch_size`` each, and none whose narrowest
        crop would be padded by more than ``max_pad`` of its width."""
        chunks: list[list[int]] = []
        for i in order:
            if chunks and len(chunks[-1]) < self.batch_size and \
                    widths[i] <= widths[chunks[-1][0]] * (1 + self.max_pad):
                chunks[-1].append(i)
            else:
                chunks.append([i])
        return chunks

    def network_batches(self, crops: Sequence[np.ndarray], valid: Sequence[int] | None = None
                        ) -> Iterator[tuple[list[int], np.ndarray, np.ndarray]]:
        """The network inputs :meth:`recognize` runs: ``(crop indices, (N, C, H, W) float32, widths)`` per
        batch, of the crops ``valid`` names (default all), grouped by width (also what the int8 model is
        calibrated on: :mod:`ocrpipe.training.quantize`). A crop past :attr:`max_aspect` is squeezed to
        ``max_width`` here; :meth:`recognize` cuts such crops into pieces first."""
        valid = range(len(crops)) if valid is None else valid
        resized = {i: self._resize(crops[i]) for i in valid}
        order = sorted(valid, key=lambda i: resized[i].shape[1])
        for chunk in self._chunks(order, {i: resized[i].shape[1] for i in valid}):
            x, widths = self._batch([resized[i] for i in chunk])
            yield chunk, x, widths

    @property
    def max_aspect(self) -> float:
        """The widest crop, in multiples of its height, read whole (``max_width`` over the input height);
        longer ones are read in pieces (:mod:`ocrpipe.engine.recognize.split`)."""
        return self.max_width / self.height

    def recognize(self, crops: Sequence[np.ndarray]) -> list[RecResult]:
        """One result per crop; crops are grouped by width so padding stays small, and a crop wider than
        :attr:`max_aspect` is read in pieces cut at its word gaps, batched with the others."""
        return read_split(self._recognize, crops, self.max_aspect)

    def _recognize(self, crops: Sequence[np.ndarray]) -> list[RecResult]:
        results: list[RecResult | None] = [None] * len(crops)
        valid = [i for i, c in enumerate(crops) if c.size and min(c.shape[:2]) >= 2]
        for i in set(range(len(crops))) - set(valid):
            results[i] = RecResult("", 0.0)
        for chunk, x, widths in self.network_batches(crops, valid):
            try:
                probs = self.session.run(None, {self.input_name: x})[0]
            except Exception as exc:
                raise EngineError(ErrorCode.ENGINE_FAILURE, f"recogniser {self.name} failed: {exc}",
                                  stage=Stage.RECOGNIZE) from exc
            steps = np.ceil(widths / x.shape[3] * probs.shape[1]).astype(np.int64)
            frame_width = x.shape[3] / probs.shape[1] / widths
            for i, res in zip(chunk, ctc_greedy_decode(probs, self.charset, steps, frame_width), strict=True):
                results[i] = RecResult(res.text, res.confidence, snap_to_gaps(res.words, crops[i]), res.least)
        return [r if r is not None else RecResult("", 0.0) for r in results]
