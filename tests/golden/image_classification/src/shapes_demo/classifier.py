"""Classify images with the exported ONNX model.

Preprocessing repeats the training pipeline exactly: EXIF orientation applied, transparency
flattened onto white, RGB, resized with Pillow's bilinear filter, values 0..255 as float32.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from PIL import Image, ImageOps, UnidentifiedImageError

ImageInput = str | Path | bytes | Image.Image | np.ndarray

PACKAGE_DIR = Path(__file__).resolve().parent
MODEL_PATH = PACKAGE_DIR / "model.onnx"
METADATA_PATH = PACKAGE_DIR / "metadata.json"
SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N", "I")


class InvalidImageError(ValueError):
    """Raised when an input cannot be read as an image."""


@dataclass(frozen=True)
class Prediction:
    """The most likely label, its probability, and the probability of every label."""

    label: str
    score: float
    scores: dict[str, float]

    def top_k(self, k: int) -> list[tuple[str, float]]:
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        ranked = sorted(self.scores.items(), key=lambda item: (-item[1], item[0]))
        return ranked[:k]


def to_rgb(image: Image.Image) -> Image.Image:
    """Apply EXIF orientation, scale 16-bit grey to 8 bits, flatten transparency onto
    white, return an RGB image."""
    image = ImageOps.exif_transpose(image)
    if image.mode in SIXTEEN_BIT:  # 16/32-bit grey: keep the top 8 bits, not clipped values
        image = image.convert("I").point(lambda value: value * (1 / 256)).convert("L")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return image.convert("RGB")


def _open(image: ImageInput) -> Image.Image:
    if isinstance(image, Image.Image):
        return image
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8:
            raise InvalidImageError(
                f"array images must be uint8 (0..255), got {image.dtype}: "
                "convert with array.astype(np.uint8)"
            )
        if image.ndim == 3 and image.shape[2] == 1:
            image = image[:, :, 0]
        if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)):
            raise InvalidImageError(
                f"array images must be (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), "
                f"got shape {image.shape}"
            )
        return Image.fromarray(image)
    if isinstance(image, (str, Path)):
        data = Path(image).read_bytes()
        source = str(image)
    elif isinstance(image, (bytes, bytearray)):
        data = bytes(image)
        source = "bytes"
    else:
        raise TypeError(
            f"cannot classify a {type(image).__name__}: pass a path, bytes, "
            "a PIL image or a numpy array"
        )
    try:
        opened = Image.open(io.BytesIO(data))
        opened.load()
    except UnidentifiedImageError:
        raise InvalidImageError(
            f"{source} is not a readable image (not a format Pillow recognises)"
        ) from None
    except Exception as exc:
        raise InvalidImageError(f"{source} is not a readable image ({exc})") from exc
    return opened


def preprocess(image: ImageInput, size: int) -> np.ndarray:
    """The model's input for one image: float32 array (size, size, 3) in 0..255."""
    rgb = to_rgb(_open(image))
    if rgb.size != (size, size):
        rgb = rgb.resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(rgb, dtype=np.uint8).astype(np.float32)


class Classifier:
    """An ONNX image classifier; create it once and reuse it."""

    def __init__(
        self,
        model_path: Path = MODEL_PATH,
        metadata_path: Path = METADATA_PATH,
        *,
        threads: int = 1,
    ) -> None:
        metadata: dict[str, Any] = json.loads(Path(metadata_path).read_text(encoding="utf-8"))
        self.labels: tuple[str, ...] = tuple(metadata["labels"])
        self.input_size: int = int(metadata["input_size"])
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        self._session = ort.InferenceSession(
            str(model_path), options, providers=["CPUExecutionProvider"]
        )
        self._input_name: str = self._session.get_inputs()[0].name

    def preprocess(self, image: ImageInput) -> np.ndarray:
        return preprocess(image, self.input_size)

    def probabilities(self, batch: np.ndarray) -> np.ndarray:
        """Class probabilities for a preprocessed batch (N, size, size, 3)."""
        outputs = self._session.run(None, {self._input_name: batch.astype(np.float32)})
        return np.asarray(outputs[0])

    def predict(self, image: ImageInput) -> Prediction:
        return self.predict_batch([image])[0]

    def predict_batch(self, images: Sequence[ImageInput], batch_size: int = 32) -> list[Prediction]:
        predictions: list[Prediction] = []
        for start in range(0, len(images), batch_size):
            chunk = images[start : start + batch_size]
            batch = np.stack([self.preprocess(image) for image in chunk])
            for row in self.probabilities(batch):
                best = int(np.argmax(row))
                predictions.append(
                    Prediction(
                        label=self.labels[best],
                        score=float(row[best]),
                        scores={label: float(p) for label, p in zip(self.labels, row)},
                    )
                )
        return predictions

    def top_k(self, image: ImageInput, k: int = 3) -> list[tuple[str, float]]:
        return self.predict(image).top_k(k)


def load(threads: int = 1) -> Classifier:
    """The classifier shipped in this package."""
    return Classifier(threads=threads)
