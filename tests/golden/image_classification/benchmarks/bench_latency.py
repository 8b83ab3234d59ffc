"""The library's overhead over a raw onnxruntime session on the same model, same threads.

    python benchmarks/bench_latency.py [--threads N] [--repeats R]

Times `predict` (1 image) and `predict_batch` (64 images) against `session.run` on the same
images, and prints the median of R rounds and the overhead. Inputs are uint8 arrays at the
model's size, so decoding (the same work for any caller) is not part of either figure; the
raw call includes the one conversion any caller needs, uint8 to float32.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
import onnxruntime as ort

from shapes_demo import Classifier
from shapes_demo.classifier import MODEL_PATH


def paired(
    raw: Callable[[], object], library: Callable[[], object], repeats: int
) -> tuple[float, float, float]:
    """Median seconds of each, and the median of their per-round ratio: each round times
    one raw call and one library call back to back, so a busy moment hits both."""
    raw(), library()  # warm up
    raw_times, library_times, ratios = [], [], []
    for _ in range(repeats):
        start = time.perf_counter()
        raw()
        middle = time.perf_counter()
        library()
        end = time.perf_counter()
        raw_times.append(middle - start)
        library_times.append(end - middle)
        ratios.append((end - middle) / (middle - start))
    return statistics.median(raw_times), statistics.median(library_times), statistics.median(ratios)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()
    options = ort.SessionOptions()  # the same for both sessions
    options.intra_op_num_threads = args.threads
    # Two live sessions whose idle threads spin would fight over the cores between calls.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    classifier = Classifier(session_options=options)
    session = ort.InferenceSession(str(MODEL_PATH), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    size = classifier.input_size
    images = np.random.default_rng(0).integers(0, 256, (64, size, size, 3)).astype(np.uint8)
    print(f"threads {args.threads}, input {size}x{size}, median of {args.repeats} rounds")
    for n in (1, 64):
        batch = images[:n]
        listed = list(batch)

        def run_raw(b: np.ndarray = batch) -> object:
            return session.run(None, {name: b.astype(np.float32)})

        def run_library(
            one: np.ndarray = batch[0], many: list[np.ndarray] = listed, single: bool = n == 1
        ) -> object:
            return classifier.predict(one) if single else classifier.predict_batch(many, 64)

        raw, library, ratio = paired(run_raw, run_library, args.repeats)
        print(
            f"{n:>3} image{'s' if n > 1 else ' '}: raw {raw * 1e3:8.3f} ms, library "
            f"{library * 1e3:8.3f} ms, overhead {ratio - 1:+.1%} (median of per-round ratios)"
        )


if __name__ == "__main__":
    main()
