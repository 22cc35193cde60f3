"""Checks on PDFs the tests make: PDF/A-2b as far as it can be checked without veraPDF."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pikepdf


def _fonts(pdf: pikepdf.Pdf) -> list[pikepdf.Dictionary]:
    """Every font the pages use, through Form XObjects (the text layer is one) and Type0 descendants."""
    found: list[pikepdf.Dictionary] = []

    def walk(resources: pikepdf.Dictionary) -> None:
        for font in resources.get("/Font", {}).values():
            found.extend(font.DescendantFonts if font.Subtype == "/Type0" else [font])
        for xobject in resources.get("/XObject", {}).values():
            if xobject.Subtype == "/Form" and "/Resources" in xobject:
                walk(xobject.Resources)

    for page in pdf.pages:
        walk(page.Resources)
    return found


def assert_pdfa_2b(path: Path) -> None:
    """What PDF/A-2b asks that can be checked without veraPDF: the XMP claim, an sRGB output intent with its
    ICC profile, every font embedded, no encryption, a file ID, and a structurally sound file (qpdf)."""
    with pikepdf.open(path) as pdf:
        meta = pdf.open_metadata()
        assert (meta.pdfa_status, meta.get("pdfaid:part"), meta.get("pdfaid:conformance")) == ("2B", "2", "B")
        intent = pdf.Root.OutputIntents[0]
        assert intent.S == "/GTS_PDFA1" and len(intent.DestOutputProfile.read_bytes()) > 0
        fonts = _fonts(pdf)
        assert fonts and all(any(k in f.FontDescriptor for k in ("/FontFile", "/FontFile2", "/FontFile3"))
                             for f in fonts)
        assert not pdf.is_encrypted and "/ID" in pdf.trailer
    if shutil.which("qpdf"):
        assert subprocess.run(["qpdf", "--check", str(path)], capture_output=True).returncode == 0
