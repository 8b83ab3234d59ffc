"""What a data source lists: every candidate file with its label or the reason it cannot be
used, and the notes about what was ignored; the rule every label must follow."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError
from ..resources import is_plain_relative

MAX_LABEL_LENGTH = 200
LABEL_RULE = (
    "a label is 1 to 200 characters with no control character or backslash; '/' may separate "
    "parts (as --label-depth 2 makes 'cats/black'), but no part may be empty, '.' or '..'"
)


@dataclass(frozen=True)
class Note:
    """A finding that does not stop the run: a converted file, an ignored file or folder."""

    path: str | None  # the file or folder it is about (relative to the source); None: all
    text: str

    def __str__(self) -> str:
        return f"{self.path}: {self.text}" if self.path else self.text


@dataclass(frozen=True)
class Entry:
    """A file the source names: its label, or why it cannot be used (problem)."""

    path: Path
    relpath: str
    label: str
    problem: str | None = None


@dataclass(frozen=True)
class Listing:
    root: Path  # what relative paths are relative to
    kind: str  # "folder", "manifest" or "zip"
    entries: list[Entry]
    notes: list[Note]  # source-level findings: ignored files, unreadable folders, loops
    folders: tuple[str, ...] = ()  # label folders found, with or without images


def check_label(label: str, where: str) -> str:
    """The label, stripped of surrounding spaces, or DataError naming where it was found.

    Labels are data, never paths (copied files are named by content hash), but a label that
    looks like a path or hides control characters is almost always a mistake in the source."""
    label = label.strip()
    if 0 < len(label) <= MAX_LABEL_LENGTH and is_plain_relative(label):
        return label
    raise DataError(f"{where}: label {label!r} is refused ({LABEL_RULE}): rename it")
