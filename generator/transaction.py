"""Changing files of an existing project all together or not at all.

Everything is written first to a staging folder beside the project (same file system). Then
a journal is written, and each file is swapped in with `os.replace`, the old one moved into
the staging folder. Ctrl-C is held while that happens. If the process is killed in those
milliseconds, the journal is still there: the next modelgen command on the project puts the
old files back (`recover`) before doing anything else. A run killed before the journal was
written leaves the project untouched and only a staging folder, which `recover` removes.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

from .render import finish_before_interrupt, remove_empty_parents
from .resources import inside

JOURNAL = "journal.json"
TAG = "modelgen-staging"  # a file marking a folder as modelgen's staging area


def _prefix(project: Path) -> str:
    return f".{project.name}.modelgen-"


def _staging_folders(project: Path) -> list[Path]:
    parent = project.resolve().parent
    return sorted(
        p for p in parent.glob(_prefix(project) + "*") if p.is_dir() and (p / TAG).is_file()
    )


def pending(project: Path) -> list[Path]:
    """Staging folders left by an interrupted run on project (swap journals included)."""
    return _staging_folders(project)


def recover(project: Path) -> bool:
    """Undo what an interrupted run left: put back the files of a swap that did not finish,
    remove its staging folders. True when a half-done swap was rolled back."""
    rolled = False
    for staging in _staging_folders(project):
        journal = staging / JOURNAL
        if journal.is_file():
            recorded = json.loads(journal.read_text(encoding="utf-8"))
            writes = set(recorded["writes"])
            for rel in reversed([*recorded["writes"], *recorded["removes"]]):
                target = inside(project, rel)
                old = staging / "old" / rel
                if old.exists() or old.is_symlink():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(old, target)
                elif rel in writes and not (staging / "new" / rel).exists() and target.is_file():
                    target.unlink()  # created by the swap: it did not exist before
            rolled = True
        shutil.rmtree(staging)
    return rolled


@contextlib.contextmanager
def staged(project: Path) -> Iterator[Path]:
    """A staging folder beside project, removed afterwards whatever happens."""
    project = project.resolve()
    staging = Path(tempfile.mkdtemp(prefix=_prefix(project), dir=project.parent))
    (staging / TAG).write_text("modelgen writes this project's changes here first\n")
    try:
        yield staging
    finally:
        if staging.exists():
            shutil.rmtree(staging)


def apply(project: Path, writes: Mapping[str, bytes], removes: list[str]) -> None:
    """Replace, create and remove files of project as one change (see the module doc)."""
    project = project.resolve()
    with staged(project) as staging:
        for rel, content in writes.items():
            path = inside(staging / "new", rel)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
            target = inside(project, rel)
            if target.is_file():
                shutil.copymode(target, path)  # keep an executable bit the user set
        order = [*writes, *removes]
        _write_journal(staging, {"writes": list(writes), "removes": removes})
        with finish_before_interrupt():
            for rel in order:
                target = inside(project, rel)
                if target.exists() or target.is_symlink():
                    old = staging / "old" / rel
                    old.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(target, old)
                if rel in writes:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(staging / "new" / rel, target)
            (staging / JOURNAL).unlink()  # done: nothing to roll back
        for rel in removes:
            remove_empty_parents(project, inside(project, rel))


def _write_journal(staging: Path, entries: dict[str, list[str]]) -> None:
    temporary = staging / (JOURNAL + ".tmp")
    with temporary.open("w", encoding="utf-8") as handle:
        json.dump(entries, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, staging / JOURNAL)


def git_root(project: Path) -> Path | None:
    """The work tree project is in, when git is installed and it is in one."""
    if shutil.which("git") is None:
        return None
    done = subprocess.run(
        ["git", "rev-parse", "--show-toplevel"],
        cwd=project,
        capture_output=True,
        text=True,
    )
    return Path(done.stdout.strip()).resolve() if done.returncode == 0 else None


def mark_unmerged(project: Path, sides: Mapping[str, tuple[bytes, bytes, bytes]]) -> bool:
    """In a git work tree, record each conflicted file as unmerged (index stages 1, 2, 3:
    base, yours, new render), as `git merge` leaves one: `git commit` refuses until it is
    resolved and added. False when project is not in a git work tree."""
    root = git_root(project)
    if root is None or not sides:
        return False
    lines = []
    for rel, (base, yours, new) in sorted(sides.items()):
        path = (project.resolve() / rel).relative_to(root).as_posix()
        lines.append(f"0 {'0' * 40}\t{path}")  # drop the staged entry first
        for stage, content in enumerate((base, yours, new), start=1):
            blob = subprocess.run(
                ["git", "hash-object", "-w", "--stdin"],
                cwd=root,
                input=content,
                capture_output=True,
                check=True,
            ).stdout.decode()
            lines.append(f"100644 {blob.strip()} {stage}\t{path}")
    subprocess.run(
        ["git", "update-index", "--index-info"],
        cwd=root,
        input="\n".join(lines) + "\n",
        text=True,
        capture_output=True,
        check=True,
    )
    return True
