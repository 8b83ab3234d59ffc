"""The on-disk caches training reads from: backbone features and preprocessed pixels."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..resources import cache_dir
from .backbones import LoadedBackbone
from .runtime import Compute, tensorflow
from .store import ArrayStore

PIXELS_VERSION = 1  # bump when generator.data.images.preprocess changes
EXTRACT_BATCH = 32  # images per feature-extraction batch (ArrayStore.fill's default)


def feature_cache(key: str, dim: int, root: Path | None = None) -> ArrayStore:
    """Features of one backbone x input size x weights, one float32 row per image content."""
    return ArrayStore((root or cache_dir()) / "features" / key, (dim,), "float32")


def pixel_cache(size: int, root: Path | None = None) -> ArrayStore:
    """Images decoded and resized once (uint8 size x size x 3), for training on pixels."""
    return ArrayStore(
        (root or cache_dir()) / "pixels" / f"v{PIXELS_VERSION}-{size}", (size, size, 3), "uint8"
    )


def feature_key(lb: LoadedBackbone, compute: Compute) -> str:
    """Features differ by backbone, input size, weights, device, precision and versions."""
    tf = tensorflow()
    return (
        f"{lb.backbone.name}-{lb.backbone.input_size}-{lb.weights_id}-{compute.device}-"
        f"{'fp16' if compute.mixed_precision else 'fp32'}-tf{tf.__version__}-"
        f"keras{tf.keras.__version__}"
    )


def fixed_batches(fn: Callable[[np.ndarray], Any], size: int) -> Callable[[np.ndarray], Any]:
    """fn on batches padded to one size: a row's features then do not depend on which other
    images share its batch (a warm cache batches differently from a cold one)."""

    def padded(batch: np.ndarray) -> np.ndarray:
        n = len(batch)
        if n < size:
            batch = np.concatenate([batch, np.zeros((size - n, *batch.shape[1:]), batch.dtype)])
        return np.asarray(fn(batch))[:n]

    return padded
