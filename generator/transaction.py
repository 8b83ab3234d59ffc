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
import glob
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

from .errors import OutputError
from .render import finish_before_interrupt, remove_empty_parents
from .resources import inside

JOURNAL = "journal.json"
TAG = "modelgen-staging"  # a file marking a folder as modelgen's staging area


def _prefix(project: Path) -> str:
    return f".{project.resolve().name}.modelgen-"


def _staging_folders(project: Path) -> list[Path]:
    parent = project.resolve().parent
    pattern = glob.escape(_prefix(project)) + "*"
    return sorted(p for p in parent.glob(pattern) if p.is_dir() and (p / TAG).is_file())


@contextlib.contextmanager
def locked(project: Path) -> Iterator[None]:
    """One modelgen run at a time on a project: a lock file beside it (not in it)."""
    import fcntl

    project = project.resolve()
    path = project.parent / f".{project.name}.modelgen.lock"
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OutputError(
                f"another modelgen run is working on {project}: wait for it to finish"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def pending(project: Path) -> list[Path]:
    """Staging folders left by an interrupted run on project (swap journals included)."""
    return _staging_folders(project)


def recover(project: Path) -> bool:
    """Undo what an interrupted run left: put back the files of a swap that did not finish,
    remove its staging folders. True when a half-done swap was rolled back. Safe to run
    again if it is itself interrupted."""
    rolled = False
    for staging in _staging_folders(project):
        if (staging / JOURNAL).is_file():
            _roll_back(project.resolve(), staging)
            rolled = True
        shutil.rmtree(staging)
    return rolled


def _roll_back(project: Path, staging: Path) -> None:
    recorded = json.loads((staging / JOURNAL).read_text(encoding="utf-8"))
    writes, existed = set(recorded["writes"]), set(recorded["existed"])

    def created(rel: str) -> bool:  # moved in by the swap, where nothing was before
        return rel in writes and rel not in existed and not (staging / "new" / rel).exists()

    for rel in reversed([*recorded["writes"], *recorded["removes"]]):
        target = inside(project, rel)
        old = staging / "old" / rel
        if old.exists() or old.is_symlink():
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(old, target)
        elif created(rel) and target.is_file():
            target.unlink()  # created by the swap: it did not exist before


@contextlib.contextmanager
def staged(project: Path) -> Iterator[Path]:
    """A staging folder beside project, removed afterwards whatever happens."""
    project = project.resolve()
    staging = Path(tempfile.mkdtemp(prefix=_prefix(project), dir=project.parent))
    (staging / TAG).write_text("modelgen writes this project's changes here first\n")
    try:
        yield staging
    finally:
        if staging.exists() and not (staging / JOURNAL).exists():  # else: recover() needs it
            shutil.rmtree(staging)


def apply(project: Path, writes: Mapping[str, bytes], removes: list[str]) -> None:
    """Replace, create and remove files of project as one change (see the module doc)."""
    project = project.resolve()
    _check_targets(project, [*writes, *removes])
    with staged(project) as staging:
        for rel, content in writes.items():
            path = inside(staging / "new", rel)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
            target = inside(project, rel)
            if target.is_file():
                shutil.copymode(target, path)  # keep an executable bit the user set
        order = [*writes, *removes]
        existed = [rel for rel in writes if inside(project, rel).is_file()]
        _write_journal(staging, {"writes": list(writes), "removes": removes, "existed": existed})
        with finish_before_interrupt():
            try:
                for rel in order:
                    target = inside(project, rel)
                    if target.exists() or target.is_symlink():
                        old = staging / "old" / rel
                        old.parent.mkdir(parents=True, exist_ok=True)
                        os.replace(target, old)
                    if rel in writes:
                        target.parent.mkdir(parents=True, exist_ok=True)
                        os.replace(staging / "new" / rel, target)
            except BaseException:
                _roll_back(project, staging)  # an error mid-swap: back as it was
                (staging / JOURNAL).unlink()
                raise
            (staging / JOURNAL).unlink()  # done: nothing to roll back
        for rel in removes:
            remove_empty_parents(project, inside(project, rel))


def _check_targets(project: Path, paths: list[str]) -> None:
    """Refuse before anything moves when a path to write is a folder, or runs through a
    file: os.replace would fail there, or take a folder of the user's with it."""
    for rel in paths:
        target = inside(project, rel)
        if target.is_dir() and not target.is_symlink():
            raise OutputError(
                f"{target} is a folder where modelgen writes a file: move it away and run "
                "again; nothing was changed"
            )
        for parent in target.parents:
            if parent == project:
                break
            if parent.exists() and not parent.is_dir():
                raise OutputError(
                    f"{parent} is a file where modelgen needs a folder (for {rel}): move it "
                    "away and run again; nothing was changed"
                )


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


def mark_unmerged(project: Path, sides: Mapping[str, tuple[bytes | None, bytes, bytes]]) -> bool:
    """In a git work tree, record each conflicted file as unmerged (index stages 1, 2, 3:
    base, yours, new render; no stage 1 when there was no base), as `git merge` leaves one:
    `git commit` refuses until it is resolved and added. False when project is not in a git
    work tree."""
    root = git_root(project)
    if root is None or not sides:
        return False
    lines = []
    for rel, (base, yours, new) in sorted(sides.items()):
        target = project.resolve() / rel
        path = target.relative_to(root).as_posix()
        mode = "100755" if target.stat().st_mode & 0o111 else "100644"
        lines.append(f"0 {'0' * 40}\t{path}")  # drop the staged entry first
        for stage, content in enumerate((base, yours, new), start=1):
            if content is None:
                continue
            blob = subprocess.run(
                ["git", "hash-object", "-w", "--stdin"],
                cwd=root,
                input=content,
                capture_output=True,
                check=True,
            ).stdout.decode()
            lines.append(f"{mode} {blob.strip()} {stage}\t{path}")
    subprocess.run(
        ["git", "update-index", "--index-info"],
        cwd=root,
        input="\n".join(lines) + "\n",
        text=True,
        capture_output=True,
        check=True,
    )
    return True
