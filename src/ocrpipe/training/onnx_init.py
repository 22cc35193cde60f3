"""Start training from a shipped ONNX recogniser: rebuild the torch :class:`CRNN` from the exported weights.

Run folders (``last.pt``) are not committed, only the exported model is; this makes the shipped model
itself the starting point of a new training phase (``ocrpipe train recognizer --init ko_rec.onnx``).

Two things the export changed have to be undone:

- **Batch norm was folded** into the convolutions (``y = W x + c``). Restoring BN as an identity would
  change the function as soon as training uses batch statistics, so each BN layer gets the real statistics
  of ``W x`` measured on calibration batches (mean ``mu``, variance ``var``) and ``gamma = sqrt(var + eps)``,
  ``beta = mu + c``: in training mode the layer then reproduces ``W x + c`` on data like the calibration set.
- **LSTM gates** are stored in ONNX order (input, output, forget, cell) with separate input/recurrent
  biases; PyTorch orders them (input, forget, cell, output).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ocrpipe.training.model import CRNN

_ONNX_TO_TORCH_GATES = (0, 2, 3, 1)
"""Torch gate k (i, f, g, o) is ONNX gate ``_ONNX_TO_TORCH_GATES[k]`` (ONNX order i, o, f, c)."""


def _gates(w: np.ndarray, hidden: int) -> np.ndarray:
    blocks = [w[g * hidden:(g + 1) * hidden] for g in range(4)]
    return np.concatenate([blocks[g] for g in _ONNX_TO_TORCH_GATES])


def _initializers(path: Path) -> tuple[dict[str, np.ndarray], list[tuple[str, list[str]]], dict[str, str]]:
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    weights = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    nodes = [(n.op_type, list(n.input)) for n in model.graph.node]
    meta = {p.key: p.value for p in model.metadata_props}
    return weights, nodes, meta


def crnn_from_onnx(path: str | Path, calibration: Iterable[torch.Tensor]) -> CRNN:
    """A :class:`CRNN` computing what the exported model at ``path`` computes (before its softmax).

    ``calibration``: a few input batches (N, 1, 32, W) used to measure the batch-norm statistics.
    """
    weights, nodes, _ = _initializers(Path(path))
    convs = [(weights[i[1]], weights[i[2]]) for op, i in nodes if op == "Conv"]
    lstms = [(weights[i[1]], weights[i[2]], weights.get(i[3]) if len(i) > 3 else None)
             for op, i in nodes if op == "LSTM"]
    matmul = next(weights[i[1]] for op, i in nodes if op == "MatMul" and i[1] in weights)
    fc_bias = weights["model.fc.bias"]
    hidden = lstms[0][1].shape[-1]  # R: (dirs, 4H, H)
    model = CRNN(fc_bias.shape[0], hidden=hidden)

    conv_layers = [m for m in model.cnn if isinstance(m, nn.Conv2d)]
    bn_layers = [m for m in model.cnn if isinstance(m, nn.BatchNorm2d)]
    if len(conv_layers) != len(convs) or len(bn_layers) != len(convs):
        raise ValueError(f"{path}: {len(convs)} convolutions, the CRNN has {len(conv_layers)}")
    for conv, (w, _) in zip(conv_layers, convs, strict=True):
        conv.weight.data = torch.from_numpy(w.copy())

    # BN statistics of the bias-free convolution outputs, layer by layer, on the calibration batches.
    sums = [torch.zeros(w.shape[0], dtype=torch.float64) for w, _ in convs]
    squares = [torch.zeros(w.shape[0], dtype=torch.float64) for w, _ in convs]
    counts = [0] * len(convs)
    hooks = []
    for k, conv in enumerate(conv_layers):
        def hook(_m: nn.Module, _inp: object, out: torch.Tensor, k: int = k) -> None:
            flat = out.detach().double().transpose(0, 1).reshape(out.shape[1], -1)
            sums[k] += flat.sum(1)
            squares[k] += (flat * flat).sum(1)
            counts[k] += flat.shape[1]
        hooks.append(conv.register_forward_hook(hook))
    # Measure with BN as the exact folded affine map (identity statistics), so later layers see the
    # activations the exported model produces.
    for bn, (_, c) in zip(bn_layers, convs, strict=True):
        assert bn.running_mean is not None and bn.running_var is not None  # track_running_stats is on
        bn.running_mean.zero_()
        bn.running_var.fill_(1.0 - bn.eps)
        bn.weight.data.fill_(1.0)
        bn.bias.data = torch.from_numpy(c.copy())
    model.eval()
    with torch.no_grad():
        for x in calibration:
            model.cnn(x)
    for h in hooks:
        h.remove()
    for k, (bn, (_, c)) in enumerate(zip(bn_layers, convs, strict=True)):
        mean = sums[k] / max(1, counts[k])
        var = (squares[k] / max(1, counts[k]) - mean * mean).clamp_min(1e-6)
        assert bn.running_mean is not None and bn.running_var is not None
        bn.running_mean.copy_(mean.float())
        bn.running_var.copy_(var.float())
        bn.weight.data = torch.sqrt(var + bn.eps).float()
        bn.bias.data = (mean.float() + torch.from_numpy(c.copy()))

    for layer, (w, r, b) in enumerate(lstms):
        for d, suffix in enumerate(("", "_reverse")):
            getattr(model.rnn, f"weight_ih_l{layer}{suffix}").data = torch.from_numpy(_gates(w[d], hidden))
            getattr(model.rnn, f"weight_hh_l{layer}{suffix}").data = torch.from_numpy(_gates(r[d], hidden))
            bias = b[d] if b is not None else np.zeros(8 * hidden, np.float32)
            getattr(model.rnn, f"bias_ih_l{layer}{suffix}").data = torch.from_numpy(_gates(bias[:4 * hidden], hidden))
            getattr(model.rnn, f"bias_hh_l{layer}{suffix}").data = torch.from_numpy(_gates(bias[4 * hidden:], hidden))
    model.fc.weight.data = torch.from_numpy(matmul.T.copy())
    model.fc.bias.data = torch.from_numpy(fc_bias.copy())
    model.train()
    return model


def onnx_vocab(path: str | Path) -> tuple[str, ...]:
    """The output symbols stored in an exported model's metadata (class k+1 = symbol k)."""
    _, _, meta = _initializers(Path(path))
    return tuple(meta["character"].split("\n"))
