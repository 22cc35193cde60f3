"""Evaluation: metrics, dataset loading, engine comparison, reports and benchmarks.

Public entry points: :func:`evaluate_folder`, :func:`score_document`, :func:`load_dataset` and the metric
functions in :mod:`ocrpipe.evaluation.metrics`.
"""

from ocrpipe.evaluation.dataset import Dataset, Sample, load_dataset
from ocrpipe.evaluation.scoring import (
    Prediction,
    aggregate,
    evaluate_dataset,
    evaluate_folder,
    score_document,
)

__all__ = [
    "Dataset",
    "Prediction",
    "Sample",
    "aggregate",
    "evaluate_dataset",
    "evaluate_folder",
    "load_dataset",
    "score_document",
]
