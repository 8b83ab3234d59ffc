"""The on-disk caches training reads from: backbone features and preprocessed pixels."""

from __future__ import annotations

from pathlib import Path

from ..resources import cache_dir
from .store import ArrayStore

PIXELS_VERSION = 1  # bump when generator.data.images.preprocess changes


def feature_cache(key: str, dim: int, root: Path | None = None) -> ArrayStore:
    """Features of one backbone x input size x weights, one float32 row per image content."""
    return ArrayStore((root or cache_dir()) / "features" / key, (dim,), "float32")


def pixel_cache(size: int, root: Path | None = None) -> ArrayStore:
    """Images decoded and resized once (uint8 size x size x 3), for training on pixels."""
    return ArrayStore(
        (root or cache_dir()) / "pixels" / f"v{PIXELS_VERSION}-{size}", (size, size, 3), "uint8"
    )
