"""The training code cannot rot: a few real optimisation steps, resume, export to ONNX, load in the engine."""

from __future__ import annotations

import dataclasses
import unicodedata
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the training extra (torch) is not installed")

from ocrpipe.training.model import CRNN, build_vocab, greedy_decode, tokenize  # noqa: E402
from ocrpipe.training.train import Collate, TrainConfig, train  # noqa: E402

TINY = TrainConfig(steps=6, batch_size=4, val_size=8, max_width=96, max_chars=6, threads=1, workers=0,
                   checkpoint_minutes=100, validate_minutes=100)


def test_jamo_tokens_round_trip_every_charset_symbol():
    vocab = build_vocab()
    assert len(vocab) < 400  # jamo, not 2,350 syllables
    for text in ("한글 ABC 123", "값: -1.25 D", "①※「확인」"):
        tokens = tokenize(text)
        assert all(t in vocab for t in tokens), [t for t in tokens if t not in vocab]
        assert unicodedata.normalize("NFC", "".join(tokens)) == text


def test_model_shapes():
    model = CRNN(len(build_vocab()) + 1)
    out = model(torch.zeros(2, 1, 32, 96))
    assert out.shape == (2, 24, len(build_vocab()) + 1)
    assert sum(p.numel() for p in model.parameters()) < 10_000_000


def test_collate_pads_to_buckets_and_encodes_targets():
    vocab = build_vocab()
    batch = [(np.full((32, 50), 200, np.uint8), "가a"), (np.full((32, 100), 30, np.uint8), "1")]
    x, lengths, targets, target_lengths, texts = Collate(vocab, 96)(batch)
    assert x.shape == (2, 1, 32, 192) and lengths.tolist() == [12, 25]
    assert target_lengths.tolist() == [3, 1] and len(targets) == 4  # 가 = ᄀ + ᅡ
    assert x[0, 0, 0, 100].item() == pytest.approx((200 / 255 - 0.5) / 0.5)  # padded with the background


@pytest.mark.integration  # runs the real training loop: seconds, not milliseconds
def test_tiny_training_run_resumes_and_exports(tmp_path: Path):
    from ocrpipe.training.export import export_onnx

    first = train(TINY, tmp_path / "run", max_steps=3, progress=False, log=lambda _: None)
    assert first["step"] == 3 and (tmp_path / "run" / "last.pt").is_file()
    second = train(TINY, tmp_path / "run", resume=True, progress=False, log=lambda _: None)
    assert second["step"] == TINY.steps
    info = export_onnx(tmp_path / "run" / "last.pt", tmp_path / "tiny.onnx")
    assert info["max_abs_diff"] < 1e-4 and info["step"] == TINY.steps
    from ocrpipe.training.train import evaluate_checkpoint

    # the saved checkpoint reproduces the run's own validation exactly (six steps teach nothing: the
    # bound on what the model learns is test_the_model_learns_a_few_lines_by_heart)
    value, examples = evaluate_checkpoint(tmp_path / "run" / "last.pt", seed=TINY.val_seed, size=TINY.val_size,
                                          max_width=96, max_chars=6, threads=1)
    assert value == pytest.approx(second["val_cer"]) and len(examples) == 3

    from ocrpipe.engine import runtime
    from ocrpipe.engine.recognize.ctc import CTCRecognizer

    spec = runtime.ModelSpec(name="tiny", kind="recognizer", source=f"file:{tmp_path / 'tiny.onnx'}",
                             sha256=info["sha256"])
    rec = CTCRecognizer(spec, runtime.create_session(runtime.verified_path(spec), runtime.SessionSettings(threads=1)))
    assert rec.height == 32 and rec.channels == 1
    results = rec.recognize([np.full((20, 60, 3), 255, np.uint8), np.zeros((40, 200, 3), np.uint8)])
    assert len(results) == 2 and all(0.0 <= r.confidence <= 1.0 for r in results)


@pytest.mark.integration  # runs the real training loop: seconds, not milliseconds
def test_the_model_learns_a_few_lines_by_heart():
    """Model, CTC loss, targets and greedy decoding together: a working recogniser memorises four lines in a
    few hundred steps; a broken one (misaligned time axis, wrong targets, a decoder that drops symbols) does
    not get below the bound."""
    from torch import nn

    from ocrpipe.training.train import SynthLines, cer, seed_everything

    seed_everything(0)
    torch.set_num_threads(1)
    vocab = build_vocab()
    data = SynthLines(5, 4, 96, 4)
    x, lengths, targets, target_lengths, texts = Collate(vocab, 96)([data[i] for i in range(4)])
    model = CRNN(len(vocab) + 1)

    def error() -> float:
        model.eval()
        with torch.no_grad():
            preds = greedy_decode(model(x), lengths.tolist(), vocab)
        model.train()
        return cer(preds, texts)

    assert error() >= 0.75  # untrained
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    ctc = nn.CTCLoss(blank=0, zero_infinity=True)
    for step in range(1, 301):
        loss = ctc(model(x).log_softmax(-1).transpose(0, 1), targets, lengths, target_lengths)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 25 == 0 and error() == 0.0:
            break
    assert error() <= 0.15, f"CER {error():.3f} after {step} steps"


def test_config_rejects_unknown_keys(tmp_path: Path):
    path = tmp_path / "c.yaml"
    path.write_text("steps: 5\nlearning_rate: 1\n")
    with pytest.raises(ValueError, match="learning_rate"):
        TrainConfig.from_yaml(path)
    shipped = TrainConfig.from_yaml(Path(__file__).parents[2] / "configs" / "rec_ko.yaml")
    assert dataclasses.asdict(shipped)["max_width"] == 288


def test_greedy_decode_composes_jamo():
    vocab = build_vocab()
    ids = [vocab.index(t) + 1 for t in tokenize("한")]
    logits = torch.full((1, 5, len(vocab) + 1), -10.0)
    for t, c in enumerate([ids[0], 0, ids[1], ids[2], 0]):
        logits[0, t, c] = 10.0
    assert greedy_decode(logits, [5], vocab) == ["한"]


def test_charset_is_ks_x_1001_plus_ascii_and_document_symbols():
    from ocrpipe.synth.charset import build_charset, ksx1001_hangul

    hangul = ksx1001_hangul()
    assert len(hangul) == 2350 and "가" in hangul and "똠" not in hangul  # 똠 is famously missing from KS X 1001
    charset = build_charset()
    assert {"A", "z", "0", " ", "※", "ㆍ", "「", "①"} <= set(charset)
    assert len(charset) == len(set(charset))


def test_synthetic_lines_are_deterministic_and_32_high():
    from ocrpipe.synth.lines import LineSynth

    a, b = LineSynth(seed=3, max_width=200), LineSynth(seed=3, max_width=200)
    for i in range(5):
        (img_a, text_a), (img_b, text_b) = a.sample(i), b.sample(i)
        assert text_a == text_b and np.array_equal(img_a, img_b)
        assert img_a.shape[0] == 32 and img_a.shape[1] <= 200 and img_a.dtype == np.uint8


def test_scanner_chain_keeps_texts_and_determinism_and_degrades_the_images():
    from ocrpipe.synth.lines import LineSynth

    plain, again = LineSynth(seed=5, max_width=200), LineSynth(seed=5, max_width=200, scan_chain=0.0)
    scanned, scanned2 = (LineSynth(seed=5, max_width=200, scan_chain=1.0) for _ in range(2))
    changed = 0
    for i in range(6):
        (p, text), (q, _) = plain.sample(i), again.sample(i)
        assert np.array_equal(p, q)  # scan_chain 0 is the earlier phases' stream, sample for sample
        (s, s_text), (s2, _) = scanned.sample(i), scanned2.sample(i)
        assert s_text == text and np.array_equal(s, s2) and s.shape == p.shape
        changed += not np.array_equal(s, p)
    assert changed == 6


def test_label_is_the_text_drawn_when_a_line_is_shortened_to_fit():
    import random

    from ocrpipe.synth.lines import LineSynth

    synth = LineSynth(seed=0, max_width=96)
    text = "가나다라마바사아자차카타파하 가나다라마바사"
    for i in range(5):
        img, drawn = synth.render(text, random.Random(i))
        assert img.shape[0] == 32 and img.shape[1] <= 96
        assert drawn and len(drawn) < len(text) and text.startswith(drawn)

@pytest.mark.integration  # runs the real training loop: seconds, not milliseconds
def test_second_phase_starts_from_first_phase_weights(tmp_path: Path):
    train(TINY, tmp_path / "one", max_steps=2, progress=False, log=lambda _: None)
    messages: list[str] = []
    summary = train(dataclasses.replace(TINY, steps=3, lr=1e-4), tmp_path / "two", init=tmp_path / "one" / "last.pt",
                    progress=False, log=messages.append)
    assert summary["step"] == 3
    assert any("initialised from" in m and "samples continue at 8" in m for m in messages)


@pytest.mark.integration  # runs the real training loop: seconds, not milliseconds
def test_time_based_anneal_runs(tmp_path: Path):
    cfg = dataclasses.replace(TINY, steps=10**6, anneal_by_time=True, warmup=0.0)
    summary = train(cfg, tmp_path / "t", max_steps=3, max_minutes=10.0, progress=False, log=lambda _: None)
    assert summary["step"] == 3


@pytest.mark.integration  # runs the real training loop: seconds, not milliseconds
def test_exported_model_is_rebuilt_for_further_training(tmp_path: Path):
    """``--init model.onnx``: the rebuilt torch model computes what the ONNX file computes (folded batch norm
    restored from measured statistics, LSTM gates reordered), and training continues from it."""
    import onnxruntime as ort

    from ocrpipe.training.onnx_init import crnn_from_onnx, onnx_vocab
    from ocrpipe.training.train import SynthLines

    shipped = Path(__file__).resolve().parents[2] / "src" / "ocrpipe" / "models" / "ko_rec.onnx"
    vocab = build_vocab()
    assert onnx_vocab(shipped) == vocab
    data = SynthLines(7, 24, 192, 10)
    collate = Collate(vocab, 96)
    calibration = [collate([data[i] for i in range(j, j + 8)])[0] for j in (0, 8)]
    model = crnn_from_onnx(shipped, calibration).eval()
    x = collate([data[i] for i in range(16, 24)])[0]
    expected = ort.InferenceSession(str(shipped), providers=["CPUExecutionProvider"]).run(None, {"x": x.numpy()})[0]
    with torch.no_grad():
        got = model(x).softmax(-1).numpy()
    assert np.abs(got - expected).max() < 1e-4

    messages: list[str] = []
    summary = train(dataclasses.replace(TINY, steps=2, lr=1e-5, max_width=192, max_chars=10), tmp_path / "ft",
                    init=shipped, progress=False, log=messages.append)
    assert summary["step"] == 2 and any("initialised from exported model" in m for m in messages)
    assert summary["val_cer"] < 0.5  # the shipped model's skill survives the import (random weights: ~1.0)


def test_conv_architecture_shapes_and_checkpoint_rebuild():
    from ocrpipe.training.model import ConvCTC, build_model, model_from_state

    vocab = build_vocab()
    model = build_model("conv", len(vocab) + 1, hidden=32, blocks=3)
    assert isinstance(model, ConvCTC)
    out = model(torch.zeros(2, 1, 32, 96))
    assert out.shape == (2, 24, len(vocab) + 1)
    state = {"model": model.state_dict(), "vocab": list(vocab), "config": {"arch": "conv", "hidden": 32, "blocks": 3}}
    again = model_from_state(state).eval()
    x = torch.randn(1, 1, 32, 64)
    with torch.no_grad():
        assert torch.allclose(model.eval()(x), again(x))
    slim = build_model("conv", len(vocab) + 1, hidden=16, blocks=1, channels=(8, 8, 16, 16, 16, 16))
    assert slim(torch.zeros(1, 1, 32, 64)).shape == (1, 16, len(vocab) + 1)
    slim_state = {"model": slim.state_dict(), "vocab": list(vocab),
                  "config": {"arch": "conv", "hidden": 16, "blocks": 1, "channels": [8, 8, 16, 16, 16, 16]}}
    rebuilt = model_from_state(slim_state)
    assert sum(p.numel() for p in rebuilt.parameters()) == sum(p.numel() for p in slim.parameters())
    with pytest.raises(ValueError):
        build_model("lstm9", 10)
    # older checkpoints have no arch key: they are CRNNs
    crnn = CRNN(len(vocab) + 1, hidden=16)
    assert isinstance(model_from_state({"model": crnn.state_dict(), "vocab": list(vocab), "config": {"hidden": 16}}),
                      CRNN)


@pytest.mark.integration  # runs the real training loop: seconds, not milliseconds
def test_conv_training_resumes_exports_and_runs_in_the_engine(tmp_path: Path):
    from ocrpipe.engine import runtime
    from ocrpipe.engine.recognize.ctc import CTCRecognizer
    from ocrpipe.training.export import export_onnx

    cfg = dataclasses.replace(TINY, arch="conv", hidden=16, blocks=2, doc_content=0.5, tiny=0.2)
    train(cfg, tmp_path / "run", max_steps=2, progress=False, log=lambda _: None)
    assert train(cfg, tmp_path / "run", resume=True, progress=False, log=lambda _: None)["step"] == cfg.steps
    info = export_onnx(tmp_path / "run" / "last.pt", tmp_path / "conv.onnx", name="ko_rec4")
    assert info["max_abs_diff"] < 1e-4
    spec = runtime.ModelSpec(name="conv", kind="recognizer", source=f"file:{tmp_path / 'conv.onnx'}",
                             sha256=info["sha256"])
    session = runtime.create_session(runtime.verified_path(spec), runtime.SessionSettings(threads=1))
    assert session.get_modelmeta().custom_metadata_map["arch"] == "conv"
    rec = CTCRecognizer(spec, session)
    results = rec.recognize([np.full((20, 60, 3), 255, np.uint8), np.zeros((40, 200, 3), np.uint8)])
    assert len(results) == 2 and all(0.0 <= r.confidence <= 1.0 for r in results)


@pytest.mark.integration  # reads the shipped model
def test_conv_training_starts_from_the_shipped_feature_extractor(tmp_path: Path):
    from ocrpipe.engine import runtime

    cfg = dataclasses.replace(TINY, arch="conv", blocks=2)
    messages: list[str] = []
    train(cfg, tmp_path / "run", max_steps=1, init=runtime.get_spec("ko_rec").path, progress=False,
          log=messages.append)
    assert any("feature extractor initialised from exported model" in m for m in messages)
