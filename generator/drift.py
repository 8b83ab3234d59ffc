"""`modelgen check`: has anything moved since the project was last generated? The data (by
content hash and label, never by name or time), the templates (the saved context rendered
with this modelgen), conflict markers left from a merge, and generated files edited.
Reads only; a CI gate like `cruft check`, on the data too."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .data.changes import Changes, diff
from .errors import UsageError
from .merge import has_markers, is_text
from .regenerate import TEMPLATE, Project, saved_context
from .render import render_tree, sha256
from .resources import inside
from .transaction import pending


@dataclass(frozen=True)
class Drift:
    data: Changes | None  # None: the data source was not scanned
    templates: list[str]  # generated files a render with this modelgen's templates changes
    markers: list[str]  # files with conflict markers left in them
    edited: list[str]  # generated files whose content is not what modelgen wrote
    deleted: list[str]  # generated files removed by the user (they stay removed: not drift)
    interrupted: bool = False  # a killed retrain/update left files to roll back
    notes: list[str] = field(default_factory=list)

    def reasons(self, *, count_edits: bool = True) -> list[str]:
        found = []
        if self.data is not None and not self.data.empty:
            found.append(f"data changed: {self.data.describe()}")
        if self.templates:
            found.append(
                f"templates newer: `modelgen update` would change {len(self.templates)} "
                f"file{'' if len(self.templates) == 1 else 's'} "
                f"({', '.join(self.templates[:5])}{' …' if len(self.templates) > 5 else ''})"
            )
        if self.markers:
            found.append(f"conflict markers left in {', '.join(self.markers)}")
        if self.edited and count_edits:
            found.append(f"generated files edited: {', '.join(self.edited)}")
        if self.interrupted:
            found.append("an interrupted retrain or update: run `modelgen update` to roll it back")
        return found

    def to_dict(self, *, count_edits: bool = True) -> dict[str, Any]:
        return {
            "up_to_date": not self.reasons(count_edits=count_edits),
            "reasons": self.reasons(count_edits=count_edits),
            "data": self.data.to_dict() if self.data else None,
            "templates_newer": self.templates,
            "conflict_markers": self.markers,
            "edited": self.edited,
            "deleted": self.deleted,
            "interrupted": self.interrupted,
            "notes": self.notes,
        }


def check(project: Project, on_progress: Callable[[int, int], None] | None = None) -> Drift:
    """Every kind of drift in project, nothing written."""
    from .data import check_and_split

    spec = project.spec
    history = spec.history
    dataset, _ = check_and_split(
        spec.source,
        seed=spec.answers.seed,
        previous=history.splits if history else None,
        on_progress=on_progress,
    )
    data = diff(history.files if history else (), dataset)
    generated = project.generated
    notes: list[str] = []
    try:
        rendered = render_tree(TEMPLATE, saved_context(project).as_mapping())
        templates = sorted(
            rel
            for rel in set(rendered) | (set(generated) - set(project.artifacts))
            if sha256(rendered.get(rel, b"")) != generated.get(rel)
        )
    except UsageError as exc:
        templates, notes = [], [f"templates not compared: {exc}"]
    markers, edited, deleted = [], [], []
    for rel, digest in sorted(generated.items()):
        path = inside(project.root, rel)
        if not path.is_file():
            deleted.append(rel)
            continue
        content = path.read_bytes()
        if sha256(content) != digest:
            edited.append(rel)
            if is_text(content) and has_markers(content):
                markers.append(rel)
    return Drift(data, templates, markers, edited, deleted, bool(pending(project.root)), notes)
