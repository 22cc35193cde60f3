"""The document-content generators: they render, the label is the text drawn, the charset covers it, and the
phase 1-4 streams stay as they were when the new options are off."""

from __future__ import annotations

import random
import unicodedata

import numpy as np
import pytest

from ocrpipe.synth.charset import charset_set
from ocrpipe.synth.text import CIRCLED, DocText, TextGen


def _texts(n: int = 400) -> list[str]:
    gen = DocText(random.Random(7))
    return [gen(max_chars=40) for _ in range(n)]


def test_doc_text_covers_what_real_documents_print():
    joined = "\n".join(_texts())
    for needle in ("현 행", "개 정 안", "<신 설>", "(현행과 같음)", "「", "」", "※", "ㆍ", "∼", "Class C1", "-----",
                   "·····"):
        assert needle in joined, needle
    assert sum(ch in joined for ch in CIRCLED) >= 15
    assert any(any("\uac00" <= c <= "\ud7a3" for c in t) and any(c.isascii() and c.isalpha() for c in t)
               for t in _texts())  # mixed Korean / Latin lines


def test_doc_text_stays_inside_the_charset_and_the_length():
    cs = charset_set()
    for text in _texts():
        assert text and text == text.strip() and "  " not in text
        assert len(text) <= 40
        assert set(text) <= cs, set(text) - cs
        assert unicodedata.normalize("NFC", text) == text


def test_doc_content_lines_render_with_their_labels():
    from ocrpipe.synth.lines import LineSynth

    synth = LineSynth(seed=11, max_width=400, max_chars=30, doc_content=1.0, tiny=0.5)
    gen_texts = set()
    for i in range(12):
        img, text = synth.sample(i)
        assert img.dtype == np.uint8 and img.shape[0] == 32 and 8 <= img.shape[1] <= 400
        assert text and set(text) <= charset_set()
        assert img.std() > 3, text  # something was drawn
        # the label is what DocText generated for this sample (or the prefix that fitted)
        rng = random.Random((11 * 1_000_003 + i) & 0xFFFFFFFFFFFF)
        rng.random()  # the doc_content draw
        full = DocText(rng)(max_chars=rng.randint(1, 30))
        assert full.startswith(text)
        gen_texts.add(text)
    assert len(gen_texts) == 12


def test_options_off_keep_the_earlier_stream_and_tiny_lines_lose_detail():
    from ocrpipe.synth.lines import LineSynth

    old, new = LineSynth(seed=4, max_width=200), LineSynth(seed=4, max_width=200, doc_content=0.0, tiny=0.0)
    for i in range(4):
        (a, ta), (b, tb) = old.sample(i), new.sample(i)
        assert ta == tb and np.array_equal(a, b)
    plain, tiny = LineSynth(seed=4, max_width=400), LineSynth(seed=4, max_width=400, tiny=1.0)
    blurred = 0
    for i in range(6):
        (a, ta), (b, tb) = plain.sample(i), tiny.sample(i)
        assert ta == tb and b.shape[0] == 32
        # shrunk to 6-12 px and scaled back: far less high-frequency energy
        blurred += np.abs(np.diff(b.astype(float), axis=1)).mean() < np.abs(np.diff(a.astype(float), axis=1)).mean()
    assert blurred >= 5


def test_old_textgen_mix_is_unchanged():
    # DocText is a subclass with its own mix; TextGen's draws for a seed are what they were
    a, b = TextGen(random.Random(3)), TextGen(random.Random(3))
    assert [a() for _ in range(20)] == [b() for _ in range(20)]
    assert all(k.__name__ != "fill_line" for _, k in TextGen(random.Random(0)).kinds)


@pytest.mark.parametrize("language", ["en", "ko"])
def test_synthetic_pages_are_an_evaluation_folder(tmp_path, language):
    from ocrpipe.evaluation import load_dataset
    from ocrpipe.synth.pages import write_dataset

    write_dataset(tmp_path, 2, seed=5, language=language)
    ds = load_dataset(tmp_path)
    assert len(ds) == 2
    for sample in ds.samples:
        assert sample.image_path.is_file() and sample.lines
        assert sample.text == "\n".join(r.text for r in sample.lines)
        for region in sample.lines:
            x0, y0 = region.points.min(axis=0)
            x1, y1 = region.points.max(axis=0)
            assert x1 > x0 and y1 > y0
