"""The dataset report: what `modelgen inspect` shows and writes with --report."""

from __future__ import annotations

from collections import Counter
from typing import Any

from .scan import Dataset
from .split import Split


def dataset_report(dataset: Dataset, split: Split) -> dict[str, Any]:
    """A JSON-ready report: one entry per file found, with its split or why it is skipped."""
    split_of = split.split_of()
    files: list[dict[str, Any]] = [
        {
            "path": r.relpath,
            "label": r.label,
            "sha256": r.sha256,
            "split": split_of[r.relpath],
            "status": "ok",
            "width": r.width,
            "height": r.height,
            "mode": r.mode,
        }
        for r in dataset.records
    ]
    files += [
        {
            "path": s.relpath,
            "label": s.relpath.split("/")[0],
            "sha256": None,
            "split": None,
            "status": s.reason,
        }
        for s in dataset.skipped
    ]
    files.sort(key=lambda f: f["path"])
    return {
        "root": str(dataset.root),
        "fingerprint": dataset.fingerprint,
        "labels": list(dataset.labels),
        "counts": dataset.counts,
        "split": split.sizes(),
        "modes": dict(sorted(Counter(r.mode for r in dataset.records).items())),
        "sizes": {
            "min": [min(r.width for r in dataset.records), min(r.height for r in dataset.records)],
            "max": [max(r.width for r in dataset.records), max(r.height for r in dataset.records)],
        },
        "problems": [{"path": s.relpath, "problem": s.reason} for s in dataset.skipped]
        + [{"path": None, "problem": note} for note in dataset.notes],
        "files": files,
    }
