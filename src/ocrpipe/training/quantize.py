"""Int8 copies of the shipped ONNX models, calibrated on our own synthetic pages and lines only.

ONNX Runtime's static quantisation (QDQ format, int8 weights per output channel, uint8 activations, min/max
calibration) turns each convolution into an int8 ``QLinearConv``, which runs on the CPU's integer dot-product
units (AVX-512 VNNI / AVX-VNNI where present). Recurrent layers have no static int8 kernel in ONNX Runtime, so a
model's LSTMs (and its final MatMul) are then quantised dynamically (int8 weights, activations quantised per
run). The source file is never changed; each output is a new model file, listed in ``models/manifest.json``
under its own name with its sha256.

Calibration inputs are made exactly as the engine makes its network inputs (``TextDetector.network_input``,
``CTCRecognizer.network_batches``) from synthetic material of :mod:`ocrpipe.synth`: Korean and English
document pages (``synth.pages``) for the detector, at their own size and scaled up to the size of a 150 dpi
A4 page, and document lines (``synth.lines.LineSynth``) for the recogniser. Nothing comes from the evaluation
data. ``check`` compares the output against the source model on other synthetic seeds.

    ocrpipe train quantize --config configs/quantize_int8.yaml            # writes the files, prints checks
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml

from ocrpipe.engine import runtime


@dataclass(frozen=True)
class QuantJob:
    """One model to quantise (one entry of the config's ``models``)."""

    source: str
    """The model's name in the manifest."""
    out: str
    """Output file (relative to the config's folder's parent, i.e. the repository root)."""
    kind: str
    """``detector`` (synthetic pages) or ``recognizer`` (synthetic lines)."""
    seed: int = 7001
    samples: int = 12
    """Calibration pages (detector) or lines (recogniser)."""
    dynamic_ops: tuple[str, ...] = ()
    """Op types quantised dynamically afterwards (``LSTM``, ``MatMul``)."""
    static_ops: tuple[str, ...] = ()
    """Op types quantised statically (empty: ONNX Runtime's default set)."""
    opset: int = 17
    """Opset the source is converted to first (per-channel QDQ needs 13 or later)."""
    check_seed: int = 999
    exclude: tuple[str, ...] = field(default_factory=tuple)
    """Node names left in float."""
    float_from: tuple[str, ...] = field(default_factory=tuple)
    """Tensor names: every node that depends on one of them is left in float (e.g. a detector's head)."""


def load_jobs(path: str | Path) -> list[QuantJob]:
    """The jobs of a YAML config (``models: [{source, out, kind, ...}]``)."""
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    jobs = []
    for entry in data.get("models", []):
        entry = dict(entry)
        for key in ("dynamic_ops", "static_ops", "exclude", "float_from"):
            entry[key] = tuple(entry.get(key, ()))
        jobs.append(QuantJob(**entry))
    return jobs


def synthetic_pages(n: int, seed: int) -> list[np.ndarray]:
    """``n`` synthetic document pages (two Korean to one English), every other one scaled up to the width of
    a 150 dpi A4 page (the synthetic pages are 800 px wide)."""
    from ocrpipe.synth.pages import english_page, korean_page

    pages = []
    for i in range(n):
        page = (english_page if i % 3 == 2 else korean_page)(seed, i)[0]
        if i % 2:
            scale = 1240 / page.shape[1]
            page = cv2.resize(page, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
        pages.append(page)
    return pages


def synthetic_lines(n: int, seed: int) -> list[np.ndarray]:
    """``n`` synthetic document lines (RGB) as the recogniser sees them: up to 40 characters, document
    content, some with the whole scanner chain."""
    from ocrpipe.synth.lines import LineSynth

    synth = LineSynth(seed=seed, max_width=640, max_chars=40, doc_content=0.3, scan_chain=0.2)
    return [cv2.cvtColor(synth.sample(i)[0], cv2.COLOR_GRAY2RGB) for i in range(n)]


def calibration_inputs(job: QuantJob, spec: runtime.ModelSpec, seed: int) -> list[dict[str, np.ndarray]]:
    """Network inputs for ``job``'s model from synthetic material of ``seed``."""
    if job.kind == "detector":
        from ocrpipe.engine.detect.predictor import TextDetector

        det = TextDetector.from_name(spec.name)
        return [{det.input_name: det.network_input(page)} for page in synthetic_pages(job.samples, seed)]
    from ocrpipe.engine.recognize.ctc import CTCRecognizer

    rec = CTCRecognizer.from_name(spec.name, batch_size=16)
    return [{rec.input_name: x} for _, x, _ in rec.network_batches(synthetic_lines(job.samples, seed))]


def _reader(feeds: list[dict[str, np.ndarray]]) -> Any:
    """ONNX Runtime's calibration-data reader over a list of feeds."""
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self) -> None:
            self._it: Iterator[dict[str, np.ndarray]] = iter(feeds)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._it, None)

    return Reader()


def quantize(job: QuantJob, root: Path) -> Path:
    """Write ``job``'s int8 model; returns its path."""
    import onnx
    from onnx import version_converter
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_dynamic, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    spec = runtime.get_spec(job.source)
    src = runtime.verified_path(spec)
    out = root / job.out
    reader = _reader(calibration_inputs(job, spec, job.seed))
    with tempfile.TemporaryDirectory() as tmp:
        model = onnx.load(str(src))
        if model.opset_import[0].version < job.opset:
            model = version_converter.convert_version(model, job.opset)
        converted, prepared, static = (Path(tmp) / n for n in ("converted.onnx", "prepared.onnx", "static.onnx"))
        onnx.save(model, str(converted))
        quant_pre_process(str(converted), str(prepared), skip_symbolic_shape=True)
        exclude = list(job.exclude) + downstream_nodes(onnx.load(str(prepared)), job.float_from)
        quantize_static(str(prepared), str(static), reader, quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True,
                        calibrate_method=CalibrationMethod.MinMax, op_types_to_quantize=list(job.static_ops) or None,
                        nodes_to_exclude=exclude, extra_options={"CalibMovingAverage": True})
        final = static
        if job.dynamic_ops:
            final = Path(tmp) / "dynamic.onnx"
            quantize_dynamic(str(static), str(final), weight_type=QuantType.QInt8,
                             op_types_to_quantize=list(job.dynamic_ops))
        _copy_metadata(src, final, out, job)
    return out


def downstream_nodes(model: Any, tensors: tuple[str, ...]) -> list[str]:
    """Names of the nodes of an ONNX ``model`` that consume one of ``tensors``, directly or through other nodes
    (graph order is topological, so one pass suffices)."""
    reached, names = set(tensors), []
    for node in model.graph.node:
        if reached.intersection(node.input):
            reached.update(node.output)
            names.append(node.name)
    return names


def _copy_metadata(src: Path, final: Path, out: Path, job: QuantJob) -> None:
    """The source's metadata (charset, input height, ...) plus where the copy came from."""
    import onnx

    source, model = onnx.load(str(src)), onnx.load(str(final))
    meta = {p.key: p.value for p in source.metadata_props}
    meta.update({"quantized_from": f"{job.source} sha256 {runtime.get_spec(job.source).sha256}",
                 "quantization": f"static QDQ int8 (min/max, synthetic seed {job.seed}, {job.samples} samples)"
                                 + (f" + dynamic {'/'.join(job.dynamic_ops)}" if job.dynamic_ops else "")})
    del model.metadata_props[:]
    for key, value in meta.items():
        model.metadata_props.add(key=key, value=value)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(out))


def check(job: QuantJob, out: Path, *, pages: int = 6, lines: int = 300) -> dict[str, Any]:
    """The int8 model against its source on synthetic material of ``job.check_seed``: for a detector (on
    ``pages`` pages) the worst page's share of map pixels on the same side of the 0.3 threshold and mean
    absolute difference, for a recogniser the CER of both on ``lines`` lines."""
    spec = runtime.get_spec(job.source)
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    copy = runtime.ModelSpec(name=out.stem, kind=spec.kind, source=f"file:{out}", sha256=digest, meta=spec.meta)
    if job.kind == "detector":
        from ocrpipe.engine.detect.predictor import TextDetector

        a = TextDetector.from_name(spec.name)
        b = TextDetector(copy, runtime.create_session(out, memory_pattern=False))
        agree, diff = [], []
        for page in synthetic_pages(pages, job.check_seed):
            pa, pb = a.probability_map(page), b.probability_map(page)
            agree.append(float(((pa > 0.3) == (pb > 0.3)).mean()))
            diff.append(float(np.abs(pa - pb).mean()))
        return {"model": out.name, "sha256": digest, "map_agreement": min(agree), "map_mean_abs_diff": max(diff)}
    from rapidfuzz.distance import Levenshtein

    from ocrpipe.engine.recognize.ctc import CTCRecognizer
    from ocrpipe.synth.lines import LineSynth

    synth = LineSynth(seed=job.check_seed, max_width=640, max_chars=40, doc_content=0.3, scan_chain=0.2)
    samples = [synth.sample(i) for i in range(lines)]
    crops = [cv2.cvtColor(img, cv2.COLOR_GRAY2RGB) for img, _ in samples]
    truth = ["".join(t.split()) for _, t in samples]
    total = sum(len(t) for t in truth)
    cers = {}
    for name, rec in (("source", CTCRecognizer.from_name(spec.name)),
                      ("int8", CTCRecognizer(copy, runtime.create_session(out)))):
        edits = sum(Levenshtein.distance("".join(r.text.split()), t) for r, t in zip(rec.recognize(crops), truth,
                                                                                    strict=True))
        cers[name] = edits / total
    return {"model": out.name, "sha256": digest, "synthetic_cer_source": cers["source"],
            "synthetic_cer_int8": cers["int8"], "lines": len(samples)}
