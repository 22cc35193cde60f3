"""The recogniser's character set: KS X 1001 Hangul, printable ASCII and Korean document symbols.

Class 0 of the CTC output is the blank; class ``i >= 1`` is ``charset[i - 1]``. The charset is built
deterministically here (the source of truth) and also written to ``charset_ko.txt`` beside this module, one
character per line, so a person (or another tool) can read it without importing Python. The exported ONNX
model carries the same list in its ``character`` metadata entry.
"""

from __future__ import annotations

import unicodedata
from functools import cache
from pathlib import Path

CHARSET_FILE = Path(__file__).resolve().parent / "charset_ko.txt"

#: Symbols Korean documents use, beyond ASCII (kept as single classes even where NFKC expands them,
#: since evaluation NFKC-normalises both prediction and reference).
SYMBOLS = (
    "·ㆍ•※○●◎□■◇◆△▲▽▼▷▶◁◀☐☑★☆→←↑↓↔⇒「」『』【】〈〉《》〔〕"
    "①②③④⑤⑥⑦⑧⑨⑩⑪⑫⑬⑭⑮⑯⑰⑱⑲⑳㈜℃㎡㎏㎝㎜㎞㎖㎎㎉㎾%‰～・—–“”‘’…₩°±×÷∼"
)


def ksx1001_hangul() -> list[str]:
    """The 2,350 Hangul syllables of KS X 1001: those of U+AC00..U+D7A3 with a 2-byte EUC-KR code.

    (Python's ``euc-kr`` codec also encodes the other 8,822 syllables, as 8-byte KS X 1001 make-up
    sequences, so "encodes at all" is not the test.)
    """
    out = []
    for cp in range(0xAC00, 0xD7A4):
        ch = chr(cp)
        try:
            if len(ch.encode("euc-kr")) == 2:
                out.append(ch)
        except UnicodeEncodeError:
            continue
    return out


def compat_jamo() -> list[str]:
    """Hangul compatibility jamo ㄱ..ㅣ (list markers such as ``ㄱ.`` and ``ㅇ`` appear in documents)."""
    return [chr(cp) for cp in range(0x3131, 0x3164)]


@cache
def build_charset() -> tuple[str, ...]:
    """The ordered charset (without the CTC blank). Includes the space character."""
    ascii_chars = [chr(c) for c in range(0x20, 0x7F)]
    seen: set[str] = set()
    out: list[str] = []
    for ch in [*ascii_chars, *ksx1001_hangul(), *compat_jamo(), *SYMBOLS]:
        if ch not in seen:
            seen.add(ch)
            out.append(ch)
    return tuple(out)


def write_charset_file(path: Path = CHARSET_FILE) -> None:
    """Write the charset, one character per line (the space is a line holding one space)."""
    path.write_text("\n".join(build_charset()), encoding="utf-8")


def read_charset_file(path: Path = CHARSET_FILE) -> list[str]:
    """Read a charset file written by :func:`write_charset_file`."""
    return path.read_text(encoding="utf-8").split("\n")


def normalize_label(text: str, charset: frozenset[str] | None = None) -> str:
    """Map text onto the charset: keep characters in it, NFKC-normalise the others, drop what is left.

    Full-width ASCII (``Ａ``, ``１``) thus becomes ASCII, matching how evaluation NFKC-normalises text.
    """
    cs = charset if charset is not None else charset_set()
    out = []
    for ch in unicodedata.normalize("NFC", text):
        if ch in cs:
            out.append(ch)
            continue
        for c2 in unicodedata.normalize("NFKC", ch):
            if c2 in cs:
                out.append(c2)
    return "".join(out)


@cache
def charset_set() -> frozenset[str]:
    """The charset as a frozenset, for membership tests."""
    return frozenset(build_charset())


@cache
def char_to_index() -> dict[str, int]:
    """Character -> class index (1-based; 0 is the CTC blank)."""
    return {ch: i + 1 for i, ch in enumerate(build_charset())}
