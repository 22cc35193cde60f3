"""The one wrapper around ONNX Runtime, and the model registry.

Every model the engine can run is listed in ``ocrpipe/models/manifest.json`` with its sha256 and where the
file comes from: ``package:<dist module>/<path>`` for a file inside an installed wheel (the PP-OCR models
inside ``rapidocr_onnxruntime``), or ``ocrpipe:<path>`` for a file shipped inside this package. Nothing is
ever downloaded: a missing or altered file is a clear :class:`EngineError`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import threading
import weakref
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from ocrpipe.document import ModelInfo
from ocrpipe.errors import EngineError, ErrorCode

MODELS_DIR = Path(__file__).resolve().parent.parent / "models"
MANIFEST = MODELS_DIR / "manifest.json"


@dataclass(frozen=True)
class ModelSpec:
    """One entry of the manifest."""

    name: str
    kind: str
    source: str
    sha256: str
    version: str = "1"
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return resolve_source(self.source)

    def info(self) -> ModelInfo:
        return ModelInfo(name=self.name, kind=self.kind, version=self.version, sha256=self.sha256,
                         source=self.source)


def resolve_source(source: str) -> Path:
    """Turn a manifest ``source`` into a local path (never touches the network)."""
    scheme, _, rest = source.partition(":")
    if scheme == "package":
        module, _, rel = rest.partition("/")
        spec = importlib.util.find_spec(module)
        if spec is None or not spec.submodule_search_locations:
            raise EngineError(
                ErrorCode.MODEL_NOT_FOUND,
                f"model source {source!r} needs the Python package {module!r}; install it with "
                f"`pip install {module}`",
            )
        return Path(next(iter(spec.submodule_search_locations))) / rel
    if scheme == "ocrpipe":
        return MODELS_DIR / rest
    if scheme == "file":
        return Path(rest)
    raise EngineError(ErrorCode.MODEL_NOT_FOUND, f"unknown model source scheme in {source!r}")


@cache
def load_manifest() -> dict[str, ModelSpec]:
    """All models known to this installation, by name."""
    data = json.loads(MANIFEST.read_text(encoding="utf-8"))
    specs = {}
    for entry in data["models"]:
        spec = ModelSpec(
            name=entry["name"], kind=entry["kind"], source=entry["source"], sha256=entry["sha256"],
            version=str(entry.get("version", "1")), meta=dict(entry.get("meta", {})),
        )
        specs[spec.name] = spec
    return specs


def get_spec(name: str) -> ModelSpec:
    specs = load_manifest()
    if name not in specs:
        raise EngineError(ErrorCode.MODEL_NOT_FOUND,
                          f"unknown model {name!r}; known models: {', '.join(sorted(specs))}")
    return specs[name]


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


_verified: dict[tuple[str, float, int], str] = {}
_verify_lock = threading.Lock()


def verified_path(spec: ModelSpec) -> Path:
    """The model file's path after checking it exists and its sha256 matches the manifest."""
    path = spec.path
    if not path.is_file():
        raise EngineError(ErrorCode.MODEL_NOT_FOUND, f"model file for {spec.name!r} not found at {path}")
    st = path.stat()
    key = (str(path), st.st_mtime, st.st_size)
    with _verify_lock:
        digest = _verified.get(key)
        if digest is None:
            digest = sha256_file(path)
            _verified[key] = digest
    if digest != spec.sha256:
        raise EngineError(
            ErrorCode.MODEL_CHECKSUM_MISMATCH,
            f"model {spec.name!r} at {path} has sha256 {digest}, expected {spec.sha256}; "
            "reinstall the package that provides it",
        )
    return path


@dataclass(frozen=True)
class SessionSettings:
    """How ONNX Runtime sessions run; passed down from the command's settings, never read from the environment."""

    threads: int = 0
    """Intra-op threads per session; 0 means the number of usable CPUs."""
    spin: bool = False
    """ONNX Runtime's busy-waiting worker threads. Off: in ocrpipe a model run is followed by other CPU work
    on other threads (Tesseract reads, the next page's decoding, template matching), and a spinning thread
    takes a core from it: on 2 cores, template mode's two Tesseract threads gained nothing until spinning
    was off (40 -> 34 ms a page)."""
    device: str = "cpu"
    """``cpu``, or ``cuda`` when the CUDA execution provider is installed."""

    @property
    def intra_op_threads(self) -> int:
        """``threads``, or the number of usable CPUs when it is 0."""
        return self.threads if self.threads > 0 else usable_cpus()


def usable_cpus() -> int:
    """The number of CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


def create_session(path: Path, settings: SessionSettings | None = None, *, memory_pattern: bool = True) -> Any:
    """An ONNX Runtime inference session on CPU (or CUDA when ``settings.device='cuda'`` and available).

    ``memory_pattern=False`` switches off ONNX Runtime's memory pattern, which plans one contiguous block
    per input shape after the first run: for a model whose input size changes every call (the detector),
    that block comes from the arena beside the chunks of the first run, so the second A4 page doubled the
    detector's memory (``benchmarks/detect_memory.py``).
    """
    import onnxruntime as ort

    settings = settings or SessionSettings()
    opts = ort.SessionOptions()
    opts.enable_mem_pattern = memory_pattern
    opts.intra_op_num_threads = settings.intra_op_threads
    opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if settings.spin else "0")
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    providers = ["CPUExecutionProvider"]
    if settings.device == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    try:
        session = ort.InferenceSession(str(path), sess_options=opts, providers=providers)
    except Exception as exc:  # onnxruntime raises its own exception types
        raise EngineError(ErrorCode.ENGINE_FAILURE, f"cannot load ONNX model {path}: {exc}") from exc
    _LIVE_SESSIONS.add(session)
    return session


_LIVE_SESSIONS: weakref.WeakSet[Any] = weakref.WeakSet()
"""Every session :func:`create_session` made that is still in use (what :func:`release_arenas` shrinks)."""


def release_arenas() -> int:
    """Give back what ONNX Runtime's CPU arenas keep from their largest run; returns the sessions shrunk.

    An arena grows to the peak of the largest input it saw (a detector run on an A4 page at 200 dpi keeps
    about 650 MB) and never shrinks by itself. One tiny run per session with arena shrinkage switched on
    frees the unused chunks (measured: 1,924 -> 206 MB RSS after ``malloc_trim``, after 8 A4 pages on two
    threads). It costs a few milliseconds and nothing per request, so call it when the process is idle.
    """
    import onnxruntime as ort

    options = ort.RunOptions()
    options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
    shrunk = 0
    for session in list(_LIVE_SESSIONS):
        feed = {i.name: np.zeros([d if isinstance(d, int) else 1 if k == 0 else 32 for k, d in enumerate(i.shape)],
                                 np.float32)
                for i in session.get_inputs() if i.type == "tensor(float)"}
        if len(feed) != len(session.get_inputs()):
            continue  # an input this cannot fake: leave that session alone
        try:
            session.run(None, feed, options)
        except Exception:  # noqa: BLE001 - a model that refuses the tiny input keeps its arena
            continue
        shrunk += 1
    return shrunk


def load_model(name: str, settings: SessionSettings | None = None, *,
               memory_pattern: bool = True) -> tuple[ModelSpec, Any]:
    """Resolve, verify and open a model from the manifest: ``(spec, session)`` (see :func:`create_session`)."""
    spec = get_spec(name)
    return spec, create_session(verified_path(spec), settings, memory_pattern=memory_pattern)
