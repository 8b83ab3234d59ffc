"""Is the time budget honoured? Training wall time against --time-budget, cold cache.

    python benchmarks/bench_budget.py [--budgets 30 120 600] [--images 3000] [--weights PATH]

Runs the search on the bundled sample and on a generated folder large enough that the budget,
not early stopping, ends training. Feature and pixel caches start empty in every run; the
probe's timings are measured once (as on a machine that has run modelgen before) unless
--cold-probe. Target: training time <= budget + 15%.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).parent))
os.environ.setdefault("KERAS_HOME", tempfile.mkdtemp(prefix="bench-keras-"))

from _data import make_folder  # noqa: E402

from generator.data import scan_folder, split_dataset  # noqa: E402
from generator.errors import BudgetError  # noqa: E402
from generator.progress import NullReporter  # noqa: E402
from generator.resources import default_sample  # noqa: E402
from generator.train import TrainOptions, train  # noqa: E402

SHARED = REPO.parent / "shared" / "weights" / "mobilenet_v2_1.0_no_top.h5"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--budgets", type=float, nargs="+", default=[30, 120, 600])
    parser.add_argument("--images", type=int, default=3000)
    parser.add_argument("--weights", default=str(SHARED) if SHARED.is_file() else "auto")
    parser.add_argument("--no-sample", action="store_true", help="only the generated folder")
    parser.add_argument(
        "--cold-probe",
        action="store_true",
        help="measure the probe in every run (default: once, as on a machine that has run "
        "modelgen before); feature and pixel caches are always cold",
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-budget-"))
    sources = {} if args.no_sample else {"sample": default_sample()}
    if args.images:
        sources[f"{args.images} generated"] = make_folder(work / "data", args.images)
    print(
        f"{'data':>16} {'budget':>7} {'planned':>8} {'trained':>8} {'ratio':>6} "
        f"{'cut':>4} {'winner':>22} {'val acc':>8} trials"
    )
    worst = 0.0
    for name, folder in sources.items():
        dataset = scan_folder(folder, min_images_per_class=10)
        split = split_dataset(dataset, seed=42, validation_fraction=0.15, test_fraction=0.15)
        for budget in args.budgets:
            cache = work / ("cache" if not args.cold_probe else f"cache-{time.monotonic_ns()}")
            for computed in ("features", "pixels"):
                shutil.rmtree(cache / computed, ignore_errors=True)
            try:
                result = train(
                    split,
                    dataset.labels,
                    TrainOptions(time_budget=budget, weights=args.weights, cache_root=cache),
                    NullReporter(),
                )
            except BudgetError as exc:  # an honest refusal, with what it would need
                print(f"{name:>16} {budget:>6.0f}s refused (exit 2): {exc}", flush=True)
                continue
            ratio = result.seconds / budget
            worst = max(worst, ratio)
            print(
                f"{name:>16} {budget:>6.0f}s {result.plan.seconds:>7.0f}s "
                f"{result.seconds:>7.1f}s {ratio:>6.2f} {str(result.deadline_cut):>4} "
                f"{result.winner.name:>22} {result.winner.val_accuracy:>8.4f} "
                f"{len(result.leaderboard)}",
                flush=True,
            )
    print(f"worst training time / budget: {worst:.2f} (target <= 1.15)")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
