"""CTC decoding, crop rectification and preprocessing helpers on hand-made arrays."""

import numpy as np
import pytest

from ocrpipe.engine.crop import crop_quad
from ocrpipe.engine.preprocess import PreprocessConfig, apply, estimate_skew, rotate
from ocrpipe.engine.recognize.ctc import ctc_greedy_decode


def _onehot(seq, classes):
    probs = np.full((len(seq), classes), 0.01, np.float32)
    for t, c in enumerate(seq):
        probs[t, c] = 0.9
    return probs


def test_ctc_collapses_repeats_and_drops_blanks():
    charset = ["가", "나", "a"]
    probs = _onehot([0, 1, 1, 0, 1, 2, 2, 0, 3, 0], 4)[None]
    (res,) = ctc_greedy_decode(probs, charset)
    assert res.text == "가가나a"
    assert res.confidence == pytest.approx(0.9)


def test_ctc_respects_lengths_and_empty():
    probs = np.stack([_onehot([1, 0, 2, 3], 4), _onehot([0, 0, 0, 0], 4)])
    res = ctc_greedy_decode(probs, ["x", "y", "z"], lengths=np.array([2, 4]))
    assert [r.text for r in res] == ["x", ""]
    assert res[1].confidence == 0.0


def test_crop_quad_rectifies_and_rotates_vertical():
    img = np.zeros((100, 200, 3), np.uint8)
    img[20:40, 50:150] = 255
    quad = np.array([[50, 20], [150, 20], [150, 40], [50, 40]], np.float32)
    crop = crop_quad(img, quad)
    assert crop.shape[:2] == (20, 100) and crop.mean() > 240
    tall = np.array([[10, 10], [30, 10], [30, 90], [10, 90]], np.float32)
    assert crop_quad(img, tall).shape[:2] == (20, 80)


def test_deskew_finds_and_undoes_rotation():
    page = np.full((600, 800, 3), 255, np.uint8)
    for y in range(60, 560, 40):
        page[y:y + 12, 80:720] = 0
    tilted, _ = rotate(page, -4.0)
    angle = estimate_skew(tilted)
    assert angle == pytest.approx(4.0, abs=0.3)
    prepared = apply(tilted, PreprocessConfig(deskew=True))
    quad = np.array([[[100, 100], [200, 100], [200, 120], [100, 120]]], np.float32)
    forward = (quad.reshape(-1, 2) @ prepared.matrix[:, :2].T + prepared.matrix[:, 2]).reshape(quad.shape)
    np.testing.assert_allclose(prepared.to_original(forward.astype(np.float32)), quad, atol=1e-3)


def test_ctc_composes_conjoining_jamo_into_syllables():
    charset = ["\u1100", "\u1161", "\u11a8", "\u1102", "1"]  # ᄀ ᅡ ᆨ ᄂ 1
    probs = _onehot([1, 0, 2, 3, 0, 4, 2, 0, 5], 6)[None]
    (res,) = ctc_greedy_decode(probs, charset)
    assert res.text == "각나1"
