"""shapes_demo: an image classifier shipped as an ONNX model (labels in metadata.json)."""

from __future__ import annotations

from .classifier import (
    Classifier,
    InvalidImageError,
    ModelInfo,
    ModelIntegrityError,
    Prediction,
    load,
    preprocess,
    to_rgb,
)

__all__ = [
    "Classifier",
    "InvalidImageError",
    "ModelInfo",
    "ModelIntegrityError",
    "Prediction",
    "load",
    "preprocess",
    "to_rgb",
]
