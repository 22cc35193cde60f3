"""Confidence calibration tables: isotonic fit, mapping, manifest round trip."""

import json
import random

import pytest

from ocrpipe.document import RecResult, WordSpan
from ocrpipe.engine.recognize import calibration as cal


def test_isotonic_fit_is_monotone_and_tracks_the_hit_rate():
    rng = random.Random(0)
    conf = [rng.random() for _ in range(4000)]
    # a recogniser that is overconfident: right with probability conf ** 3
    hits = [float(rng.random() < c ** 3) for c in conf]
    table = cal.fit_isotonic(conf, hits, knots=20)
    assert all(b > a for a, b in zip(table.y, table.y[1:], strict=False))
    assert all(b > a for a, b in zip(table.x, table.x[1:], strict=False))
    for c in (0.3, 0.6, 0.9):
        assert table(c) == pytest.approx(c ** 3, abs=0.08)
    # clamped outside the knots
    assert table(0.0) == table.y[0] and table(1.0) == table.y[-1]


def test_flat_stretches_keep_the_order_of_confidences():
    table = cal.fit_isotonic([0.1] * 50 + [0.5] * 50 + [0.9] * 50, [1.0] * 50 + [0.0] * 50 + [1.0] * 50, knots=5)
    assert table(0.2) < table(0.3) < table(0.8)  # pooled violators: still strictly increasing


def test_apply_maps_line_and_word_confidences_and_keeps_text():
    table = cal.Calibration((0.5, 1.0), (0.1, 0.9))
    out = table.apply(RecResult("TOTAL 5", 0.75, (WordSpan("TOTAL", 1.0, 0.0, 0.6), WordSpan("5", 0.5, 0.6, 1.0))))
    assert out.text == "TOTAL 5" and out.confidence == pytest.approx(0.5)
    assert [w.confidence for w in out.words] == pytest.approx([0.9, 0.1])


def test_table_round_trip_and_validation(tmp_path, monkeypatch):
    table = cal.Calibration((0.2, 0.8), (0.1, 0.7), "test")
    assert cal.Calibration.from_dict(json.loads(json.dumps(table.to_dict()))) == table
    with pytest.raises(ValueError):
        cal.Calibration.from_dict({"x": [0.5, 0.5], "y": [0.1, 0.2]})
    with pytest.raises(ValueError):
        cal.fit_isotonic([0.5] * 10, [1.0] * 10, knots=20)
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"models": [], "calibration": {"x_rec": table.to_dict()}}))
    monkeypatch.setattr("ocrpipe.engine.runtime.MANIFEST", manifest)
    assert cal.load("x_rec") == table
    assert cal.load("other") is None
