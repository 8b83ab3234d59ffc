"""Peak memory of a search on 1,000 vs 5,000 images: it must not grow with the image count.

    python benchmarks/bench_memory.py [--counts 1000 5000] [--budget 240] [--weights PATH]

Each count runs in its own process (peak RSS from getrusage), cold cache, same budget.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).parent))
SHARED = REPO.parent / "shared" / "weights" / "mobilenet_v2_1.0_no_top.h5"

CHILD = """
import json, os, resource, sys, time
from pathlib import Path
sys.path.insert(0, {repo!r})
from generator.data import scan_folder, split_dataset
from generator.progress import NullReporter
from generator.train import TrainOptions, train
start = time.monotonic()
dataset = scan_folder(Path({data!r}), min_images_per_class=10)
split = split_dataset(dataset, seed=42, validation_fraction=0.15, test_fraction=0.15)
result = train(split, dataset.labels, TrainOptions(time_budget={budget}, weights={weights!r},
               cache_root=Path({cache!r})), NullReporter())
print(json.dumps({{"seconds": round(time.monotonic() - start, 1),
                  "winner": result.winner.name, "trials": len(result.leaderboard),
                  "families": [f.name for f in result.plan.families],
                  "peak_rss_mb": round(
                      resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}}))
"""


def main() -> None:
    from _data import make_folder

    parser = argparse.ArgumentParser()
    parser.add_argument("--counts", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--budget", type=float, default=240)
    parser.add_argument("--weights", default=str(SHARED) if SHARED.is_file() else "auto")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-memory-"))
    env = dict(os.environ, KERAS_HOME=str(work / "keras"))
    rows = []
    for count in args.counts:
        data = make_folder(work / f"data-{count}", count)
        code = CHILD.format(
            repo=str(REPO),
            data=str(data),
            budget=args.budget,
            weights=args.weights,
            cache=str(work / f"cache-{count}"),
        )
        started = time.monotonic()
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
        if done.returncode:
            sys.exit(f"the {count}-image run failed:\n{done.stderr[-3000:]}")
        row = json.loads(done.stdout.strip().splitlines()[-1]) | {"images": count}
        row["wall_seconds"] = round(time.monotonic() - started, 1)
        rows.append(row)
        print(json.dumps(row), flush=True)
    first, last = rows[0], rows[-1]
    print(
        f"peak RSS {first['images']} images: {first['peak_rss_mb']} MB; "
        f"{last['images']} images: {last['peak_rss_mb']} MB; "
        f"ratio {last['peak_rss_mb'] / first['peak_rss_mb']:.2f} for "
        f"{last['images'] / first['images']:.0f}x the images"
    )


if __name__ == "__main__":
    main()
