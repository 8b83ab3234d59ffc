"""The input size of a pretrained backbone, from the images and the budget; the backbone
rebuilt at that size with its weights; and the one-time calibration the choice needs."""

from __future__ import annotations

import json
import platform
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ..resources import cache_dir
from .backbones import LoadedBackbone
from .runtime import Compute, tensorflow

SIZES = (96, 128, 160, 192, 224)  # the sizes keras.applications' MobileNets were trained at
EXTRACT_SHARE = 0.3  # of the budget, at most, for extracting one backbone's features
CALIBRATION_IMAGES = 32


def resized(lb: LoadedBackbone, size: int) -> LoadedBackbone:
    """The backbone at another input size with the same weights (the convolutions do not
    depend on the size; global pooling makes the features the same length)."""
    if size == lb.backbone.input_size:
        return lb
    backbone = replace(lb.backbone, input_size=size)
    model = backbone.build(None)
    model.set_weights(lb.model.get_weights())
    return replace(lb, backbone=backbone, model=model)


def calibration_file() -> Path:
    return cache_dir() / "calibration.json"


def machine_key(compute: Compute) -> str:
    """What a measured rate holds for: this machine, TensorFlow version and device."""
    tf = tensorflow()
    return f"{platform.node()}|{platform.processor()}|tf{tf.__version__}|{compute.device}"


def _calibration(lb: LoadedBackbone, compute: Compute) -> float:
    """Seconds per image of the backbone at 96px on this machine: measured once per machine,
    TensorFlow version, device and backbone, kept in the cache."""
    path = calibration_file()
    key = f"{machine_key(compute)}|{lb.backbone.name}"
    try:
        known = json.loads(path.read_text())
    except (OSError, ValueError):
        known = {}
    if isinstance(known, dict) and isinstance(known.get(key), float):
        return float(known[key])
    small = resized(lb, 96).model
    x = np.zeros((CALIBRATION_IMAGES, 96, 96, 3), np.float32)
    small.predict_on_batch(x[:2])  # the first call traces
    start = time.perf_counter()
    small.predict_on_batch(x)
    seconds = (time.perf_counter() - start) / CALIBRATION_IMAGES
    known = (known if isinstance(known, dict) else {}) | {key: seconds}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(known, indent=1, sort_keys=True))
    except OSError:
        pass  # a read-only cache: measured again next time
    return seconds


def keras_seconds_per_image(lb: LoadedBackbone, size: int, compute: Compute) -> float:
    """The backbone's Keras time per image at `size`, from its calibration at 96px."""
    return _calibration(lb, compute) * (size / 96) ** 2


def backbone_size(
    lb: LoadedBackbone, split: Any, options: Any, compute: Compute, start: float
) -> int:
    """The largest of SIZES up to twice the images' median short side (a 28px image gains
    nothing at 224px) whose feature extraction fits EXTRACT_SHARE of the budget, at this
    machine's measured rate; the smallest if none does."""
    records = [*split.train, *split.validation]
    sides = sorted(min(r.width, r.height) for r in records)
    median = sides[len(sides) // 2] if sides else 224
    allowed = [s for s in SIZES if s <= max(SIZES[0], 2 * median)]
    for size in reversed(allowed):
        per_image = keras_seconds_per_image(lb, size, compute)
        if per_image * len(records) <= EXTRACT_SHARE * options.time_budget:
            return size
    return allowed[0]
