"""Regenerating a project without losing the user's edits: per generated file, a three-way
decision between the pristine render modelgen kept from the last generation (the base), the
file as the project has it now (yours) and the new render (new).

- yours == base: the user did not touch it, the new render is written;
- new == base: modelgen has nothing new for it, the user's file is kept;
- both changed, text: a whole-file three-way merge (merge3), conflicts as standard markers;
- both changed, binary: never merged, the user's file is kept and the new one written beside;
- deleted by the user: stays deleted; no longer produced: removed only when unedited;
- a path modelgen never generated before but the user already has: never overwritten.

The base is read from modelgen's own blob store (`.modelgen/base/`), never rebuilt by
replaying an old modelgen version, so neither git nor the old version is needed.
"""

from __future__ import annotations

import difflib
import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import merge3

from .render import sha256
from .resources import inside

YOURS = "yours"
NEW = "new render"
BESIDE = ".modelgen-new"  # suffix of a new binary written beside the user's edited one


class Action(enum.Enum):
    CREATE = "created"  # new file
    UPDATE = "updated"  # unedited by you: the new render
    MERGE = "merged"  # both changed: merged cleanly
    CONFLICT = "conflict"  # both changed: markers to resolve (or a binary written beside)
    KEEP = "kept yours"  # modelgen has nothing new for it: your file as it is
    SAME = "unchanged"  # nothing to do
    DELETED = "kept deleted"  # you deleted it: it stays deleted
    REMOVE = "removed"  # modelgen no longer produces it, and you never edited it
    STALE = "kept, no longer generated"  # no longer produced, but edited by you: left alone


WRITES = (Action.CREATE, Action.UPDATE, Action.MERGE, Action.CONFLICT)


@dataclass(frozen=True)
class FileChange:
    path: str
    action: Action
    content: bytes | None = None  # what the project's file becomes, for WRITES
    beside: bytes | None = None  # a binary conflict: the new file, written to path + BESIDE
    note: str = ""
    conflicts: int = 0  # conflict regions in the merged text
    base: bytes | None = None  # the sides of a text conflict, for git's index (no base: None)
    yours: bytes | None = None
    new: bytes | None = None


@dataclass(frozen=True)
class MergePlan:
    changes: tuple[FileChange, ...]

    def of(self, *actions: Action) -> list[FileChange]:
        return [c for c in self.changes if c.action in actions]

    @property
    def conflicts(self) -> list[FileChange]:
        return self.of(Action.CONFLICT)

    @property
    def writes(self) -> bool:
        return any(c.action in WRITES or c.action is Action.REMOVE for c in self.changes)

    def counts(self) -> dict[str, int]:
        found: dict[str, int] = {}
        for change in self.changes:
            found[change.action.value] = found.get(change.action.value, 0) + 1
        return found


def is_text(content: bytes) -> bool:
    """UTF-8 without NUL bytes: merged line by line. Anything else is binary: replaced only."""
    if b"\0" in content:
        return False
    try:
        content.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


class _Matcher(difflib.SequenceMatcher[str]):
    """difflib without its "popular line" heuristic, which on files of 200+ lines treats
    frequent lines (blank ones, closing brackets) as junk and misaligns the merge."""

    def __init__(
        self,
        isjunk: Callable[[str], bool] | None = None,
        a: Sequence[str] = "",
        b: Sequence[str] = "",
        autojunk: bool = False,
    ) -> None:
        super().__init__(isjunk, a, b, autojunk=False)


def _lines(content: bytes) -> list[str]:
    """Lines split on \\n only (not on the other characters str.splitlines takes for line
    ends), each ending in \\n: a missing final newline is added, as git merges do, so that
    a marker never lands on the end of a line of text."""
    text = content.decode("utf-8")
    if text and not text.endswith("\n"):
        text += "\n"
    return [line + "\n" for line in text.split("\n")[:-1]]


def merge_text(base: bytes, yours: bytes, new: bytes) -> tuple[bytes, int]:
    """A whole-file three-way merge: (result, number of conflict regions). Conflicts are
    marked as git marks them: <<<<<<< yours / ======= / >>>>>>> new render."""
    sides = [_lines(side) for side in (base, yours, new)]
    # difflib's Match is a tuple subclass: the protocol's List[Tuple] is met at run time.
    merger = merge3.Merge3(
        sides[0], sides[1], sides[2], sequence_matcher=_Matcher  # type: ignore[arg-type]
    )
    conflicts = sum(1 for region in merger.merge_regions() if region[0] == "conflict")
    merged = "".join(merger.merge_lines(name_a=YOURS, name_b=NEW))
    return merged.encode("utf-8"), conflicts


def plan_merge(
    project: Path,
    base: Mapping[str, str],
    new: Mapping[str, bytes],
    blob: Callable[[str], bytes | None],
    *,
    carried: Mapping[str, str] | None = None,
) -> MergePlan:
    """What regenerating does to each file of project.

    base: {path: sha256} of the last pristine render (modelgen.toml's [generated] files);
    new: the new render; blob(sha256): the pristine content of a base file, None if lost;
    carried: {path: sha256} of generated files the new render leaves as they were (the model
    and its data under `update`), decided without reading them."""
    carried = carried or {}
    changes: list[FileChange] = []
    for rel in sorted(set(base) | set(new) | set(carried)):
        target = inside(project, rel)
        yours = target.read_bytes() if target.is_file() else None
        if yours is None and rel in new and (target.exists() or target.is_symlink()):
            changes.append(
                FileChange(
                    rel,
                    Action.CONFLICT,
                    beside=new[rel],
                    note=f"a folder of yours is there: the new file is written to {rel}{BESIDE}",
                )
            )
        elif rel in carried:
            changes.append(_carried(rel, yours, base.get(rel), carried[rel]))
        elif rel not in new:
            changes.append(_dropped(rel, yours, base[rel]))
        else:
            changes.append(_decide(rel, yours, base.get(rel), new[rel], blob))
    return MergePlan(tuple(changes))


def _carried(rel: str, yours: bytes | None, old: str | None, kept: str) -> FileChange:
    if yours is None:
        return FileChange(rel, Action.DELETED if old is not None else Action.SAME)
    return FileChange(rel, Action.SAME if sha256(yours) == kept else Action.KEEP)


def _dropped(rel: str, yours: bytes | None, old: str) -> FileChange:
    if yours is None:
        return FileChange(rel, Action.SAME, note="already gone")
    if sha256(yours) == old:
        return FileChange(rel, Action.REMOVE)
    return FileChange(rel, Action.STALE, note="you edited it; delete it yourself if unused")


def _decide(
    rel: str,
    yours: bytes | None,
    old: str | None,
    new: bytes,
    blob: Callable[[str], bytes | None],
) -> FileChange:
    if yours is None:
        if old is None:
            return FileChange(rel, Action.CREATE, new)
        return FileChange(rel, Action.DELETED, note="you deleted it")
    mine, theirs = sha256(yours), sha256(new)
    if mine == theirs:
        return FileChange(rel, Action.SAME)
    if old is not None and mine == old:
        return FileChange(rel, Action.UPDATE, new)
    if old is not None and theirs == old:
        return FileChange(rel, Action.KEEP)
    # Both sides changed it (or both added it): merge text, never binaries.
    if not (is_text(yours) and is_text(new)):
        return FileChange(
            rel,
            Action.CONFLICT,
            beside=new,
            note=f"binary: yours kept, the new one written to {rel}{BESIDE}",
        )
    original = blob(old) if old is not None else None
    note = ""
    if old is None:
        note = "you added a file where modelgen now generates one"
    elif original is None or not is_text(original):
        original, note = None, "the last render was not kept: merged as if both sides added it"
    merged, conflicts = merge_text(original or b"", yours, new)
    broken = None if conflicts else unparsable(rel, merged)
    if broken:
        note = f"merged without overlap, but the result {broken}: check it"
    if conflicts or broken:
        return FileChange(
            rel,
            Action.CONFLICT,
            merged,
            note=note,
            conflicts=conflicts,
            base=original,
            yours=yours,
            new=new,
        )
    return FileChange(rel, Action.MERGE, merged, note=note)


def unparsable(rel: str, content: bytes) -> str | None:
    """Why a cleanly merged file no longer parses (both sides added the same TOML table, a
    Python block lost its shape), or None. Only Python, TOML and JSON are checked."""
    import json
    import tomllib

    text = content.decode("utf-8")
    try:
        if rel.endswith(".py"):
            compile(text, rel, "exec")
        elif rel.endswith(".toml"):
            tomllib.loads(text)
        elif rel.endswith(".json"):
            json.loads(text)
    except (SyntaxError, ValueError) as exc:  # TOMLDecodeError and JSONDecodeError too
        kind = {".py": "Python", ".toml": "TOML", ".json": "JSON"}[Path(rel).suffix]
        return f"is not valid {kind} ({str(exc).splitlines()[0]})"
    return None


MARKERS = (b"<<<<<<< ", b">>>>>>> ")


def has_markers(content: bytes) -> bool:
    """Conflict markers left in a text file (at the start of a line)."""
    return any(
        line.startswith(MARKERS[0]) or line.startswith(MARKERS[1]) for line in content.splitlines()
    )
