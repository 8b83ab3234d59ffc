"""Scan time and peak memory of the dataset doctor for 5,000 and 50,000 small images.

    python benchmarks/bench_scan.py [--seeds 0 1 2] [--counts 5000 50000] [--size 32]
        [--workers 2] [--json OUT] [--quick]

For every seed and count a folder of PNGs (SIZE px, five classes) is generated from that seed,
then scanned in a fresh process per worker count (peak RSS from getrusage). Memory must not
grow with the count beyond the small per-image record (path, hash, size, thumbnail).
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

from _common import Recorder, add_common_arguments, fmt, seeds_of, stats  # noqa: E402


def child(spec: dict[str, Any]) -> None:
    """One scan in this process; prints one JSON line."""
    from generator.data import SourceOptions, scan_source, split_dataset

    start = time.monotonic()
    dataset = scan_source(
        SourceOptions(Path(spec["data"])), min_images_per_class=10, workers=spec["workers"]
    )
    seconds = time.monotonic() - start
    split_dataset(dataset, seed=42, validation_fraction=0.15, test_fraction=0.15)
    usage = resource.getrusage
    row = {
        "images": len(dataset.records),
        "skipped": len(dataset.skipped),
        "near_duplicate_groups": dataset.near_duplicate_groups,
        "scan_seconds": round(seconds, 3),
        "images_per_second": round(len(dataset.records) / seconds),
        "peak_rss_mb": round(usage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "workers_peak_rss_mb": round(usage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024),
    }
    print(json.dumps(row), flush=True)


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    rows = []
    for images, workers in sorted({(r["count"], r["workers"]) for r in runs}):
        group = [r for r in runs if r["count"] == images and r["workers"] == workers]
        rows.append(
            {
                "images": images,
                "workers": workers,
                "runs": len(group),
                "scan_seconds": stats(r["scan_seconds"] for r in group),
                "images_per_second": stats(r["images_per_second"] for r in group),
                "peak_rss_mb": stats(r["peak_rss_mb"] for r in group),
                "workers_peak_rss_mb": stats(r["workers_peak_rss_mb"] for r in group),
            }
        )
    return {"rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_arguments(parser, weights=False)
    parser.add_argument("--counts", type=int, nargs="+", default=None)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[os.cpu_count() or 1], help="one or more"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(json.loads(args.child))
        return
    from _data import make_folder

    seeds = seeds_of(args)
    counts = args.counts or ([200, 1000] if args.quick else [5000, 50000])
    record = Recorder("bench_scan", args, seeds)
    runs: list[dict[str, Any]] = []
    print(f"counts {counts}; workers {args.workers}; seeds {seeds}; {args.size} px", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-scan-") as tmp:
        for seed in seeds:
            for images in counts:
                started = time.monotonic()
                folder = Path(tmp) / f"data-{images}-{seed}"
                data = make_folder(folder, images, size=args.size, seed=seed * 1_000_003 + images)
                made = time.monotonic() - started
                for workers in args.workers:
                    spec = {"data": str(data), "workers": workers}
                    done = subprocess.run(
                        [sys.executable, __file__, "--child", json.dumps(spec)],
                        capture_output=True,
                        text=True,
                    )
                    if done.returncode:
                        sys.exit(f"the {images}-image scan failed:\n{done.stderr[-3000:]}")
                    row = json.loads(done.stdout.strip().splitlines()[-1])
                    row |= {
                        "count": images,
                        "seed": seed,
                        "workers": workers,
                        "generated_in_seconds": round(made, 1),
                    }
                    runs.append(row)
                    print(json.dumps(row), flush=True)
                shutil.rmtree(folder, ignore_errors=True)
    summary = summarise(runs)
    print("\n== summary (mean ± std (min–max, n))")
    for row in summary["rows"]:
        print(
            f"  {row['images']} images, {row['workers']} workers: scan "
            f"{fmt(row['scan_seconds'], 2, 's')}, peak RSS {fmt(row['peak_rss_mb'], 0, ' MB')}"
        )
    record["size_px"] = args.size
    record["runs"] = runs
    record["summary"] = summary
    record.write()


if __name__ == "__main__":
    main()
