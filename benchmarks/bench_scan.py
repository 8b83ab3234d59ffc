"""Scan time and peak memory of the dataset doctor for 5,000 and 50,000 small images.

    python benchmarks/bench_scan.py [--counts 5000 50000] [--size 32] [--workers 2]

Each count is scanned in a fresh process (peak RSS from getrusage); the images are made
first (PNG, SIZE px, five classes). Memory must not grow with the count beyond the small
per-image record (path, hash, size, thumbnail).
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

CHILD = """
import json, resource, sys, time
sys.path.insert(0, {repo!r})
from pathlib import Path
from generator.data import scan_source, split_dataset
start = time.monotonic()
dataset = scan_source(Path({data!r}), min_images_per_class=10, workers={workers})
seconds = time.monotonic() - start
split_dataset(dataset, seed=42, validation_fraction=0.15, test_fraction=0.15)
print(json.dumps({{"images": len(dataset.records), "skipped": len(dataset.skipped),
                  "near_duplicate_groups": dataset.near_duplicate_groups,
                  "scan_seconds": round(seconds, 1),
                  "images_per_second": round(len(dataset.records) / seconds),
                  "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                  "workers_peak_rss_mb": round(
                      resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)}}))
"""


def main() -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from _data import make_folder

    parser = argparse.ArgumentParser()
    parser.add_argument("--counts", type=int, nargs="+", default=[5000, 50000])
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-scan-") as tmp:
        rows = []
        for count in args.counts:
            started = time.monotonic()
            data = make_folder(Path(tmp) / f"data-{count}", count, size=args.size, seed=count)
            made = time.monotonic() - started
            code = CHILD.format(repo=str(REPO), data=str(data), workers=args.workers)
            done = subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, check=True
            )
            row = json.loads(done.stdout.strip().splitlines()[-1])
            row["generated_in_seconds"] = round(made, 1)
            rows.append(row)
            print(json.dumps(row), flush=True)
        small, large = rows[0], rows[-1]
        print(
            f"{large['images'] / small['images']:.0f}x the images: scan time "
            f"{large['scan_seconds'] / small['scan_seconds']:.1f}x, peak RSS "
            f"{small['peak_rss_mb']} -> {large['peak_rss_mb']} MB "
            f"({large['peak_rss_mb'] / small['peak_rss_mb']:.2f}x)"
        )


if __name__ == "__main__":
    main()
