"""A generated project regenerated in place: `modelgen retrain`, `update` and `check` on a
project the user committed and edited. Every run trains a fixed plan (--replay-plan), so no
outcome depends on the machine's speed."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
import tomli_w
from helpers import (
    REPO,
    assert_generated_tests_pass,
    draw_shape,
    modelgen,
    plan_table,
    recipe_row,
    tf_env,
)
from typer.testing import CliRunner

pytestmark = pytest.mark.slow

PLAN = plan_table(recipe_row("small-cnn", [10]), shipped=[0], refit=[12], folds=1)
GIT = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t"]
PACKAGE = "shapes"


def draw(folder: Path, label: str, count: int, seed: int, prefix: str = "") -> None:
    rng = np.random.default_rng(seed)
    (folder / label).mkdir(parents=True, exist_ok=True)
    for i in range(count):
        draw_shape(label, 32, rng).save(folder / label / f"{prefix}{i:02d}.png")


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """base/proj generated from base/data (circles and squares) on a fixed plan."""
    base = tmp_path_factory.mktemp("regenerate")
    for seed, label in enumerate(("circle", "square")):
        draw(base / "data", label, 40, seed)
    answers = base / "plan.toml"
    answers.write_text(
        tomli_w.dumps({"answers": {"weights": "none", "time_budget": 60}, "model": {"plan": PLAN}})
    )
    done = modelgen(
        "new", "--yes", "--data", str(base / "data"), "--name", "Shapes", "--output",
        str(base / "proj"), "--answers", str(answers), "--replay-plan",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return base


@pytest.fixture
def copy(generated: Path, tmp_path: Path) -> Path:
    """A copy of the project and its data side by side (the data path stays ../data)."""
    shutil.copytree(generated / "proj", tmp_path / "proj")
    shutil.copytree(generated / "data", tmp_path / "data")
    return tmp_path / "proj"


def tree(root: Path, *skip: str) -> dict[str, bytes]:
    return {
        rel: p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not (rel := p.relative_to(root).as_posix()).startswith((".git/", *skip))
    }


def commit(project: Path) -> None:
    subprocess.run([*GIT, "init", "-q"], cwd=project, check=True)
    subprocess.run([*GIT, "add", "-A"], cwd=project, check=True)
    subprocess.run([*GIT, "commit", "-qm", "generated"], cwd=project, check=True)


def edit(project: Path) -> None:
    """What a user does to a generated project: a helper, a paragraph, a tool section, a
    test of their own, and a generated file deleted."""
    with (project / f"src/{PACKAGE}/classifier.py").open("a") as handle:
        handle.write('\n\ndef my_helper() -> str:\n    return "mine"\n')
    readme = project / "README.md"
    readme.write_text(readme.read_text().replace("## Use it\n", "## Use it\n\nOur notes.\n", 1))
    with (project / "pyproject.toml").open("a") as handle:
        handle.write("\n[tool.coverage.run]\nbranch = true\n")
    (project / "tests" / "test_mine.py").write_text("def test_mine() -> None:\n    pass\n")
    (project / "reports" / "metrics.json").unlink()


def retrain(project: Path, *args: str, env: dict[str, str] | None = None):
    return modelgen("retrain", str(project), "--yes", "--replay-plan", *args, env=env)


def saved(project: Path) -> dict:
    return tomllib.loads((project / "modelgen.toml").read_text())


@pytest.mark.parametrize("with_git", [True, False], ids=["git", "no-git"])
def test_retrain_with_new_images_and_a_new_class_keeps_every_edit(
    copy: Path, tmp_path: Path, with_git: bool
) -> None:
    if with_git:
        if shutil.which("git") is None:
            pytest.skip("git is not installed")
        commit(copy)
    env = tf_env()
    if not with_git:  # git is not on the PATH: nothing may need it
        env["PATH"] = str(Path(sys.executable).parent)
        assert shutil.which("git", path=env["PATH"]) is None
    before = saved(copy)
    edit(copy)
    mine = (copy / "tests" / "test_mine.py").read_bytes()
    draw(tmp_path / "data", "circle", 6, seed=7, prefix="new")
    draw(tmp_path / "data", "triangle", 24, seed=8)
    done = retrain(copy, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "30 added (circle 6, triangle 24); new classes: triangle" in done.stdout
    classifier = (copy / f"src/{PACKAGE}/classifier.py").read_text()
    assert 'def my_helper() -> str:\n    return "mine"' in classifier
    readme = (copy / "README.md").read_text()
    assert "Our notes." in readme and '"triangle"' in readme  # yours and the new render
    pyproject = (copy / "pyproject.toml").read_text()
    assert "[tool.coverage.run]" in pyproject and "triangle" in pyproject
    assert (copy / "tests" / "test_mine.py").read_bytes() == mine
    assert not (copy / "reports" / "metrics.json").exists()  # you deleted it: still gone
    labels = json.loads((copy / f"src/{PACKAGE}/metadata.json").read_text())["labels"]
    assert labels == ["circle", "square", "triangle"]
    after = saved(copy)
    old_splits = {f["sha256"]: f["split"] for f in before["data"]["files"]}
    assert {
        f["sha256"]: f["split"] for f in after["data"]["files"] if f["sha256"] in old_splits
    } == (old_splits)
    assert [v["how"] for v in after["history"]] == ["new", "retrain"]
    assert after["history"][1]["gate"]["status"] == "passed"
    assert "Gate passed" in done.stdout
    if with_git:
        status = subprocess.run(
            ["git", "status", "--porcelain"], cwd=copy, capture_output=True, text=True
        ).stdout
        assert "UU" not in status and " M src/shapes/model.onnx" in status
    else:
        assert_generated_tests_pass(copy, tmp_path / "venv")


def test_a_conflicting_edit_gets_markers_and_nothing_else_is_lost(
    copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`update` with templates that rewrite a line the user rewrote too."""
    if shutil.which("git"):
        commit(copy)
    templates = tmp_path / "templates"
    shutil.copytree(REPO / "templates", templates)
    template = templates / "image_classification" / "README.md.jinja"
    line = "It ships as an ONNX model"
    assert line in template.read_text()
    template.write_text(template.read_text().replace(line, "It ships as one ONNX model"))
    edit(copy)
    readme = copy / "README.md"
    readme.write_text(readme.read_text().replace(line, "It ships, as we like it, as an ONNX model"))
    import generator.render
    from generator.cli import app

    monkeypatch.setattr(generator.render, "templates_dir", lambda: templates)
    edited = tree(copy)
    dry = CliRunner().invoke(app, ["update", str(copy), "--dry-run"])
    assert dry.exit_code == 3 and "Dry run: nothing was written." in dry.output
    assert "conflict  README.md" in dry.output and tree(copy) == edited
    done = CliRunner().invoke(app, ["update", str(copy)])
    assert done.exit_code == 3, done.output
    assert "1 file was left with 1 conflict" in " ".join(done.output.split())
    text = readme.read_text()
    assert (
        "<<<<<<< yours\nIt ships, as we like it, as an ONNX model" in text
        and "=======\nIt ships as one ONNX model" in text
        and ">>>>>>> new render\n" in text
    )
    assert "Our notes." in text  # the rest of the file merged
    assert "def my_helper()" in (copy / f"src/{PACKAGE}/classifier.py").read_text()
    assert not (copy / "reports" / "metrics.json").exists()
    if shutil.which("git"):
        unmerged = subprocess.run(
            ["git", "diff", "--name-only", "--diff-filter=U"],
            cwd=copy,
            capture_output=True,
            text=True,
        )
        assert unmerged.stdout.split() == ["README.md"]
    check = CliRunner().invoke(app, ["check", str(copy), "--ignore-edits"])
    assert check.exit_code == 1 and "conflict markers left in README.md" in check.output


def test_kill_9_during_retrain_leaves_the_project_byte_identical(copy: Path) -> None:
    before = tree(copy)
    draw(copy.parent / "data", "circle", 6, seed=9, prefix="new")
    env = tf_env() | {"PYTHONUNBUFFERED": "1", "MODELGEN_CACHE_DIR": str(copy.parent / "c")}
    process = subprocess.Popen(
        [sys.executable, "-m", "generator", "retrain", str(copy), "--yes", "--replay-plan"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    seen = []
    for line in process.stdout:
        seen.append(line)
        if line.startswith("Data:"):  # scanned; the training and the swap are still ahead
            os.kill(process.pid, signal.SIGKILL)
            break
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL, "".join(seen)
    assert tree(copy) == before
    assert [p.name for p in copy.parent.iterdir() if p.name.startswith(".proj.modelgen-")] == []


def test_noisy_labels_are_refused_and_can_be_accepted_with_a_reason(
    copy: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    for row in saved(copy)["data"]["files"]:  # every train image under the other label
        if row["split"] == "train":
            wrong = "square" if row["label"] == "circle" else "circle"
            (data / row["path"]).rename(data / wrong / f"noisy-{Path(row['path']).name}")
    before = tree(copy)
    report = tmp_path / "gate.md"
    blank = retrain(copy, "--accept-regression", " ")  # a blank reason is not a reason
    assert blank.returncode == 2 and "needs a reason" in blank.stderr, blank.stderr
    refused = retrain(copy, "--report-md", str(report))
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "Gate refused" in refused.stdout and "the project was not changed" in refused.stdout
    assert tree(copy, ".modelgen/candidates/") == before
    (kept,) = (copy / ".modelgen" / "candidates").iterdir()
    assert {p.name for p in kept.iterdir()} >= {"model.onnx", "gate.md", "gate.json"}
    assert "**Regression gate: refused**" in report.read_text()
    accepted = retrain(copy, "--accept-regression", "labels being redone", "--json")
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    result = json.loads(accepted.stdout)  # --json: stdout is the document alone
    assert result["gate"]["status"] == "accepted" and result["written"]
    gate = saved(copy)["history"][-1]["gate"]
    assert gate["status"] == "accepted" and gate["accepted_because"] == "labels being redone"
    assert gate["new_accuracy"] < gate["previous_accuracy"]
    assert "labels being redone" in (copy / "README.md").read_text()


def test_check_exit_codes(copy: Path, tmp_path: Path) -> None:
    clean = modelgen("check", str(copy))
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "up to date" in clean.stdout
    extra = tmp_path / "data" / "square" / "extra.png"
    draw_shape("square", 32, np.random.default_rng(99)).save(extra)
    added = modelgen("check", str(copy), "--json")
    assert added.returncode == 1
    report = json.loads(added.stdout)
    assert report["data"]["added"] == {"square": 1} and not report["up_to_date"]
    extra.unlink()
    with (copy / f"src/{PACKAGE}/classifier.py").open("a") as handle:
        handle.write("# mine\n")
    edited = modelgen("check", str(copy))
    assert edited.returncode == 1 and f"generated files edited: src/{PACKAGE}/classifier.py" in (
        " ".join(edited.stdout.split())
    )
    assert modelgen("check", str(copy), "--ignore-edits").returncode == 0
    shutil.move(tmp_path / "data", tmp_path / "moved")
    lost = modelgen("retrain", str(copy), "--yes")
    assert lost.returncode == 2 and "--data" in lost.stderr


def test_update_of_a_fresh_project_changes_nothing(copy: Path) -> None:
    from generator.cli import app

    before = tree(copy)
    done = CliRunner().invoke(app, ["update", str(copy), "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["files"] == {}
    assert tree(copy) == before
