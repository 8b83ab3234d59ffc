"""Scale: Fashion-MNIST's whole train split (60,000 PNGs) with `--time-budget 600`, and a
tenth of it, against the Keras mnist_convnet given the same training time.

    apt-get install dataset-fashion-mnist
    python benchmarks/bench_scale.py [--counts 6000 60000] [--budget 600] [--seeds 0]

For each count: the first COUNT images of the train split written as PNG folders; then
- modelgen: `modelgen new --yes --weights none --time-budget B --verbose` in its own process
  with an empty cache: wall time, peak RSS, the time of each stage (`--verbose`), the model;
- accuracy on Fashion-MNIST's test split (10,000 images modelgen never saw), through the
  generated library;
- the Keras mnist_convnet example on the same folder for B seconds of training, scored on
  the same test split.
The summary says how each stage's time grew from the smallest count to the largest, and
which would dominate at 1,000,000 images if it kept growing the same way.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    REPO,
    Recorder,
    add_common_arguments,
    library_accuracy,
    mnist_convnet_model,
    seeds_of,
)  # noqa: E402
from bench_baseline import FASHION, FASHION_NAMES, _idx  # noqa: E402
from bench_speed import phases  # noqa: E402


def write_folder(images: np.ndarray, labels: np.ndarray, root: Path) -> list[tuple[str, str]]:
    pairs = []
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        name = FASHION_NAMES[int(label)]
        path = root / name / f"{i:05d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(path)
        pairs.append((str(path), name))
    return pairs


def run_modelgen(folder: Path, budget: float, seed: int, work: Path) -> dict[str, Any]:
    out = work / "project"
    env = dict(os.environ, MODELGEN_CACHE_DIR=str(work / "cache"), TF_CPP_MIN_LOG_LEVEL="3")
    command = [sys.executable, "-m", "generator", "new", "--yes", "--data", str(folder)]
    command += ["--output", str(out), "--name", "fashion", "--weights", "none", "--verbose"]
    command += ["--time-budget", str(int(budget)), "--seed", str(seed)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.monotonic()
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, env=env)
    wall = time.monotonic() - start
    peak = max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
    row: dict[str, Any] = {"wall_seconds": round(wall, 1), "peak_rss_mb": round(peak)}
    if done.returncode != 0:
        return row | {"error": " ".join(done.stderr.split())[-400:]}
    saved = tomllib.loads((out / "modelgen.toml").read_text())
    row |= {"winner": saved["model"]["winner"], "protocol": saved["model"]["plan"]["protocol"]}
    row |= {"phases": phases(done.stdout), "project": out}
    return row


def run_keras(folder: Path, test: tuple[np.ndarray, np.ndarray], budget: float, seed: int) -> float:
    """mnist_convnet on the folder's PNGs for `budget` seconds of training."""
    import keras

    keras.utils.set_random_seed(seed)
    labels = sorted(p.name for p in folder.iterdir())
    paths = sorted(folder.rglob("*.png"))
    x = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in paths]).astype("float32")
    y = np.array([labels.index(p.parent.name) for p in paths])
    order = np.random.default_rng(seed).permutation(len(x))
    x, y = x[order], y[order]
    model = mnist_convnet_model(x.shape[1:], len(labels))

    class Budget(keras.callbacks.Callback):  # type: ignore[misc]
        spent = started = 0.0

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self.started = time.monotonic()

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            self.spent += time.monotonic() - self.started
            if self.spent >= budget:
                self.model.stop_training = True

    model.fit(
        x, y, batch_size=128, epochs=100_000, validation_split=0.1, callbacks=[Budget()], verbose=0
    )
    images, codes = test
    rgb = np.repeat(images[..., None], 3, axis=-1).astype("float32")
    predicted = model.predict(rgb, verbose=0).argmax(1)
    truth = np.array([labels.index(FASHION_NAMES[int(c)]) for c in codes])
    return float(np.mean(predicted == truth))


def growth(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per stage: seconds at the smallest and largest count, the growth exponent, and the
    seconds at 1,000,000 images if it kept growing that way."""
    done = [r for r in rows if r["modelgen"].get("phases")]
    if len(done) < 2:
        return []
    small, large = min(done, key=lambda r: r["images"]), max(done, key=lambda r: r["images"])
    found = []
    for stage, late in large["modelgen"]["phases"].items():
        early = small["modelgen"]["phases"].get(stage)
        if early is None or early <= 0 or late <= 0:
            continue
        exponent = math.log(late / early) / math.log(large["images"] / small["images"])
        at_million = late * (1_000_000 / large["images"]) ** exponent
        found.append(
            {
                "stage": stage,
                "small": early,
                "large": late,
                "exponent": round(exponent, 2),
                "at_1m_seconds": round(at_million),
            }
        )
    return sorted(found, key=lambda r: -r["at_1m_seconds"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--counts", type=int, nargs="+", default=None)
    parser.add_argument("--budget", type=float, default=None)
    add_common_arguments(parser, weights=False)
    args = parser.parse_args()
    seeds = seeds_of(args) if args.seeds else [0]
    counts = args.counts or ([2000] if args.quick else [6000, 60000])
    budget = args.budget or (30.0 if args.quick else 600.0)
    recorder = Recorder("bench_scale", args, seeds)
    images = _idx(FASHION / "train-images-idx3-ubyte.gz")
    labels = _idx(FASHION / "train-labels-idx1-ubyte.gz")
    test = (
        _idx(FASHION / "t10k-images-idx3-ubyte.gz"),
        _idx(FASHION / "t10k-labels-idx1-ubyte.gz"),
    )
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        test_pairs = write_folder(*test, Path(tmp) / "test")
        for seed in seeds:
            for n in counts:
                work = Path(tmp) / f"run-{n}-{seed}"
                folder = work / "data"
                write_folder(images[:n], labels[:n], folder)
                ours = run_modelgen(folder, budget, seed, work)
                if "project" in ours:
                    ours["accuracy"] = library_accuracy(ours.pop("project"), "fashion", test_pairs)
                theirs = run_keras(folder, test, budget, seed)
                row = {"images": n, "seed": seed, "budget": budget, "modelgen": ours}
                row["keras_accuracy"] = round(theirs, 4)
                rows.append(row)
                recorder["runs"] = rows
                recorder.write()
                print(json.dumps(row), flush=True)
    recorder["growth"] = growth(rows)
    recorder.write()


if __name__ == "__main__":
    main()
