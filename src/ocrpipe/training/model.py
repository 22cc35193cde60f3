"""The CTC line recogniser: a compact CNN + BiLSTM (``crnn``, ko_rec 1-3) or CNN + dilated convolutions
(``conv``, ko_rec 4 candidate), sized to train and run on a CPU.

Hangul is predicted as conjoining jamo (NFD: initial consonant, vowel, optional final consonant) rather than
as 2,350 whole syllables: ~70 output symbols instead of 2,350, each seen far more often, so the model learns
from much less data, and any syllable — also those outside KS X 1001 — can be spelled. Decoders NFC-compose
the jamo back into syllables (``ocrpipe.engine.recognize.ctc`` does).

Stages, with shapes for an input of width W (height is fixed at 32)::

    x                      (N, 1, 32, W)      gray, (v/255 - 0.5) / 0.5
    feature extraction     (N, 128, 1, W/4)   conv-BN-ReLU ×7, pools 2×2, 2×2, 2×1, 2×1, then a 2×1 conv
    sequence modelling     (N, W/4, 192)      2-layer BiLSTM, 96 units each way
    prediction             (N, W/4, C)        linear to C = 1 (CTC blank) + len(vocab)

``conv`` keeps the feature extractor and replaces the BiLSTM (sequential over time, hence slow on a CPU) by
``blocks`` residual blocks of depthwise-separable 1-D convolutions over time (kernel 5, dilations 1, 2, 4, 8,
...: a receptive field of +-60 time steps with 4 blocks), each ``LayerNorm -> depthwise conv -> pointwise
expand x2 -> GELU -> pointwise``; every time step is computed in parallel::

    feature extraction     (N, 128, 1, W/4)   as above
    projection             (N, D, W/4)        1x1 conv, D = ``hidden`` x 2
    sequence modelling     (N, D, W/4)        ``blocks`` x dilated depthwise-separable residual block
    prediction             (N, W/4, C)        linear
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

import torch
from torch import nn

from ocrpipe.synth.charset import build_charset

HEIGHT = 32
STRIDE = 4
"""Time steps per input pixel column: T = W / 4."""


def tokenize(text: str) -> list[str]:
    """Output symbols for ``text``: Hangul syllables become conjoining jamo, everything else stays."""
    return list(unicodedata.normalize("NFD", text))


HANGUL_JAMO = (
    [chr(c) for c in range(0x1100, 0x1113)]  # 19 initial consonants
    + [chr(c) for c in range(0x1161, 0x1176)]  # 21 vowels
    + [chr(c) for c in range(0x11A8, 0x11C3)]  # 27 final consonants
)


def build_vocab(charset: Iterable[str] | None = None) -> tuple[str, ...]:
    """The sorted output symbols: every conjoining jamo (so all 11,172 syllables can be spelled, not only
    the 2,350 the model is trained on) plus the non-Hangul symbols of ``charset``."""
    symbols = {t for ch in (charset or build_charset()) for t in tokenize(ch)}
    return tuple(sorted(symbols | set(HANGUL_JAMO)))


def _block(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


CHANNELS = (16, 32, 64, 64, 96, 96)
"""The feature extractor's channels (ko_rec 1-3); the ``conv`` architecture may take narrower ones."""


def feature_extractor(channels: tuple[int, ...] = CHANNELS) -> nn.Sequential:
    """The convolutional stages shared by both architectures: (N, 1, 32, W) -> (N, 128, 1, W/4)."""
    c1, c2, c3, c4, c5, c6 = channels
    return nn.Sequential(
        *_block(1, c1), nn.MaxPool2d(2, 2),                                  # (N, c1, 16, W/2)
        *_block(c1, c2), nn.MaxPool2d(2, 2),                                 # (N, c2, 8, W/4)
        *_block(c2, c3), *_block(c3, c4), nn.MaxPool2d((2, 1), (2, 1)),      # (N, c4, 4, W/4)
        *_block(c4, c5), *_block(c5, c6), nn.MaxPool2d((2, 1), (2, 1)),      # (N, c6, 2, W/4)
        nn.Conv2d(c6, 128, (2, 1), bias=False), nn.BatchNorm2d(128), nn.ReLU(inplace=True),  # (N, 128, 1, W/4)
    )


class CRNN(nn.Module):
    """CNN → BiLSTM → linear; returns logits (N, T, C)."""

    def __init__(self, num_classes: int, hidden: int = 96) -> None:
        super().__init__()
        self.cnn = feature_extractor()
        self.rnn = nn.LSTM(128, hidden, num_layers=2, bidirectional=True, batch_first=True)
        self.fc = nn.Linear(2 * hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.cnn(x).squeeze(2).transpose(1, 2)  # (N, T, 128)
        sequence, _ = self.rnn(features)                     # (N, T, 2*hidden)
        return self.fc(sequence)                             # (N, T, C)


class _TemporalBlock(nn.Module):
    """Residual block over time: channel LayerNorm, dilated depthwise conv, pointwise MLP (x2, GELU)."""

    def __init__(self, dim: int, dilation: int, kernel: int = 5) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(1, dim)  # LayerNorm over channels and time, ONNX-friendly
        self.dw = nn.Conv1d(dim, dim, kernel, padding=dilation * (kernel - 1) // 2, dilation=dilation, groups=dim)
        self.pw1 = nn.Conv1d(dim, 2 * dim, 1)
        self.act = nn.GELU()
        self.pw2 = nn.Conv1d(2 * dim, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.pw2(self.act(self.pw1(self.dw(self.norm(x)))))


class ConvCTC(nn.Module):
    """CNN -> dilated depthwise-separable temporal convolutions -> linear; returns logits (N, T, C)."""

    def __init__(self, num_classes: int, hidden: int = 96, blocks: int = 4,
                 channels: tuple[int, ...] = CHANNELS) -> None:
        super().__init__()
        dim = 2 * hidden
        self.cnn = feature_extractor(channels)             # (N, 128, 1, W/4)
        self.proj = nn.Conv1d(128, dim, 1)
        self.seq = nn.Sequential(*(_TemporalBlock(dim, 2 ** (k % 4)) for k in range(blocks)))
        self.fc = nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.proj(self.cnn(x).squeeze(2))       # (N, D, T)
        sequence = self.seq(features).transpose(1, 2)      # (N, T, D)
        return self.fc(sequence)                           # (N, T, C)


ARCHS = ("crnn", "conv")


def build_model(arch: str, num_classes: int, hidden: int = 96, blocks: int = 4,
                channels: tuple[int, ...] = CHANNELS) -> nn.Module:
    """The recogniser network named ``arch`` (``crnn``: BiLSTM, ``conv``: temporal convolutions; ``channels``
    of the feature extractor for ``conv`` only)."""
    if arch == "crnn":
        return CRNN(num_classes, hidden=hidden)
    if arch == "conv":
        return ConvCTC(num_classes, hidden=hidden, blocks=blocks, channels=tuple(channels))
    raise ValueError(f"unknown architecture {arch!r}; choose from {ARCHS}")


def model_from_state(state: dict) -> nn.Module:
    """The network of a checkpoint (its config names the architecture; older checkpoints are ``crnn``)."""
    config = state.get("config", {})
    model = build_model(str(config.get("arch", "crnn")), len(state["vocab"]) + 1, int(config.get("hidden", 96)),
                        int(config.get("blocks", 4)), tuple(config.get("channels", CHANNELS)))
    model.load_state_dict(state["model"])
    return model


class WithSoftmax(nn.Module):
    """The exported graph: probabilities instead of logits."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x).softmax(-1)


def greedy_decode(logits: torch.Tensor, lengths: list[int], vocab: tuple[str, ...]) -> list[str]:
    """Best-path CTC decoding (used for validation during training)."""
    best = logits.argmax(-1).cpu().numpy()
    out = []
    for n, length in enumerate(lengths):
        prev, chars = 0, []
        for c in best[n, :length]:
            if c != prev and c != 0:
                chars.append(vocab[c - 1])
            prev = c
        out.append(unicodedata.normalize("NFC", "".join(chars)))
    return out
