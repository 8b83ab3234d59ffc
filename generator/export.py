"""Keras -> ONNX with tf2onnx, and proof that the ONNX model predicts what Keras did."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Callable, Iterable, Sequence
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


PREPROCESSING = (
    "a JPEG file decoded at 1/2, 1/4 or 1/8 scale (libjpeg DCT scaling) when every side keeps "
    "at least 2 x input_size; RGB after EXIF orientation, 16-bit grey scaled to 8 bits, "
    "transparency flattened onto white; resized to input_size x input_size with Pillow's "
    "bilinear filter; float32 values 0..255, NHWC"
)


def export_onnx(
    model: Any, path: Path, input_size: int, labels: Sequence[str] | None = None
) -> None:
    """Write the model as ONNX: input 'image' float32 (N, size, size, 3) in 0..255, output
    class probabilities. With labels, the model also carries its contract in its metadata
    (labels, input_size, preprocessing, output), so a consumer needs model.onnx alone."""
    tf = tensorflow()
    import tf2onnx

    spec = (tf.TensorSpec((None, input_size, input_size, 3), tf.float32, name=INPUT_NAME),)
    # Tracing a tf.function avoids from_keras's lookups of Keras tensor names, which fail
    # (KeyError 'keras_tensor_N') for models assembled from nested, already-trained parts.
    function = tf.function(lambda image: model(image, training=False))
    with contextlib.redirect_stdout(io.StringIO()):
        model_proto, _ = tf2onnx.convert.from_function(function, input_signature=spec, opset=OPSET)
    model_proto = canonical_names(model_proto)
    if labels is not None:
        contract = {
            "labels": json.dumps(list(labels)),
            "input_size": str(input_size),
            "input": f"{INPUT_NAME}: float32 (N, {input_size}, {input_size}, 3)",
            "preprocessing": PREPROCESSING,
            "output": f"float32 (N, {len(labels)}) probabilities, in the order of labels",
        }
        del model_proto.metadata_props[:]
        for key, value in contract.items():
            entry = model_proto.metadata_props.add()
            entry.key, entry.value = key, value
    path.write_bytes(model_proto.SerializeToString())


def canonical_names(model: Any) -> Any:
    """The model with its internal names given by position (v0, v1, ... in node order), the
    batch dimension of its input and output named N, and its initializers sorted by name.
    tf2onnx numbers constant-folded tensors and symbolic dimensions in an order that varies
    from process to process (it iterates over sets of strings), and names the graph after a
    numbered TF function, so the same weights would otherwise give different bytes."""
    graph = model.graph
    graph.doc_string = ""  # tf2onnx writes the TF function's name, numbered per process
    if any(a.type in (a.GRAPH, a.GRAPHS) for node in graph.node for a in node.attribute):
        return model  # subgraphs name outer values: leave such graphs as they are
    fixed = {value.name for value in (*graph.input, *graph.output)}
    renamed: dict[str, str] = {}

    def name(old: str) -> str:
        if not old or old in fixed:
            return old
        return renamed.setdefault(old, f"v{len(renamed)}")

    for i, node in enumerate(graph.node):
        node.input[:] = [name(n) for n in node.input]
        node.output[:] = [name(n) for n in node.output]
        node.name = f"{node.op_type}_{i}"
    for tensor in graph.initializer:
        tensor.name = name(tensor.name)
    for info in graph.value_info:
        info.name = name(info.name)
    symbols: dict[str, str] = {}
    for info in (*graph.input, *graph.output):  # images in, one row of scores per image out
        dims = info.type.tensor_type.shape.dim
        if dims and dims[0].dim_param:
            symbols[dims[0].dim_param] = "N"
    for info in (*graph.input, *graph.output, *graph.value_info):
        for dim in info.type.tensor_type.shape.dim:
            if dim.dim_param:
                dim.dim_param = symbols.setdefault(dim.dim_param, f"d{len(symbols)}")
    ordered = sorted(
        graph.initializer, key=lambda t: int(t.name[1:]) if t.name[1:].isdigit() else -1
    )
    copies = [type(t)() for t in ordered]
    for copy, tensor in zip(copies, ordered, strict=True):
        copy.CopyFrom(tensor)
    del graph.initializer[:]
    graph.initializer.extend(copies)
    return model


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
    model: Any, onnx_path: Path, batches: Iterable[np.ndarray], tolerance: float = MAX_ABS_DIFF
) -> tuple[Parity, np.ndarray]:
    """Compare Keras and ONNX probabilities on the same images, a batch at a time (memory
    holds one batch of images, whatever the test split's size); raise when they differ.

    Returns the parity figures and the ONNX probabilities (what the test metrics use)."""
    session = onnx_session(onnx_path)
    keras_parts: list[np.ndarray] = []
    onnx_parts: list[np.ndarray] = []
    for batch in batches:
        images = batch.astype(np.float32)
        keras_parts.append(np.asarray(model.predict_on_batch(images)))
        onnx_parts.append(onnx_predict(session, images))
    if not onnx_parts:
        raise ExportError("there are no test images to check the ONNX model on")
    keras_probs, onnx_probs = np.concatenate(keras_parts), np.concatenate(onnx_parts)
    diff = float(np.max(np.abs(keras_probs.astype(np.float64) - onnx_probs)))
    agreement = float(np.mean(keras_probs.argmax(1) == onnx_probs.argmax(1)))
    parity = Parity(len(onnx_probs), diff, agreement)
    if diff > tolerance or agreement < 1.0:
        raise ExportError(
            f"the ONNX model disagrees with the Keras model on {len(onnx_probs)} test images "
            f"(max probability difference {diff:.2e} > {tolerance:.0e}, top-1 agreement "
            f"{agreement:.1%}): report this with the model and versions"
        )
    return parity, onnx_probs
