"""Reading order: rows top-down and left to right, columns one after the other, tables row by row."""

from ocrpipe.document import Line
from ocrpipe.engine.order import reading_order


def _line(text, x0, y0, x1, y1):
    return Line(text=text, confidence=1.0, box=((x0, y0), (x1, y0), (x1, y1), (x0, y1)))


def _texts(lines):
    ordered, _ = reading_order(lines)
    return [line.text for line in ordered]


def test_single_column_top_down():
    lines = [_line("c", 10, 100, 300, 120), _line("a", 10, 10, 300, 30), _line("b", 10, 50, 300, 70)]
    assert _texts(lines) == ["a", "b", "c"]


def test_pieces_of_a_row_left_to_right_even_if_slightly_offset():
    lines = [_line("right", 200, 12, 300, 32), _line("left", 10, 10, 150, 30)]
    assert _texts(lines) == ["left", "right"]


def test_two_columns_read_column_by_column():
    left = [_line(f"L{i}", 10, 100 + 40 * i, 280, 120 + 40 * i) for i in range(5)]
    # right column lines sit between the left ones (different leading), so the sides are not row-aligned
    right = [_line(f"R{i}", 340, 120 + 50 * i, 600, 140 + 50 * i) for i in range(4)]
    title = _line("title", 10, 20, 600, 50)
    assert _texts(right + left + [title]) == ["title"] + [f"L{i}" for i in range(5)] + [f"R{i}" for i in range(4)]


def test_table_cells_read_row_by_row():
    cells = []
    for r in range(3):
        for c in range(3):
            cells.append(_line(f"r{r}c{c}", 10 + 200 * c, 10 + 30 * r, 120 + 200 * c, 30 + 30 * r))
    assert _texts(list(reversed(cells))) == [f"r{r}c{c}" for r in range(3) for c in range(3)]


def test_blocks_cover_every_line_once():
    lines = [_line(str(i), 10 + 300 * (i % 2), 10 + 25 * i, 200 + 300 * (i % 2), 30 + 25 * i) for i in range(8)]
    ordered, blocks = reading_order(lines)
    flat = sorted(i for block in blocks for i in block)
    assert flat == list(range(len(ordered)))


def test_empty():
    assert reading_order([]) == ([], ())


def test_aligned_text_columns_are_still_columns():
    """Magazine columns often share the baseline grid; long, full-width lines mark them as prose columns."""
    left = [_line(f"L{i}", 10, 100 + 30 * i, 290 - (40 if i == 3 else 0), 120 + 30 * i) for i in range(6)]
    right = [_line(f"R{i}", 330, 100 + 30 * i, 610, 120 + 30 * i) for i in range(6)]
    assert _texts(right + left) == [f"L{i}" for i in range(6)] + [f"R{i}" for i in range(6)]
