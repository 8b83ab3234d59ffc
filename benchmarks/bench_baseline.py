"""modelgen against a plain Keras script on real small datasets, at the same time budget.

    pip install -e ".[bench]"        # scikit-learn and scikit-image ship two of the datasets
    apt-get install dataset-fashion-mnist   # the third (optional: skipped when absent)
    python benchmarks/bench_baseline.py [--datasets digits faces clothing]
        [--budgets 30 60 120] [--seeds 0 1 2] [--quick]

For every dataset, seed and budget:
- 20% of the images (stratified, chosen by the seed) are held out; the rest is the folder
  both contestants get. Clothing also holds out 300 more test-split images of each class
  (3,000) that are never in the folder: on 150 held-out images one image is 0.7 points;
  the JSON keeps the 20% split's accuracy apart too (`accuracy_split`);
- modelgen: `modelgen new --yes --data FOLDER --time-budget B --seed S --weights none` in a
  process of its own with a cold cache; its accuracy is measured through the generated
  library (`load().predict_batch`) on the held-out images, in another process;
- the baseline: the Keras `mnist_convnet` example (keras.io/examples/vision/mnist_convnet),
  unchanged but for RGB input and the class count, on the same folder (it holds out 10% for
  its own validation, as the example does), trained until B seconds of training have passed;
  its accuracy on the same held-out images.
The JSON keeps every run; the summary gives mean and spread per dataset and budget, the
per-seed differences, and the winning family of each modelgen run.
"""

from __future__ import annotations

import argparse
import gzip
import os
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    REPO,
    Recorder,
    accuracy_gap,
    add_common_arguments,
    count,
    fmt,
    library_right,  # noqa: E402
    mnist_convnet_model,
    seeds_of,
    stats,
)

FASHION = Path("/usr/share/datasets/fashion-mnist")
FASHION_NAMES = ("t-shirt", "trouser", "pullover", "dress", "coat")
FASHION_NAMES += ("sandal", "shirt", "sneaker", "bag", "ankle-boot")
HOLD_OUT = 0.2


def digits() -> tuple[list[np.ndarray], list[str]]:
    """scikit-learn's 8x8 handwritten digits (1,797), drawn at 32x32."""
    from sklearn.datasets import load_digits

    found = load_digits()
    images = [
        np.asarray(
            Image.fromarray((image * 255 / 16).astype(np.uint8)).resize(
                (32, 32), Image.Resampling.BILINEAR
            )
        )
        for image in found.images
    ]
    return images, [f"digit_{int(t)}" for t in found.target]


def faces() -> tuple[list[np.ndarray], list[str]]:
    """scikit-image's LFW subset: 100 face and 100 background crops, 25x25 grey."""
    from skimage import data

    crops = data.lfw_subset()
    return [(c * 255).astype(np.uint8) for c in crops], ["face"] * 100 + ["background"] * 100


def _idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as fh:
        raw = fh.read()
    ndim = raw[3]
    dims = struct.unpack(">" + "I" * ndim, raw[4 : 4 + 4 * ndim])
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def clothing() -> tuple[list[np.ndarray], list[str]]:
    """Fashion-MNIST (Debian's dataset-fashion-mnist), 10 classes, 75 test-split images each
    (the bundled sample comes from the train split)."""
    return _fashion(0, 75)


def clothing_extra() -> tuple[list[np.ndarray], list[str]]:
    """The next CLOTHING_EXTRA test-split images of each class: held out on top of the 20%,
    never in the training folder. 150 held-out images alone put one image at 0.7 points,
    and seed to seed both contestants moved by 2 points on them."""
    return _fashion(75, 75 + CLOTHING_EXTRA)


def _fashion(start: int, stop: int) -> tuple[list[np.ndarray], list[str]]:
    images = _idx(FASHION / "t10k-images-idx3-ubyte.gz")
    labels = _idx(FASHION / "t10k-labels-idx1-ubyte.gz")
    chosen = [i for code in range(10) for i in np.flatnonzero(labels == code)[start:stop]]
    return [images[i] for i in chosen], [FASHION_NAMES[int(labels[i])] for i in chosen]


CLOTHING_EXTRA = 300
DATASETS = {"digits": digits, "faces": faces, "clothing": clothing}
EXTRA = {"clothing": clothing_extra}  # more held-out images, where the package has them


def available(name: str) -> str | None:
    """Why a dataset cannot be built here, or None."""
    try:
        if name == "clothing" and not FASHION.is_dir():
            return "apt-get install dataset-fashion-mnist"
        if name == "digits":
            import sklearn  # noqa: F401
        if name == "faces":
            import skimage  # noqa: F401
    except ImportError as exc:
        return f'{exc.name} is missing: pip install -e ".[bench]"'
    return None


def write_split(
    images: list[np.ndarray],
    labels: list[str],
    seed: int,
    root: Path,
    extra: tuple[list[np.ndarray], list[str]] = ([], []),
) -> tuple[Path, list[tuple[Path, str]], list[tuple[Path, str]]]:
    """A training folder (one sub-folder per label), the held-out (path, label) pairs, and
    the `extra` images' pairs (held out too, written apart)."""
    rng = np.random.default_rng(seed)
    held: list[tuple[Path, str]] = []
    more: list[tuple[Path, str]] = []
    for i, (image, label) in enumerate(zip(*extra, strict=True)):
        folder = root / "held-out-extra" / label
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{i:05d}.png"
        Image.fromarray(image).save(path)
        more.append((path, label))
    for label in sorted(set(labels)):
        members = [i for i, name in enumerate(labels) if name == label]
        rng.shuffle(members)
        cut = int(round(HOLD_OUT * len(members)))
        for rank, i in enumerate(members):
            part = "held-out" if rank < cut else "train"
            folder = root / part / label
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{i:05d}.png"
            Image.fromarray(images[i]).save(path)
            if part == "held-out":
                held.append((path, label))
    return root / "train", held, more


def run_modelgen(folder: Path, budget: float, seed: int, work: Path) -> dict[str, Any]:
    output = work / "project"
    env = dict(os.environ, MODELGEN_CACHE_DIR=str(work / "cache"), TF_CPP_MIN_LOG_LEVEL="3")
    command = [sys.executable, "-m", "generator", "new", "--yes", "--data", str(folder)]
    command += ["--output", str(output), "--name", "bench", "--weights", "none"]
    command += ["--time-budget", str(int(budget)), "--seed", str(seed)]
    start = time.monotonic()
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, env=env)
    wall = time.monotonic() - start
    if done.returncode != 0:
        return {"error": " ".join(done.stderr.split())[-300:], "wall_seconds": round(wall, 1)}
    saved = (output / "modelgen.toml").read_text()
    import tomllib

    document = tomllib.loads(saved)
    return {
        "wall_seconds": round(wall, 1),
        "winner": document["model"]["winner"],
        "project": output,
    }


def run_keras(
    folder: Path, held: list[tuple[Path, str]], budgets: list[float], seed: int
) -> dict[float, np.ndarray]:
    """mnist_convnet trained on the folder; which held-out images it gets right when each
    budget's seconds of training have passed (one training, scored at each budget: the
    model at B seconds is the model trained for B seconds)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    keras.utils.set_random_seed(seed)
    labels = sorted(p.name for p in folder.iterdir())
    paths = sorted(folder.rglob("*.png"))
    x = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in paths]).astype("float32")
    y = np.array([labels.index(p.parent.name) for p in paths])
    order = np.random.default_rng(seed).permutation(len(x))  # validation_split takes the tail
    x, y = x[order], y[order]
    model = mnist_convnet_model(x.shape[1:], len(labels))
    x_held = np.stack([np.asarray(Image.open(p).convert("RGB")) for p, _ in held])
    found: dict[float, np.ndarray] = {}

    class Budget(keras.callbacks.Callback):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.spent, self.started = 0.0, 0.0

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self.started = time.monotonic()

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            self.spent += time.monotonic() - self.started
            due = [b for b in budgets if b not in found and self.spent >= b]
            if due:
                predicted = self.model.predict(x_held.astype("float32"), verbose=0).argmax(1)
                right = [labels[i] == label for i, (_, label) in zip(predicted, held, strict=True)]
                for b in due:
                    found[b] = np.array(right)
            if len(found) == len(budgets):
                self.model.stop_training = True

    model.fit(
        x, y, batch_size=128, epochs=100_000, validation_split=0.1, callbacks=[Budget()], verbose=0
    )
    return found


def summarize(
    runs: list[dict[str, Any]], names: list[str], budgets: list[float]
) -> list[dict[str, Any]]:
    """Per dataset and budget: both sides' accuracy, their difference and in how many runs
    modelgen was behind (`accuracy_gap`)."""
    summary = []
    for name in names:
        for budget in budgets:
            rows = [r for r in runs if r["dataset"] == name and r["budget"] == budget]
            if not rows:
                continue
            mine = [r["modelgen"].get("accuracy") for r in rows]
            keras = [r["keras_accuracy"] for r in rows]
            gaps = [accuracy_gap(o, t) for o, t in zip(mine, keras, strict=True)]
            summary.append(
                {
                    "dataset": name,
                    "budget": budget,
                    "images": rows[0]["images"],
                    "held_out": rows[0]["held_out"],
                    "modelgen": stats(mine),
                    "keras": stats(keras),
                    "difference": stats(gaps),
                    "behind_in": sum(1 for g in gaps if g is None or g < 0),
                    "winners": count([r["modelgen"].get("winner") for r in rows]),
                    "wall_seconds": stats(r["modelgen"]["wall_seconds"] for r in rows),
                }
            )
            line = summary[-1]
            print(
                f"{name} {budget:.0f}s: modelgen {fmt(line['modelgen'], 3)} vs keras "
                f"{fmt(line['keras'], 3)}; behind in {line['behind_in']} of {len(rows)}",
                flush=True,
            )
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", choices=sorted(DATASETS), default=None)
    parser.add_argument("--budgets", type=float, nargs="+", default=None)
    add_common_arguments(parser, weights=False)
    args = parser.parse_args()
    seeds = seeds_of(args)
    budgets = args.budgets or ([15.0] if args.quick else [30.0, 60.0, 120.0])
    names = args.datasets or (["faces"] if args.quick else list(DATASETS))
    recorder = Recorder("bench_baseline", args, seeds)
    runs: list[dict[str, Any]] = []
    skipped = {}
    built = {}
    for name in names:
        why = available(name)
        if why:
            skipped[name] = why
            print(f"{name}: skipped ({why})", flush=True)
        else:
            built[name] = DATASETS[name]()
    for seed in seeds:  # seed outermost: an interrupted run still covers every dataset
        for name, (images, labels) in built.items():
            with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as tmp:
                extra = EXTRA[name]() if name in EXTRA else ([], [])
                folder, split, more = write_split(images, labels, seed, Path(tmp) / "data", extra)
                held = split + more
                theirs = run_keras(folder, held, budgets, seed)
                for budget in budgets:
                    work = Path(tmp) / f"run-{budget:.0f}"
                    ours = run_modelgen(folder, budget, seed, work)
                    if "project" in ours:
                        mine = np.array(library_right(ours.pop("project"), "bench", held))
                        ours["accuracy"] = float(mine.mean())
                        if more:  # the same predictions, the 20% split's part
                            ours["accuracy_split"] = float(mine[: len(split)].mean())
                    right = theirs[budget]
                    row = {"dataset": name, "seed": seed, "budget": budget}
                    row |= {"images": len(labels) - len(split), "held_out": len(held)}
                    row |= {"modelgen": ours, "keras_accuracy": round(float(right.mean()), 4)}
                    if more:  # the 20% split alone, as runs before the extra images were
                        row["held_out_split"] = len(split)
                        row["keras_accuracy_split"] = round(float(right[: len(split)].mean()), 4)
                    runs.append(row)
                    recorder["runs"] = runs
                    recorder.write()
                    print(
                        f"{name} seed {seed} {budget:.0f}s: modelgen "
                        f"{ours.get('accuracy', ours.get('error'))} ({ours.get('winner')}, "
                        f"{ours.get('wall_seconds')}s), keras {right.mean():.4f}",
                        flush=True,
                    )
    summary = summarize(runs, names, budgets)
    recorder["runs"] = runs
    recorder["summary"] = summary
    recorder["skipped"] = skipped
    recorder.write()


if __name__ == "__main__":
    main()
