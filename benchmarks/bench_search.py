"""modelgen's search against what a user would write by hand, on the same split, per seed.

    python benchmarks/bench_search.py [--seeds 0 1 2] [--budgets 15 30 60 120] [--weights PATH]
        [--data FOLDER] [--threads N] [--json OUT] [--quick]

For every seed the data is split with that seed (so the test set changes too) and every run
below uses it: the baselines, modelgen at each budget, at the baseline's own training time
("equal budget"), and a cold then a warm cache. Baselines record validation and test
accuracy after every epoch (evaluation time excluded from their clock):
- with a pretrained MobileNetV2 weights file: the TensorFlow transfer-learning tutorial
  recipe, augmentation included (RandomFlip("horizontal") + RandomRotation(0.2) layers),
  frozen MobileNetV2 at 160 px + dropout + dense for 10 epochs (Adam 1e-4), then layers from
  100 on unfrozen for 10 epochs (RMSprop 1e-5). Skipped without a weights file;
- always: the Keras `mnist_convnet` example, trained end to end (batch 128, 15 epochs).

Nothing is chosen on the test set: the budget compared with a baseline is the cheapest one
whose winner's *validation* accuracy reaches the baseline's final validation accuracy; both
test accuracies are then reported as they are.

Also measured: feature-extraction throughput of the same MobileNetV2@128 in Keras and in
onnxruntime, both on the same number of threads (--threads, default all cores), and a
second search on a warm cache (feature extraction skipped).
"""

from __future__ import annotations

import argparse
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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("KERAS_HOME", tempfile.mkdtemp(prefix="bench-keras-"))

from _common import (  # noqa: E402
    Recorder,
    add_common_arguments,
    count,
    fmt,
    mnist_convnet_model,
    seeds_of,
    stats,
    trained_families,
    weights_facts,
    weights_file,
)
from _data import make_folder  # noqa: E402

from generator.data import load_arrays, scan_folder, split_dataset  # noqa: E402
from generator.errors import BudgetError  # noqa: E402
from generator.resources import default_sample  # noqa: E402
from generator.train import TrainOptions, train  # noqa: E402
from generator.train.runtime import seed_everything, tensorflow  # noqa: E402

BUDGETS = (15, 30, 60, 120)
TRANSFER = "transfer"
MNIST = "mnist_convnet"


def shown(path: Path) -> str:
    """Relative to the repository when inside it."""
    try:
        return path.resolve().relative_to(Path(__file__).resolve().parent.parent).as_posix()
    except ValueError:
        return path.as_posix()


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


def accuracy_curve(arrays: tuple[np.ndarray, ...]) -> Any:
    """A callback recording (training seconds, validation accuracy, test accuracy) after
    every epoch; the evaluation is outside the clock."""
    keras = tensorflow().keras
    _, _, x_val, y_val, x_test, y_test = arrays

    class Curve(keras.callbacks.Callback):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.points: list[tuple[float, float, float]] = []
            self.clock = 0.0
            self.started = 0.0

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self.started = time.monotonic()

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            self.clock += time.monotonic() - self.started
            val = self.model.predict(x_val, verbose=0, batch_size=128).argmax(1)
            test = self.model.predict(x_test, verbose=0, batch_size=128).argmax(1)
            self.points.append(
                (
                    round(self.clock, 3),
                    float(np.mean(val == y_val)),
                    float(np.mean(test == y_test)),
                )
            )

    return Curve()


def transfer_recipe(
    split: Any, labels: tuple[str, ...], weights: Path, seed: int, epochs: tuple[int, int]
) -> list[tuple[float, float, float]]:
    """tensorflow.org/tutorials/images/transfer_learning on our split, augmentation included
    (weights from a local file; softmax over our classes instead of one sigmoid logit)."""
    keras = tensorflow().keras
    seed_everything(seed)
    size = 160
    arrays = _arrays(split, labels, size)
    x_train, y_train, x_val, y_val, _, _ = arrays
    data_augmentation = keras.Sequential(
        [keras.layers.RandomFlip("horizontal"), keras.layers.RandomRotation(0.2)]
    )
    base = keras.applications.MobileNetV2(
        input_shape=(size, size, 3), include_top=False, weights=str(weights)
    )
    base.trainable = False
    inputs = keras.Input((size, size, 3))
    x = data_augmentation(inputs)
    x = keras.applications.mobilenet_v2.preprocess_input(x)
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
    curve = accuracy_curve(arrays)
    initial, fine = epochs
    model.fit(
        x_train,
        y_train,
        validation_data=(x_val, y_val),
        epochs=initial,
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
        initial_epoch=initial,
        epochs=initial + fine,
        batch_size=32,
        callbacks=[curve],
        verbose=0,
    )
    return curve.points


def mnist_convnet(
    split: Any, labels: tuple[str, ...], seed: int, epochs: int, size: int = 28
) -> list[tuple[float, float, float]]:
    """keras.io/examples/vision/mnist_convnet, unchanged but for RGB input and our classes
    (it holds out 10% of its training images itself, as the example does)."""
    seed_everything(seed)
    arrays = _arrays(split, labels, size)
    x_train, y_train = arrays[:2]
    model = mnist_convnet_model((size, size, 3), len(labels))
    curve = accuracy_curve(arrays)
    model.fit(
        x_train,
        y_train,
        batch_size=128,
        epochs=epochs,
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
    split: Any,
    labels: tuple[str, ...],
    budget: float,
    weights: str,
    seed: int,
    cache: Path | None = None,
) -> dict[str, Any]:
    """One search with a cold cache (unless given one); test accuracy of its winner."""
    root = cache or Path(tempfile.mkdtemp(prefix="bench-cache-"))
    clock = PhaseClock()
    try:
        result = train(
            split,
            labels,
            TrainOptions(time_budget=budget, weights=weights, seed=seed, cache_root=root),
            clock,
        )
    except BudgetError as exc:  # an honest refusal, with what it would need
        return {"budget": budget, "refused": str(exc), "winner": None}
    finally:
        if cache is None:
            shutil.rmtree(root, ignore_errors=True)
    winner = result.winner
    x = load_arrays([r.path for r in split.test], winner.input_size).astype(np.float32)
    y = np.array([labels.index(r.label) for r in split.test])
    accuracy = float(np.mean(winner.model.predict(x, verbose=0).argmax(1) == y))
    return {
        "budget": budget,
        "seconds": round(result.seconds, 2),
        "winner": winner.name,
        "val_accuracy": round(winner.val_accuracy, 4),
        "test_accuracy": round(accuracy, 4),
        "candidates": len(result.leaderboard),
        "families_trained": trained_families(result),
        "deadline_cut": bool(result.deadline_cut),
        "extraction_seconds": round(sum(v for k, v in clock.phases.items() if extracting(k)), 2),
    }


def extracting(phase: str) -> bool:
    """Whether a search phase computes backbone features: exporting the backbone to ONNX
    ("mobilenet_v2 at 128px to ONNX") or filling the cache ("mobilenet_v2 features at
    128px")."""
    return " features at " in phase or phase.endswith(" to ONNX")


def first_time(points: list[tuple[float, float, float]], column: int, target: float) -> float:
    return next(p[0] for p in points if p[column] >= target)


def compare(
    key: str,
    points: list[tuple[float, float, float]],
    runs: list[dict[str, Any]],
    equal: dict[str, Any],
) -> dict[str, Any]:
    """One seed's comparison; the budget is picked on validation accuracy only."""
    final_val, final_test = round(points[-1][1], 4), round(points[-1][2], 4)
    to_final = first_time(points, 1, points[-1][1])
    ascending = sorted(runs, key=lambda r: r["budget"])
    # both rounded to 4 digits; the test accuracy plays no part in the choice
    picked = next((r for r in ascending if (r.get("val_accuracy") or 0) >= final_val), None)
    row: dict[str, Any] = {
        "baseline": key,
        "baseline_epochs": len(points),
        "baseline_final_val_accuracy": final_val,
        "baseline_final_test_accuracy": final_test,
        "baseline_train_seconds": round(points[-1][0], 2),
        "baseline_seconds_to_final_val": round(to_final, 2),
        "picked_budget": picked["budget"] if picked else None,
        "modelgen_seconds": picked["seconds"] if picked else None,
        "modelgen_val_accuracy": picked["val_accuracy"] if picked else None,
        "modelgen_test_accuracy": picked["test_accuracy"] if picked else None,
        "modelgen_winner": picked["winner"] if picked else None,
        "speed_ratio": (
            round(to_final / picked["seconds"], 3) if picked and picked["seconds"] else None
        ),
        "equal_budget": equal,
    }
    return row


def extraction_throughput(
    weights: str, threads: int, repeats: int, n: int = 256, batch: int = 32
) -> dict[str, Any]:
    """Images per second through MobileNetV2@128 in Keras and in onnxruntime, both on
    `threads` intra-op threads, measured `repeats` times in alternation."""
    import onnxruntime as ort

    from generator.export import export_onnx
    from generator.train.backbones import MOBILENET_V2, load_backbone
    from generator.train.networks import build_extractor

    tf = tensorflow()
    loaded = load_backbone(MOBILENET_V2, weights if weights_file(weights) else "none")
    loaded_model = MOBILENET_V2.build(None) if isinstance(loaded, str) else loaded.model
    extractor = build_extractor(loaded_model, MOBILENET_V2)
    images = np.random.default_rng(0).integers(0, 256, (n, 128, 128, 3)).astype(np.uint8)
    rows: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "backbone.onnx"
        export_onnx(extractor, path, 128)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name

        def keras_pass(chunk: np.ndarray) -> None:
            extractor.predict_on_batch(chunk.astype(np.float32))

        def onnx_pass(chunk: np.ndarray) -> None:
            session.run(None, {name: chunk.astype(np.float32)})

        keras_pass(images[:batch])  # warm-up: tracing, allocation
        onnx_pass(images[:batch])
        for _ in range(repeats):
            rates = {}
            for label, run in (("keras", keras_pass), ("onnxruntime", onnx_pass)):
                start = time.perf_counter()
                for i in range(0, n, batch):
                    run(images[i : i + batch])
                rates[label] = n / (time.perf_counter() - start)
            rows.append(
                {
                    "keras_images_per_s": round(rates["keras"], 1),
                    "onnxruntime_images_per_s": round(rates["onnxruntime"], 1),
                    "keras_over_onnxruntime": round(rates["keras"] / rates["onnxruntime"], 3),
                }
            )
    return {
        "backbone": f"{MOBILENET_V2.name}@{MOBILENET_V2.input_size}",
        "images": n,
        "batch": batch,
        "threads": threads,
        "tensorflow_intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "tensorflow_inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
        "onnxruntime_intra_op_threads": threads,
        "repeats": rows,
    }


def pin_threads(threads: int) -> None:
    """TensorFlow on `threads` intra-op threads, set before it runs any op."""
    tf = tensorflow()
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
    except RuntimeError as exc:  # the runtime already started: say so, do not pretend
        sys.exit(f"could not pin TensorFlow to {threads} threads: {exc}")


def summarise(per_seed: list[dict[str, Any]], extraction: dict[str, Any]) -> dict[str, Any]:
    budgets = sorted({r["budget"] for s in per_seed for r in s["budgets"]})
    by_budget = []
    for budget in budgets:
        runs = [r for s in per_seed for r in s["budgets"] if r["budget"] == budget]
        done = [r for r in runs if not r.get("refused")]
        by_budget.append(
            {
                "budget": budget,
                "runs": len(runs),
                "refused": len(runs) - len(done),
                "test_accuracy": stats(r["test_accuracy"] for r in done),
                "val_accuracy": stats(r["val_accuracy"] for r in done),
                "seconds": stats(r["seconds"] for r in done),
                "winners": count([r["winner"] for r in runs]),
            }
        )
    comparisons = []
    keys = [c["baseline"] for c in per_seed[0]["comparisons"]] if per_seed else []
    for key in keys:
        rows = [c for s in per_seed for c in s["comparisons"] if c["baseline"] == key]
        equal = [r["equal_budget"] for r in rows]
        equal_done = [e for e in equal if not e.get("refused")]
        comparisons.append(
            {
                "baseline": key,
                "name": per_seed[0]["baselines"][key]["name"],
                "seeds": len(rows),
                "baseline_epochs": rows[0]["baseline_epochs"],
                "baseline_final_test_accuracy": stats(
                    r["baseline_final_test_accuracy"] for r in rows
                ),
                "baseline_final_val_accuracy": stats(
                    r["baseline_final_val_accuracy"] for r in rows
                ),
                "baseline_train_seconds": stats(r["baseline_train_seconds"] for r in rows),
                "baseline_seconds_to_final_val": stats(
                    r["baseline_seconds_to_final_val"] for r in rows
                ),
                "reached": sum(r["picked_budget"] is not None for r in rows),
                "picked_budgets": [r["picked_budget"] for r in rows],
                "modelgen_seconds": stats(r["modelgen_seconds"] for r in rows),
                "modelgen_test_accuracy": stats(r["modelgen_test_accuracy"] for r in rows),
                "modelgen_winners": count(
                    [r["modelgen_winner"] for r in rows if r["picked_budget"] is not None]
                ),
                "speed_ratio": stats(r["speed_ratio"] for r in rows),
                "equal_budget_seconds": stats(e["budget"] for e in equal),
                "equal_budget_test_accuracy": stats(e["test_accuracy"] for e in equal_done),
                "equal_budget_refused": len(equal) - len(equal_done),
                "equal_budget_winners": count([e["winner"] for e in equal]),
                "equal_budget_not_below": sum(
                    e["test_accuracy"] >= r["baseline_final_test_accuracy"]
                    for e, r in zip(equal, rows, strict=True)
                    if not e.get("refused")
                ),
            }
        )
    cold = [s["cache"]["cold"] for s in per_seed if not s["cache"]["cold"].get("refused")]
    warm = [s["cache"]["warm"] for s in per_seed if not s["cache"]["warm"].get("refused")]
    return {
        "budgets": by_budget,
        "comparisons": comparisons,
        "cache": {
            "budget": per_seed[0]["cache"]["cold"]["budget"] if per_seed else None,
            "cold_extraction_seconds": stats(r["extraction_seconds"] for r in cold),
            "warm_extraction_seconds": stats(r["extraction_seconds"] for r in warm),
            "cold_seconds": stats(r["seconds"] for r in cold),
            "warm_seconds": stats(r["seconds"] for r in warm),
            "same_winner": sum(
                s["cache"]["cold"]["winner"] == s["cache"]["warm"]["winner"] for s in per_seed
            ),
            "winners_cold": count([s["cache"]["cold"]["winner"] for s in per_seed]),
        },
        "extraction": {
            "threads": extraction["threads"],
            "keras_images_per_s": stats(r["keras_images_per_s"] for r in extraction["repeats"]),
            "onnxruntime_images_per_s": stats(
                r["onnxruntime_images_per_s"] for r in extraction["repeats"]
            ),
            "keras_over_onnxruntime": stats(
                r["keras_over_onnxruntime"] for r in extraction["repeats"]
            ),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_arguments(parser)
    parser.add_argument("--data", type=Path, default=None, help="default: the bundled sample")
    parser.add_argument("--budgets", type=float, nargs="+", default=None)
    parser.add_argument(
        "--cache-budget", type=float, default=None, help="budget of the cold/warm cache runs"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=os.cpu_count() or 1,
        help="intra-op threads of TensorFlow (whole run) and onnxruntime (default: all cores)",
    )
    args = parser.parse_args()
    pin_threads(args.threads)
    seeds = seeds_of(args)
    work = Path(tempfile.mkdtemp(prefix="bench-search-"))
    if args.quick:  # smoke run: tiny data, one small budget, recipes cut to 1-2 epochs
        data = args.data or make_folder(work / "data", 150, size=48)
        budgets = args.budgets or [min(BUDGETS)]
        cache_budget = args.cache_budget or min(budgets)
        transfer_epochs, mnist_epochs, extraction_images = (1, 1), 2, 64
    else:
        data = args.data or default_sample()
        budgets = args.budgets or list(BUDGETS)
        cache_budget = args.cache_budget or 60.0
        transfer_epochs, mnist_epochs, extraction_images = (10, 10), 15, 256
    record = Recorder("bench_search", args, seeds)
    dataset = scan_folder(Path(data), min_images_per_class=10)
    labels = dataset.labels
    weights = weights_file(args.weights)
    print(
        f"data {data}: {len(dataset.records)} images, {len(labels)} classes; seeds {seeds}; "
        f"budgets {budgets}; {os.cpu_count()} cores, {args.threads} threads for TensorFlow and "
        f"onnxruntime; weights {args.weights}"
        + ("" if weights else " (no weights file: the transfer-learning baseline is skipped)"),
        flush=True,
    )
    per_seed: list[dict[str, Any]] = []
    for seed in seeds:
        split = split_dataset(dataset, seed=seed, validation_fraction=0.15, test_fraction=0.15)
        print(
            f"\n== seed {seed}: {len(split.train)} train / {len(split.validation)} validation / "
            f"{len(split.test)} test",
            flush=True,
        )
        baselines: dict[str, dict[str, Any]] = {}
        if weights:
            points = transfer_recipe(split, labels, weights, seed, transfer_epochs)
            baselines[TRANSFER] = {
                "name": f"TensorFlow transfer-learning tutorial (MobileNetV2 @160, augmentation, "
                f"{transfer_epochs[0]} frozen + {transfer_epochs[1]} fine-tuned epochs)",
                "points": points,
            }
        points = mnist_convnet(split, labels, seed, mnist_epochs)
        baselines[MNIST] = {
            "name": f"Keras mnist_convnet ({mnist_epochs} epochs, end to end)",
            "points": points,
        }
        for key, baseline in baselines.items():
            last = baseline["points"][-1]
            print(
                f"  baseline {key}: {last[0]:.1f}s training, final val {last[1]:.4f}, "
                f"test {last[2]:.4f}",
                flush=True,
            )
        runs = []
        for budget in budgets:
            runs.append(modelgen_run(split, labels, budget, args.weights, seed))
            print(f"  modelgen budget {budget:>4.0f}s: {runs[-1]}", flush=True)
        comparisons = []
        for key, baseline in baselines.items():
            equal_budget = round(max(10.0, baseline["points"][-1][0]), 1)
            equal = modelgen_run(split, labels, equal_budget, args.weights, seed)
            print(f"  modelgen at {key}'s time ({equal_budget:.0f}s): {equal}", flush=True)
            comparisons.append(compare(key, baseline["points"], runs, equal))
        cache = Path(tempfile.mkdtemp(prefix="bench-warm-", dir=work))
        cold = modelgen_run(split, labels, cache_budget, args.weights, seed, cache)
        warm = modelgen_run(split, labels, cache_budget, args.weights, seed, cache)
        shutil.rmtree(cache, ignore_errors=True)
        print(f"  cache cold: {cold}\n  cache warm: {warm}", flush=True)
        per_seed.append(
            {
                "seed": seed,
                "split": {
                    "train": len(split.train),
                    "validation": len(split.validation),
                    "test": len(split.test),
                },
                "baselines": baselines,
                "budgets": runs,
                "comparisons": comparisons,
                "cache": {"cold": cold, "warm": warm},
            }
        )
    extraction = extraction_throughput(
        args.weights, args.threads, repeats=len(seeds), n=extraction_images
    )
    summary = summarise(per_seed, extraction)
    record["data"] = {
        "folder": shown(Path(data)),
        "images": len(dataset.records),
        "classes": len(labels),
        "bundled_sample": not args.quick and args.data is None,
    }
    record["weights"] = weights_facts(args.weights)
    record["threads"] = args.threads
    record["budgets"] = budgets
    record["cache_budget"] = cache_budget
    record["recipe_epochs"] = {TRANSFER: list(transfer_epochs), MNIST: mnist_epochs}
    record["per_seed"] = per_seed
    record["extraction"] = extraction
    record["summary"] = summary
    record["peak_rss_mb"] = round(peak_rss_mb())
    print_summary(summary)
    record.write()
    shutil.rmtree(work, ignore_errors=True)


def print_summary(summary: dict[str, Any]) -> None:
    print("\n== summary (mean ± std (min–max, n))")
    for row in summary["budgets"]:
        print(
            f"  budget {row['budget']:>4.0f}s: test acc {fmt(row['test_accuracy'], 4)}, "
            f"val acc {fmt(row['val_accuracy'], 4)}, {fmt(row['seconds'], 1, 's')}, "
            f"winners {row['winners']}, refused {row['refused']}"
        )
    for c in summary["comparisons"]:
        print(f"  {c['name']}:")
        print(
            f"    baseline test acc {fmt(c['baseline_final_test_accuracy'], 4)} after "
            f"{fmt(c['baseline_train_seconds'], 1, 's')} of training"
        )
        print(
            f"    modelgen reached its validation accuracy in {c['reached']}/{c['seeds']} seeds "
            f"(budgets {c['picked_budgets']}): {fmt(c['modelgen_seconds'], 1, 's')}, test acc "
            f"{fmt(c['modelgen_test_accuracy'], 4)}, speed ratio {fmt(c['speed_ratio'], 2)}"
        )
        print(
            f"    equal budget: modelgen test acc {fmt(c['equal_budget_test_accuracy'], 4)}, "
            f"not below the baseline in {c['equal_budget_not_below']}/{c['seeds']}; winners "
            f"{c['equal_budget_winners']}"
        )
    cache, ex = summary["cache"], summary["extraction"]
    print(
        f"  cache ({cache['budget']:.0f}s budget): extraction "
        f"{fmt(cache['cold_extraction_seconds'], 2, 's')} cold, "
        f"{fmt(cache['warm_extraction_seconds'], 2, 's')} warm; search "
        f"{fmt(cache['cold_seconds'], 1, 's')} -> {fmt(cache['warm_seconds'], 1, 's')}"
    )
    print(
        f"  extraction on {ex['threads']} threads: Keras {fmt(ex['keras_images_per_s'])} img/s, "
        f"onnxruntime {fmt(ex['onnxruntime_images_per_s'])} img/s, ratio "
        f"{fmt(ex['keras_over_onnxruntime'], 2)}"
    )


if __name__ == "__main__":
    main()
