"""What changed in a data source since a project was generated (from its modelgen.toml)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .scan import Dataset


@dataclass(frozen=True)
class Changes:
    added: dict[str, int]  # per class
    removed: dict[str, int]
    relabelled: tuple[tuple[str, str, str], ...]  # (path, old label, new label)
    modified: tuple[str, ...]  # same path, new content
    new_classes: tuple[str, ...] = ()
    vanished_classes: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.relabelled or self.modified)

    def to_dict(self) -> dict[str, Any]:
        return {
            "added": self.added,
            "removed": self.removed,
            "relabelled": [list(row) for row in self.relabelled],
            "modified": list(self.modified),
            "new_classes": list(self.new_classes),
            "vanished_classes": list(self.vanished_classes),
        }

    def describe(self) -> str:
        """One line: counts per class added and removed, relabellings by pair, in-place
        changes, new and vanished classes."""
        if self.empty:
            return "no change since the last run"
        parts = []
        for word, counts in (("added", self.added), ("removed", self.removed)):
            if counts:
                total = sum(counts.values())
                per = ", ".join(f"{label} {n}" for label, n in sorted(counts.items()))
                parts.append(f"{total} {word} ({per})")
        if self.relabelled:
            moves = Counter((a, b) for _, a, b in self.relabelled)
            shown = ", ".join(f"{a} -> {b} {n}" for (a, b), n in sorted(moves.items())[:8])
            more = f" and {len(moves) - 8} more" if len(moves) > 8 else ""
            parts.append(f"{len(self.relabelled)} relabelled ({shown}{more})")
        if self.modified:
            parts.append(f"{len(self.modified)} changed in place")
        if self.new_classes:
            parts.append(f"new classes: {', '.join(self.new_classes)}")
        if self.vanished_classes:
            parts.append(f"classes gone: {', '.join(self.vanished_classes)}")
        return "; ".join(parts)


def diff(previous: Iterable[Mapping[str, Any]], dataset: Dataset) -> Changes:
    """Compare the file list saved in modelgen.toml ([data] files) with a fresh scan.

    An image is followed by its content hash, so a moved or renamed file is neither added
    nor removed; a hash under a new label is a relabelling."""
    old = {str(f["sha256"]): (str(f["path"]), str(f["label"])) for f in previous}
    new = {r.sha256: (r.relpath, r.label) for r in dataset.records}
    old_paths = {path: sha for sha, (path, _) in old.items()}
    new_paths = {path for path, _ in new.values()}
    # A file changed in place is neither added nor removed: it is listed as modified.
    added = Counter(
        label for sha, (path, label) in new.items() if sha not in old and path not in old_paths
    )
    removed = Counter(
        label for sha, (path, label) in old.items() if sha not in new and path not in new_paths
    )
    relabelled = tuple(
        sorted(
            (new[sha][0], old[sha][1], new[sha][1])
            for sha in new.keys() & old.keys()
            if old[sha][1] != new[sha][1]
        )
    )
    modified = tuple(
        sorted(
            path
            for sha, (path, _) in new.items()
            if path in old_paths and old_paths[path] != sha and sha not in old
        )
    )
    before = {label for _, label in old.values()}
    after = {label for _, label in new.values()}
    return Changes(
        dict(added),
        dict(removed),
        relabelled,
        modified,
        tuple(sorted(after - before)),
        tuple(sorted(before - after)),
    )
