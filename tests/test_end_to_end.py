"""Generate a project from a tiny dataset, then run its own tests in a venv without TensorFlow."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
import tomli_w
from helpers import assert_generated_tests_pass, draw_shape, modelgen, plan_table, recipe_row

pytestmark = pytest.mark.slow

SOURCE_SUFFIXES = (".py", ".toml", ".gitignore", ".typed")


def generate(
    data: Path, output: Path, *args: str, cache: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """`modelgen new` in a process of its own, with a cache of its own (cold unless given)."""
    common = ("--yes", "--data", str(data), "--name", "Shapes", "--output", str(output))
    return modelgen("new", *common, "--seed", "3", *args, cache=cache)


def source_files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and p.name.endswith(SOURCE_SUFFIXES) and p.name != "modelgen.toml"
    }


def plan_file(path: Path, weights: str, plan: dict[str, object]) -> Path:
    """An answers file with a fixed plan: trained in full whatever the machine's speed."""
    path.write_text(
        tomli_w.dumps({"answers": {"weights": weights, "time_budget": 60}, "model": {"plan": plan}})
    )
    return path


CONVNETS = plan_table(
    recipe_row("small-cnn", [4, 4]),
    recipe_row("separable-cnn", [4, 4], augment="shift"),
    recipe_row("small-cnn", [4, 4], augment="shift"),
    shipped=[0, 2],
    refit=[5, 5],
)


def make_data(base: Path) -> Path:
    rng = np.random.default_rng(0)
    data = base / "data"
    for label in ("circle", "square", "triangle"):
        (data / label).mkdir(parents=True)
        for i in range(14):
            draw_shape(label, 32, rng).save(data / label / f"{i:02d}.png")
    (data / "square" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnope")
    return data


@pytest.fixture(scope="module")
def projects(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """A project trained on a fixed plan, and its replay from a cold cache in a second
    process (`--answers one/modelgen.toml --replay-plan`)."""
    base = tmp_path_factory.mktemp("e2e")
    data = make_data(base)
    answers = plan_file(base / "plan.toml", "none", CONVNETS)
    first = generate(data, base / "one", "--answers", str(answers), "--replay-plan")
    assert first.returncode == 0, first.stdout + first.stderr
    replay = ("--answers", str(base / "one" / "modelgen.toml"), "--replay-plan")
    second = generate(data, base / "two", *replay)
    assert second.returncode == 0, second.stdout + second.stderr
    return base / "one", base / "two", first.stdout


def test_project_layout_and_summary(projects: tuple[Path, Path, str]) -> None:
    one, _, stdout = projects
    expected = {
        ".gitignore",
        ".gitattributes",
        ".dockerignore",
        "Dockerfile",
        "benchmarks/bench_latency.py",
        "src/shapes/serve.py",
        "tests/test_serve.py",
        "README.md",
        "modelgen.toml",
        "pyproject.toml",
        "reports/metrics.json",
        "reports/confusion_matrix.png",
        "src/shapes/__init__.py",
        "src/shapes/__main__.py",
        "src/shapes/classifier.py",
        "src/shapes/metadata.json",
        "src/shapes/model.onnx",
        "src/shapes/py.typed",
        "tests/data/expected.json",
        "tests/test_classifier.py",
    }
    files = {p.relative_to(one).as_posix() for p in one.rglob("*") if p.is_file()}
    assert expected <= files
    extra = files - expected
    assert ".modelgen/context.json" in extra  # what `modelgen update` renders from
    state = (".modelgen/base/", ".modelgen/context.json")
    assert extra and all(
        f.startswith(("tests/data/images/", "tests/data/originals/", "reports/top-losses/", *state))
        for f in extra
    )
    summary = " ".join(stdout.split())
    assert (
        "Replaying the recorded plan: 3 recipes by 2-fold cross-validation" in summary
        and "top-1 agreement 100%" in summary
    )
    assert "skipped square/broken.png: not an image Pillow can read" in summary
    saved = tomllib.loads((one / "modelgen.toml").read_text())
    assert saved["answers"]["weights"] == "none" and saved["answers"]["output"] == "."
    assert saved["data"]["skipped"][0]["path"] == "square/broken.png"
    assert saved["model"]["winner"] == "ensemble of small-cnn + small-cnn (augment shift)"
    assert f"Winner: {saved['model']['winner']}" in summary
    assert len(saved["model"]["leaderboard"]) == 3  # every recipe of the plan
    assert saved["model"]["plan"]["recipes"] == CONVNETS["recipes"]
    generated = saved["generated"]["files"]
    assert set(generated) == {f for f in files if not f.startswith(".modelgen/")} - {
        "modelgen.toml"
    }
    kept = {f.removeprefix(".modelgen/base/") for f in files if f.startswith(".modelgen/base/")}
    assert kept == {
        digest for rel, digest in generated.items() if not rel.endswith((".onnx", ".png"))
    }  # the pristine text of every generated text file
    assert all(
        generated[rel] == hashlib.sha256((one / rel).read_bytes()).hexdigest() for rel in generated
    )
    assert (
        saved["metrics"]["test"]["top_k_accuracy"]["top_2"] >= saved["metrics"]["test"]["accuracy"]
    )


def without_timings(value: object) -> object:
    """A JSON/TOML value with every measured duration and machine description taken out."""
    if isinstance(value, dict):
        return {k: without_timings(v) for k, v in value.items() if k not in TIMINGS}
    if isinstance(value, list):
        return [without_timings(v) for v in value]
    return value


TIMINGS = {"seconds", "training_seconds", "fine_tune_seconds", "used", "compute"}


def assert_same_model(one: Path, two: Path) -> None:
    """Two projects hold the same model, bit for bit, and the same measured results."""
    package = one / "src" / "shapes"
    other = two / "src" / "shapes"
    assert (package / "model.onnx").read_bytes() == (other / "model.onnx").read_bytes()
    assert (package / "metadata.json").read_bytes() == (other / "metadata.json").read_bytes()
    metrics = [json.loads((p / "reports" / "metrics.json").read_text()) for p in (one, two)]
    assert without_timings(metrics[0]) == without_timings(metrics[1])
    saved = [tomllib.loads((p / "modelgen.toml").read_text()) for p in (one, two)]
    assert without_timings(saved[0]["model"]) == without_timings(saved[1]["model"])
    assert saved[0]["data"] == saved[1]["data"]


def test_a_replayed_plan_gives_a_byte_identical_convnet_from_a_cold_cache(
    projects: tuple[Path, Path, str],
) -> None:
    one, two, _ = projects
    assert_same_model(one, two)
    assert source_files(one) == source_files(two)
    assert len(source_files(one)) >= 7


def test_a_replayed_plan_gives_a_byte_identical_transfer_model(
    tmp_path: Path, shared_weights: Path
) -> None:
    data = make_data(tmp_path)
    head = recipe_row("mobilenet_v2", [5, 5], input_size=96, dropout=0.2, l2=1e-4)
    plan = plan_table(head, shipped=[0], refit=[6])
    answers = plan_file(tmp_path / "plan.toml", str(shared_weights), plan)
    warm = tmp_path / "warm-cache"
    first = generate(data, tmp_path / "one", "--answers", str(answers), "--replay-plan", cache=warm)
    assert first.returncode == 0, first.stdout + first.stderr
    saved = tmp_path / "one" / "modelgen.toml"
    assert tomllib.loads(saved.read_text())["model"]["winner"] == "mobilenet_v2-frozen"
    replay = ("--answers", str(saved), "--replay-plan")
    cold = generate(data, tmp_path / "cold", *replay)
    assert cold.returncode == 0, cold.stdout + cold.stderr
    assert_same_model(tmp_path / "one", tmp_path / "cold")
    warmed = generate(data, tmp_path / "warm", *replay, "--verbose", cache=warm)  # cached
    assert warmed.returncode == 0, warmed.stdout + warmed.stderr
    assert "mobilenet_v2 features at 96px reused" in " ".join(warmed.stdout.split())
    phases = " ".join(warmed.stdout.split())
    assert "Time per phase (wall seconds): importing TensorFlow:" in phases
    assert "checking images:" in phases and "writing the project:" in phases
    assert_same_model(tmp_path / "one", tmp_path / "warm")


def test_generated_code_is_black_formatted(projects: tuple[Path, Path, str]) -> None:
    one, _, _ = projects
    done = subprocess.run(
        [sys.executable, "-m", "black", "--check", str(one)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr


def test_generated_code_passes_ruff_and_strict_mypy(projects: tuple[Path, Path, str]) -> None:
    one, _, _ = projects
    for command in (["ruff", "check", "."], ["mypy", "src", "tests", "benchmarks"]):
        done = subprocess.run(
            [sys.executable, "-m", *command], cwd=one, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stdout + done.stderr


def test_generated_tests_pass_in_a_clean_venv_without_tensorflow(
    projects: tuple[Path, Path, str], tmp_path: Path
) -> None:
    one, _, _ = projects
    assert_generated_tests_pass(one, tmp_path / "venv")


def test_force_regenerates_a_project_in_place_keeping_splits_and_the_users_files(
    projects: tuple[Path, Path, str], tmp_path: Path
) -> None:
    one, _, _ = projects
    project = tmp_path / "project"
    shutil.copytree(one, project)
    (project / "NOTES.md").write_text("mine\n")
    (project / "README.md").write_text("edited\n")
    before = tomllib.loads((project / "modelgen.toml").read_text())
    data = (one / before["answers"]["data"]).resolve()  # the copy moved; the data did not
    again = generate(
        data,
        project,
        "--answers",
        str(project / "modelgen.toml"),
        "--replay-plan",
        "--force",
    )
    assert again.returncode == 0, again.stdout + again.stderr
    assert (project / "NOTES.md").read_text() == "mine\n"  # never generated: untouched
    assert (project / "README.md").read_text() != "edited\n"  # generated: replaced
    after = tomllib.loads((project / "modelgen.toml").read_text())
    assert after["data"]["files"] == before["data"]["files"]  # every split kept
    assert (project / "src/shapes/model.onnx").read_bytes() == (
        one / "src/shapes/model.onnx"
    ).read_bytes()
    assert "no change since the last run" in again.stdout
