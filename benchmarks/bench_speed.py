"""How fast modelgen gets to a model: the default run, short budgets on photos, and feature
extraction against a raw onnxruntime session.

    python benchmarks/bench_speed.py [--seeds 0 1 2] [--weights FILE] [--quick]

- default run: `modelgen new --yes` on the bundled sample, each run in its own process with
  an empty cache: wall time, test accuracy, peak RSS and the fixed costs `--verbose` prints;
- photos: 120 photos of 2 classes (random crops of scikit-image's astronaut and cat photos,
  resized to 128 px), `--time-budget 15` and `30`, with the pretrained weights file: exit
  code, wall time, winner and accuracy on 40 held-out crops through the generated library;
- loop: seconds an epoch of the default convnet (227 and 1,200 images at 28 px, 400 at
  64 px) in modelgen's training loop against Keras's `model.fit`, in the same process;
- extraction: the backbone (MobileNetV2 with the weights file, at 128 and 224 px) on 512
  JPEG files of each kind (160 px random pixels; 500 x 375 crops of two photos) through
  modelgen's own path (decoding on every core, onnxruntime on every core), against a raw
  onnxruntime session (its default options) on the same images already decoded and
  against a plain loop that decodes a batch and then runs it on that
  session, in the same run, every session warmed by one batch first (steady-state
  throughput); the bound on the first ratio when decoding and inference share the cores
  (decoding's measured CPU time spread over every core, nothing lost); and the share of
  the machine's peak FLOPs (measured as float32 matrix-multiply throughput on all cores);
- camera: 12 JPEG photos at 4032 x 3024 and 12 at 1600 x 1200 (quality 90; scikit-image's
  photos enlarged, with grain): ms of CPU per image to decode and preprocess to 128 and
  224 px, and to check a file, in modelgen (a large JPEG decoded at reduced scale) against
  the same steps on a full decode, alternating, 3 repeats; and how far the pixels are from
  the full decode's.
"""

from __future__ import annotations

import argparse
import os
import re
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
    seeds_of,
    stats,
    weights_facts,
)  # noqa: E402

PHASES = re.compile(r"^\s+(.+?): (\d+\.\d+)$")


def modelgen(args: list[str], cache: Path) -> tuple[subprocess.CompletedProcess[str], float, float]:
    """`modelgen ARGS` in its own process: the result, wall seconds and the child's peak RSS."""
    env = dict(os.environ, MODELGEN_CACHE_DIR=str(cache), TF_CPP_MIN_LOG_LEVEL="3")
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "generator", "new", "--yes", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    wall = time.monotonic() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return done, wall, max(peak, before) / 1024


def phases(stdout: str) -> dict[str, float]:
    """The --verbose "Time per phase" lines, by phase."""
    found: dict[str, float] = {}
    lines = stdout.split("Time per phase (wall seconds):")[-1].splitlines()
    for line in lines[1:]:
        match = PHASES.match(line)
        if not match:
            break
        found[match.group(1)] = float(match.group(2))
    return found


def default_runs(seeds: list[int], work: Path) -> list[dict[str, Any]]:
    runs = []
    for seed in seeds:
        out = work / f"default-{seed}"
        done, wall, rss = modelgen(["--output", str(out), "--verbose"], work / f"cache-d{seed}")
        row: dict[str, Any] = {"run": seed, "exit": done.returncode, "wall_seconds": round(wall, 1)}
        row["peak_rss_mb"] = round(rss)
        if done.returncode == 0:
            saved = tomllib.loads((out / "modelgen.toml").read_text())
            row["winner"] = saved["model"]["winner"]
            row["test_accuracy"] = saved["metrics"]["test"]["accuracy"]
            row["phases"] = phases(done.stdout)
        else:
            row["error"] = done.stderr[-300:]
        print("default run", row, flush=True)
        runs.append(row)
    return runs


def photos(seed: int, root: Path) -> tuple[Path, list[tuple[str, str]]]:
    """80 training and 40 held-out crops of two photos, 128 px."""
    from skimage import data

    rng = np.random.default_rng(seed)
    held: list[tuple[str, str]] = []
    for label, image in (("astronaut", data.astronaut()), ("cat", data.chelsea())):
        h, w = image.shape[:2]
        for i in range(60):
            side = int(rng.integers(min(h, w) // 3, min(h, w) * 2 // 3))
            y, x = int(rng.integers(0, h - side)), int(rng.integers(0, w - side))
            crop = Image.fromarray(image[y : y + side, x : x + side]).resize((128, 128))
            part = "held" if i < 20 else "train"
            path = root / part / label / f"{i:03d}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            crop.save(path, quality=90)
            if part == "held":
                held.append((str(path), label))
    return root / "train", held


def photo_runs(
    seeds: list[int], budgets: list[int], weights: str, work: Path
) -> list[dict[str, Any]]:
    runs = []
    for seed in seeds:
        folder, held = photos(seed, work / f"photos-{seed}")
        for budget in budgets:
            out = work / f"photos-{seed}-{budget}"
            args = ["--data", str(folder), "--output", str(out), "--name", "photos"]
            args += ["--time-budget", str(budget), "--seed", str(seed), "--weights", weights]
            done, wall, _ = modelgen(args, work / f"cache-p{seed}-{budget}")
            row: dict[str, Any] = {"seed": seed, "budget": budget, "exit": done.returncode}
            row["wall_seconds"] = round(wall, 1)
            if done.returncode == 0:
                saved = tomllib.loads((out / "modelgen.toml").read_text())
                row["winner"] = saved["model"]["winner"]
                row["held_out_accuracy"] = library_accuracy(out, "photos", held)
            else:
                row["error"] = " ".join(done.stderr.split())[-300:]
            print("photos", row, flush=True)
            runs.append(row)
    return runs


def gemm_peak(seconds: float = 2.0) -> float:
    """float32 matrix-multiply FLOP/s on all cores: the machine's practical peak."""
    a = np.random.default_rng(0).random((2048, 2048), dtype=np.float32)
    a @ a
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ a
        done += 1
    return done * 2 * 2048**3 / (time.perf_counter() - start)


def raw_session(path: Path) -> Any:
    """onnxruntime's own defaults (every physical core, spinning threads): images in,
    features out."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda batch: session.run(None, {name: batch.astype(np.float32)})[0]


def extraction_images(kind: str, images: int, folder: Path) -> list[Path]:
    """`images` JPEG files: 160 px random pixels ("random-160"), or 500 x 375 crops of two
    scikit-image photos ("photo-500x375", a photo dataset's size, where decoding costs far
    more than at 160 px)."""
    from skimage import data

    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    photos = [data.astronaut(), data.coffee()]
    paths = []
    for i in range(images):
        if kind == "random-160":
            pixels = rng.integers(0, 256, (160, 160, 3), dtype=np.uint8)
        else:
            photo = photos[i % len(photos)]
            y = int(rng.integers(0, photo.shape[0] - 375 + 1))
            x = int(rng.integers(0, photo.shape[1] - 500 + 1))
            pixels = photo[y : y + 375, x : x + 500]
        path = folder / f"{i:04d}.jpg"
        Image.fromarray(pixels).save(path, quality=75 if kind == "random-160" else 90)
        paths.append(path)
    return paths


def extraction(
    weights: str, sizes: list[int], kinds: list[str], images: int, work: Path
) -> list[dict[str, Any]]:
    """modelgen's extraction path vs a raw onnxruntime session, same backbone, same images."""
    sys.path.insert(0, str(REPO))
    from generator.data.images import load_array, load_arrays
    from generator.progress import NullReporter
    from generator.train.backbones import MOBILENET_V2, load_backbone
    from generator.train.features import feature_store, fill
    from generator.train.networks import build_extractor, flops
    from generator.train.runtime import select_compute
    from generator.train.sizing import resized

    compute = select_compute("cpu")
    loaded = load_backbone(MOBILENET_V2, weights)
    peak = gemm_peak()
    rows = []
    files = {kind: extraction_images(kind, images, work / f"extract-{kind}") for kind in kinds}
    for kind, size in [(kind, size) for kind in kinds for size in sizes]:
        paths = files[kind]
        lb = resized(loaded, size)  # type: ignore[arg-type]
        extractor = build_extractor(lb.model, lb.backbone)
        cost = flops(extractor)
        cache = work / f"cache-x{size}"
        feature_store(lb, extractor, compute, NullReporter(), cache)  # exported once, here
        for repeat in range(3):
            store, embed = feature_store(lb, extractor, compute, NullReporter(), cache)
            keyed = [(f"{kind}-{size}-{repeat}-{i}", p) for i, p in enumerate(paths)]
            embed(np.zeros((32, size, size, 3), np.uint8))  # warm, as the session below is
            start = time.perf_counter()
            fill(store, keyed, size, embed, "features", NullReporter(), float("inf"))
            ours = images / (time.perf_counter() - start)
            # decoding's CPU time alone, each image decoded on this thread (load_arrays may
            # decode on a worker thread, whose time thread_time here would not see)
            start = time.thread_time()
            x = np.stack([load_array(path, size) for path in paths])
            decode = (time.thread_time() - start) / images
            session = raw_session(next((cache / "backbones").glob("*.onnx")))
            session(x[:32])
            start = time.perf_counter()
            for i in range(0, images, 32):
                session(x[i : i + 32])
            raw = images / (time.perf_counter() - start)
            start = time.perf_counter()  # what a plain script does: decode a batch, run it
            for i in range(0, images, 32):
                session(load_arrays(paths[i : i + 32], size))
            plain = images / (time.perf_counter() - start)
            row = {"kind": kind, "size": size, "repeat": repeat, "images": images}
            row |= {"modelgen_images_per_s": round(ours, 1)}
            row |= {"raw_onnxruntime_images_per_s": round(raw, 1), "ratio": round(ours / raw, 3)}
            row |= {
                "decode_then_run_images_per_s": round(plain, 1),
                "ratio_to_decode_then_run": round(ours / plain, 3),
            }
            # the most modelgen's path could reach: decoding's CPU time spread over every
            # core beside inference, with nothing lost to sharing them
            cores = os.cpu_count() or 1
            row |= {
                "decode_cpu_ms_per_image": round(1e3 * decode, 3),
                "ratio_bound": round(1 / (1 + raw * decode / cores), 3),
            }
            row |= {"gflops_per_image": round(cost / 1e9, 3)}
            row |= {
                "share_of_peak": round(ours * cost / peak, 3),
                "peak_gflops": round(peak / 1e9, 1),
            }
            print("extraction", row, flush=True)
            rows.append(row)
    return rows


def camera_photos(repeats: int, folder: Path) -> list[dict[str, Any]]:
    """CPU time per image of modelgen's decoding and file check on camera-sized JPEGs,
    against the same steps on a full decode (what modelgen did before it decoded large
    JPEGs at reduced scale), alternating in this thread."""
    sys.path.insert(0, str(REPO))
    from skimage import data

    from generator.data.checks import check_file, fingerprints
    from generator.data.images import decode, load_array, preprocess, upright

    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    photos = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket()]
    files: dict[str, list[Path]] = {}
    for width, height in ((4032, 3024), (1600, 1200)):
        kind = f"{width}x{height}"
        for i in range(12):
            enlarged = Image.fromarray(photos[i % len(photos)]).resize(
                (width, height), Image.Resampling.BICUBIC
            )
            grain = rng.normal(0, 4, (height, width, 3))
            pixels = np.clip(np.asarray(enlarged) + grain, 0, 255).astype(np.uint8)
            path = folder / f"{kind}-{i:02d}.jpg"
            Image.fromarray(pixels).save(path, quality=90)
            files.setdefault(kind, []).append(path)

    def full_check(path: Path) -> None:  # check_file's decoding and fingerprints, in full
        fingerprints(upright(decode(path.read_bytes())))

    def cpu_ms(step: Any, paths: list[Path]) -> float:
        start = time.thread_time()
        for path in paths:
            step(path)
        return 1e3 * (time.thread_time() - start) / len(paths)

    rows = []
    for kind, paths in files.items():
        tasks: list[tuple[str, Any, Any]] = [
            (
                f"{size} px",
                lambda path, size=size: load_array(path, size),
                lambda path, size=size: preprocess(decode(path.read_bytes()), size),
            )
            for size in (128, 224)
        ]
        tasks.append(("check", check_file, full_check))
        for task, ours, full in tasks:
            for repeat in range(repeats):
                row = {"photo": kind, "task": task, "repeat": repeat, "images": len(paths)}
                row |= {"full_decode_ms": round(cpu_ms(full, paths), 2)}
                row |= {"modelgen_ms": round(cpu_ms(ours, paths), 2)}
                row |= {"speed_up": round(row["full_decode_ms"] / row["modelgen_ms"], 2)}
                if task != "check" and repeat == 0:
                    size = int(task.split()[0])
                    difference = np.concatenate(
                        [
                            np.abs(
                                load_array(path, size).astype(int)
                                - preprocess(decode(path.read_bytes()), size)
                            ).ravel()
                            for path in paths
                        ]
                    )
                    row |= {
                        "pixel_difference_mean": round(float(difference.mean()), 3),
                        "pixel_difference_max": int(difference.max()),
                    }
                print("camera", row, flush=True)
                rows.append(row)
    return rows


def training_loop(repeats: int, epochs: int) -> list[dict[str, Any]]:
    """Seconds an epoch of the default convnet on random images (no shifts): modelgen's
    loop (`trial.fit` without validation, converting each batch to float32) against Keras's
    `model.fit` on the same images already in float32, with the same batch size and sample
    weights (what a plain script calls); alternating, in this process."""
    from generator.train.networks import build_cnn
    from generator.train.trial import Fresh, Rows, batch_size, fit, one_hot, sample_weights

    rng = np.random.default_rng(0)
    rows = []
    for images, size in ((227, 28), (1200, 28), (400, 64)):
        data = Rows(
            rng.integers(0, 256, (images, size, size, 3), dtype=np.uint8),
            rng.integers(0, 10, images),
        )
        ours = Fresh(build_cnn(size, 10), 1e-3)
        theirs = Fresh(build_cnn(size, 10), 1e-3).model
        x = data.x.astype(np.float32)
        targets, weights = one_hot(data.y, 10), sample_weights(data.y, 10)
        for repeat in range(repeats + 1):  # the first of each traces: left out
            start = time.perf_counter()
            fit(
                ours,
                data,
                None,
                10,
                transform=None,
                seed=repeat,
                max_epochs=epochs,
                deadline=float("inf"),
                hard_deadline=float("inf"),
                advance=lambda *args, **kwargs: None,
                learning_rate=1e-3,
            )
            loop = (time.perf_counter() - start) / epochs
            start = time.perf_counter()
            theirs.fit(
                x,
                targets,
                sample_weight=weights,
                batch_size=batch_size(images),
                epochs=epochs,
                verbose=0,
            )
            keras = (time.perf_counter() - start) / epochs
            if repeat == 0:
                continue
            row = {"images": images, "size": size, "repeat": repeat}
            row |= {"loop_epoch_seconds": round(loop, 4)}
            row |= {"keras_fit_epoch_seconds": round(keras, 4)}
            row |= {"speed_up": round(keras / loop, 3)}
            print("training loop", row, flush=True)
            rows.append(row)
    return rows


def batch_norm_step(repeats: int, steps: int) -> list[dict[str, Any]]:
    """Seconds a training step of the separable convnet, with modelgen's fused batch
    normalization against Keras's own layer: the same step (`Fresh`), the same random
    batch of 32, alternating, in this process, with op determinism on as in a search."""
    import tensorflow as tf

    from generator.train.networks import build_separable_cnn
    from generator.train.runtime import seed_everything
    from generator.train.trial import Fresh, one_hot, sample_weights

    seed_everything(0)
    rng = np.random.default_rng(0)
    rows = []
    for size in (28, 64):
        labels = rng.integers(0, 10, 32)
        batch = (
            tf.constant(rng.uniform(0, 255, (32, size, size, 3)).astype(np.float32)),
            tf.constant(one_hot(labels, 10)),
            tf.constant(sample_weights(labels, 10)),
        )
        steps_of = {
            fused: Fresh(build_separable_cnn(size, 10, fused=fused), 1e-3).step
            for fused in (True, False)
        }
        for repeat in range(repeats + 1):  # the first of each traces: left out
            seconds = {}
            for fused, step in steps_of.items():
                start = time.perf_counter()
                for _ in range(steps):
                    step(batch)
                seconds[fused] = (time.perf_counter() - start) / steps
            if repeat == 0:
                continue
            row = {"size": size, "batch": 32, "repeat": repeat}
            row |= {"fused_step_ms": round(1000 * seconds[True], 3)}
            row |= {"keras_step_ms": round(1000 * seconds[False], 3)}
            row |= {"speed_up": round(seconds[False] / seconds[True], 3)}
            print("batch norm", row, flush=True)
            rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--parts",
        nargs="+",
        default=["default", "photos", "loop", "batchnorm", "extraction", "camera"],
    )
    add_common_arguments(parser)
    args = parser.parse_args()
    seeds = seeds_of(args)
    recorder = Recorder("bench_speed", args, seeds)
    recorder["weights"] = weights_facts(args.weights)
    with tempfile.TemporaryDirectory(prefix="bench-speed-") as tmp:
        work = Path(tmp)
        if "default" in args.parts:
            runs = default_runs(seeds, work)
            recorder["default"] = runs
            ok = [r for r in runs if r["exit"] == 0]
            recorder["default_summary"] = {
                "wall_seconds": stats(r["wall_seconds"] for r in runs),
                "test_accuracy": stats(r["test_accuracy"] for r in ok),
                "peak_rss_mb": stats(r["peak_rss_mb"] for r in runs),
                "phases": {
                    name: stats(r["phases"].get(name, 0.0) for r in ok)
                    for name in (ok[0]["phases"] if ok else {})
                },
            }
            recorder.write()
        if "photos" in args.parts:
            budgets = [15] if args.quick else [15, 30]
            recorder["photos"] = photo_runs(seeds, budgets, args.weights, work)
            recorder.write()
        if "loop" in args.parts:
            recorder["training_loop"] = training_loop(2 if args.quick else 3, 10)
            recorder.write()
        if "batchnorm" in args.parts:
            recorder["batch_norm"] = batch_norm_step(2 if args.quick else 5, 100)
            recorder.write()
        if "extraction" in args.parts and args.weights != "none":
            sizes = [128] if args.quick else [128, 224]
            kinds = ["random-160", "photo-500x375"]
            recorder["extraction"] = extraction(
                args.weights, sizes, kinds, 64 if args.quick else 512, work
            )
            recorder.write()
        if "camera" in args.parts:
            recorder["camera"] = camera_photos(2 if args.quick else 3, work / "camera")
    recorder.write()


if __name__ == "__main__":
    main()
