"""Pretrained backbones: what they need, and how their weights are found or refused."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UsageError, WeightsError
from .runtime import tensorflow


@dataclass(frozen=True)
class Backbone:
    """A Keras application used as a frozen feature extractor."""

    name: str
    input_size: int

    @property
    def weights_file(self) -> str:
        return f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_{self.input_size}_no_top.h5"

    @property
    def weights_url(self) -> str:
        from keras.src.applications import mobilenet_v2

        return str(mobilenet_v2.BASE_WEIGHT_PATH) + self.weights_file

    def build(self, weights: str | None) -> Any:
        """The backbone with global average pooling; preprocessing is added by the caller."""
        tf = tensorflow()
        return tf.keras.applications.MobileNetV2(
            input_shape=(self.input_size, self.input_size, 3),
            alpha=1.0,
            include_top=False,
            weights=weights,
            pooling="avg",
        )


MOBILENET_V2 = Backbone("mobilenet_v2", input_size=128)


def keras_cache_dir() -> Path:
    """Where keras.applications keeps downloaded weights: $KERAS_HOME/models, else
    ~/.keras/models (Keras reads KERAS_HOME once, when it is imported)."""
    from keras.src.backend import config

    return Path(os.path.expanduser(config.keras_home())) / "models"


@dataclass(frozen=True)
class LoadedBackbone:
    backbone: Backbone
    model: Any
    weights_id: str  # stable id of the weights, part of the feature-cache key
    source: str  # said to the user


def _file_id(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def _short_reason(exc: Exception) -> str:
    """Keras's offline failure repeats the URL; keep the cause ("URL fetch failure on U: None
    -- [Errno -2] Name or service not known" -> "download failed: [Errno -2] ...")."""
    text = str(exc).split("\n")[0]
    if text.startswith("URL fetch failure"):
        return "download failed: " + text.rpartition(" -- ")[2]
    return text


def load_backbone(backbone: Backbone, weights: str) -> LoadedBackbone | str:
    """The backbone with pretrained weights, or (for --weights auto / none) why there is none.

    weights: "auto" tries ImageNet and falls back; "imagenet" requires it; "none" skips;
    anything else is a path to a local weights file.
    """
    if weights == "none":
        return "pretrained weights turned off (--weights none)"
    if weights in ("auto", "imagenet"):
        cached = keras_cache_dir() / backbone.weights_file
        try:
            # Keras prints "Downloading data from ..." before it fails offline.
            with contextlib.redirect_stdout(io.StringIO()):
                model = backbone.build("imagenet")
        except Exception as exc:
            reason = _short_reason(exc)
            if weights == "auto":
                return (
                    f"ImageNet weights for {backbone.name} are not available ({reason}); "
                    f"put {backbone.weights_file} in {cached.parent} or pass --weights PATH"
                )
            raise WeightsError(
                f"ImageNet weights for {backbone.name} could not be loaded ({reason}): download "
                f"{backbone.weights_url} to {cached}, pass --weights PATH to a local copy, "
                "or use --weights auto to go on without them"
            ) from None
        weights_id = _file_id(cached) if cached.is_file() else "imagenet"
        return LoadedBackbone(backbone, model, weights_id, f"ImageNet weights ({cached})")
    path = Path(weights).expanduser()
    if not path.is_file():
        raise UsageError(
            f"weights file {path} does not exist: pass --weights with the path of a "
            f"{backbone.name} no-top .h5 file, or --weights auto|imagenet|none"
        )
    try:
        model = backbone.build(str(path))
    except Exception as exc:
        reason = str(exc).split("\n")[0]
        raise WeightsError(
            f"weights file {path} does not fit {backbone.name} at {backbone.input_size}px "
            f"({reason}): pass a no-top .h5 file such as {backbone.weights_file}"
        ) from None
    return LoadedBackbone(backbone, model, _file_id(path), f"weights file {path}")
