"""Classify images with the exported ONNX model.

Preprocessing repeats the training pipeline exactly: EXIF orientation applied, 16-bit grey
scaled to 8 bits, transparency flattened onto white, RGB, resized with Pillow's bilinear
filter, values 0..255 as float32. A JPEG given as a path, bytes or a file object is decoded
as in training, at 1/2, 1/4 or 1/8 scale when every side stays at least twice the model's
input size (what Pillow's `thumbnail` does; several times faster on camera photos). A PIL
image or an array is used as it is, so a large JPEG decoded by the caller may differ from
its file by a grey level or two.

A Classifier holds no state that changes after it is made: `predict` and `predict_batch`
may be called from several threads at once (onnxruntime sessions are thread-safe).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import threading
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import IO, Any, Literal, overload

import numpy as np
from PIL import ExifTags, Image, UnidentifiedImageError

try:
    import onnxruntime as ort
except ImportError as exc:  # neither extra installed
    raise ImportError(
        "shapes_demo needs onnxruntime: install the package with its [cpu] extra "
        "(or [gpu] for onnxruntime-gpu), e.g. pip install -e '.[cpu]'"
    ) from exc

ImageInput = str | Path | bytes | bytearray | IO[bytes] | Image.Image | np.ndarray
ChannelOrder = Literal["RGB", "BGR"]

PACKAGE_DIR = Path(__file__).resolve().parent
MODEL_PATH = PACKAGE_DIR / "model.onnx"
METADATA_PATH = PACKAGE_DIR / "metadata.json"
MAX_PIXELS = 64_000_000  # as in training: larger images are refused (decompression bombs)
DRAFT_MARGIN = 2  # as in training: a JPEG decoded at reduced scale keeps twice the input size
SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N", "I")
ORIENTATIONS = {  # EXIF orientation -> the transpose that makes the image upright
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


class InvalidImageError(ValueError):
    """Raised when an input cannot be read as an image."""


class ModelIntegrityError(RuntimeError):
    """Raised when model.onnx is not the model metadata.json describes."""


@dataclass(frozen=True)
class Prediction:
    """The most likely label, its probability, the probability of every label, and the
    score below which the model's answer is "not sure" (min_score)."""

    label: str
    score: float
    scores: dict[str, float]
    min_score: float | None = None

    @property
    def confident(self) -> bool:
        """Whether the score reaches min_score (always, when there is none)."""
        return self.min_score is None or self.score >= self.min_score

    @property
    def answer(self) -> str | None:
        """The label when confident, else None: "I don't know"."""
        return self.label if self.confident else None

    def top_k(self, k: int) -> list[tuple[str, float]]:
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        ranked = sorted(self.scores.items(), key=lambda item: (-item[1], item[0]))
        return ranked[:k]


@dataclass(frozen=True)
class ModelInfo:
    """What the shipped model is: its version, hash, labels and measured quality."""

    version: int
    sha256: str
    labels: tuple[str, ...]
    input_size: int
    min_score: float | None
    metrics: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "sha256": self.sha256,
            "labels": list(self.labels),
            "input_size": self.input_size,
            "min_score": self.min_score,
            "metrics": self.metrics,
        }


def to_rgb(image: Image.Image) -> Image.Image:
    """Apply EXIF orientation, scale 16-bit grey to 8 bits, flatten transparency onto
    white, return an RGB image (always a new one: `image` is left as it is)."""
    rgb = _rgb(image)
    return rgb.copy() if rgb is image else rgb


def _rgb(image: Image.Image) -> Image.Image:
    """to_rgb's steps, returning `image` itself when it is already upright RGB (no
    full-size copy before the resize)."""
    image.load()
    turn = ORIENTATIONS.get(image.getexif().get(ExifTags.Base.Orientation, 1))
    if turn is not None:
        image = image.transpose(turn)
    if image.mode in SIXTEEN_BIT:  # 16/32-bit grey: keep the top 8 bits, not clipped values
        image = image.convert("I").point(lambda value: value * (1 / 256)).convert("L")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return image if image.mode == "RGB" else image.convert("RGB")


def _from_array(image: np.ndarray, channel_order: ChannelOrder) -> Image.Image:
    if image.dtype != np.uint8:
        advice = "convert with array.astype(np.uint8)"
        if np.issubdtype(image.dtype, np.floating):
            advice = (
                "scale floats in 0..1 with (array * 255).round().astype(np.uint8), or cast "
                "floats already in 0..255 with array.round().astype(np.uint8)"
            )
        raise InvalidImageError(f"array images must be uint8 (0..255), got {image.dtype}: {advice}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)):
        raise InvalidImageError(
            f"array images must be (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), got shape "
            f"{image.shape}"
        )
    if image.ndim == 3 and channel_order == "BGR":  # OpenCV's order: BGR or BGRA
        image = image[:, :, [2, 1, 0, 3][: image.shape[2]]]
    return Image.fromarray(np.ascontiguousarray(image))


def _checked(image: Image.Image, source: str, size: int | None = None) -> Image.Image:
    """The image loaded after its size is checked; a JPEG this function opened (`size`
    given) decoded at reduced scale when every side keeps DRAFT_MARGIN times `size`."""
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise InvalidImageError(
            f"{source} is {width}x{height} pixels, over the {MAX_PIXELS:,}-pixel limit: "
            "downscale it first"
        )
    if size is not None and image.format in ("JPEG", "MPO"):
        image.draft(None, (DRAFT_MARGIN * size, DRAFT_MARGIN * size))
    try:
        image.load()
    except Exception as exc:  # Pillow raises many types for damaged data
        raise InvalidImageError(f"{source} is not a readable image ({exc})") from exc
    return image


def _open(
    image: ImageInput, channel_order: ChannelOrder = "RGB", size: int | None = None
) -> Image.Image:
    if channel_order not in ("RGB", "BGR"):
        raise ValueError(f"channel_order must be 'RGB' or 'BGR', got {channel_order!r}")
    if isinstance(image, Image.Image):
        return _checked(image, "the PIL image")
    if isinstance(image, np.ndarray):
        return _from_array(image, channel_order)
    if isinstance(image, (str, Path)):
        data, source = Path(image).read_bytes(), str(image)
    elif isinstance(image, (bytes, bytearray)):
        data, source = bytes(image), "bytes"
    elif hasattr(image, "read"):
        data, source = image.read(), str(getattr(image, "name", "file object"))
        if not isinstance(data, bytes):
            raise TypeError(f"{source} was opened in text mode: open it with 'rb'")
    else:
        raise TypeError(
            f"cannot classify a {type(image).__name__}: pass a path, bytes, a binary file "
            "object, a PIL image or a numpy array"
        )
    try:
        with warnings.catch_warnings():  # the pixel limit is checked below, at this MAX_PIXELS
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            opened = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError:
        raise InvalidImageError(
            f"{source} is over the {MAX_PIXELS:,}-pixel limit: downscale it first"
        ) from None
    except UnidentifiedImageError:
        raise InvalidImageError(
            f"{source} is not a readable image (not a format Pillow recognises)"
        ) from None
    except Exception as exc:
        raise InvalidImageError(f"{source} is not a readable image ({exc})") from exc
    return _checked(opened, source, size)


def pixels(image: ImageInput, size: int, *, channel_order: ChannelOrder = "RGB") -> np.ndarray:
    """One image as the model sees it, before the cast to float32: uint8 (size, size, 3).

    channel_order applies to numpy arrays only: "BGR" for arrays from OpenCV."""
    if (
        isinstance(image, np.ndarray)
        and image.dtype == np.uint8
        and image.shape == (size, size, 3)
        and channel_order in ("RGB", "BGR")
    ):  # already the model's size and mode: what the steps below would return
        return image if channel_order == "RGB" else image[:, :, ::-1]
    rgb = _rgb(_open(image, channel_order, size))
    if rgb.size != (size, size):
        rgb = rgb.resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(rgb, dtype=np.uint8)


def preprocess(image: ImageInput, size: int, *, channel_order: ChannelOrder = "RGB") -> np.ndarray:
    """The model's input for one image: float32 array (size, size, 3) in 0..255.

    channel_order applies to numpy arrays only: "BGR" for arrays from OpenCV."""
    return pixels(image, size, channel_order=channel_order).astype(np.float32)


def _providers(wanted: Sequence[str] | None) -> list[str]:
    if wanted is not None:
        return list(wanted)
    available = ort.get_available_providers()
    return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Classifier:
    """An ONNX image classifier; create it once (or use `load()`) and reuse it.

    threads: onnxruntime's intra-op threads (default: every core, best for batches; 1 is
    best for many concurrent single-image calls). providers: onnxruntime execution
    providers (default CUDA when onnxruntime-gpu sees a GPU, else CPU). session_options:
    an ort.SessionOptions of your own (threads still applies when given)."""

    def __init__(
        self,
        model_path: str | Path = MODEL_PATH,
        metadata_path: str | Path = METADATA_PATH,
        *,
        threads: int | None = None,
        providers: Sequence[str] | None = None,
        session_options: ort.SessionOptions | None = None,
    ) -> None:
        model_path, metadata_path = Path(model_path), Path(metadata_path)
        metadata: dict[str, Any] = json.loads(metadata_path.read_text(encoding="utf-8"))
        self.labels: tuple[str, ...] = tuple(metadata["labels"])
        self.input_size: int = int(metadata["input_size"])
        self.min_score: float | None = metadata.get("min_score")
        digest = _sha256(model_path)
        expected = metadata.get("model_sha256")
        if expected is not None and digest != expected:
            raise ModelIntegrityError(
                f"{model_path} has sha256 {digest[:12]}…, but {metadata_path.name} describes "
                f"the model {str(expected)[:12]}…: restore the model or regenerate the project"
            )
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be at least 1, got {threads}")
        options = session_options or ort.SessionOptions()
        if threads is not None or session_options is None:
            options.intra_op_num_threads = threads or os.cpu_count() or 1
        self._session = ort.InferenceSession(
            str(model_path), options, providers=_providers(providers)
        )
        self._input_name: str = self._session.get_inputs()[0].name
        width = self._session.get_outputs()[0].shape[-1]
        if isinstance(width, int) and width != len(self.labels):
            raise ModelIntegrityError(
                f"{model_path} outputs {width} scores but {metadata_path.name} lists "
                f"{len(self.labels)} labels: restore the files or regenerate the project"
            )
        self.info = ModelInfo(
            version=int(metadata.get("model_version", 0)),
            sha256=digest,
            labels=self.labels,
            input_size=self.input_size,
            min_score=self.min_score,
            metrics=dict(metadata.get("metrics", {})),
        )

    def preprocess(self, image: ImageInput, *, channel_order: ChannelOrder = "RGB") -> np.ndarray:
        return preprocess(image, self.input_size, channel_order=channel_order)

    def probabilities(self, batch: np.ndarray) -> np.ndarray:
        """Class probabilities for a preprocessed batch (N, size, size, 3), uint8 or float32."""
        inputs = {self._input_name: np.asarray(batch, dtype=np.float32)}  # no copy if float32
        return np.asarray(self._session.run(None, inputs)[0])

    def prediction(self, row: np.ndarray, min_score: float | None = None) -> Prediction:
        """A Prediction from one row of probabilities (min_score: the model's when None)."""
        values = row.tolist()  # Python floats, in one call
        best = max(range(len(values)), key=values.__getitem__)
        return Prediction(
            label=self.labels[best],
            score=values[best],
            scores=dict(zip(self.labels, values, strict=True)),
            min_score=self.min_score if min_score is None else min_score,
        )

    def predict(
        self,
        image: ImageInput,
        *,
        min_score: float | None = None,
        channel_order: ChannelOrder = "RGB",
    ) -> Prediction:
        """One image: a path, bytes, a binary file object, a PIL image or a uint8 array."""
        batch = pixels(image, self.input_size, channel_order=channel_order)[None]
        return self.prediction(self.probabilities(batch)[0], min_score)

    @overload
    def predict_batch(
        self,
        images: Iterable[ImageInput],
        batch_size: int = ...,
        *,
        min_score: float | None = ...,
        channel_order: ChannelOrder = ...,
        errors: Literal["raise"] = ...,
    ) -> list[Prediction]: ...

    @overload
    def predict_batch(
        self,
        images: Iterable[ImageInput],
        batch_size: int = ...,
        *,
        min_score: float | None = ...,
        channel_order: ChannelOrder = ...,
        errors: Literal["skip"],
    ) -> list[Prediction | None]: ...

    def predict_batch(
        self,
        images: Iterable[ImageInput],
        batch_size: int = 32,
        *,
        min_score: float | None = None,
        channel_order: ChannelOrder = "RGB",
        errors: Literal["raise", "skip"] = "raise",
    ) -> list[Prediction] | list[Prediction | None]:
        """Any iterable of images, run batch_size at a time. errors="skip" gives None in
        place of an image that cannot be read, instead of raising."""
        if isinstance(images, (str, bytes, bytearray, Path)):
            raise TypeError("predict_batch takes an iterable of images: use predict() for one")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a whole number of at least 1, got {batch_size!r}")
        if errors not in ("raise", "skip"):
            raise ValueError(f"errors must be 'raise' or 'skip', got {errors!r}")
        results: list[Prediction | None] = []
        for chunk in _chunks(images, batch_size):
            arrays: list[np.ndarray | None] = []
            for image in chunk:
                try:
                    arrays.append(pixels(image, self.input_size, channel_order=channel_order))
                except (InvalidImageError, OSError):
                    if errors == "raise":
                        raise
                    arrays.append(None)
            good = [a for a in arrays if a is not None]
            rows = iter(self.probabilities(np.stack(good)) if good else [])
            results += [
                None if a is None else self.prediction(next(rows), min_score) for a in arrays
            ]
        return results

    def top_k(self, image: ImageInput, k: int = 3) -> list[tuple[str, float]]:
        return self.predict(image).top_k(k)


def _chunks(images: Iterable[ImageInput], size: int) -> Iterator[list[ImageInput]]:
    iterator = iter(images)
    while chunk := list(islice(iterator, size)):
        yield chunk


_LOADED: dict[tuple[Path, int | None], Classifier] = {}
_LOCK = threading.Lock()


def load(model_path: str | Path = MODEL_PATH, *, threads: int | None = None) -> Classifier:
    """The classifier shipped in this package (or at model_path), made once per model path
    and thread count and shared: `load() is load()`."""
    key = (Path(model_path).resolve(), threads)
    with _LOCK:
        if key not in _LOADED:
            metadata = Path(model_path).with_name(METADATA_PATH.name)
            _LOADED[key] = Classifier(model_path, metadata, threads=threads)
        return _LOADED[key]
