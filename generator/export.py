"""Keras -> ONNX with tf2onnx, and proof that the ONNX model predicts what Keras did."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ExportError
from .train.runtime import tensorflow

OPSET = 17
INPUT_NAME = "image"
MAX_ABS_DIFF = 1e-4


@dataclass(frozen=True)
class Parity:
    images: int
    max_abs_diff: float
    top1_agreement: float


def as_float32(model: Any, architecture: Callable[[], Any]) -> Any:
    """The model itself when it is float32; else the same architecture rebuilt in float32
    with its weights, so the exported graph has no float16 casts."""
    keras = tensorflow().keras
    if str(model.dtype_policy.name) == "float32":
        return model
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("float32")
    try:
        clone = architecture()
    finally:
        keras.mixed_precision.set_global_policy(previous)
    clone.set_weights(model.get_weights())
    return clone


def export_onnx(model: Any, path: Path, input_size: int) -> None:
    """Write the model as ONNX: input 'image' float32 (N, size, size, 3) in 0..255, output
    class probabilities."""
    tf = tensorflow()
    import tf2onnx

    spec = (tf.TensorSpec((None, input_size, input_size, 3), tf.float32, name=INPUT_NAME),)
    # Tracing a tf.function avoids from_keras's lookups of Keras tensor names, which fail
    # (KeyError 'keras_tensor_N') for models assembled from nested, already-trained parts.
    function = tf.function(lambda image: model(image, training=False))
    with contextlib.redirect_stdout(io.StringIO()):
        tf2onnx.convert.from_function(
            function, input_signature=spec, opset=OPSET, output_path=str(path)
        )


def onnx_session(path: Path) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def onnx_predict(session: Any, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
    name = session.get_inputs()[0].name
    out: list[np.ndarray] = []
    for start in range(0, len(images), batch_size):
        batch = images[start : start + batch_size].astype(np.float32)
        out.append(session.run(None, {name: batch})[0])
    return np.concatenate(out)


def check_parity(
    model: Any, onnx_path: Path, images: np.ndarray, tolerance: float = MAX_ABS_DIFF
) -> tuple[Parity, np.ndarray]:
    """Compare Keras and ONNX probabilities on the same images; raise when they differ.

    Returns the parity figures and the ONNX probabilities (what the test metrics use)."""
    keras_probs = np.concatenate(
        [
            np.asarray(model.predict_on_batch(images[i : i + 64].astype(np.float32)))
            for i in range(0, len(images), 64)
        ]
    )
    onnx_probs = onnx_predict(onnx_session(onnx_path), images)
    diff = float(np.max(np.abs(keras_probs.astype(np.float64) - onnx_probs)))
    agreement = float(np.mean(keras_probs.argmax(1) == onnx_probs.argmax(1)))
    parity = Parity(len(images), diff, agreement)
    if diff > tolerance or agreement < 1.0:
        raise ExportError(
            f"the ONNX model disagrees with the Keras model on {len(images)} test images "
            f"(max probability difference {diff:.2e} > {tolerance:.0e}, top-1 agreement "
            f"{agreement:.1%}): report this with the model and versions"
        )
    return parity, onnx_probs
