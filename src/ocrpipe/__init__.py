"""ocrpipe: a self-hosted OCR pipeline for Korean and English documents.

The public API is re-exported here; everything else is private and may change.
"""

from ocrpipe.document import Document, Line, ModelInfo, Page, RecResult
from ocrpipe.errors import EngineError, ErrorCode, InputError, OcrError, Stage

__version__ = "0.1.0"

__all__ = [
    "Document",
    "EngineError",
    "ErrorCode",
    "InputError",
    "Line",
    "ModelInfo",
    "OcrError",
    "Page",
    "Pipeline",
    "PipelineConfig",
    "RecResult",
    "Stage",
    "__version__",
]


def __getattr__(name: str) -> object:
    # Lazy so that importing ocrpipe.document (e.g. from the trainer) does not load ONNX Runtime.
    if name in ("Pipeline", "PipelineConfig"):
        from ocrpipe.engine import pipeline

        return getattr(pipeline, name)
    raise AttributeError(name)
