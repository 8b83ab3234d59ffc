from __future__ import annotations

import difflib
import tomllib
from pathlib import Path
from typing import Any

import black
import pytest
import tomli_w
from helpers import GOLDEN_CONTEXT

from generator.errors import OutputError, RenderError
from generator.render import BLACK_MODE, check_output, render_tree, sha256, write_project

GOLDEN = Path(__file__).parent / "golden" / "image_classification"


def test_rendered_project_matches_golden_files(request: pytest.FixtureRequest) -> None:
    files = render_tree("image_classification", GOLDEN_CONTEXT.as_mapping())
    if request.config.getoption("--update-golden"):
        for rel, content in files.items():
            (GOLDEN / rel).parent.mkdir(parents=True, exist_ok=True)
            (GOLDEN / rel).write_bytes(content)
    golden = {
        p.relative_to(GOLDEN).as_posix(): p.read_bytes() for p in GOLDEN.rglob("*") if p.is_file()
    }
    assert sorted(files) == sorted(golden), "missing or extra files (--update-golden refreshes)"
    for rel in sorted(files):
        if files[rel] != golden[rel]:
            diff = difflib.unified_diff(
                golden[rel].decode().splitlines(),
                files[rel].decode().splitlines(),
                f"golden/{rel}",
                f"rendered/{rel}",
                lineterm="",
            )
            pytest.fail("\n".join(diff))


def test_rendered_python_is_black_formatted_and_compiles() -> None:
    files = render_tree("image_classification", GOLDEN_CONTEXT.as_mapping())
    python = {rel: content.decode() for rel, content in files.items() if rel.endswith(".py")}
    assert "src/shapes_demo/classifier.py" in python
    for rel, source in python.items():
        assert black.format_str(source, mode=BLACK_MODE) == source, rel
        compile(source, rel, "exec")


def test_rendering_is_deterministic() -> None:
    assert render_tree("image_classification", GOLDEN_CONTEXT.as_mapping()) == render_tree(
        "image_classification", GOLDEN_CONTEXT.as_mapping()
    )


def test_missing_template_variable_is_an_error() -> None:
    with pytest.raises(RenderError, match="failed to render.*undefined"):
        render_tree(
            "image_classification",
            {k: v for k, v in GOLDEN_CONTEXT.as_mapping().items() if k != "labels"},
        )


def test_invalid_python_names_the_template(tmp_path: Path) -> None:
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "bad.py.jinja").write_text("def {{ name }}(:\n")
    with pytest.raises(RenderError, match="bad.py.jinja rendered invalid Python"):
        render_tree("broken", {"name": "f"}, root=tmp_path)


def test_write_project_creates_the_folder_whole(tmp_path: Path) -> None:
    out = tmp_path / "proj"
    write_project({"a.txt": b"1", "src/b.py": b"x = 1\n"}, out, force=False)
    assert (out / "a.txt").read_bytes() == b"1"
    assert (out / "src" / "b.py").read_bytes() == b"x = 1\n"
    assert [p.name for p in tmp_path.iterdir()] == ["proj"]  # no staging folder left


def test_write_project_refuses_a_non_empty_folder(tmp_path: Path) -> None:
    out = tmp_path / "proj"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    with pytest.raises(OutputError, match="not empty.*--force"):
        write_project({"a.txt": b"1"}, out, force=False)
    assert sorted(p.name for p in out.iterdir()) == ["mine.txt"]


def generated(files: dict[str, bytes]) -> dict[str, bytes]:
    """files plus the modelgen.toml that lists them, as build_project writes it."""
    listed = {rel: sha256(content) for rel, content in files.items()}
    return files | {"modelgen.toml": tomli_w.dumps({"generated": {"files": listed}}).encode()}


def test_force_replaces_generated_files_and_keeps_the_users(tmp_path: Path) -> None:
    out = tmp_path / "proj"
    write_project(
        generated({"a.txt": b"old", "old/gone.txt": b"x", "old/edited.txt": b"y"}), out, force=False
    )
    (out / "mine.txt").write_text("keep me")
    (out / "old" / "edited.txt").write_text("my edit")
    written = write_project(generated({"a.txt": b"new"}), out, force=True)
    assert (out / "a.txt").read_bytes() == b"new"
    assert (out / "mine.txt").read_text() == "keep me"
    assert not (out / "old" / "gone.txt").exists()  # generated, unedited, no longer produced
    assert (out / "old" / "edited.txt").read_text() == "my edit"  # edited: kept, reported
    assert written.removed == ("old/gone.txt",) and written.kept == ("old/edited.txt",)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["proj"]


def test_force_refuses_a_folder_modelgen_did_not_generate(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    mine = {"README.md": "my notes", "pyproject.toml": "[project]", ".gitignore": "*.pyc"}
    for name, text in mine.items():
        (home / name).write_text(text)
    with pytest.raises(OutputError, match="not a project modelgen generated"):
        write_project(generated({"README.md": b"generated"}), home, force=True)
    assert {p.name: p.read_text() for p in home.iterdir()} == mine


def test_force_never_replaces_a_file_it_did_not_generate(tmp_path: Path) -> None:
    out = tmp_path / "proj"
    write_project(generated({"a.txt": b"1"}), out, force=False)
    (out / "Dockerfile").write_text("mine")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(OutputError, match="did not generate.*Dockerfile.*nothing was changed"):
        write_project(generated({"a.txt": b"2", "Dockerfile": b"generated"}), out, force=True)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


@pytest.mark.parametrize("rel", ["../escaped.txt", "/abs.txt", "a/../../b.txt", "", "a\\b"])
def test_no_file_is_written_outside_the_output(tmp_path: Path, rel: str) -> None:
    with pytest.raises(OutputError, match="outside"):
        write_project({rel: b"x"}, tmp_path / "proj", force=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_output_overlapping_the_data_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "cats").mkdir(parents=True)
    for output in (data / "out", data, tmp_path):
        with pytest.raises(OutputError, match="overlaps the data source"):
            check_output(output, force=True, sources=[data])
    check_output(tmp_path / "elsewhere", force=False, sources=[data])


def test_an_unwritable_parent_is_refused_before_any_work(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="not a writable folder"):
        check_output(tmp_path / "file" / "proj", force=False)


def test_empty_output_folder_is_used(tmp_path: Path) -> None:
    out = tmp_path / "proj"
    out.mkdir()
    write_project({"a.txt": b"1"}, out, force=False)
    assert (out / "a.txt").exists()


def test_output_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "proj").write_text("x")
    with pytest.raises(OutputError, match="is a file"):
        write_project({"a.txt": b"1"}, tmp_path / "proj", force=True)


def test_skipped_candidates_are_grouped_by_reason_without_local_paths() -> None:
    from generator.train.families import Kind, Skip, SkipCause, grouped_skips

    offline = "download failed: [Errno -2] Name or service not known"
    grouped = grouped_skips(
        (
            Skip("mobilenet_v2", Kind.TRANSFER, SkipCause.NO_WEIGHTS, offline),
            Skip("resnet50_v2", Kind.TRANSFER, SkipCause.NO_WEIGHTS, offline),
            Skip("separable-cnn", Kind.CNN, SkipCause.SMALL_BUDGET),
        )
    )
    assert grouped == [
        (
            ["mobilenet_v2-frozen", "resnet50_v2-frozen"],
            f"ImageNet weights are not available ({offline})",
        ),
        (["separable-cnn"], "budgets under 30s try only the cheapest candidates"),
    ]


def test_ctrl_c_while_files_move_in_waits_until_the_project_is_whole(tmp_path: Path) -> None:
    import os
    import signal

    from generator import render
    from generator.errors import InterruptedAfterWrite

    real_rename = os.rename

    def rename_after_ctrl_c(src: str, dst: str) -> None:
        os.kill(os.getpid(), signal.SIGINT)  # the user presses Ctrl-C mid-swap
        real_rename(src, dst)

    out = tmp_path / "proj"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(render.os, "rename", rename_after_ctrl_c)
        with pytest.raises(InterruptedAfterWrite):
            write_project({"a.txt": b"1", "b/c.txt": b"2"}, out, force=False)
    assert tree_of(out) == {"a.txt": b"1", "b/c.txt": b"2"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["proj"]


def tree_of(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_copied_test_images_are_named_by_content_never_by_label_or_path() -> None:
    from generator.data import ImageRecord
    from generator.heldout import copied_name as _copied_name

    hostile = ImageRecord(
        Path("/data/../../x.png"), "../../x.png", "../../escaped", "ab" * 32, 20, 20, "RGB", "PNG"
    )
    assert _copied_name(hostile) == f"images/{'ab' * 8}.png"
    unknown = ImageRecord(Path("y"), "y.weird", "a", "cd" * 32, 20, 20, "RGB", "XYZ")
    assert _copied_name(unknown) == f"images/{'cd' * 8}.img"


def test_the_saved_context_renders_the_same_project() -> None:
    from generator.context import TemplateContext

    saved = TemplateContext.from_json(GOLDEN_CONTEXT.to_json())
    assert render_tree("image_classification", saved.as_mapping()) == render_tree(
        "image_classification", GOLDEN_CONTEXT.as_mapping()
    )
    with pytest.raises(ValueError, match="lacks .*seed"):
        TemplateContext.from_json(b'{"schema": 1, "context": {"x": 1}}')


def _renamed(value: Any, names: dict[str, str]) -> Any:
    """value with every string that is a key of names (labels) replaced, keys included, and
    keys naming one ("recall circle")."""
    if isinstance(value, str):
        head, _, tail = value.partition(" ")
        return names.get(value, f"{head} {names[tail]}" if tail in names else value)
    if isinstance(value, dict):
        return {_renamed(k, names): _renamed(v, names) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_renamed(v, names) for v in value)
    return value


def test_labels_beyond_ascii_render_as_themselves_in_valid_toml_and_markdown() -> None:
    mapping = dict(GOLDEN_CONTEXT.as_mapping())
    new = ["rouge é", "緑", '🟦 blue "x"']  # 🟦 is beyond U+FFFF: JSON writes a surrogate pair
    context = _renamed(mapping, dict(zip(mapping["labels"], new, strict=True)))
    files = render_tree("image_classification", context)
    project = tomllib.loads(files["pyproject.toml"].decode())["project"]
    assert project["description"] == f"Image classifier for {', '.join(new)} (ONNX model)"
    readme = files["README.md"].decode()
    assert '**3 labels**: "rouge é", "緑", "🟦 blue \\"x\\"".' in readme
    assert "\\u" not in readme
