"""Lines without Hangul go to a reader made for Latin text: the rule that decides, kept apart so it is tested
alone.

``ko_rec`` reads every line first (it is fast and reads Korean best). A line whose ``ko_rec`` reading has no
Hangul -- or, when ``ko_rec`` is unsure (confidence under ``UNSURE``, 0.9), at most a third Hangul (ko_rec
sometimes reads a Latin word as Hangul) -- is read again by the Latin reader (the PP-OCRv4 zh/en recogniser
shipped in the model manifest, ``ppocrv4_rec_ch``), and that reading is kept when it is itself free of Hangul
and CJK ideographs (a zh/en model's guess at a Korean line comes out as Chinese) and its confidence reaches
``min_conf``. Everything else follows the hybrid's own path (Tesseract for the doubtful lines).

The PP-OCRv4 model rarely emits spaces (``"SUB TOTAL : RM 2.87"`` comes out as ``"SUBTOTAL:RM2.87"``), so a
kept reading gets the word breaks of ko_rec's reading of the same line (:func:`transfer_spaces`: the two
space-free texts are aligned by their edit operations and each space is carried over), and that reading's word
spans when the word count matches. Accepted lines are not sent to Tesseract.

The rule and its ``min_conf`` were chosen on our own synthetic English pages only (``ocrpipe.synth.pages``: 40
pages of seed 101 and 60 harder-degraded pages of seed 103) with ``benchmarks/latin_lines.py``; pooled line
CER of their 1,100 lines: never taking the Latin reading (today's hybrid) 0.0656, ``min_conf`` 0 / 0.5 / 0.75
/ 0.85 / 0.95 -> 0.0632 / 0.0634 / 0.0628 / **0.0623** / 0.0642. Unsure mostly-Latin lines: on 30 synthetic
Korean pages (seed 101, ``korean_page``) line CER 0.1288 with Hangul-free lines alone, 0.1280 with lines under
0.9 confidence and at most a third Hangul too (0.1340 under 0.98), the English pages unchanged. The held-out
seed 202 and ``../shared/data`` were only measured.
"""

from __future__ import annotations

from rapidfuzz.distance import Levenshtein

from ocrpipe.document import RecResult, WordSpan

MIN_CONF = 0.85
"""The Latin reader's confidence below which its reading is not taken (the hybrid's path decides instead)."""
UNSURE = 0.9
"""ko_rec's confidence under which a line that is mostly not Hangul also goes to the Latin reader."""
MAX_HANGUL_SHARE = 1 / 3
"""The largest share of Hangul among the non-space characters of such an unsure line."""


def has_hangul(text: str) -> bool:
    """Any Hangul syllable, jamo or compatibility jamo."""
    return any("\uac00" <= c <= "\ud7a3" or "\u1100" <= c <= "\u11ff" or "\u3130" <= c <= "\u318f" for c in text)


def has_cjk(text: str) -> bool:
    """Any CJK ideograph, kana or full-width CJK punctuation (what a zh model makes of a Korean line)."""
    return any("\u2e80" <= c <= "\u30ff" or "\u3400" <= c <= "\u9fff" or "\uf900" <= c <= "\ufaff" for c in text)


def hangul_share(text: str) -> float:
    """The share of Hangul among the non-space characters of ``text``."""
    chars = "".join(text.split())
    return sum(has_hangul(c) for c in chars) / len(chars) if chars else 0.0


def wants_latin(primary: RecResult) -> bool:
    """Does this line go to the Latin reader? (``ko_rec`` read something with no Hangul, or was unsure and read
    mostly other characters.)"""
    if not primary.text.strip():
        return False
    share = hangul_share(primary.text)
    return share == 0.0 or (primary.confidence < UNSURE and share <= MAX_HANGUL_SHARE)


def accept(primary: RecResult, latin: RecResult, min_conf: float = MIN_CONF) -> bool:
    """Is the Latin reader's reading kept for a line ``primary`` routed to it?"""
    return (wants_latin(primary) and bool(latin.text.strip()) and not has_hangul(latin.text)
            and not has_cjk(latin.text) and latin.confidence >= min_conf)


def transfer_spaces(text: str, donor: str) -> str:
    """``text`` with a space wherever ``donor`` has one between the characters aligned to it (and its own)."""
    a, b = text.replace(" ", ""), donor.replace(" ", "")
    breaks_b: set[int] = set()  # j: the donor has a space before b[j]
    k = 0
    for ch in donor.strip():
        if ch == " ":
            breaks_b.add(k)
        else:
            k += 1
    breaks_a = {i for i in range(1, len(a)) if _own_break(text, i)}
    for op in Levenshtein.opcodes(a, b):
        for j in range(op.dest_start, op.dest_end):
            if j not in breaks_b:
                continue
            span_a, span_b = op.src_end - op.src_start, op.dest_end - op.dest_start
            i = op.src_start + (round((j - op.dest_start) * span_a / span_b) if op.tag != "insert" else 0)
            if 0 < i < len(a):
                breaks_a.add(i)
    return "".join((" " if i in breaks_a else "") + ch for i, ch in enumerate(a))


def _own_break(text: str, i: int) -> bool:
    """Does ``text`` have a space before its ``i``-th non-space character?"""
    k = 0
    prev_space = False
    for ch in text.strip():
        if ch == " ":
            prev_space = True
            continue
        if k == i:
            return prev_space
        prev_space = False
        k += 1
    return False


def merge(primary: RecResult, latin: RecResult) -> RecResult:
    """The Latin reader's text with ``primary``'s word breaks, and its word spans when the word count matches."""
    text = transfer_spaces(latin.text.strip(), primary.text.strip())
    words = text.split()
    spans: tuple[WordSpan, ...] = ()
    if len(words) == len(primary.words):
        spans = tuple(WordSpan(w, latin.confidence, s.start, s.end) for w, s in zip(words, primary.words, strict=True))
    return RecResult(text, latin.confidence, spans, latin.least)


def choose(primary: RecResult, fallback: RecResult, latin: RecResult, *, min_conf: float = MIN_CONF) -> RecResult:
    """The reading kept: :func:`merge` of ``latin`` when :func:`accept` says so, else ``fallback`` (the hybrid's
    reading: the line is then read as without a Latin reader)."""
    return merge(primary, latin) if accept(primary, latin, min_conf) else fallback
