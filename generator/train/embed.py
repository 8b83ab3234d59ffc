"""Feature extraction at hardware speed: the backbone exported once to ONNX (per weights
file, input size and versions; cached beside the features) and run by onnxruntime on every
core, with the next batch decoded meanwhile, its images on every core (data.images.iter_batches)."""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..resources import cache_dir
from .runtime import tensorflow

OPSET = 17


def onnx_backbone(extractor: Any, key: str, size: int, root: Path | None = None) -> Path:
    """The extractor (0..255 RGB in, pooled features out) as an ONNX file in the cache,
    exported now if it is not there yet; written to a temporary name, then renamed, so an
    interrupted export leaves nothing half written."""
    import onnxruntime  # noqa: F401  (checked before the export's cost is paid)
    import tf2onnx

    folder = (root or cache_dir()) / "backbones"
    path = folder / f"{key}.onnx"
    if path.is_file():
        return path
    tf = tensorflow()
    spec = (tf.TensorSpec((None, size, size, 3), tf.float32, name="image"),)
    function = tf.function(lambda image: extractor(image, training=False))
    with contextlib.redirect_stdout(io.StringIO()):
        proto, _ = tf2onnx.convert.from_function(function, input_signature=spec, opset=OPSET)
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f".{key}.{os.getpid()}.partial"
    partial.write_bytes(proto.SerializeToString())
    partial.replace(path)
    return path


def onnx_embedder(path: Path, threads: int | None = None) -> Callable[[np.ndarray], np.ndarray]:
    """A function from a uint8 image batch to features, on an onnxruntime session using
    every core (or `threads`)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or os.cpu_count() or 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # idle threads sleep instead of spinning: between batches the same cores decode the next
    # batch (data.images.iter_batches), and spinning threads took them from it
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def embed(batch: np.ndarray) -> np.ndarray:
        return np.asarray(session.run(None, {name: batch.astype(np.float32)})[0])

    return embed
