"""The per-file rules of regenerating a project (generator.merge), on files in a folder."""

from __future__ import annotations

from pathlib import Path

from generator.merge import BESIDE, Action, has_markers, merge_text, plan_merge
from generator.render import sha256

BASE = b"def f():\n    return 1\n\n\ndef g():\n    return 2\n"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00binary"


def setup(tmp_path: Path, files: dict[str, bytes]) -> Path:
    for rel, content in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return tmp_path


def decide(project: Path, base: dict[str, bytes], new: dict[str, bytes], **kwargs: object):
    blobs = {sha256(c): c for c in base.values()}
    plan = plan_merge(
        project, {rel: sha256(c) for rel, c in base.items()}, new, blobs.get, **kwargs
    )
    return {c.path: c for c in plan.changes}, plan


def test_each_side_alone_wins_and_identical_sides_do_nothing(tmp_path: Path) -> None:
    edited = BASE.replace(b"return 2", b"return 20")
    project = setup(tmp_path, {"untouched.py": BASE, "yours.py": edited, "same.py": edited})
    base = {"untouched.py": BASE, "yours.py": BASE, "same.py": BASE}
    new = {"untouched.py": edited, "yours.py": BASE, "same.py": edited}
    changes, _ = decide(project, base, new)
    assert changes["untouched.py"].action is Action.UPDATE
    assert changes["untouched.py"].content == edited
    assert changes["yours.py"].action is Action.KEEP  # modelgen has nothing new for it
    assert changes["same.py"].action is Action.SAME


def test_both_changed_merges_whole_files_or_marks_the_conflict(tmp_path: Path) -> None:
    yours = BASE + b"\n\ndef mine():\n    return 3\n"
    new = BASE.replace(b"return 1", b"return 10")
    clash = BASE.replace(b"return 1", b"return 100")
    project = setup(tmp_path, {"a.py": yours, "b.py": clash})
    changes, plan = decide(project, {"a.py": BASE, "b.py": BASE}, {"a.py": new, "b.py": new})
    merged = changes["a.py"]
    assert merged.action is Action.MERGE
    assert b"return 10" in merged.content and b"def mine()" in merged.content
    conflict = changes["b.py"]
    assert conflict.action is Action.CONFLICT and conflict.conflicts == 1
    text = conflict.content.decode()
    assert "<<<<<<< yours\n    return 100\n=======\n    return 10\n>>>>>>> new render\n" in text
    assert text.startswith("def f():\n") and "def g():\n    return 2\n" in text  # rest intact
    assert has_markers(conflict.content) and not has_markers(merged.content)
    assert [c.path for c in plan.conflicts] == ["b.py"]


def test_similar_functions_get_the_edit_where_it_was_made() -> None:
    """Whole-file merges, not context patches: an edit in the second of two identical
    functions stays in the second one."""
    block = b"def h(x):\n    y = x + 1\n    return y\n\n\n"
    base = block + block + b"# end\n"
    yours = block + block.replace(b"x + 1", b"x + 2") + b"# end\n"
    new = b"# header\n" + base
    merged, conflicts = merge_text(base, yours, new)
    assert conflicts == 0
    assert merged == b"# header\n" + yours


def test_deleted_added_and_no_longer_produced_files(tmp_path: Path) -> None:
    project = setup(
        tmp_path,
        {"gone.py": BASE, "edited_gone.py": BASE + b"# mine\n", "clash.py": b"users = 1\n"},
    )
    base = {"deleted.py": BASE, "gone.py": BASE, "edited_gone.py": BASE}
    new = {"deleted.py": BASE + b"# new\n", "fresh.py": b"x = 1\n", "clash.py": b"theirs = 2\n"}
    changes, _ = decide(project, base, new)
    assert changes["deleted.py"].action is Action.DELETED  # you deleted it: stays deleted
    assert changes["gone.py"].action is Action.REMOVE  # unedited and no longer produced
    assert changes["edited_gone.py"].action is Action.STALE  # edited: left alone
    assert changes["fresh.py"].action is Action.CREATE
    clash = changes["clash.py"]  # your own file where modelgen now writes one
    assert clash.action is Action.CONFLICT
    assert b"users = 1" in clash.content and b"theirs = 2" in clash.content


def test_binaries_are_never_merged(tmp_path: Path) -> None:
    project = setup(tmp_path, {"model.onnx": PNG + b"yours", "img.png": PNG})
    base = {"model.onnx": PNG, "img.png": PNG}
    new = {"model.onnx": PNG + b"new", "img.png": PNG + b"new"}
    changes, _ = decide(project, base, new)
    assert changes["img.png"].action is Action.UPDATE  # unedited: replaced
    edited = changes["model.onnx"]
    assert edited.action is Action.CONFLICT and edited.content is None  # yours kept
    assert edited.beside == PNG + b"new" and BESIDE in edited.note


def test_a_lost_base_merges_as_if_both_added_the_file(tmp_path: Path) -> None:
    project = setup(tmp_path, {"a.py": BASE + b"# mine\n"})
    plan = plan_merge(project, {"a.py": sha256(BASE)}, {"a.py": BASE + b"# new\n"}, lambda _: None)
    (change,) = plan.changes
    assert change.action is Action.CONFLICT and "not kept" in change.note
    assert b"# mine" in change.content and b"# new" in change.content


def test_carried_files_are_decided_without_reading_them(tmp_path: Path) -> None:
    project = setup(tmp_path, {"model.onnx": PNG, "edited.json": b"{}\n"})
    base = {"model.onnx": sha256(PNG), "edited.json": sha256(b"[]\n"), "gone.png": sha256(PNG)}
    plan = plan_merge(project, base, {}, lambda _: None, carried=base)
    actions = {c.path: c.action for c in plan.changes}
    assert actions == {
        "model.onnx": Action.SAME,
        "edited.json": Action.KEEP,
        "gone.png": Action.DELETED,
    }
    assert not plan.writes


def test_markers_never_land_on_a_line_without_its_newline() -> None:
    merged, conflicts = merge_text(b"a\nb\nc", b"a\nb\nX", b"a\nb\nY")
    assert conflicts == 1
    assert merged == b"a\nb\n<<<<<<< yours\nX\n=======\nY\n>>>>>>> new render\n"
    kept, _ = merge_text(b"a\x0cb\n", b"a\x0cb\nmine\n", b"new\na\x0cb\n")
    assert kept == b"new\na\x0cb\nmine\n"  # a form feed is not a line end


def test_a_folder_where_modelgen_now_writes_a_file_is_left_alone(tmp_path: Path) -> None:
    (tmp_path / "notes").mkdir()
    changes, _ = decide(tmp_path, {}, {"notes": b"x = 1\n"})
    folder = changes["notes"]
    assert folder.action is Action.CONFLICT and folder.content is None
    assert folder.beside == b"x = 1\n"


def test_a_clean_merge_that_no_longer_parses_is_a_conflict(tmp_path: Path) -> None:
    base = b'[project]\nname = "x"\n\n[tool.black]\nline-length = 100\n'
    yours = base + b"\n[tool.ruff]\nline-length = 90\n"  # added at the end
    new = base.replace(b"[tool.black]", b"[tool.ruff]\nline-length = 100\n\n[tool.black]")
    project = setup(tmp_path, {"pyproject.toml": yours})
    changes, plan = decide(project, {"pyproject.toml": base}, {"pyproject.toml": new})
    change = changes["pyproject.toml"]
    assert change.action is Action.CONFLICT and "not valid TOML" in change.note
    assert plan.conflicts == [change]
