"""Peak memory of a search on 1,000 vs 5,000 images: it must not grow with the image count.

    python benchmarks/bench_memory.py [--seeds 0 1 2] [--counts 1000 5000] [--budget 240]
        [--backbones mobilenet_v2] [--cnns small-cnn] [--weights PATH] [--json OUT] [--quick]

Each (count, seed) runs in its own process (peak RSS from getrusage), cold cache, same
budget, and the same candidate families at every count (--backbones, --cnns): a smaller plan
at one count would make the comparison meaningless. Which families really trained is read
from each result's leaderboard and reported; the summary says whether they matched.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    Recorder,
    add_common_arguments,
    count,
    fmt,
    seeds_of,
    stats,
    trained_families,
    weights_facts,
)

DEFAULT_BACKBONES = ("mobilenet_v2",)
DEFAULT_CNNS = ("small-cnn",)


def child(spec: dict[str, Any]) -> None:
    """One search in this process; prints one JSON line."""
    from generator.data import scan_folder, split_dataset
    from generator.errors import BudgetError
    from generator.progress import NullReporter
    from generator.train import TrainOptions, train

    start = time.monotonic()
    dataset = scan_folder(Path(spec["data"]), min_images_per_class=10)
    split = split_dataset(dataset, seed=spec["seed"], validation_fraction=0.15, test_fraction=0.15)
    try:
        result = train(
            split,
            dataset.labels,
            TrainOptions(
                time_budget=spec["budget"],
                weights=spec["weights"],
                seed=spec["seed"],
                backbones=tuple(spec["backbones"]),
                cnns=tuple(spec["cnns"]),
                cache_root=Path(spec["cache"]),
            ),
            NullReporter(),
        )
    except BudgetError as exc:  # an honest refusal: reported, not a crash
        print(json.dumps({"refused": str(exc), "winner": None, "families_trained": []}))
        return
    row = {
        "seconds": round(time.monotonic() - start, 1),
        "train_seconds": round(result.seconds, 1),
        "winner": result.winner.name,
        "val_accuracy": round(result.winner.val_accuracy, 4),
        "trials": len(result.leaderboard),
        "families_planned": sorted({e.recipe.family for e in result.plan.evaluated}),
        "families_trained": trained_families(result),
        "skipped": [[s.family, s.cause.value, s.detail] for s in result.skipped],
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    print(json.dumps(row), flush=True)


def summarise(runs: list[dict[str, Any]], requested: list[str]) -> dict[str, Any]:
    counts = sorted({r["images"] for r in runs})
    by_count = []
    for images in counts:
        group = [r for r in runs if r["images"] == images]
        done = [r for r in group if not r.get("failed") and not r.get("refused")]
        by_count.append(
            {
                "images": images,
                "runs": len(group),
                "failed": sum(bool(r.get("failed")) for r in group),
                "refused": sum(bool(r.get("refused")) for r in group),
                "refusals": sorted({r["refused"] for r in group if r.get("refused")}),
                "peak_rss_mb": stats(r["peak_rss_mb"] for r in done),
                "seconds": stats(r["seconds"] for r in done),
                "winners": count([r.get("winner") for r in group]),
                "families_trained": count(["+".join(r["families_trained"]) for r in done]),
            }
        )
    # every run counts: a failed or refused run trained nothing, which is not the same
    trained_sets = {tuple(r.get("families_trained") or ()) for r in runs}
    first, last = (by_count[0], by_count[-1]) if by_count else ({}, {})
    ratio = None
    if first and last and first["peak_rss_mb"]["mean"] and last["peak_rss_mb"]["mean"]:
        ratio = round(last["peak_rss_mb"]["mean"] / first["peak_rss_mb"]["mean"], 3)
    return {
        "by_count": by_count,
        "families_requested": requested,
        "same_families": len(trained_sets) == 1,
        "families_trained_sets": sorted("+".join(s) or "(nothing)" for s in trained_sets),
        "rss_ratio_largest_over_smallest": ratio,
        "image_ratio": round(last["images"] / first["images"], 2) if by_count else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_arguments(parser)
    parser.add_argument("--counts", type=int, nargs="+", default=None)
    parser.add_argument("--budget", type=float, default=None)
    parser.add_argument(
        "--backbones",
        nargs="*",
        default=list(DEFAULT_BACKBONES),
        help="pretrained families tried at every count (skipped without weights)",
    )
    parser.add_argument(
        "--cnns", nargs="*", default=list(DEFAULT_CNNS), help="convnets tried at every count"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(json.loads(args.child))
        return
    from _data import make_folder

    seeds = seeds_of(args)
    counts = args.counts or ([100, 200] if args.quick else [1000, 5000])
    budget = args.budget or (30.0 if args.quick else 240.0)
    record = Recorder("bench_memory", args, seeds)
    work = Path(tempfile.mkdtemp(prefix="bench-memory-"))
    env = dict(os.environ, KERAS_HOME=os.environ.get("KERAS_HOME") or str(work / "keras"))
    requested = [*args.backbones, *args.cnns]
    print(
        f"counts {counts}; budget {budget:.0f}s; seeds {seeds}; families {requested}; "
        f"weights {args.weights}",
        flush=True,
    )
    runs: list[dict[str, Any]] = []
    for images in counts:
        data = make_folder(work / f"data-{images}", images, seed=images)
        for seed in seeds:
            spec = {
                "data": str(data),
                "seed": seed,
                "budget": budget,
                "weights": args.weights,
                "backbones": args.backbones,
                "cnns": args.cnns,
                "cache": str(work / f"cache-{images}-{seed}"),
            }
            started = time.monotonic()
            done = subprocess.run(
                [sys.executable, __file__, "--child", json.dumps(spec)],
                capture_output=True,
                text=True,
                env=env,
            )
            row: dict[str, Any] = {"images": images, "seed": seed}
            if done.returncode:
                row |= {"failed": done.stderr[-3000:], "families_trained": []}
                print(f"the {images}-image run (seed {seed}) failed:\n{row['failed']}", flush=True)
            else:
                row |= json.loads(done.stdout.strip().splitlines()[-1])
            row["wall_seconds"] = round(time.monotonic() - started, 1)
            runs.append(row)
            print(json.dumps({k: v for k, v in row.items() if k != "skipped"}), flush=True)
    summary = summarise(runs, requested)
    print("\n== summary (mean ± std (min–max, n))")
    for row in summary["by_count"]:
        print(
            f"  {row['images']} images: peak RSS {fmt(row['peak_rss_mb'], 0, ' MB')}, "
            f"families trained {row['families_trained']}, winners {row['winners']}"
        )
    print(
        f"  same families at every count: {summary['same_families']} "
        f"({summary['families_trained_sets']}); RSS ratio "
        f"{summary['rss_ratio_largest_over_smallest']} for {summary['image_ratio']}x the images"
    )
    if not summary["same_families"]:
        print(
            "  WARNING: the runs did not train the same families; raise --budget or narrow "
            "--backbones/--cnns before comparing memory",
            flush=True,
        )
    record["weights"] = weights_facts(args.weights)
    record["budget"] = budget
    record["runs"] = runs
    record["summary"] = summary
    record.write()
    shutil.rmtree(work, ignore_errors=True)
    sys.exit(1 if any(r.get("failed") for r in runs) else 0)


if __name__ == "__main__":
    main()
