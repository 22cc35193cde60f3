"""Training loop for the CTC recogniser on synthetic lines generated on the fly.

Deterministic: sample ``i`` of the training stream is ``LineSynth(seed).sample(i)``, so a resumed run
continues the exact stream where it stopped. Validation uses a fixed held-out synthetic set (another seed).
Checkpoints (``last.pt``) hold the model, optimiser, scheduler, step and vocabulary.
"""

from __future__ import annotations

import math
import os
import random
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from rapidfuzz.distance import Levenshtein
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ocrpipe.synth.lines import LineSynth
from ocrpipe.training.model import HEIGHT, STRIDE, build_model, build_vocab, greedy_decode, model_from_state, tokenize


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a run (read from YAML; unknown keys are an error)."""

    seed: int = 1
    val_seed: int = 999
    val_size: int = 400
    steps: int = 14000
    batch_size: int = 48
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup: float = 0.05
    max_width: int = 288
    max_chars: int = 18
    width_bucket: int = 96
    hidden: int = 96
    arch: str = "crnn"
    """``crnn`` (CNN + BiLSTM, ko_rec 1-3) or ``conv`` (CNN + dilated temporal convolutions)."""
    blocks: int = 4
    """Temporal blocks of the ``conv`` architecture."""
    channels: tuple[int, ...] = (16, 32, 64, 64, 96, 96)
    """Feature-extractor channels of the ``conv`` architecture (``--init`` from ko_rec needs the default)."""
    threads: int = 2
    workers: int = 1
    checkpoint_minutes: float = 5.0
    validate_minutes: float = 10.0
    anneal_by_time: bool = False
    """Cosine-decay the learning rate over ``--max-minutes`` of wall time instead of over ``steps`` (for
    a fixed time budget on a shared machine, where the number of steps is unknown in advance)."""
    scan_chain: float = 0.0
    """Share of training lines given the whole scanner chain (see ``LineSynth.scan_chain``); validation
    stays on the plain stream so CER figures compare across phases."""
    doc_content: float = 0.0
    """Share of training lines from the document-content generators (``LineSynth.doc_content``)."""
    tiny: float = 0.0
    """Share of training lines printed tiny (``LineSynth.tiny``)."""

    @classmethod
    def from_yaml(cls, path: str | Path) -> TrainConfig:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown keys in {path}: {sorted(unknown)}")
        return cls(**data)


class SynthLines(Dataset):
    """``LineSynth`` samples by index (the synthesiser is created lazily in each worker process)."""

    def __init__(self, seed: int, size: int, max_width: int, max_chars: int, scan_chain: float = 0.0,
                 doc_content: float = 0.0, tiny: float = 0.0) -> None:
        self.seed, self.size, self.max_width, self.max_chars = seed, size, max_width, max_chars
        self.scan_chain, self.doc_content, self.tiny = scan_chain, doc_content, tiny
        self._synth: LineSynth | None = None

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> tuple[np.ndarray, str]:
        if self._synth is None:
            self._synth = LineSynth(seed=self.seed, max_width=self.max_width, max_chars=self.max_chars,
                                    scan_chain=self.scan_chain, doc_content=self.doc_content, tiny=self.tiny)
        return self._synth.sample(index)


class Collate:
    """Pads a batch to a width bucket (few distinct shapes keep oneDNN's kernel cache warm)."""

    def __init__(self, vocab: tuple[str, ...], bucket: int) -> None:
        self.index = {t: i + 1 for i, t in enumerate(vocab)}
        self.bucket = bucket

    def __call__(self, batch: list[tuple[np.ndarray, str]]) -> tuple[torch.Tensor, ...] | Any:
        width = max(8, max(img.shape[1] for img, _ in batch))
        width = int(math.ceil(width / self.bucket) * self.bucket)
        x = np.empty((len(batch), 1, HEIGHT, width), np.float32)
        lengths, targets, target_lengths, texts = [], [], [], []
        for k, (img, text) in enumerate(batch):
            x[k, 0] = np.median(np.concatenate([img[:, 0], img[:, -1]]))  # pad with the background
            x[k, 0, :, : img.shape[1]] = img
            lengths.append(max(1, img.shape[1] // STRIDE))
            ids = [self.index[t] for t in tokenize(text) if t in self.index]
            targets += ids
            target_lengths.append(len(ids))
            texts.append(text)
        x = (x / 255.0 - 0.5) / 0.5
        return (torch.from_numpy(x), torch.tensor(lengths), torch.tensor(targets, dtype=torch.long),
                torch.tensor(target_lengths), texts)


def cer(preds: list[str], truths: list[str]) -> float:
    edits = sum(Levenshtein.distance(p, t) for p, t in zip(preds, truths, strict=True))
    return edits / max(1, sum(len(t) for t in truths))


def validate(model: nn.Module, batches: list[Any], vocab: tuple[str, ...]) -> tuple[float, list[tuple[str, str]]]:
    model.eval()
    preds, truths = [], []
    with torch.no_grad():
        for x, lengths, _, _, texts in batches:
            preds += greedy_decode(model(x), lengths.tolist(), vocab)
            truths += texts
    model.train()
    return cer(preds, truths), list(zip(preds[:3], truths[:3], strict=True))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def train(config: TrainConfig, out_dir: Path, *, resume: bool = False, init: Path | None = None,
          max_minutes: float | None = None, max_steps: int | None = None, device: str = "cpu",
          progress: bool = True, log=print) -> dict[str, Any]:
    """Train (or resume) a recogniser; returns a summary with the final validation CER.

    ``init`` starts from another run's weights with a fresh optimiser and schedule (a second phase, e.g. a
    short low-learning-rate anneal); its training stream continues after that run's samples.
    """
    from tqdm import tqdm

    seed_everything(config.seed)
    torch.set_num_threads(config.threads)
    out_dir.mkdir(parents=True, exist_ok=True)
    vocab = build_vocab()
    model = build_model(config.arch, len(vocab) + 1, config.hidden, config.blocks, tuple(config.channels)).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=config.lr, total_steps=config.steps,
                                                pct_start=config.warmup)
    ctc = nn.CTCLoss(blank=0, zero_infinity=True)
    ckpt = out_dir / "last.pt"
    step = offset = 0
    if resume and ckpt.exists():
        state = torch.load(ckpt, map_location=device)
        if tuple(state["vocab"]) != vocab:
            raise ValueError(f"{ckpt} was trained with another vocabulary")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        step = int(state["step"])
        offset = int(state.get("offset", 0))
        log(f"resumed from {ckpt} at step {step}")
    if init is not None and step == 0 and init.suffix == ".onnx":
        from ocrpipe.training.onnx_init import crnn_from_onnx, onnx_vocab

        if onnx_vocab(init) != vocab:
            raise ValueError(f"{init} was trained with another vocabulary")
        calib_set = SynthLines(config.val_seed + 1, 200, config.max_width, config.max_chars)
        calib = [Collate(vocab, config.width_bucket)([calib_set[i] for i in range(j, j + 50)])[0]
                 for j in range(0, 200, 50)]
        source = crnn_from_onnx(init, calib)
        if config.arch == "crnn":
            model.load_state_dict(source.state_dict())
            log(f"initialised from exported model {init}; training stream seed {config.seed}")
        else:  # another sequence model: start from the exported model's feature extractor only
            model.get_submodule("cnn").load_state_dict(source.cnn.state_dict())
            log(f"feature extractor initialised from exported model {init}; training stream seed {config.seed}")
    elif init is not None and step == 0:
        state = torch.load(init, map_location=device)
        if tuple(state["vocab"]) != vocab:
            raise ValueError(f"{init} was trained with another vocabulary")
        model.load_state_dict(state["model"])
        offset = int(state["step"]) * int(state.get("config", {}).get("batch_size", config.batch_size))
        log(f"initialised from {init} (step {state['step']}); samples continue at {offset}")
    plain = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(config).items()}
    (out_dir / "config.yaml").write_text(yaml.safe_dump(plain), encoding="utf-8")
    collate = Collate(vocab, config.width_bucket)
    val_set = SynthLines(config.val_seed, config.val_size, config.max_width, config.max_chars)
    val_batches = [collate([val_set[i] for i in range(j, min(j + 50, len(val_set)))])
                   for j in range(0, len(val_set), 50)]
    stop_at = min(config.steps, max_steps if max_steps is not None else config.steps)
    loader = DataLoader(
        SynthLines(config.seed, 10**9, config.max_width, config.max_chars, config.scan_chain, config.doc_content,
                   config.tiny),
        batch_size=config.batch_size,
        sampler=range(offset + step * config.batch_size, offset + stop_at * config.batch_size),
        num_workers=config.workers,
        collate_fn=collate, persistent_workers=config.workers > 0,
    )
    start = last_ckpt = last_val = time.monotonic()
    history: list[dict[str, float]] = []
    smooth = None
    model.train()
    bar = tqdm(total=stop_at, initial=step, unit="step", disable=not progress, dynamic_ncols=True)

    def save() -> None:
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                    "step": step, "offset": offset, "vocab": list(vocab), "config": asdict(config)},
                   str(ckpt) + ".tmp")
        os.replace(str(ckpt) + ".tmp", ckpt)

    for x, lengths, targets, target_lengths, _ in loader:
        logits = model(x.to(device))
        loss = ctc(logits.log_softmax(-1).transpose(0, 1), targets, lengths, target_lengths)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        if config.anneal_by_time and max_minutes:
            fraction = min(1.0, (time.monotonic() - start) / (60 * max_minutes))
            warm = min(1.0, fraction / config.warmup) if config.warmup else 1.0
            for group in opt.param_groups:
                group["lr"] = config.lr * warm * 0.5 * (1 + math.cos(math.pi * fraction))
        elif step < config.steps - 1:
            sched.step()
        step += 1
        smooth = loss.item() if smooth is None else 0.98 * smooth + 0.02 * loss.item()
        bar.update(1)
        bar.set_postfix(loss=f"{smooth:.3f}", lr=f"{opt.param_groups[0]['lr']:.1e}", refresh=False)
        now = time.monotonic()
        out_of_time = max_minutes is not None and (now - start) / 60 >= max_minutes
        done = out_of_time or step >= stop_at
        if done or now - last_val >= config.validate_minutes * 60:
            val_cer, examples = validate(model, val_batches, vocab)
            history.append({"step": step, "val_cer": val_cer, "loss": smooth, "minutes": (now - start) / 60})
            log(f"step {step}: validation CER {val_cer:.4f}, e.g. {examples}")
            last_val = now
        if done or now - last_ckpt >= config.checkpoint_minutes * 60:
            save()
            last_ckpt = now
        if done:
            break
    bar.close()
    save()
    if not history or history[-1]["step"] != step:
        val_cer, _ = validate(model, val_batches, vocab)
        history.append({"step": step, "val_cer": val_cer, "loss": smooth or 0.0,
                        "minutes": (time.monotonic() - start) / 60})
    return {"step": step, "checkpoint": str(ckpt), "history": history, "val_cer": history[-1]["val_cer"]}


def evaluate_checkpoint(checkpoint: Path, *, seed: int = 999, size: int = 400, max_width: int = 288,
                        max_chars: int = 18, threads: int = 2) -> tuple[float, list[tuple[str, str]]]:
    """Synthetic validation CER of a checkpoint on ``size`` held-out lines (``LineSynth(seed)``)."""
    torch.set_num_threads(threads)
    state = torch.load(checkpoint, map_location="cpu")
    vocab = tuple(state["vocab"])
    model = model_from_state(state)
    collate = Collate(vocab, 96)
    data = SynthLines(seed, size, max_width, max_chars)
    batches = [collate([data[i] for i in range(j, min(j + 50, size))]) for j in range(0, size, 50)]
    return validate(model, batches, vocab)
