"""ALTO 4.4 output validates against the official schema (no network: XLink comes from xmlschema's copy)."""

from pathlib import Path

import pytest
from lxml import etree

from ocrpipe.document import Document, Line, Page, Word
from ocrpipe.export.alto import to_alto

SCHEMA = Path(__file__).parent / "alto-4-4.xsd"


XLINK_ALIAS = """<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xlink="http://www.w3.org/1999/xlink"
  targetNamespace="http://www.w3.org/1999/xlink">
  <xs:include schemaLocation="{xlink}"/>
  <xs:attributeGroup name="simpleLink"><xs:attributeGroup ref="xlink:simpleAttrs"/></xs:attributeGroup>
</xs:schema>"""


class _LocalSchemas(etree.Resolver):
    """What ALTO imports, without network: XLink and the XML namespace schema from xmlschema's copies.

    ALTO imports the Library of Congress' XLink schema, whose group of simple-link attributes is called
    ``simpleLink``; the W3C XLink 1.1 schema bundled with xmlschema calls the same group ``simpleAttrs``,
    so a two-line schema includes it and adds the old name.
    """

    def resolve(self, system_url, public_id, context):  # type: ignore[no-untyped-def]
        import xmlschema

        bundled = Path(xmlschema.__file__).parent / "schemas"
        if not system_url.startswith("http"):
            return None
        if system_url.endswith("/xlink.xsd"):
            return self.resolve_string(XLINK_ALIAS.format(xlink=bundled / "XLINK/xlink.xsd"), context)
        if system_url.endswith("/xml.xsd"):
            return self.resolve_filename(str(bundled / "XML/xml.xsd"), context)
        return None


def alto_schema() -> etree.XMLSchema:
    parser = etree.XMLParser(no_network=True)
    parser.resolvers.add(_LocalSchemas())
    return etree.XMLSchema(etree.parse(str(SCHEMA), parser))


def validate(xml: str) -> etree._Element:
    root = etree.fromstring(xml.encode("utf-8"))
    schema = alto_schema()
    assert schema.validate(root), schema.error_log
    return root


def _doc() -> Document:
    w1 = Word("계약", 0.97, ((10, 10), (60, 10), (60, 40), (10, 40)))
    w2 = Word("A-2291", 0.5, ((70, 10), (150, 11), (150, 41), (70, 40)))
    line = Line("계약 A-2291", 0.8, ((8, 8), (152, 8), (152, 42), (8, 42)), words=(w1, w2))
    bare = Line("no words <&>", 0.9, ((8, 60), (152, 60), (152, 90), (8, 90)))
    return Document("ocrpipe/test", (Page(0, 200, 100, (line, bare)), Page(1, 200, 100, ())))


def test_alto_validates_and_carries_words_and_positions():
    root = validate(to_alto(_doc(), filename="scan.pdf"))
    ns = {"a": "http://www.loc.gov/standards/alto/ns-v4#"}
    strings = root.findall(".//a:String", ns)
    assert [s.get("CONTENT") for s in strings] == ["계약", "A-2291", "no words <&>"]
    assert (strings[1].get("HPOS"), strings[1].get("VPOS"), strings[1].get("WIDTH")) == ("70", "10", "80")
    assert len(root.findall(".//a:SP", ns)) == 1 and len(root.findall(".//a:Page", ns)) == 2


def test_a_broken_alto_does_not_validate():
    xml = to_alto(_doc()).replace('CONTENT="계약"', "")
    with pytest.raises(AssertionError):
        validate(xml)


@pytest.mark.integration
def test_alto_of_a_real_page_validates(pipeline):
    from ocrpipe.samples import render_page

    image, _ = render_page(("대한민국 헌법 제1조", "Invoice No. A-2291"))
    doc = pipeline.run_image(image)
    root = validate(to_alto(doc))
    contents = [s.get("CONTENT") for s in root.iter("{http://www.loc.gov/standards/alto/ns-v4#}String")]
    assert contents == doc.text.split()
