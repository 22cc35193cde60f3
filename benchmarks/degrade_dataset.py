"""Make a scan-degraded copy of an evaluation folder (labels.jsonl + images), labels transformed with it.

    python benchmarks/degrade_dataset.py ../shared/data/ko_docs /tmp/ko_docs_degraded [--seed 0]

Each page is rotated by up to ±2.5° (white fill), blurred (σ 0.6–1.1), given Gaussian noise (σ 6–10) and
saved as JPEG quality 55–70 — what a cheap office scanner does to a printed page. Every polygon in the labels
(``lines``, ``word_boxes``, ``ignore_regions``) goes through the same rotation, so the copy is scored exactly
like the original (``ocrpipe eval /tmp/ko_docs_degraded``). The copy is for local robustness checks only: it
is derived from ../shared/data and is never shipped or trained on.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np


def _transform(points: list[list[float]], matrix: np.ndarray) -> list[list[float]]:
    pts = np.hstack([np.asarray(points, np.float64), np.ones((len(points), 1))])
    return [[round(float(x), 1), round(float(y), 1)] for x, y in pts @ matrix.T]


def degrade(image: np.ndarray, rng: random.Random) -> tuple[bytes, np.ndarray, dict[str, float]]:
    """The degraded page as JPEG bytes, the 2×3 affine applied to its coordinates, and the parameters used."""
    h, w = image.shape[:2]
    angle = rng.uniform(-2.5, 2.5)
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    out = cv2.warpAffine(image, matrix, (w, h), flags=cv2.INTER_LINEAR, borderValue=(255, 255, 255))
    sigma = rng.uniform(0.6, 1.1)
    out = cv2.GaussianBlur(out, (0, 0), sigma)
    noise_sigma = rng.uniform(6, 10)
    noise = np.random.default_rng(rng.getrandbits(32)).normal(0, noise_sigma, out.shape)
    out = np.clip(out.astype(np.float32) + noise, 0, 255).astype(np.uint8)
    quality = rng.randint(55, 70)
    ok, enc = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    params = {"angle": angle, "blur_sigma": sigma, "noise_sigma": noise_sigma, "jpeg_quality": quality}
    return enc.tobytes(), matrix, params


def degrade_row(row: dict[str, Any], matrix: np.ndarray) -> dict[str, Any]:
    row = dict(row)
    for key in ("lines", "word_boxes", "ignore_regions"):
        items = row.get(key)
        if not items:
            continue
        moved = []
        for item in items:
            if isinstance(item, dict) and "points" in item:
                moved.append({**item, "points": _transform(item["points"], matrix)})
            elif isinstance(item, list):  # a bare polygon
                moved.append(_transform(item, matrix))
            else:
                moved.append(item)
        row[key] = moved
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("source", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rows = [json.loads(line) for line in (args.source / "labels.jsonl").read_text(encoding="utf-8").splitlines()
            if line.strip()]
    (args.out / "images").mkdir(parents=True, exist_ok=True)
    rng = random.Random(args.seed)
    out_rows = []
    for row in rows:
        image = cv2.imread(str(args.source / row["image"]), cv2.IMREAD_COLOR)
        if image is None:
            print(f"skipped unreadable {row['image']}", file=sys.stderr)
            continue
        degraded, matrix, params = degrade(image, rng)
        name = "images/" + Path(row["image"]).stem + ".jpg"
        (args.out / name).write_bytes(degraded)
        new = degrade_row(row, matrix)
        new["image"] = name
        new["degradation"] = {k: round(v, 3) for k, v in params.items()}
        out_rows.append(new)
    (args.out / "labels.jsonl").write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in out_rows), encoding="utf-8")
    print(f"wrote {len(out_rows)} degraded pages and labels to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
