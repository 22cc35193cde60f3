"""ALTO XML v4.4 of a Document: one ``Page`` per page, a ``TextBlock`` per block, ``TextLine`` and ``String``
(with ``SP`` between words), positions in original-image pixels (``MeasurementUnit`` pixel)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence

from ocrpipe.document import Document, Line, Page, Point, Word

ALTO_NS = "http://www.loc.gov/standards/alto/ns-v4#"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
SCHEMA_LOCATION = f"{ALTO_NS} http://www.loc.gov/standards/alto/v4/alto-4-4.xsd"


def _el(parent: ET.Element, tag: str, **attrs: object) -> ET.Element:
    return ET.SubElement(parent, f"{{{ALTO_NS}}}{tag}", {k: str(v) for k, v in attrs.items()})


def _position(box: Sequence[Point]) -> dict[str, int]:
    xs, ys = [p[0] for p in box], [p[1] for p in box]
    x0, y0 = int(min(xs)), int(min(ys))
    return {"HPOS": x0, "VPOS": y0, "WIDTH": max(1, int(round(max(xs))) - x0),
            "HEIGHT": max(1, int(round(max(ys))) - y0)}


def _union(boxes: Sequence[Sequence[Point]]) -> list[Point]:
    pts = [p for box in boxes for p in box]
    return [(min(p[0] for p in pts), min(p[1] for p in pts)), (max(p[0] for p in pts), max(p[1] for p in pts))]


def _line_words(line: Line) -> Sequence[Word]:
    """The line's words, or the whole line as one word for a Document made without word boxes."""
    return line.words or (Word(line.text, line.confidence, line.box),)


def _add_page(layout: ET.Element, page: Page) -> None:
    el = _el(layout, "Page", ID=f"page_{page.index + 1}", PHYSICAL_IMG_NR=page.index + 1,
             WIDTH=page.width, HEIGHT=page.height)
    space = _el(el, "PrintSpace", HPOS=0, VPOS=0, WIDTH=page.width, HEIGHT=page.height)
    blocks = [b for b in (page.blocks or (tuple(range(len(page.lines))),)) if b]
    for b, block in enumerate(blocks, 1):
        tb = _el(space, "TextBlock", ID=f"block_{page.index + 1}_{b}",
                 **_position(_union([page.lines[i].box for i in block])))
        for i in block:
            line = page.lines[i]
            tl = _el(tb, "TextLine", ID=f"line_{page.index + 1}_{i + 1}", **_position(line.box))
            for k, word in enumerate(_line_words(line)):
                if k:
                    _el(tl, "SP")
                _el(tl, "String", ID=f"word_{page.index + 1}_{i + 1}_{k + 1}", CONTENT=word.text,
                    WC=f"{max(0.0, min(1.0, word.confidence)):.4f}", **_position(word.box))


def to_alto(doc: Document, *, filename: str = "") -> str:
    """The Document as an ALTO 4.4 XML string (with its XML declaration; write it as UTF-8)."""
    ET.register_namespace("", ALTO_NS)
    ET.register_namespace("xsi", XSI_NS)
    root = ET.Element(f"{{{ALTO_NS}}}alto", {f"{{{XSI_NS}}}schemaLocation": SCHEMA_LOCATION})
    description = _el(root, "Description")
    _el(description, "MeasurementUnit").text = "pixel"
    source = _el(description, "sourceImageInformation")
    _el(source, "fileName").text = filename
    processing = _el(description, "Processing", ID="ocrpipe")
    software = _el(processing, "processingSoftware")
    _el(software, "softwareName").text = "ocrpipe"
    _el(software, "softwareVersion").text = doc.engine
    layout = _el(root, "Layout")
    for page in doc.pages:
        _add_page(layout, page)
    ET.indent(root)
    return ET.tostring(root, xml_declaration=True, encoding="unicode") + "\n"
