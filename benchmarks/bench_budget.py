"""Is the time budget honoured? Training wall time against --time-budget, per seed.

    python benchmarks/bench_budget.py [--seeds 0 1 2] [--budgets 30 120] [--images 3000]
        [--weights PATH] [--no-sample] [--cold-probe] [--json OUT] [--quick]

Runs the search on the bundled sample and on a generated folder large enough that the budget,
not early stopping, ends training; every (data, budget) pair once per seed (the training
seed; the split stays --split-seed, so the seeds differ only in how the search trains).
Feature and pixel caches start empty in every run. The machine's calibration (the convnet
rate the search plans with) is measured once by an unrecorded warm-up run (as on a machine
that has run modelgen before) unless --cold-probe; each run records whether it measured it.
Target: training time <= budget + 15%.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("KERAS_HOME", tempfile.mkdtemp(prefix="bench-keras-"))

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
from _data import make_folder  # noqa: E402

from generator.data import scan_folder, split_dataset  # noqa: E402
from generator.errors import BudgetError  # noqa: E402
from generator.progress import NullReporter  # noqa: E402
from generator.resources import default_sample  # noqa: E402
from generator.train import TrainOptions, train  # noqa: E402

TARGET = 1.15


def _probe_file(cache: Path) -> bytes | None:
    """The machine's calibration (calibration.json), which a run writes when it measures."""
    try:
        return (cache / "calibration.json").read_bytes()
    except OSError:
        return None


def one_run(
    split: Any, labels: Any, budget: float, weights: str, seed: int, cache: Path
) -> dict[str, Any]:
    for computed in ("features", "pixels"):
        shutil.rmtree(cache / computed, ignore_errors=True)
    before = _probe_file(cache)
    row: dict[str, Any] = {"budget": budget, "seed": seed}
    try:
        result = train(
            split,
            labels,
            TrainOptions(time_budget=budget, weights=weights, seed=seed, cache_root=cache),
            NullReporter(),
        )
    except BudgetError as exc:  # an honest refusal, with what it would need
        row |= {"refused": str(exc), "winner": None}
    else:
        row |= {
            "protocol": result.plan.protocol,
            "trained_seconds": round(result.seconds, 2),
            "ratio": round(result.seconds / budget, 3),
            "deadline_cut": bool(result.deadline_cut),
            "winner": result.winner.name,
            "val_accuracy": round(result.winner.val_accuracy, 4),
            "trials": len(result.leaderboard),
            "families_planned": sorted({e.recipe.family for e in result.plan.evaluated}),
            "families_trained": trained_families(result),
        }
    row["probe_measured"] = _probe_file(cache) != before
    return row


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    rows = []
    for source in dict.fromkeys(r["data"] for r in runs):
        for budget in sorted({r["budget"] for r in runs if r["data"] == source}):
            group = [r for r in runs if r["data"] == source and r["budget"] == budget]
            done = [r for r in group if not r.get("refused")]
            rows.append(
                {
                    "data": source,
                    "images": group[0]["images"],
                    "budget": budget,
                    "runs": len(group),
                    "refused": len(group) - len(done),
                    "refusals": sorted({r["refused"] for r in group if r.get("refused")}),
                    "protocols": count([r["protocol"] for r in done]),
                    "trained_seconds": stats(r["trained_seconds"] for r in done),
                    "ratio": stats(r["ratio"] for r in done),
                    "deadline_cut": sum(r["deadline_cut"] for r in done),
                    "probe_measured": sum(r["probe_measured"] for r in group),
                    "winners": count([r["winner"] for r in group]),
                    "families_trained": count(["+".join(r["families_trained"]) for r in done]),
                }
            )
    worst = max((r["ratio"] for r in runs if not r.get("refused")), default=None)
    return {
        "rows": rows,
        "worst_ratio": worst,
        "target_ratio": TARGET,
        "within_target": None if worst is None else worst <= TARGET,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_arguments(parser)
    parser.add_argument("--budgets", type=float, nargs="+", default=None)
    parser.add_argument("--images", type=int, default=None, help="generated images (0: none)")
    parser.add_argument("--no-sample", action="store_true", help="only the generated folder")
    parser.add_argument("--split-seed", type=int, default=42)
    parser.add_argument(
        "--cold-probe",
        action="store_true",
        help="measure the probe in every run (default: once per data folder, in an unrecorded "
        "warm-up run); feature and pixel caches are always cold",
    )
    args = parser.parse_args()
    seeds = seeds_of(args)
    if args.quick:  # smoke run: smallest budget, tiny generated folder
        budgets = args.budgets or [15.0]
        images = 200 if args.images is None else args.images
    else:
        budgets = args.budgets or [30.0, 120.0]
        images = 3000 if args.images is None else args.images
    record = Recorder("bench_budget", args, seeds)
    work = Path(tempfile.mkdtemp(prefix="bench-budget-"))
    sources: dict[str, Path] = {} if args.no_sample else {"sample": default_sample()}
    if images:
        sources["generated"] = make_folder(work / "data", images)
    print(
        f"seeds {seeds}; budgets {budgets}; {os.cpu_count()} cores; weights {args.weights}\n"
        f"{'data':>16} {'seed':>4} {'budget':>7} {'protocol':>16} {'trained':>8} {'ratio':>6} "
        f"{'cut':>5} {'probe':>5} {'winner':>24} {'val acc':>8} trials",
        flush=True,
    )
    runs: list[dict[str, Any]] = []
    for name, folder in sources.items():
        dataset = scan_folder(folder, min_images_per_class=10)
        split = split_dataset(
            dataset, seed=args.split_seed, validation_fraction=0.15, test_fraction=0.15
        )
        shown = f"{name} ({len(dataset.records)})"
        shared = work / f"cache-{name}"
        if not args.cold_probe:
            warm_up = min(budgets)
            warm = one_run(split, dataset.labels, warm_up, args.weights, seeds[0], shared)
            print(f"{shown:>16} warm-up at {warm_up:.0f}s (not recorded): {warm}", flush=True)
        for seed in seeds:
            for budget in budgets:
                cache = work / f"cold-{name}-{seed}-{budget}" if args.cold_probe else shared
                row = one_run(split, dataset.labels, budget, args.weights, seed, cache)
                row |= {"data": name, "images": len(dataset.records), "folder": str(folder)}
                runs.append(row)
                if args.cold_probe:
                    shutil.rmtree(cache, ignore_errors=True)
                if row.get("refused"):
                    print(
                        f"{shown:>16} {seed:>4} {budget:>6.0f}s refused (exit 2): "
                        f"{row['refused']}",
                        flush=True,
                    )
                    continue
                print(
                    f"{shown:>16} {seed:>4} {budget:>6.0f}s {row['protocol']:>16} "
                    f"{row['trained_seconds']:>7.1f}s {row['ratio']:>6.2f} "
                    f"{str(row['deadline_cut']):>5} {str(row['probe_measured']):>5} "
                    f"{row['winner']:>24} {row['val_accuracy']:>8.4f} {row['trials']}",
                    flush=True,
                )
    summary = summarise(runs)
    print("\n== summary (mean ± std (min–max, n))")
    for row in summary["rows"]:
        print(
            f"  {row['data']} ({row['images']}) at {row['budget']:.0f}s: trained "
            f"{fmt(row['trained_seconds'], 1, 's')}, ratio {fmt(row['ratio'], 2)}, refused "
            f"{row['refused']}/{row['runs']}, winners {row['winners']}"
        )
    worst = summary["worst_ratio"]
    print(
        f"worst training time / budget: {'—' if worst is None else f'{worst:.2f}'} "
        f"(target <= {TARGET})"
    )
    record["weights"] = weights_facts(args.weights)
    record["split_seed"] = args.split_seed
    record["probe"] = "cold (every run)" if args.cold_probe else "warm (measured in a warm-up)"
    record["runs"] = runs
    record["summary"] = summary
    record.write()
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
