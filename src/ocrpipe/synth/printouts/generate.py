"""Generate synthetic device printouts with exact per-field ground truth.

Each page ``<key>_<n>.png`` gets ``<key>_<n>.json`` beside it::

    {"image": "...png", "template": "ark_v1", "device": "ARK-530", "version": "1", "page": 1,
     "font": "noto-cjk-kr", "effects": {...}, "matrix": [[...], [...]],
     "fields": {"r_sph": {"text": "-1.25", "value": -1.25, "type": "number", "box": [[x, y] x4]}, ...}}

``value`` is the canonical value a template must extract (numbers as floats with the unit stripped, dates
as ISO ``YYYY-MM-DD``, text/enum as printed); ``box`` is the printed text's box in the output image.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ocrpipe.synth.printouts.heldout import HELDOUT, layout_for_page
from ocrpipe.synth.printouts.layouts import LAYOUTS, Layout
from ocrpipe.synth.printouts.render import (
    FONT_SETS,
    apply_scan,
    available_font_sets,
    render_clean,
    sample_effects,
    scan_matrix,
    transform_box,
)


def canonical(spec: dict[str, Any], text: str) -> Any:
    """The value a correct reader must return for ``text`` printed in a slot with ``spec``."""
    kind = spec.get("type", "text")
    if kind == "number":
        return float(re.sub(r"[^0-9.+-]", "", text))
    if kind == "date":
        return datetime.strptime(text, spec["format"]).date().isoformat()
    return text


def make_page(layout: Layout, rng: np.random.Generator, strength: float = 1.0) -> tuple[np.ndarray, dict]:
    """One scanned printout (RGB) and its ground-truth record."""
    fonts = available_font_sets()
    fontset = fonts[int(rng.integers(0, len(fonts)))]
    layout = layout_for_page(layout, FONT_SETS.index(fontset), rng)
    values = layout.sample(rng)
    fx = sample_effects(rng, strength)
    clean, boxes = render_clean(layout, values, fontset, ink=fx["ink"])
    img = apply_scan(clean, fx, rng)
    m = scan_matrix(layout.width, layout.height, fx)
    fields = {}
    for slot in layout.slots:
        text = values[slot.name]
        fields[slot.name] = {"text": text, "value": canonical(slot.spec, text), "type": slot.spec.get("type", "text"),
                             "box": transform_box(boxes[slot.name], m)}
    truth = {"template": layout.key, "device": layout.device, "version": layout.version, "page": layout.page,
             "font": fontset.name, "effects": fx, "matrix": np.round(m, 6).tolist(), "fields": fields}
    return img, truth


def generate(out: str | Path, n: int, seed: int, layouts: list[str] | None = None,
             strength: float = 1.0, values: bool = False) -> list[Path]:
    """Write ``n`` pages (layouts taken in turn; default the built-in ones, :data:`HELDOUT` by name) to
    ``out``; returns the image paths. With ``values``, ``<name>.values.json`` holds each field's printed
    text (the ``--values`` of ``ocrpipe template new``)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    known = {**LAYOUTS, **HELDOUT}
    keys = layouts or sorted(LAYOUTS)
    unknown = [k for k in keys if k not in known]
    if unknown:
        raise ValueError(f"unknown layouts {unknown}; known: {sorted(known)}")
    rng = np.random.default_rng(seed)
    paths = []
    with open(out / "index.jsonl", "w", encoding="utf-8") as index:
        for i in range(n):
            layout = known[keys[i % len(keys)]]
            img, truth = make_page(layout, rng, strength)
            name = f"{layout.key}_s{seed}_{i:04d}"
            Image.fromarray(img).save(out / f"{name}.png")
            truth["image"] = f"{name}.png"
            (out / f"{name}.json").write_text(json.dumps(truth, ensure_ascii=False, indent=1), encoding="utf-8")
            if values:  # what a user types for ``template new``: each field's value as printed
                printed = {k: f["text"] for k, f in truth["fields"].items()}
                (out / f"{name}.values.json").write_text(json.dumps(printed, ensure_ascii=False), encoding="utf-8")
            index.write(json.dumps({"image": truth["image"], "truth": f"{name}.json"}) + "\n")
            paths.append(out / f"{name}.png")
    return paths
