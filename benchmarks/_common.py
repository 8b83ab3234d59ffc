"""What every benchmark shares: seeds, machine facts, summary statistics and the JSON file.

Every script repeats its measurements over `--seeds` (default 0 1 2), keeps the raw number of
every seed, summarises each figure as mean, standard deviation, min and max, and writes it
all with the machine's facts to `--json` (default benchmarks/results/<script>.json, or
<script>.quick.json for a `--quick` smoke run, so a smoke run never replaces a measurement).
`write_readme.py` turns those files into the README's performance section.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

BENCHMARKS = Path(__file__).resolve().parent
REPO = BENCHMARKS.parent
RESULTS = BENCHMARKS / "results"
SHARED_WEIGHTS = REPO.parent / "shared" / "weights" / "mobilenet_v2_1.0_no_top.h5"
DEFAULT_SEEDS = (0, 1, 2)
PACKAGES = ("modelgen", "tensorflow", "keras", "onnxruntime", "tf2onnx", "numpy", "pillow")


def add_common_arguments(parser: argparse.ArgumentParser, *, weights: bool = True) -> None:
    parser.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=None,
        help=f"repeat every measurement with each seed (default {' '.join(map(str, DEFAULT_SEEDS))}"
        "; --quick: 0)",
    )
    parser.add_argument(
        "--json",
        type=Path,
        default=None,
        help="write raw numbers and summary here (default benchmarks/results/<script>.json, "
        "<script>.quick.json with --quick)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="tiny smoke run (1 seed, smallest budget, small data): checks the script works; "
        "its numbers are not a measurement",
    )
    if weights:
        parser.add_argument(
            "--weights",
            default=str(SHARED_WEIGHTS) if SHARED_WEIGHTS.is_file() else "none",
            help="MobileNetV2 no-top .h5 file, or auto|imagenet|none (default: the shared "
            "stand-in file if present, else none: pretrained parts are skipped)",
        )


def seeds_of(args: argparse.Namespace) -> list[int]:
    if args.seeds:
        return list(args.seeds)
    return [0] if args.quick else list(DEFAULT_SEEDS)


def json_path(args: argparse.Namespace, script: str) -> Path:
    if args.json is not None:
        return Path(args.json)
    return RESULTS / (f"{script}.quick.json" if args.quick else f"{script}.json")


def weights_file(weights: str) -> Path | None:
    """The local weights file, or None for auto|imagenet|none or a missing path."""
    if weights in ("auto", "imagenet", "none"):
        return None
    path = Path(weights).expanduser()
    return path if path.is_file() else None


def weights_facts(weights: str) -> dict[str, Any]:
    path = weights_file(weights)
    if path is None:
        return {"option": weights, "file": None, "sha256_16": None}
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    return {"option": weights, "file": path.name, "sha256_16": digest}


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _git(*args: str) -> str | None:
    """Read-only git queries (no optional locks: the index is never rewritten)."""
    try:
        done = subprocess.run(
            ["git", "--no-optional-locks", *args],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=20,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def machine_facts() -> dict[str, Any]:
    """Cores, CPU, memory, Python and package versions, and the commit measured."""
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in _read("/proc/cpuinfo").splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or None,
    )
    mem_kb = next(
        (
            int(line.split()[1])
            for line in _read("/proc/meminfo").splitlines()
            if line.startswith("MemTotal:")
        ),
        None,
    )
    versions: dict[str, str | None] = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    # the results of a script run just before are not a change to the code measured
    status = _git(
        "status", "--porcelain", "--untracked-files=no", "--", ".", ":!benchmarks/results"
    )
    return {
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "cpu": cpu,
        "memory_gb": round(mem_kb / 1024 / 1024, 1) if mem_kb else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": versions,
        "commit": _git("rev-parse", "HEAD"),
        "uncommitted_changes": bool(status) if status is not None else None,
    }


def stats(values: Iterable[float | int | None]) -> dict[str, Any]:
    """mean, sample standard deviation, min, max and n of the values that are not None."""
    found = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    if not found:
        return {"n": 0, "mean": None, "std": None, "min": None, "max": None}
    return {
        "n": len(found),
        "mean": round(statistics.fmean(found), 4),
        "std": round(statistics.stdev(found), 4) if len(found) > 1 else 0.0,
        "min": round(min(found), 4),
        "max": round(max(found), 4),
    }


def fmt(summary: dict[str, Any], digits: int = 1, unit: str = "") -> str:
    """'mean ± std (min–max)' for console output."""
    if not summary or summary.get("n", 0) == 0:
        return "—"
    f = f"{{:.{digits}f}}"
    text = f.format(summary["mean"]) + unit
    if summary["n"] > 1:
        text += (
            f" ± {f.format(summary['std'])} "
            f"({f.format(summary['min'])}–{f.format(summary['max'])}, n={summary['n']})"
        )
    return text


def trained_families(result: Any) -> list[str]:
    """Families with at least one trained epoch in a TrainResult's leaderboard."""
    return sorted({c.family for c in result.leaderboard if c.epochs})


def count(names: Sequence[str | None]) -> dict[str, int]:
    """How often each name occurs (None: the run produced no model)."""
    return dict(Counter("(none)" if n is None else n for n in names).most_common())


class Recorder:
    """Collects one script's results and writes them as JSON, with the machine's facts."""

    def __init__(self, script: str, args: argparse.Namespace, seeds: list[int]) -> None:
        self.script = script
        self.path = json_path(args, script)
        self.started = time.monotonic()
        self.data: dict[str, Any] = {
            "script": script,
            "schema": 1,
            "quick": bool(getattr(args, "quick", False)),
            "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
            "arguments": {
                k: (str(v) if isinstance(v, Path) else v)
                for k, v in sorted(vars(args).items())
                if k != "json"
            },
            "seeds": seeds,
            "started_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "machine": machine_facts(),
        }

    def __setitem__(self, key: str, value: Any) -> None:
        self.data[key] = value

    def write(self) -> Path:
        self.data["wall_seconds"] = round(time.monotonic() - self.started, 1)
        self.data["finished_utc"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=2, default=_jsonable) + "\n")
        os.replace(tmp, self.path)
        print(f"\nresults written to {self.path}", flush=True)
        return self.path


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (set, tuple)):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def mnist_convnet_model(input_shape: tuple[int, ...], classes: int) -> Any:
    """keras.io/examples/vision/mnist_convnet's model, compiled as the example compiles it,
    for any input shape and class count (the baseline both comparisons train)."""
    import keras

    model = keras.Sequential(
        [
            keras.Input(input_shape),
            keras.layers.Rescaling(1 / 255),
            keras.layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
            keras.layers.MaxPooling2D(pool_size=(2, 2)),
            keras.layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
            keras.layers.MaxPooling2D(pool_size=(2, 2)),
            keras.layers.Flatten(),
            keras.layers.Dropout(0.5),
            keras.layers.Dense(classes, activation="softmax"),
        ]
    )
    model.compile(loss="sparse_categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    return model


LIBRARY_ACCURACY = """
import importlib, json, sys
sys.path.insert(0, sys.argv[1])
classifier = importlib.import_module(sys.argv[2]).load()
pairs = json.loads(sys.stdin.read())
right = []
for start in range(0, len(pairs), 500):
    chunk = pairs[start : start + 500]
    found = classifier.predict_batch([p for p, _ in chunk])
    right += [f.label == label for f, (_, label) in zip(found, chunk)]
print(json.dumps(right))
"""


def library_right(project: Path, package: str, pairs: Sequence[tuple[Any, str]]) -> list[bool]:
    """Which (image path, label) pairs a generated project's own library gets right, in a
    process of its own (no TensorFlow: what a user of the project runs)."""
    done = subprocess.run(
        [sys.executable, "-c", LIBRARY_ACCURACY, str(project / "src"), package],
        input=json.dumps([(str(p), label) for p, label in pairs]),
        capture_output=True,
        text=True,
        check=True,
    )
    return [bool(r) for r in json.loads(done.stdout)]


def accuracy_gap(mine: float | None, keras: float) -> float | None:
    """modelgen's accuracy minus the Keras script's, at the 4 decimals the Keras figure is
    recorded with (354 of 359 is 0.98607 or 0.9861, not behind itself); None when modelgen
    made no model."""
    return None if mine is None else round(round(mine, 4) - keras, 4)


def library_accuracy(project: Path, package: str, pairs: Sequence[tuple[Any, str]]) -> float:
    """Accuracy of a generated project's own library on (image path, label) pairs."""
    right = library_right(project, package, pairs)
    return sum(right) / len(right)
