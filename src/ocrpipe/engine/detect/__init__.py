"""Text detection: a DB-style detector on ONNX Runtime with numpy/OpenCV post-processing."""

from ocrpipe.engine.detect.postprocess import DBParams, boxes_from_map, order_quad
from ocrpipe.engine.detect.predictor import Detection, TextDetector

__all__ = ["DBParams", "Detection", "TextDetector", "boxes_from_map", "order_quad"]
