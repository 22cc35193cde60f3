"""Synthetic eye-clinic device printouts with exact field ground truth (test and benchmark data)."""

from ocrpipe.synth.printouts.generate import canonical, generate, make_page
from ocrpipe.synth.printouts.layouts import LAYOUTS, Layout

__all__ = ["LAYOUTS", "Layout", "canonical", "generate", "make_page"]
