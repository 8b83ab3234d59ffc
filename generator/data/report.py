"""The dataset report: what `modelgen inspect` shows and writes with --report."""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..errors import UsageError
from .listing import Note
from .scan import Dataset
from .split import Split


def grouped_notes(notes: Iterable[Note]) -> list[tuple[str, list[str | None]]]:
    """(text, the paths it is about) per distinct text, in first-seen order: a thousand
    CMYK files make one line, and no finding is left unsaid."""
    groups: dict[str, list[str | None]] = {}
    for note in notes:
        groups.setdefault(note.text, []).append(note.path)
    return list(groups.items())


def describe_group(text: str, paths: list[str | None]) -> str:
    named = [p for p in paths if p]
    if not named:
        return text
    if len(named) == 1:
        return f"{named[0]}: {text}"
    return f"{text}: {len(named)} files ({', '.join(named[:3])}{', …' if len(named) > 3 else ''})"


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
        "near_duplicate_groups": dataset.near_duplicate_groups,
        "problems": [
            {"path": s.relpath, "severity": "skipped", "problem": s.reason} for s in dataset.skipped
        ]
        + [{"path": None, "severity": "warning", "problem": w} for w in dataset.warnings]
        + [{"path": note.path, "severity": "note", "problem": note.text} for note in dataset.notes],
        "files": files,
    }


def check_report_path(report: Path, data: Path) -> None:
    """Refuse, before any work, a --report path modelgen must not write: in a missing
    folder, inside the data source (modelgen never writes there), or over a file that is not
    an earlier report (a user's file is never overwritten)."""
    target = report.resolve()
    if not target.parent.is_dir():
        raise UsageError(
            f"--report {report}: folder {target.parent} does not exist: create it first, or "
            "write the report elsewhere"
        )
    source = data.resolve()
    if source.is_dir() and target.is_relative_to(source):
        raise UsageError(
            f"--report {report} is inside the data source {data}, where modelgen never "
            "writes: write the report elsewhere"
        )
    if target.exists() and not _is_report(target):
        raise UsageError(
            f"--report {report} exists and is not a modelgen dataset report: choose another "
            "path, or move that file away first"
        )


def _is_report(path: Path) -> bool:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(document, dict) and {"fingerprint", "files", "counts"} <= set(document)


def write_report(summary: dict[str, Any], report: Path) -> None:
    """The report as JSON, written whole (a temporary file renamed over the target)."""
    temporary = report.with_name(f".{report.name}.{os.getpid()}.tmp")
    try:
        temporary.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        os.replace(temporary, report)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise UsageError(
            f"cannot write the report {report} ({exc.strerror or exc}): choose a writable path"
        ) from None
