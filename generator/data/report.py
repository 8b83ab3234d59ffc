"""The dataset report: what `modelgen inspect` shows and writes with --report."""

from __future__ import annotations

from collections import Counter
from typing import Any

from .scan import Dataset
from .split import Split


def _note(note: str) -> dict[str, Any]:
    """'path: what happened' notes name their file; source-level notes may not."""
    path, sep, rest = note.partition(": ")
    if sep and " " not in path:
        return {"path": path, "severity": "note", "problem": rest}
    return {"path": None, "severity": "note", "problem": note}


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
            "label": s.label or None,
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
        "source": dataset.kind,
        "identifiers": dataset.identifiers,
        "near_duplicate_groups": dataset.near_duplicate_groups,
        "problems": [
            {"path": s.relpath, "severity": "skipped", "problem": s.reason} for s in dataset.skipped
        ]
        + [{"path": None, "severity": "warning", "problem": w} for w in dataset.warnings]
        + [_note(note) for note in dataset.notes],
        "files": files,
    }
