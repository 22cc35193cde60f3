"""Text generators for synthetic text lines: Korean words, random syllables, numbers, dates, codes, English.

Everything is drawn from an explicit :class:`random.Random` so a seed reproduces the same texts. No text from
the evaluation data is used: the Korean lexicon is Debian's ``hunspell-ko`` word list and the rest is generated.
"""

from __future__ import annotations

import os
import random
import string
import unicodedata
from collections.abc import Callable
from functools import cache
from pathlib import Path

from ocrpipe.synth.charset import charset_set, ksx1001_hangul, normalize_label

HUNSPELL_KO = Path("/usr/share/hunspell/ko.dic")

PARTICLES = ["은", "는", "이", "가", "을", "를", "의", "에", "에서", "로", "으로", "와", "과", "도", "만",
             "까지", "부터", "에게", "께서", "처럼", "보다", "및", "등"]
ENDINGS = ["합니다", "했습니다", "됩니다", "있습니다", "없습니다", "하였다", "한다", "하며", "하고", "하여",
           "입니다", "드립니다", "바랍니다", "하십시오", "함", "됨", "있음", "할 것", "하는", "된"]
DOC_WORDS = ["신청서", "계약서", "영수증", "주민등록번호", "사업자등록번호", "대표자", "주소", "연락처", "전화번호",
             "성명", "생년월일", "발급일", "유효기간", "금액", "합계", "부가세", "공급가액", "수량", "단가", "품목",
             "비고", "담당자", "확인", "승인", "날짜", "년", "월", "일", "시", "분", "원", "개", "명", "건", "제",
             "조", "항", "호", "주식회사", "서울특별시", "부산광역시", "경기도", "구", "동", "로", "길", "번지",
             "아파트", "층", "호실", "은행", "계좌번호", "예금주", "보험", "세금", "청구서", "납부", "기한", "첨부",
             "서류", "목록", "위", "사항", "본인", "동의", "서명", "인", "정보", "개인정보", "수집", "이용", "제공"]
EN_WORDS = """
the of and to in is for on with as by at from this that be are or an it not have has was will can all your
our more new date total amount price tax invoice receipt number name address phone email customer order item
qty quantity unit description payment cash card change balance due paid subtotal discount service company
limited corporation office road street city state code account bank branch member store tel fax page report
summary table figure note section chapter version model serial product type size color weight height width
length time day month year week hour minute second morning evening sale purchase delivery shipping return
refund policy terms conditions agreement contract signature approved manager staff department team project
plan result data system information document file Seoul Korea Busan Incheon Daegu Samsung Hyundai Global
International Center Group Holdings Tech Co Ltd Inc Corp LLC Mr Mrs Ms Dr No Ref ID PIN VAT GST SST TOTAL
CASH CHANGE ROUNDING ADJ QTY AMT RM KRW USD
""".split()  # noqa: SIM905
BRACKETS = [("(", ")"), ("[", "]"), ("「", "」"), ("『", "』"), ("【", "】"), ("〈", "〉"), ("《", "》"),
            ("〔", "〕"), ("<", ">"), ("{", "}"), ("“", "”"), ("‘", "’"), ('"', '"'), ("'", "'")]
BULLETS = ["※", "○", "●", "◎", "□", "■", "◇", "◆", "△", "▲", "▷", "▶", "☐", "☑", "★", "-", "*", "·", "ㆍ",
           "•", "→", "⇒", "▪"]
UNITS = ["㎡", "㎏", "㎝", "㎜", "㎞", "㎖", "㎎", "℃", "%", "‰", "kg", "g", "cm", "mm", "m", "km", "ml", "L",
         "원", "달러", "개", "명", "회", "건", "매", "부", "세", "평", "kWh", "MB", "GB", "m2", "°C", "₩"]
SEPARATORS = [" ", " ", " ", " ", ", ", " · ", "ㆍ", "·", " / ", " - ", ": ", " : ", " ～ ", "~", " ∼ "]


@cache
def korean_lexicon(path: str | None = None) -> tuple[str, ...]:
    """Korean words from hunspell-ko (NFC-normalised, affix flags stripped, restricted to the charset)."""
    p = Path(path or os.environ.get("OCRPIPE_KO_LEXICON") or HUNSPELL_KO)
    cs = charset_set()
    words: list[str] = []
    if p.exists():
        lines = p.read_text(encoding="utf-8", errors="ignore").split("\n")
        for line in lines[1:] if lines and lines[0].strip().isdigit() else lines:
            w = unicodedata.normalize("NFC", line.split("/")[0].strip())
            if w and len(w) <= 12 and all(c in cs for c in w):
                words.append(w)
    if len(words) < 1000:  # no hunspell: fall back to the built-in document words only
        words.extend(DOC_WORDS)
    return tuple(words)


ENGLISH_DICT = Path("/usr/share/dict/words")


@cache
def english_lexicon(path: str | None = None) -> tuple[str, ...]:
    """English words from Debian's ``wamerican`` list (plain ASCII words, no possessives), falling back to
    the built-in document words. A large vocabulary keeps the model from memorising a few hundred words."""
    p = Path(path or os.environ.get("OCRPIPE_EN_LEXICON") or ENGLISH_DICT)
    words: list[str] = []
    if p.exists():
        for line in p.read_text(encoding="utf-8", errors="ignore").split("\n"):
            w = line.strip()
            if w.isascii() and w.isalpha() and 1 < len(w) <= 14:
                words.append(w)
    return tuple(words) if len(words) >= 1000 else tuple(EN_WORDS)


@cache
def _syllables() -> tuple[str, ...]:
    return tuple(ksx1001_hangul())


def cumulative(kinds: list[tuple[float, Callable[[], str]]]) -> list[tuple[float, Callable[[], str]]]:
    """Each generator with the running share of the weights up to it (the last is 1.0), for drawing one."""
    total = sum(w for w, _ in kinds)
    out, acc = [], 0.0
    for w, fn in kinds:
        acc += w / total
        out.append((acc, fn))
    return out


class TextGen:
    """Draws one line of text at a time from a mixture of generators."""

    def __init__(self, rng: random.Random, lexicon: tuple[str, ...] | None = None) -> None:
        self.rng = rng
        self.lex = lexicon if lexicon is not None else korean_lexicon()
        self.en_lex = english_lexicon()
        self.kinds: list[tuple[float, Callable[[], str]]] = [
            (0.27, self.korean_phrase), (0.09, self.random_syllables), (0.10, self.mixed),
            (0.07, self.number), (0.06, self.date_time), (0.05, self.phone_id), (0.05, self.code),
            (0.08, self.english), (0.07, self.receipt), (0.06, self.bulleted), (0.05, self.bracketed),
            (0.04, self.unit_value), (0.03, self.ascii_random), (0.03, self.table_row),
        ]
        self.cum = cumulative(self.kinds)

    def __call__(self, max_chars: int = 25) -> str:
        """One normalised, non-empty line of at most ``max_chars`` characters."""
        for _ in range(20):
            r = self.rng.random()
            fn = next((f for c, f in self.cum if r <= c), self.cum[-1][1])
            text = normalize_label(fn())
            text = " ".join(text.split())  # no leading/trailing/double spaces
            if len(text) > max_chars:
                cut = text[:max_chars].rstrip()
                text = cut if cut else text[:max_chars]
            if text.strip():
                return text
        return "가"

    # --- generators -------------------------------------------------------------------------------------
    def word(self) -> str:
        r = self.rng.random()
        w = self.rng.choice(DOC_WORDS) if r < 0.12 else self.rng.choice(self.lex)
        if self.rng.random() < 0.3:
            w += self.rng.choice(PARTICLES)
        return w

    def korean_phrase(self) -> str:
        n = self.rng.choice([1, 2, 2, 3, 3, 4, 5, 6])
        words = [self.word() for _ in range(n)]
        if self.rng.random() < 0.25:
            words.append(self.rng.choice(ENDINGS))
        s = " ".join(words)
        if self.rng.random() < 0.2:
            s += self.rng.choice([".", ",", ".", "?", "!", ":", ")", "다.", "함."])
        if self.rng.random() < 0.1:  # words glued without spaces, as in tight layouts
            s = s.replace(" ", "")
        return s

    def random_syllables(self) -> str:
        syl = _syllables()
        groups = [
            "".join(self.rng.choice(syl) for _ in range(self.rng.randint(1, 5)))
            for _ in range(self.rng.randint(1, 4))
        ]
        return " ".join(groups)

    def number(self) -> str:
        r = self.rng.random()
        if r < 0.3:
            return f"{self.rng.randint(0, 10**self.rng.randint(1, 9)):,}" + self.rng.choice(["", "원", " 원", ""])
        if r < 0.5:
            return f"{self.rng.uniform(0, 1000):.{self.rng.randint(1, 3)}f}"
        if r < 0.65:
            return f"{self.rng.uniform(0, 100):.1f}%"
        if r < 0.8:
            return self.rng.choice(["₩", "$", "USD ", "RM ", "KRW "]) + f"{self.rng.randint(1, 10**7):,}"
        if r < 0.9:
            return f"{self.rng.randint(1, 999)}{self.rng.choice(['개', '명', '건', '회', '쪽', '번', '장', '차'])}"
        return str(self.rng.randint(0, 10**self.rng.randint(1, 12)))

    def date_time(self) -> str:
        y, m, d = self.rng.randint(1950, 2035), self.rng.randint(1, 12), self.rng.randint(1, 31)
        hh, mm, ss = self.rng.randint(0, 23), self.rng.randint(0, 59), self.rng.randint(0, 59)
        fmts = [f"{y}.{m:02d}.{d:02d}", f"{y}-{m:02d}-{d:02d}", f"{y}년 {m}월 {d}일", f"{y}. {m}. {d}.",
                f"{y % 100:02d}/{m:02d}/{d:02d}", f"{d:02d}/{m:02d}/{y}", f"{hh:02d}:{mm:02d}",
                f"{hh:02d}:{mm:02d}:{ss:02d}", f"{self.rng.choice(['오전', '오후'])} {hh % 12 + 1}시 {mm}분",
                f"{y}.{m:02d}.{d:02d} {hh:02d}:{mm:02d}", f"{y}년 {m:02d}월",
                f"{m}월 {d}일({self.rng.choice('월화수목금토일')})",
                f"{y}.{m}.{d}～{y}.{m}.{min(d + 5, 31)}", f"제{self.rng.randint(1, 50)}회"]
        return self.rng.choice(fmts)

    def phone_id(self) -> str:
        r = self.rng.randint
        fmts = [f"010-{r(1000, 9999)}-{r(1000, 9999)}", f"02-{r(100, 9999)}-{r(1000, 9999)}",
                f"0{r(31, 64)}-{r(100, 999)}-{r(1000, 9999)}", f"({r(10, 99):02d}) {r(100, 9999)}-{r(1000, 9999)}",
                f"{r(100, 999)}-{r(10, 99)}-{r(10000, 99999)}", f"{r(100000, 999999)}-{r(1, 4)}{'*' * 6}",
                f"{r(100000, 999999)}-{r(1000000, 4999999)}", f"1588-{r(1000, 9999)}",
                f"Tel. {r(10, 99)}-{r(100, 9999)}-{r(1000, 9999)}", f"FAX {r(10, 99)}-{r(100, 999)}-{r(1000, 9999)}",
                f"{self.rng.choice(['kim', 'lee', 'park', 'info', 'help'])}{r(1, 99)}@"
                f"{self.rng.choice(['naver.com', 'gmail.com', 'daum.net', 'korea.kr', 'example.co.kr'])}",
                f"www.{self.rng.choice(['gov', 'nts', 'hometax', 'shop', 'store'])}."
                f"{self.rng.choice(['go.kr', 'co.kr', 'com'])}"]
        return self.rng.choice(fmts)

    def code(self) -> str:
        up = string.ascii_uppercase
        r = self.rng
        parts = ["".join(r.choice(up) for _ in range(r.randint(1, 4))),
                 "".join(r.choice(string.digits) for _ in range(r.randint(2, 8)))]
        if r.random() < 0.5:
            parts.append("".join(r.choice(up + string.digits) for _ in range(r.randint(1, 5))))
        s = r.choice(["-", "", "_", "/", "."]).join(parts)
        return r.choice(["", "No. ", "No.", "번호: ", "코드 ", "#", "제 ", "Ref: "]) + s

    def english(self) -> str:
        n = self.rng.randint(1, 6)
        words = [self.rng.choice(EN_WORDS if self.rng.random() < 0.35 else self.en_lex) for _ in range(n)]
        r = self.rng.random()
        if r < 0.3:
            words = [w.upper() for w in words]
        elif r < 0.6:
            words = [w.capitalize() for w in words]
        s = " ".join(words)
        if self.rng.random() < 0.3:
            s += self.rng.choice([":", ".", ",", " :", f" {self.rng.randint(1, 999)}",
                                  f" {self.rng.uniform(0, 999):.2f}"])
        return s

    def receipt(self) -> str:
        """Lines of English receipts and invoices: items with prices, totals, addresses, tax ids, times."""
        r = self.rng
        up = string.ascii_uppercase

        def words(n: int) -> str:
            return " ".join(r.choice(self.en_lex).upper() for _ in range(n))

        price = f"{r.uniform(0, 10 ** r.randint(1, 4)):,.2f}"
        kind = r.randint(0, 9)
        if kind == 0:
            return f"{r.randint(1, 12)} {r.choice(['x ', 'X ', '@ ', ''])}{words(r.randint(1, 3))} {price}"
        if kind == 1:
            return f"{r.choice(['TOTAL', 'SUBTOTAL', 'Total', 'CASH', 'CHANGE', 'ROUNDING', 'GST 6%', 'Amount'])}" \
                   f"{r.choice([' ', ' : ', ': ', ' (RM) ', ' RM', ' $'])}{price}"
        if kind == 2:
            road = r.choice(["JALAN", "JLN", "LOT", "STREET"])
            return f"NO.{r.randint(1, 200)}{r.choice([', ', ' ', ',', '-'])}{road} " \
                   f"{words(1)} {r.randint(1, 30)}{r.choice(['', '/' + str(r.randint(1, 9)), ','])}"
        if kind == 3:
            suffix = r.choice(["SDN BHD", "SDN. BHD.", "ENTERPRISE", "TRADING", "CO.", "LTD"])
            return f"{words(r.randint(1, 3))} {suffix}"
        if kind == 4:
            return f"{r.choice(['GST ID', 'GST REG NO', 'CO. REG', 'TAX ID', 'Invoice No', 'Bill No', 'Receipt #'])}" \
                   f"{r.choice([': ', ' : ', ' ', '.'])}{r.randint(10 ** 5, 10 ** 12)}"
        if kind == 5:
            h, m, sec = r.randint(1, 12), r.randint(0, 59), r.randint(0, 59)
            d, mo, y = r.randint(1, 31), r.randint(1, 12), r.randint(2000, 2030)
            return r.choice([f"{d:02d}/{mo:02d}/{y} {h:02d}:{m:02d}:{sec:02d} {r.choice(['AM', 'PM'])}",
                             f"{d:02d}-{r.choice(['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG'])}-{y}",
                             f"Date: {d:02d}/{mo:02d}/{y % 100:02d} Time: {h:02d}:{m:02d}"])
        if kind == 6:
            return f"{r.randint(10000, 99999)} {words(r.randint(1, 2))}{r.choice([', ', ' '])}{words(1)}"
        if kind == 7:
            code = "".join(r.choice(up + string.digits) for _ in range(r.randint(4, 10)))
            return f"{code} {words(r.randint(1, 2))} {r.randint(1, 9)} {price}"
        if kind == 8:
            return f"{r.choice(['TEL', 'Tel', 'FAX', 'H/P'])}{r.choice([': ', ' : ', ' '])}0{r.randint(1, 19)}-" \
                   f"{r.randint(1000000, 9999999)}"
        return f"{words(r.randint(1, 2)).title()} {r.choice(['SR', 'ZR', 'S', 'Z', ''])} {price}".strip()

    def ascii_random(self) -> str:
        pool = string.ascii_letters + string.digits + string.punctuation + "  "
        return "".join(self.rng.choice(pool) for _ in range(self.rng.randint(2, 15)))

    def mixed(self) -> str:
        parts = []
        for _ in range(self.rng.randint(2, 5)):
            g = self.rng.choice([self.word, self.word, self.number, self.code, self.english, self.unit_value,
                                 self.date_time])
            parts.append(g())
        return self.rng.choice(SEPARATORS).join(parts) if self.rng.random() < 0.4 else " ".join(parts)

    def bulleted(self) -> str:
        r = self.rng.random()
        if r < 0.35:
            head = self.rng.choice(BULLETS)
        elif r < 0.6:
            head = chr(0x2460 + self.rng.randint(0, 19))  # ① .. ⑳
        elif r < 0.75:
            head = f"{self.rng.randint(1, 20)}."
        elif r < 0.85:
            head = f"{self.rng.choice('가나다라마바사아자차')}."
        else:
            head = f"({self.rng.randint(1, 20)})"
        return head + self.rng.choice([" ", " ", ""]) + self.korean_phrase()

    def bracketed(self) -> str:
        lo, hi = self.rng.choice(BRACKETS)
        inner = self.rng.choice([self.word, self.english, self.number, self.korean_phrase, self.code])()
        s = lo + inner + hi
        if self.rng.random() < 0.5:
            s = self.word() + self.rng.choice(["", " "]) + s
        if self.rng.random() < 0.3:
            s += " " + self.word()
        return s

    def unit_value(self) -> str:
        v = self.rng.choice([str(self.rng.randint(1, 9999)), f"{self.rng.uniform(0, 500):.1f}"])
        return v + self.rng.choice(["", " "]) + self.rng.choice(UNITS)

    def table_row(self) -> str:
        cells = [self.rng.choice([self.word, self.number, self.unit_value, self.date_time])()
                 for _ in range(self.rng.randint(2, 4))]
        return self.rng.choice(["  ", " | ", "   ", " "]).join(cells)


FILLS = ("-", "·", ".", "…", "_", "ㆍ", "—", "=", "․")
CIRCLED = tuple(chr(0x2460 + k) for k in range(20))  # ① .. ⑳
DOC_MARKS = ("ㆍ", "「", "」", "∼", "※", "○", "□", "■", "◦", "-")
LAW_HEADS = ("제{n}조({w})", "제{n}조의{m}({w})", "제{n}항", "제{n}호", "부칙", "<신 설>", "<삭 제>",
             "(현행과 같음)", "(생 략)", "현 행", "개 정 안", "현행", "개정안")
LATIN_TERMS = ("Class C1", "Class A", "Class C-e", "C-Class", "ISIN KR{d}", "ETF", "USD", "KRW", "EUR", "ISO 9001",
               "USB-C", "Wi-Fi", "LTE", "5G", "A4", "PDF", "QR", "ID", "NAV", "TER", "MSCI Korea", "KOSPI 200",
               "S&P 500", "Co., Ltd.", "Inc.", "Fund", "Bond", "Equity", "Ver. {m}.{n}", "No. {d}", "Page {n}")


class DocText(TextGen):
    """Lines as real Korean documents print them, beyond :class:`TextGen`'s mix: fill lines of dashes and
    dots (tables of contents, blanks to fill in), cells of old/new comparison tables of bills (``현 행`` /
    ``개 정 안``, ``<신 설>``, ``(현행과 같음)``), circled numerals and ranges (``①·②``, ``⑥ ∼ ⑨``), the
    marks ``ㆍ 「」 ∼ ※ ○ □``, and Korean mixed with Latin codes, fund classes, URLs and units."""

    def __init__(self, rng: random.Random, lexicon: tuple[str, ...] | None = None) -> None:
        super().__init__(rng, lexicon)
        self.kinds = [(0.16, self.fill_line), (0.16, self.comparison_cell), (0.14, self.circled),
                      (0.16, self.marked), (0.18, self.mixed_latin), (0.1, self.law_reference),
                      (0.1, self.english)]
        self.cum = cumulative(self.kinds)

    def _fmt(self, pattern: str) -> str:
        r = self.rng
        return pattern.format(n=r.randint(1, 60), m=r.randint(1, 9), w=self.word(), d=r.randint(10 ** 5, 10 ** 9))

    def fill_line(self) -> str:
        r = self.rng
        fill = r.choice(FILLS) * r.randint(3, 30)
        kind = r.random()
        if kind < 0.25:
            return fill
        if kind < 0.6:  # table of contents: title ......... page
            return f"{self.korean_phrase()} {fill} {r.randint(1, 300)}"
        if kind < 0.8:  # a blank to fill in
            return f"{self.word()}{r.choice([':', ' :', ''])} {fill}"
        return f"{fill} {self.word()} {fill}"

    def comparison_cell(self) -> str:
        r = self.rng
        head = self._fmt(r.choice(LAW_HEADS))
        if r.random() < 0.35:
            return head
        body = self.korean_phrase()
        if r.random() < 0.4:
            body = f"{r.choice(CIRCLED)} {body}"
        if r.random() < 0.2:
            body += " " + r.choice(FILLS) * r.randint(3, 12)
        return f"{head} {body}"

    def circled(self) -> str:
        r = self.rng
        a = r.randrange(0, 15)
        b = r.randrange(a + 1, 20)
        sep = r.choice(["·", "ㆍ", " ∼ ", "∼", "～", ", ", "·", " 및 ", "부터 "])
        return r.choice([
            f"{CIRCLED[a]}{sep}{CIRCLED[b]}",
            f"{CIRCLED[a]}{sep}{CIRCLED[b]} {self.korean_phrase()}",
            f"{self.word()} {CIRCLED[a]}{sep}{CIRCLED[b]}",
            f"제{r.randint(1, 60)}조제{a + 1}항 {CIRCLED[a]}",
            "".join(CIRCLED[a:b + 1][:6]),
            f"({a + 1}) {self.korean_phrase()}",
        ])

    def marked(self) -> str:
        r = self.rng
        mark = r.choice(DOC_MARKS)
        kind = r.random()
        if kind < 0.3:
            return f"{mark} {self.korean_phrase()}"
        if kind < 0.55:
            return "ㆍ".join(self.word() for _ in range(r.randint(2, 4)))
        if kind < 0.8:
            return f"「{self.word()}{r.choice(['법', '법 시행령', '규칙', ''])}」 제{r.randint(1, 99)}조"
        return f"{r.randint(1, 28)}일 ∼ {r.randint(1, 28)}일" if r.random() < 0.5 else f"※ {self.korean_phrase()}"

    def mixed_latin(self) -> str:
        r = self.rng
        term = self._fmt(r.choice(LATIN_TERMS))
        kind = r.random()
        if kind < 0.35:
            return f"{self.word()} {term}"
        if kind < 0.6:
            return f"{term} {self.korean_phrase()}"
        if kind < 0.8:
            return f"{self.word()} {self.unit_value()} ({term})"
        return f"{self.word()}: {self.phone_id() if r.random() < 0.5 else self.code()}"

    def law_reference(self) -> str:
        r = self.rng
        return f"제{r.randint(1, 200)}조제{r.randint(1, 9)}항제{r.randint(1, 20)}호 {self.korean_phrase()}"
