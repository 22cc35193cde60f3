"""Command settings: one pydantic-settings model per command, read from ``OCRPIPE_*`` variables and flags.

:class:`EngineSettings` holds the engine options that ``ocrpipe ocr`` and ``ocrpipe serve`` share, and
:func:`pipeline_config` is the one translation from settings to a :class:`~ocrpipe.engine.pipeline.PipelineConfig`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from ocrpipe.engine.decode import Limits
from ocrpipe.engine.pipeline import PipelineConfig
from ocrpipe.engine.preprocess import PreprocessConfig


class EngineSettings(BaseSettings):
    """The engine options of every command that runs the pipeline (``OCRPIPE_<NAME>`` or ``--<name>``)."""

    model_config = SettingsConfigDict(env_prefix="OCRPIPE_", extra="ignore", frozen=True,
                                      use_attribute_docstrings=True)

    recognizer: str = "auto"
    """auto (the neural model with Tesseract for its doubtful lines), tesseract, or a model name from
    `ocrpipe models`"""
    pdf_dpi: int = Field(default=200, ge=36, le=600)
    """PDF render resolution"""
    threads: int = Field(default=0, ge=0, le=64)
    """ONNX Runtime intra-op threads per model call (0: all usable CPUs)"""
    ort_spin: bool = False
    """let ONNX Runtime threads busy-wait between runs (faster alone, slower beside other work)"""
    tesseract_threads: int = Field(default=0, ge=0, le=64)
    """Tesseract reads in parallel (0: the same as threads, or all usable CPUs when that is 0)"""
    device: Literal["cpu", "cuda"] = "cpu"
    """cpu, or cuda when onnxruntime-gpu is installed"""
    deskew: bool = False
    """straighten skewed scans"""
    denoise: bool = False
    """median-filter noisy scans"""
    contrast: bool = False
    """boost faint print (CLAHE)"""
    orientation: bool = False
    """flip upside-down lines (0/180 classifier)"""

    def limits(self) -> Limits:
        """Input limits of this command (the library defaults unless a command sets its own)."""
        return Limits()


def pipeline_config(settings: EngineSettings) -> PipelineConfig:
    """The pipeline configuration ``settings`` describe (used by ``ocrpipe ocr`` and ``ocrpipe serve``)."""
    return PipelineConfig(
        recognizer=settings.recognizer,
        limits=settings.limits(),
        pdf_dpi=settings.pdf_dpi,
        preprocess=PreprocessConfig(denoise=settings.denoise, contrast=settings.contrast, deskew=settings.deskew),
        use_orientation=settings.orientation,
        threads=settings.threads,
        ort_spin=settings.ort_spin,
        tesseract_threads=settings.tesseract_threads,
        device=settings.device,
    )
