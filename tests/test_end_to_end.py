"""Generate a project from a tiny dataset, then run its own tests in a venv without TensorFlow."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import venv
from pathlib import Path

import pytest
from conftest import tf_env

pytestmark = pytest.mark.slow

SOURCE_SUFFIXES = (".py", ".toml", ".gitignore", ".typed")


def generate(data: Path, output: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "generator",
            "new",
            "--yes",
            "--data",
            str(data),
            "--name",
            "Shapes",
            "--output",
            str(output),
            "--weights",
            "none",
            "--time-budget",
            "30",
            "--seed",
            "3",
        ],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=tf_env(),
        timeout=900,
    )


def source_files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and p.name.endswith(SOURCE_SUFFIXES) and p.name != "modelgen.toml"
    }


@pytest.fixture(scope="module")
def projects(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    import numpy as np
    from conftest import draw_shape  # module-scoped: build the data here

    base = tmp_path_factory.mktemp("e2e")
    rng = np.random.default_rng(0)
    data = base / "data"
    for label in ("circle", "square", "triangle"):
        (data / label).mkdir(parents=True)
        for i in range(14):
            draw_shape(label, 32, rng).save(data / label / f"{i:02d}.png")
    (data / "square" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnope")
    first = generate(data, base / "one")
    assert first.returncode == 0, first.stdout + first.stderr
    second = generate(data, base / "two")
    assert second.returncode == 0, second.stdout + second.stderr
    return base / "one", base / "two", first.stdout


def test_project_layout_and_summary(projects: tuple[Path, Path, str]) -> None:
    one, _, stdout = projects
    expected = {
        ".gitignore",
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
    assert all(f.startswith(("tests/data/images/", "reports/top-losses/")) for f in extra)
    summary = " ".join(stdout.split())
    assert "Plan (about" in summary and "top-1 agreement 100%" in summary
    assert "skipped square/broken.png: not an image Pillow can read" in summary
    saved = tomllib.loads((one / "modelgen.toml").read_text())
    assert saved["answers"]["weights"] == "none" and saved["answers"]["output"] == "."
    assert saved["data"]["skipped"][0]["path"] == "square/broken.png"
    assert saved["model"]["winner"] in ("small-cnn", "separable-cnn")
    assert f"Winner: {saved['model']['winner']}" in summary
    assert len(saved["model"]["leaderboard"]) >= 3
    assert (
        saved["metrics"]["test"]["top_k_accuracy"]["top_2"] >= saved["metrics"]["test"]["accuracy"]
    )


def test_same_inputs_give_byte_identical_sources(projects: tuple[Path, Path, str]) -> None:
    one, two, _ = projects
    assert source_files(one) == source_files(two)
    assert len(source_files(one)) >= 7


def test_generated_code_is_black_formatted(projects: tuple[Path, Path, str]) -> None:
    one, _, _ = projects
    done = subprocess.run(
        [sys.executable, "-m", "black", "--check", str(one)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr


def test_generated_tests_pass_in_a_clean_venv_without_tensorflow(
    projects: tuple[Path, Path, str], tmp_path: Path
) -> None:
    one, _, _ = projects
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "-e", f"{one}[test]"],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    no_tf = subprocess.run([str(python), "-c", "import tensorflow"], capture_output=True)
    assert no_tf.returncode != 0
    run = subprocess.run(
        [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=one,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert " passed" in run.stdout and "failed" not in run.stdout
