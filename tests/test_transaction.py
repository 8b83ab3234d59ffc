"""Swapping a project's files in all at once (generator.transaction): a run killed in the
middle of the swap is rolled back by the next command; conflicts become unmerged in git."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO

from generator import transaction
from generator.errors import OutputError
from generator.transaction import apply, mark_unmerged, pending, recover


def tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(root).parts
    }


def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    (root / "src").mkdir(parents=True)
    (root / "src" / "a.py").write_text("a = 1\n")
    (root / "README.md").write_text("hello\n")
    (root / "old.txt").write_text("old\n")
    return root


def test_apply_writes_creates_and_removes(tmp_path: Path) -> None:
    root = project(tmp_path)
    apply(root, {"src/a.py": b"a = 2\n", "new/b.py": b"b = 1\n"}, ["old.txt"])
    assert tree(root) == {"README.md": b"hello\n", "src/a.py": b"a = 2\n", "new/b.py": b"b = 1\n"}
    assert pending(root) == [] and list(tmp_path.iterdir()) == [root]


KILLED_SWAP = """
import os, sys
from pathlib import Path
from generator import transaction
from generator.errors import OutputError
real, calls = os.replace, []
def dying(src, dst):
    if "journal" not in str(src):  # the swap's own moves, counted
        if len(calls) == int(sys.argv[2]):
            os._exit(9)  # as kill -9: no finally, no cleanup
        calls.append(dst)
    real(src, dst)
transaction.os.replace = dying
transaction.apply(
    Path(sys.argv[1]), {"src/a.py": b"a = 2\\n", "new/b.py": b"b = 1\\n"}, ["old.txt"]
)
"""


@pytest.mark.parametrize("dies_after", [0, 1, 2, 3])  # of the swap's 4 moves
def test_a_swap_killed_midway_is_rolled_back(tmp_path: Path, dies_after: int) -> None:
    root = project(tmp_path)
    before = tree(root)
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_SWAP, str(root), str(dies_after)], cwd=REPO
    )
    assert killed.returncode == 9
    assert tree(root) != before or dies_after == 0  # left half swapped
    assert pending(root)
    assert recover(root)
    assert tree(root) == before
    assert pending(root) == [] and list(tmp_path.iterdir()) == [root]


def test_a_run_killed_before_the_swap_leaves_only_a_staging_folder(tmp_path: Path) -> None:
    root = project(tmp_path)
    before = tree(root)
    with transaction.staged(root) as staging:
        (staging / "new").mkdir()
        assert pending(root) == [staging]
        assert not recover(root)  # nothing to roll back: the folder is just removed
        assert not staging.exists()
    assert tree(root) == before


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_conflicts_are_left_unmerged_in_git(tmp_path: Path) -> None:
    root = project(tmp_path)
    git = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], cwd=root, check=True)
    subprocess.run([*git, "add", "-A"], cwd=root, check=True)
    subprocess.run([*git, "commit", "-qm", "one"], cwd=root, check=True)
    (root / "README.md").write_text("<<<<<<< yours\nmine\n=======\nnew\n>>>>>>> new render\n")
    assert mark_unmerged(root, {"README.md": (b"hello\n", b"mine\n", b"new\n")})
    unmerged = subprocess.run(
        ["git", "diff", "--name-only", "--diff-filter=U"], cwd=root, capture_output=True, text=True
    )
    assert unmerged.stdout.split() == ["README.md"]
    commit = subprocess.run([*git, "commit", "-qm", "two"], cwd=root, capture_output=True)
    assert commit.returncode != 0  # cannot be committed by accident
    assert not mark_unmerged(root, {})


def test_an_error_mid_swap_puts_everything_back_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = project(tmp_path)
    before = tree(root)
    real = transaction.os.replace
    calls: list[object] = []

    def failing(src: object, dst: object) -> None:
        if "journal" not in str(src):
            calls.append(dst)
            if len(calls) == 3:
                raise OSError(28, "No space left on device")
        real(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(transaction.os, "replace", failing)
    with pytest.raises(OSError, match="No space"):
        apply(root, {"src/a.py": b"a = 2\n", "new/b.py": b"b = 1\n"}, ["old.txt"])
    monkeypatch.setattr(transaction.os, "replace", real)
    assert tree(root) == before
    assert pending(root) == []


def test_a_folder_or_a_file_in_the_way_is_refused_before_anything_moves(tmp_path: Path) -> None:
    root = project(tmp_path)
    (root / "notes").mkdir()
    (root / "notes" / "todo.txt").write_text("mine\n")
    before = tree(root)
    with pytest.raises(OutputError, match="is a folder"):
        apply(root, {"README.md": b"new\n", "notes": b"x\n"}, [])
    with pytest.raises(OutputError, match="needs a folder"):
        apply(root, {"README.md": b"new\n", "old.txt/inner.py": b"x\n"}, [])
    assert tree(root) == before and pending(root) == []


def test_recovery_run_twice_never_deletes_a_restored_file(tmp_path: Path) -> None:
    root = project(tmp_path)
    with transaction.staged(root) as staging:
        (staging / "journal.json").write_text(
            '{"writes": ["src/a.py"], "removes": [], "existed": ["src/a.py"]}'
        )  # as a recovery killed after putting src/a.py back leaves it
        assert recover(root)
    assert (root / "src" / "a.py").read_text() == "a = 1\n"


def test_recovery_finds_the_project_given_as_dot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = project(tmp_path)
    with transaction.staged(root) as staging:
        monkeypatch.chdir(root)
        assert pending(Path(".")) == [staging]


def test_one_run_at_a_time(tmp_path: Path) -> None:
    root = project(tmp_path)
    with (
        transaction.locked(root),
        pytest.raises(OutputError, match="another modelgen run"),
        transaction.locked(root),
    ):
        pass
    with transaction.locked(root):  # released
        pass
