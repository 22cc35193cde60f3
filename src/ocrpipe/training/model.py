"""The CTC line recogniser: a compact CNN + BiLSTM, sized to train on a CPU.

Hangul is predicted as conjoining jamo (NFD: initial consonant, vowel, optional final consonant) rather than
as 2,350 whole syllables: ~70 output symbols instead of 2,350, each seen far more often, so the model learns
from much less data, and any syllable — also those outside KS X 1001 — can be spelled. Decoders NFC-compose
the jamo back into syllables (``ocrpipe.engine.recognize.ctc`` does).

Stages, with shapes for an input of width W (height is fixed at 32)::

    x                      (N, 1, 32, W)      gray, (v/255 - 0.5) / 0.5
    feature extraction     (N, 128, 1, W/4)   conv-BN-ReLU ×7, pools 2×2, 2×2, 2×1, 2×1, then a 2×1 conv
    sequence modelling     (N, W/4, 192)      2-layer BiLSTM, 96 units each way
    prediction             (N, W/4, C)        linear to C = 1 (CTC blank) + len(vocab)
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


class CRNN(nn.Module):
    """CNN → BiLSTM → linear; returns logits (N, T, C)."""

    def __init__(self, num_classes: int, hidden: int = 96) -> None:
        super().__init__()
        self.cnn = nn.Sequential(
            *_block(1, 16), nn.MaxPool2d(2, 2),                                  # (N, 16, 16, W/2)
            *_block(16, 32), nn.MaxPool2d(2, 2),                                 # (N, 32, 8, W/4)
            *_block(32, 64), *_block(64, 64), nn.MaxPool2d((2, 1), (2, 1)),      # (N, 64, 4, W/4)
            *_block(64, 96), *_block(96, 96), nn.MaxPool2d((2, 1), (2, 1)),      # (N, 96, 2, W/4)
            nn.Conv2d(96, 128, (2, 1), bias=False), nn.BatchNorm2d(128), nn.ReLU(inplace=True),  # (N, 128, 1, W/4)
        )
        self.rnn = nn.LSTM(128, hidden, num_layers=2, bidirectional=True, batch_first=True)
        self.fc = nn.Linear(2 * hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.cnn(x).squeeze(2).transpose(1, 2)  # (N, T, 128)
        sequence, _ = self.rnn(features)                     # (N, T, 2*hidden)
        return self.fc(sequence)                             # (N, T, C)


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
