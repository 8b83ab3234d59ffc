"""shapes_demo: an image classifier shipped as an ONNX model (labels in metadata.json)."""

from __future__ import annotations

from .classifier import Classifier, InvalidImageError, Prediction, load, preprocess

__all__ = ["Classifier", "InvalidImageError", "Prediction", "load", "preprocess"]
