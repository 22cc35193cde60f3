"""Command settings: one pydantic-settings model per command, read from ``OCRPIPE_*`` variables and flags.

Each field of a command's model is both a flag (``--max-batch-size``) and an environment variable
(``OCRPIPE_MAX_BATCH_SIZE``); :func:`add_flags` generates the flags from the fields (help text from the
field's docstring), :func:`from_args` builds the model with the flags given winning over the environment.
:class:`EngineSettings` holds the engine options that ``ocrpipe ocr`` and ``ocrpipe serve`` share, and
:func:`pipeline_config` is the one translation from settings to a :class:`~ocrpipe.engine.pipeline.PipelineConfig`.
"""

from __future__ import annotations

import argparse
import typing
from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from pydantic import Field, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, SettingsConfigDict

from ocrpipe.errors import ErrorCode, OcrError

if TYPE_CHECKING:  # the engine is imported when a pipeline is configured, not when flags are parsed
    from ocrpipe.engine.decode import Limits
    from ocrpipe.engine.pipeline import PipelineConfig


S = TypeVar("S", bound=BaseSettings)


def flag_name(field: str) -> str:
    """The command-line flag of a settings field: ``max_batch_size`` -> ``--max-batch-size``."""
    return "--" + field.replace("_", "-")


def env_name(model: type[BaseSettings], field: str) -> str:
    """The environment variable of a settings field: ``OCRPIPE_MAX_BATCH_SIZE``."""
    return (str(model.model_config.get("env_prefix", "")) + field).upper()


def add_flags(parser: argparse.ArgumentParser | argparse._ArgumentGroup, model: type[BaseSettings], *,
              skip: Collection[str] = ()) -> None:
    """One flag per field of ``model`` (except ``skip``); a flag not given leaves the field to the environment
    and then to its default."""
    for name, info in model.model_fields.items():
        if name in skip:
            continue
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        aliases = [str(a) for a in extra.get("flag_aliases", [])]  # type: ignore[union-attr]
        parser.add_argument(flag_name(name), *aliases, dest=name, default=None, help=_help(model, name, info),
                            **_kind(name, info))


def _kind(name: str, info: FieldInfo) -> dict[str, Any]:
    """argparse options by the field's type; values stay text and pydantic converts and validates them."""
    annotation = info.annotation
    if annotation is bool:
        return {"action": argparse.BooleanOptionalAction}
    if typing.get_origin(annotation) is Literal:
        return {"choices": [str(c) for c in typing.get_args(annotation)]}
    return {"metavar": name.upper()}


def _help(model: type[BaseSettings], name: str, info: FieldInfo) -> str:
    text = " ".join((info.description or "").split())
    default = info.get_default(call_default_factory=True)
    shown = "none" if default is None else str(default).lower() if isinstance(default, bool) else str(default)
    return f"{text} (default {shown}; env {env_name(model, name)})".replace("%", "%%").lstrip()


def from_args(model: type[S], args: argparse.Namespace, **fixed: Any) -> S:
    """``model`` from the flags in ``args`` that were given (they win), the environment and the defaults.

    Raises ``invalid_argument`` naming each bad field with its flag and variable.
    """
    given = {k: v for k in model.model_fields if (v := getattr(args, k, None)) is not None}
    try:
        return model(**{**given, **fixed})
    except ValidationError as exc:
        raise OcrError(ErrorCode.INVALID_ARGUMENT, "invalid settings:\n" + describe(model, exc)) from exc


def describe(model: type[BaseSettings], exc: ValidationError) -> str:
    """One line per validation error: field (flag, variable): what is wrong."""
    lines = []
    for err in exc.errors():
        field = str(err["loc"][0]) if err["loc"] else ""
        where = f"{field} ({flag_name(field)}, {env_name(model, field)}): " if field else ""
        lines.append(f"  {where}{err['msg']}")
    return "\n".join(lines)


class EngineSettings(BaseSettings):
    """The engine options of every command that runs the pipeline (``OCRPIPE_<NAME>`` or ``--<name>``)."""

    model_config = SettingsConfigDict(env_prefix="OCRPIPE_", extra="ignore", frozen=True,
                                      use_attribute_docstrings=True)

    recognizer: str = "auto"
    """auto (= hybrid_latin: the neural model, PP-OCRv4 for lines without Hangul, Tesseract for its other
    doubtful lines), hybrid (without PP-OCRv4), tesseract, or a model name from `ocrpipe models`"""
    pdf_dpi: int = Field(default=200, ge=36, le=600, json_schema_extra={"flag_aliases": ["--dpi"]})
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
        from ocrpipe.engine.decode import Limits

        return Limits()


def pipeline_config(settings: EngineSettings) -> PipelineConfig:
    """The pipeline configuration ``settings`` describe (used by ``ocrpipe ocr`` and ``ocrpipe serve``)."""
    from ocrpipe.engine.pipeline import PipelineConfig
    from ocrpipe.engine.preprocess import PreprocessConfig

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


class OcrSettings(EngineSettings):
    """``ocrpipe ocr``: the engine options and how to write the results."""

    format: Literal["json", "text", "hocr", "alto", "pdf"] = "text"
    """output format; pdf: a searchable PDF (the original pages with an invisible text layer; needs --out)"""
    pdfa: bool = False
    """with --format pdf: PDF/A-2b through OCRmyPDF"""
    out: Path | None = None
    """write one output file per input into this directory (none: print to stdout)"""
    visualize: bool = False
    """also write <name>.vis.png with boxes and text"""
