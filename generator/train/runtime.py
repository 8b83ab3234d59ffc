"""TensorFlow import, device selection and determinism, kept out of import time."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from typing import Any

from ..errors import ComputeError

IMPORT_SECONDS: list[float] = []  # how long the first `import tensorflow` took, once known


def tensorflow() -> Any:
    """Import TensorFlow quietly (its import costs seconds; only training needs it)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    start = time.perf_counter()
    import tensorflow as tf

    if not IMPORT_SECONDS:
        IMPORT_SECONDS.append(time.perf_counter() - start)

    tf.get_logger().setLevel(logging.ERROR)
    logging.getLogger("absl").setLevel(logging.ERROR)
    return tf


@dataclass(frozen=True)
class Compute:
    """Where training runs."""

    device: str  # "cpu" or "gpu"
    gpus: tuple[str, ...]
    mixed_precision: bool

    def describe(self) -> str:
        if self.device == "gpu":
            mode = "mixed float16" if self.mixed_precision else "float32"
            return f"GPU ({', '.join(self.gpus)}; {mode})"
        return f"CPU ({os.cpu_count()} cores)"


def select_compute(target: str) -> Compute:
    """Resolve auto/cpu/gpu to a device; a GPU that was asked for and is absent is an error."""
    tf = tensorflow()
    gpus = tuple(d.name for d in tf.config.list_physical_devices("GPU"))
    if target == "gpu" and not gpus:
        built = tf.test.is_built_with_cuda()
        raise ComputeError(
            "--compute gpu was asked for, but TensorFlow sees no GPU"
            + (
                " (this TensorFlow is built with CUDA: check the NVIDIA driver with `nvidia-smi` "
                "and install the CUDA libraries with `pip install 'tensorflow[and-cuda]'`)"
                if built
                else " (this TensorFlow build has no CUDA support)"
            )
            + ": fix the GPU set-up, or use --compute cpu"
        )
    if target == "cpu" or not gpus:
        if gpus:
            tf.config.set_visible_devices([], "GPU")
        return Compute("cpu", (), False)
    for device in tf.config.list_physical_devices("GPU"):
        tf.config.experimental.set_memory_growth(device, True)
    return Compute("gpu", gpus, True)


def seed_everything(seed: int) -> None:
    """Same seed, same data, same budget on CPU -> same weights (GPU kernels may still vary)."""
    tf = tensorflow()
    tf.keras.utils.set_random_seed(seed)
    # Multi-threaded CPU reductions otherwise add in a varying order.
    tf.config.experimental.enable_op_determinism()
