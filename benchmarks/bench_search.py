"""modelgen's search against what a user would write by hand, on the same split, in one run.

    python benchmarks/bench_search.py [--weights PATH] [--data FOLDER] [--json OUT]

Baselines (test accuracy measured after every epoch, evaluation time excluded from the clock):
- with pretrained MobileNetV2 weights: the TensorFlow transfer-learning tutorial recipe,
  frozen MobileNetV2 at 160 px + dropout + dense for 10 epochs (Adam 1e-4), then layers from
  100 on unfrozen for 10 epochs (RMSprop 1e-5);
- always: the Keras `mnist_convnet` example, trained end to end (batch 128, 15 epochs).
modelgen runs its search with a cold cache at increasing budgets; the time it needs to reach
a baseline's final test accuracy is the training time of the cheapest budget that does.
It also runs once at the baseline's own wall time ("equal budget").

Also printed: Keras vs onnxruntime feature-extraction throughput for the same backbone, and a
second search on a warm cache (feature extraction skipped).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("KERAS_HOME", tempfile.mkdtemp(prefix="bench-keras-"))

from generator.data import load_arrays, scan_folder, split_dataset  # noqa: E402
from generator.resources import default_sample  # noqa: E402
from generator.train import TrainOptions, train  # noqa: E402
from generator.train.runtime import seed_everything, tensorflow  # noqa: E402

SHARED = REPO.parent / "shared" / "weights" / "mobilenet_v2_1.0_no_top.h5"
BUDGETS = (15, 30, 60, 120, 240)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class PhaseClock:
    """A Reporter that records how long each phase took."""

    def __init__(self) -> None:
        self.phases: dict[str, float] = {}
        self.messages: list[str] = []

    def info(self, message: str) -> None:
        self.messages.append(message)

    def warn(self, message: str) -> None:
        self.messages.append("warning: " + message)

    @contextmanager
    def phase(self, description: str, total: float | None) -> Any:
        start = time.monotonic()
        yield lambda steps=1, description=None: None
        self.phases[description] = self.phases.get(description, 0.0) + time.monotonic() - start


def accuracy_curve(model: Any, fit: Any, x_test: np.ndarray, y_test: np.ndarray) -> Any:
    """A callback recording (training seconds, test accuracy) after every epoch."""
    keras = tensorflow().keras

    class Curve(keras.callbacks.Callback):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.points: list[tuple[float, float]] = []
            self.clock = 0.0
            self.started = 0.0

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self.started = time.monotonic()

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            self.clock += time.monotonic() - self.started
            p = self.model.predict(x_test, verbose=0, batch_size=128)
            self.points.append((self.clock, float(np.mean(p.argmax(1) == y_test))))

    return Curve()


def transfer_recipe(
    split: Any, labels: tuple[str, ...], weights: Path
) -> list[tuple[float, float]]:
    """The TensorFlow transfer-learning tutorial, on our split (weights from a local file)."""
    keras = tensorflow().keras
    seed_everything(42)
    size = 160
    x_train, y_train, x_val, y_val, x_test, y_test = _arrays(split, labels, size)
    base = keras.applications.MobileNetV2(
        input_shape=(size, size, 3), include_top=False, weights=str(weights)
    )
    base.trainable = False
    inputs = keras.Input((size, size, 3))
    x = keras.applications.mobilenet_v2.preprocess_input(inputs)
    x = base(x, training=False)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(0.2)(x)
    outputs = keras.layers.Dense(len(labels), activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-4),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    curve = accuracy_curve(model, None, x_test, y_test)
    start = time.monotonic()
    model.fit(
        x_train,
        y_train,
        validation_data=(x_val, y_val),
        epochs=10,
        batch_size=32,
        callbacks=[curve],
        verbose=0,
    )
    base.trainable = True
    for layer in base.layers[:100]:
        layer.trainable = False
    model.compile(
        optimizer=keras.optimizers.RMSprop(1e-5),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    model.fit(
        x_train,
        y_train,
        validation_data=(x_val, y_val),
        initial_epoch=10,
        epochs=20,
        batch_size=32,
        callbacks=[curve],
        verbose=0,
    )
    curve.wall = time.monotonic() - start
    return curve.points


def mnist_convnet(split: Any, labels: tuple[str, ...], size: int = 28) -> list[tuple[float, float]]:
    """keras.io/examples/vision/mnist_convnet, unchanged but for RGB input and our classes."""
    keras = tensorflow().keras
    seed_everything(42)
    x_train, y_train, x_val, y_val, x_test, y_test = _arrays(split, labels, size)
    model = keras.Sequential(
        [
            keras.Input((size, size, 3)),
            keras.layers.Rescaling(1 / 255),
            keras.layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
            keras.layers.MaxPooling2D(pool_size=(2, 2)),
            keras.layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
            keras.layers.MaxPooling2D(pool_size=(2, 2)),
            keras.layers.Flatten(),
            keras.layers.Dropout(0.5),
            keras.layers.Dense(len(labels), activation="softmax"),
        ]
    )
    model.compile(loss="sparse_categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    curve = accuracy_curve(model, None, x_test, y_test)
    model.fit(
        x_train,
        y_train,
        batch_size=128,
        epochs=15,
        validation_split=0.1,
        callbacks=[curve],
        verbose=0,
    )
    return curve.points


def _arrays(split: Any, labels: tuple[str, ...], size: int) -> tuple[np.ndarray, ...]:
    out: list[np.ndarray] = []
    for part in (split.train, split.validation, split.test):
        out.append(load_arrays([r.path for r in part], size).astype(np.float32))
        out.append(np.array([labels.index(r.label) for r in part]))
    return tuple(out)


def modelgen_run(
    split: Any, labels: tuple[str, ...], budget: float, weights: str, cache: Path | None = None
) -> dict[str, Any]:
    """One search with a cold cache (unless given one); test accuracy of its winner."""
    root = cache or Path(tempfile.mkdtemp(prefix="bench-cache-"))
    clock = PhaseClock()
    result = train(
        split, labels, TrainOptions(time_budget=budget, weights=weights, cache_root=root), clock
    )
    winner = result.winner
    x = load_arrays([r.path for r in split.test], winner.input_size).astype(np.float32)
    y = np.array([labels.index(r.label) for r in split.test])
    accuracy = float(np.mean(winner.model.predict(x, verbose=0).argmax(1) == y))
    if cache is None:
        shutil.rmtree(root, ignore_errors=True)
    return {
        "budget": budget,
        "seconds": round(result.seconds, 1),
        "winner": winner.name,
        "test_accuracy": round(accuracy, 4),
        "candidates": len(result.leaderboard),
        "extraction_seconds": round(
            sum(v for k, v in clock.phases.items() if k.endswith("features")), 2
        ),
    }


def time_to(points: list[tuple[float, float]], target: float) -> float | None:
    return next((t for t, acc in points if acc >= target), None)


def compare(
    name: str, points: list[tuple[float, float]], runs: list[dict[str, Any]], equal: dict[str, Any]
) -> dict[str, Any]:
    target = points[-1][1]
    baseline_time = time_to(points, target)
    reached = [r for r in runs if r["test_accuracy"] >= round(target, 4)]  # both rounded
    ours = min((r["seconds"] for r in reached), default=None)
    row = {
        "baseline": name,
        "baseline_final_test_accuracy": round(target, 4),
        "baseline_seconds_to_final": round(baseline_time or 0, 1),
        "baseline_total_seconds": round(points[-1][0], 1),
        "modelgen_seconds_to_same": ours,
        "speed_ratio": round(baseline_time / ours, 1) if ours and baseline_time else None,
        "modelgen_at_equal_budget": equal,
        "not_below_at_equal_budget": equal["test_accuracy"] >= round(target, 4),
    }
    print(f"\n== {name}")
    print(
        f"  baseline: final test accuracy {target:.4f}, reached after {baseline_time:.1f}s "
        f"of training ({points[-1][0]:.1f}s in all)"
    )
    if ours:
        print(f"  modelgen: reached {target:.4f} after {ours:.1f}s -> {row['speed_ratio']}x faster")
    else:
        print(f"  modelgen: did not reach {target:.4f} at budgets {[r['budget'] for r in runs]}")
    print(
        f"  equal budget ({equal['budget']:.0f}s): modelgen {equal['test_accuracy']:.4f} "
        f"vs baseline {target:.4f}"
    )
    return row


def extraction_throughput(weights: str, n: int = 256) -> dict[str, float]:
    """Images per second through MobileNetV2@128 in Keras and in onnxruntime."""
    from generator.export import export_onnx, onnx_predict, onnx_session
    from generator.train.backbones import MOBILENET_V2, load_backbone
    from generator.train.candidates import build_extractor

    loaded = load_backbone(MOBILENET_V2, weights)
    loaded_model = MOBILENET_V2.build(None) if isinstance(loaded, str) else loaded.model
    extractor = build_extractor(loaded_model, MOBILENET_V2)
    images = np.random.default_rng(0).integers(0, 256, (n, 128, 128, 3)).astype(np.uint8)
    batch = 32
    extractor.predict_on_batch(images[:batch].astype(np.float32))
    start = time.perf_counter()
    for i in range(0, n, batch):
        extractor.predict_on_batch(images[i : i + batch].astype(np.float32))
    keras_rate = n / (time.perf_counter() - start)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "backbone.onnx"
        export_onnx(extractor, path, 128)
        session = onnx_session(path)
        onnx_predict(session, images[:batch])
        start = time.perf_counter()
        for i in range(0, n, batch):
            onnx_predict(session, images[i : i + batch])
        onnx_rate = n / (time.perf_counter() - start)
    row = {
        "keras_images_per_s": round(keras_rate, 1),
        "onnxruntime_images_per_s": round(onnx_rate, 1),
        "keras_over_onnxruntime": round(keras_rate / onnx_rate, 2),
    }
    print(
        f"\n== feature extraction, MobileNetV2@128, batch {batch}: Keras {keras_rate:.1f} img/s, "
        f"onnxruntime {onnx_rate:.1f} img/s, ratio {row['keras_over_onnxruntime']}"
    )
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=str(SHARED) if SHARED.is_file() else "auto")
    parser.add_argument("--data", type=Path, default=default_sample())
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    dataset = scan_folder(args.data, min_images_per_class=10)
    split = split_dataset(dataset, seed=42, validation_fraction=0.15, test_fraction=0.15)
    labels = dataset.labels
    print(
        f"data {args.data}: {len(split.train)} train / {len(split.validation)} validation / "
        f"{len(split.test)} test; {os.cpu_count()} cores; weights {args.weights}"
    )
    weights_file = Path(args.weights) if Path(args.weights).is_file() else None
    baselines: list[tuple[str, list[tuple[float, float]]]] = []
    if weights_file:
        baselines.append(
            (
                "TF transfer-learning tutorial (MobileNetV2@160, 10+10 epochs)",
                transfer_recipe(split, labels, weights_file),
            )
        )
    baselines.append(("Keras mnist_convnet (15 epochs)", mnist_convnet(split, labels)))
    runs = []
    for budget in BUDGETS:
        runs.append(modelgen_run(split, labels, budget, args.weights))
        print(f"  modelgen budget {budget:>4}s: {runs[-1]}", flush=True)
    results: dict[str, Any] = {"runs": runs, "comparisons": []}
    for name, points in baselines:
        equal = modelgen_run(split, labels, max(10.0, points[-1][0]), args.weights)
        results["comparisons"].append(compare(name, points, runs, equal))
    cache = Path(tempfile.mkdtemp(prefix="bench-warm-"))
    cold = modelgen_run(split, labels, 60, args.weights, cache)
    warm = modelgen_run(split, labels, 60, args.weights, cache)
    shutil.rmtree(cache, ignore_errors=True)
    results["cache"] = {"cold": cold, "warm": warm}
    print(
        f"\n== feature cache: extraction {cold['extraction_seconds']}s cold, "
        f"{warm['extraction_seconds']}s warm; search {cold['seconds']}s -> {warm['seconds']}s"
    )
    results["extraction"] = extraction_throughput(args.weights)
    results["peak_rss_mb"] = round(peak_rss_mb())
    print(f"\npeak RSS of this process: {results['peak_rss_mb']} MB")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
