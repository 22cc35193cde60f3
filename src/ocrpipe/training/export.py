"""Export a checkpoint to ONNX with its charset and normalisation in the metadata, and verify it."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ocrpipe.training.model import HEIGHT, WithSoftmax, model_from_state


def _git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              timeout=5, check=False).stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def export_onnx(checkpoint: Path, out: Path, *, name: str = "ko_rec", tolerance: float = 1e-4) -> dict[str, Any]:
    """Write ``out`` (opset 17, dynamic batch and width) and check ONNX Runtime against torch."""
    import onnx
    import onnxruntime as ort

    state = torch.load(checkpoint, map_location="cpu")
    vocab = tuple(state["vocab"])
    model = model_from_state(state)
    wrapped = WithSoftmax(model).eval()
    out.parent.mkdir(parents=True, exist_ok=True)
    import warnings

    warnings.filterwarnings("ignore", message=".*batch_size other than 1.*")  # checked below
    torch.onnx.export(wrapped, (torch.randn(2, 1, HEIGHT, 160),), str(out), input_names=["x"],
                      output_names=["probs"], opset_version=17, dynamo=False,
                      dynamic_axes={"x": {0: "batch", 3: "width"}, "probs": {0: "batch", 1: "time"}})
    graph = onnx.load(str(out))
    params = sum(p.numel() for p in model.parameters())
    meta = {
        "character": "\n".join(vocab), "input_height": str(HEIGHT), "input_channels": "1", "mean": "0.5",
        "std": "0.5", "model_name": name, "params": str(params), "train_step": str(state["step"]),
        "train_commit": _git_commit(),
        "arch": str(state.get("config", {}).get("arch", "crnn")),
        "tokens": "Hangul as conjoining jamo (NFD); decoders NFC-compose",
    }
    del graph.metadata_props[:]
    for key, value in meta.items():
        entry = graph.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(graph, str(out))
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    worst = 0.0
    for batch, width in ((1, 96), (3, 288), (7, 640)):  # other batch sizes than the traced one, too
        x = torch.randn(batch, 1, HEIGHT, width)
        with torch.no_grad():
            expected = wrapped(x).numpy()
        got = session.run(None, {"x": x.numpy()})[0]
        worst = max(worst, float(np.abs(expected - got).max()))
    if worst > tolerance:
        raise RuntimeError(f"ONNX output differs from torch by {worst:.2e} (> {tolerance})")
    return {"path": str(out), "sha256": hashlib.sha256(out.read_bytes()).hexdigest(), "bytes": out.stat().st_size,
            "params": params, "step": int(state["step"]), "max_abs_diff": worst}
