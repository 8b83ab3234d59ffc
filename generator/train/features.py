"""The on-disk caches training reads from: backbone features and preprocessed pixels."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..progress import Reporter
from ..resources import cache_dir
from .backbones import LoadedBackbone
from .embed import onnx_backbone, onnx_embedder
from .runtime import Compute, tensorflow
from .store import ArrayStore

PIXELS_VERSION = 2  # bump when data.images.load_array's pixels change (2: large JPEGs drafted)
EXTRACT_BATCH = 32  # images per feature-extraction batch (ArrayStore.fill's default)
ONNXRUNTIME, KERAS = "onnxruntime", "keras"
EXPORT_SECONDS = 3.0  # exporting MobileNetV2 with tf2onnx: 2.0-2.9 s at 128 and 224 px, 2 cores
ORT_SPEED_UP = 2.2  # onnxruntime's throughput over Keras's on a CPU: 1.92-2.26 (bench_search)


def extraction_runtime(compute: Compute, images: int, keras_seconds_per_image: float) -> str:
    """onnxruntime when the export (once per backbone, size and weights) pays for itself on
    these images, else Keras; Keras on a GPU."""
    if compute.device != "cpu":
        return KERAS
    keras = images * keras_seconds_per_image
    return ONNXRUNTIME if keras - keras / ORT_SPEED_UP > EXPORT_SECONDS else KERAS


def feature_cache(key: str, dim: int, root: Path | None = None) -> ArrayStore:
    """Features of one backbone x input size x weights, one float32 row per image content,
    computed from the pixels of this PIXELS_VERSION."""
    folder = (root or cache_dir()) / "features" / f"{key}-px{PIXELS_VERSION}"
    return ArrayStore(folder, (dim,), "float32")


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


def feature_store(
    lb: LoadedBackbone,
    extractor: Any,
    compute: Compute,
    reporter: Reporter,
    root: Path | None,
    runtime: str = ONNXRUNTIME,
) -> tuple[ArrayStore, Callable[[np.ndarray], Any]]:
    """The backbone's feature cache and the function that fills it: onnxruntime on the
    backbone exported once to ONNX (several times Keras's speed on a CPU), or Keras (on a
    GPU, or when the export would cost more than it saves)."""
    key = feature_key(lb, compute)
    embed = extractor.predict_on_batch
    size = lb.backbone.input_size
    if runtime == ONNXRUNTIME and compute.device == "cpu":
        with reporter.phase(f"{lb.backbone.name} at {size}px to ONNX", total=None):
            embed = onnx_embedder(onnx_backbone(extractor, key, size, root))
        key += "-onnxruntime"
    store = feature_cache(key, int(lb.model.output_shape[-1]), root)
    return store, fixed_batches(embed, EXTRACT_BATCH)


def fill(
    store: ArrayStore,
    images: Sequence[tuple[str, Path]],
    size: int,
    embed: Callable[[np.ndarray], Any] | None,
    what: str,
    reporter: Reporter,
    deadline: float,
) -> np.ndarray | None:
    """The images' rows (filling the cache with those it lacks), in memory; None if the
    deadline came first (what was done stays cached)."""
    keys = [k for k, _ in images]
    todo = len(store.missing(keys))
    if todo < len(images):
        reporter.info(f"Cache: {len(images) - todo} of {len(images)} {what} reused")
    if todo:
        with reporter.phase(what, total=todo) as advance:
            store.fill(images, size, embed, on_batch=advance, deadline=deadline)
    if store.missing(keys):
        reporter.warn(f"the time budget ran out while preparing {what} (kept for the next run)")
        return None
    return store.take(keys)
