"""The command as a user runs it: no terminal, bad inputs, exit codes and messages.

Cases that end before training run in-process with typer's CliRunner (no terminal there
either); those that load TensorFlow or need signals run as real processes."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import tomli_w
from helpers import MakeDataset, plan_table, recipe_row, tf_env
from typer.testing import CliRunner

from generator.cli import app


@dataclass(frozen=True)
class Done:
    returncode: int
    stdout: str
    stderr: str


def modelgen(*args: str, cwd: Path) -> Done:
    """The command in this process, run from cwd, with no terminal and no input."""
    previous = Path.cwd()
    os.chdir(cwd)
    try:
        result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    finally:
        os.chdir(previous)
    return Done(result.exit_code, result.stdout, result.stderr)


def modelgen_process(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The command as a separate process, as a user's shell starts it."""
    return subprocess.run(
        [sys.executable, "-m", "generator", *args],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=tf_env(),
        timeout=600,
    )


def one_line(stderr: str) -> str:
    return " ".join(stderr.split())


def test_no_terminal_and_missing_answers_exits_2_naming_flags(tmp_path: Path) -> None:
    done = modelgen_process("new", "--name", "x", cwd=tmp_path)
    assert done.returncode == 2
    message = one_line(done.stderr)
    assert "no terminal" in message and "--data" in message and "--yes" in message
    assert "Traceback" not in done.stderr


def test_bad_path(tmp_path: Path) -> None:
    done = modelgen("new", "--yes", "--data", "no/such/folder", cwd=tmp_path)
    assert done.returncode == 2
    assert f"data source {tmp_path / 'no/such/folder'} does not exist" in one_line(done.stderr)


def test_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "photos").mkdir()
    done = modelgen("new", "--yes", "--data", "photos", cwd=tmp_path)
    assert done.returncode == 2
    assert "has no label folders" in one_line(done.stderr)
    assert not (tmp_path / "my_classifier").exists()


def test_single_class(tmp_path: Path, make_dataset: MakeDataset) -> None:
    root = make_dataset({"circle": 12})
    done = modelgen("new", "--yes", "--data", str(root), cwd=tmp_path)
    assert done.returncode == 2
    assert "needs at least 2 classes with images, only 'circle' has images" in one_line(done.stderr)


def test_too_few_images(tmp_path: Path, make_dataset: MakeDataset) -> None:
    root = make_dataset({"circle": 12, "square": 3})
    done = modelgen("new", "--yes", "--data", str(root), cwd=tmp_path)
    assert done.returncode == 2
    assert "'square' has 3" in one_line(done.stderr)


def test_non_empty_output_is_refused_before_training(tmp_path: Path) -> None:
    (tmp_path / "my_classifier").mkdir()
    (tmp_path / "my_classifier" / "notes.txt").write_text("mine")
    done = modelgen("new", "--yes", cwd=tmp_path)
    assert done.returncode == 2
    assert "is not empty" in one_line(done.stderr) and "--force" in done.stderr
    assert (tmp_path / "my_classifier" / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scenario", "wrap-model"], "unknown scenario 'wrap-model'"),
        (["--compute", "ray"], "unknown compute target 'ray'"),
        (["--time-budget", "2"], "too short"),
    ],
)
def test_choices_this_version_does_not_offer(tmp_path: Path, args: list[str], message: str) -> None:
    done = modelgen("new", "--yes", *args, cwd=tmp_path)
    assert done.returncode == 2
    assert message in one_line(done.stderr)


def test_missing_answers_file(tmp_path: Path) -> None:
    done = modelgen("new", "--answers", "nope.toml", cwd=tmp_path)
    assert done.returncode == 2
    assert "nope.toml does not exist" in one_line(done.stderr)


def test_weights_imagenet_offline_exits_2_with_where_to_put_the_file(
    tmp_path: Path, make_dataset: MakeDataset
) -> None:
    root = make_dataset()
    args = ("new", "--yes", "--data", str(root), "--weights", "imagenet")
    done = modelgen_process(*args, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    message = one_line(done.stderr)
    assert "ImageNet weights for mobilenet_v2 could not be loaded" in message
    assert "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_128_no_top.h5" in message
    assert not (tmp_path / "my_classifier").exists()


def test_version(tmp_path: Path) -> None:
    done = modelgen("version", cwd=tmp_path)
    assert done.returncode == 0 and done.stdout.strip() == "0.1.0"


def test_inspect_lists_problems_and_writes_a_report(
    tmp_path: Path, make_dataset: MakeDataset
) -> None:
    import json

    root = make_dataset({"circle": 12, "square": 11})
    (root / "square" / "notes.jpg").write_text("not an image")
    before = sorted((p, p.stat().st_mtime_ns) for p in root.rglob("*"))
    done = modelgen("inspect", str(root), "--report", "report.json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "23 images in 2 classes" in done.stdout
    assert "square/notes.jpg: not an image Pillow can read" in " ".join(done.stdout.split())
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["counts"] == {"circle": 12, "square": 11}
    by_path = {f["path"]: f for f in report["files"]}
    assert len(by_path) == 24
    assert by_path["square/notes.jpg"]["status"].startswith("not an image Pillow can read")
    assert {f["split"] for f in report["files"] if f["status"] == "ok"} == {
        "train",
        "validation",
        "test",
    }
    assert sorted((p, p.stat().st_mtime_ns) for p in root.rglob("*")) == before


def test_inspect_never_writes_its_report_into_the_data_or_over_a_users_file(
    tmp_path: Path, make_dataset: MakeDataset
) -> None:
    root = make_dataset({"circle": 12, "square": 11})
    before = sorted((p, p.stat().st_mtime_ns) for p in root.rglob("*"))
    inside = modelgen("inspect", str(root), "--report", str(root / "r.json"), cwd=tmp_path)
    assert inside.returncode == 2
    assert "is inside the data source" in one_line(inside.stderr)
    assert sorted((p, p.stat().st_mtime_ns) for p in root.rglob("*")) == before
    (tmp_path / "notes.json").write_text('{"mine": true}\n')
    theirs = modelgen("inspect", str(root), "--report", "notes.json", cwd=tmp_path)
    assert theirs.returncode == 2
    assert "exists and is not a modelgen dataset report" in one_line(theirs.stderr)
    assert (tmp_path / "notes.json").read_text() == '{"mine": true}\n'
    first = modelgen("inspect", str(root), "--report", "r.json", cwd=tmp_path)
    again = modelgen("inspect", str(root), "--report", "r.json", cwd=tmp_path)  # its own: fine
    assert (first.returncode, again.returncode) == (0, 0), again.stderr
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["notes.json", "r.json"]


def test_inspect_sample_checks_the_bundled_sample(tmp_path: Path) -> None:
    done = modelgen("inspect", "sample", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "400 images in 5 classes (folder source), 0 skipped" in one_line(done.stdout)


def test_inspect_a_manifest_with_strict_and_compare(
    tmp_path: Path, make_dataset: MakeDataset
) -> None:
    import json

    make_dataset({"circle": 12, "square": 12}, name="pool")
    rows = ["image,label"] + [
        f"pool/{label}/{label}_{i:03d}.png,{label}"
        for label in ("circle", "square")
        for i in range(12)
    ]
    (tmp_path / "labels.csv").write_text("\n".join([*rows, "pool/circle/gone.png,circle"]) + "\n")
    done = modelgen("inspect", "labels.csv", "--report", "r.json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = " ".join(done.stdout.split())
    assert "24 images in 2 classes (manifest source), 1 skipped" in out
    assert "pool/circle/gone.png: named in labels.csv line 26 but missing" in out
    report = json.loads((tmp_path / "r.json").read_text())
    gone = next(f for f in report["files"] if f["path"] == "pool/circle/gone.png")
    assert gone["split"] is None and gone["status"].startswith("named in labels.csv")
    assert {"path", "label", "sha256", "split", "status"} <= set(report["files"][0])
    strict = modelgen("inspect", "labels.csv", "--strict", cwd=tmp_path)
    assert strict.returncode == 2
    assert "cannot be used (--strict): pool/circle/gone.png" in one_line(strict.stderr)
    saved = tmp_path / "modelgen.toml"
    files = [
        f
        for f in report["files"]
        if f["status"] == "ok" and f["path"] != "pool/square/square_000.png"
    ]
    saved.write_text(
        "[data]\nfiles = ["
        + ", ".join(
            f'{{path = "{f["path"]}", label = "{f["label"]}", sha256 = "{f["sha256"]}"}}'
            for f in files
        )
        + "]\n"
    )
    compared = modelgen("inspect", "labels.csv", "--compare", str(saved), cwd=tmp_path)
    assert "since" in compared.stdout and "1 added (square 1)" in one_line(compared.stdout)


def test_conflicting_labels_stop_new_before_training(
    tmp_path: Path, make_dataset: MakeDataset
) -> None:
    root = make_dataset({"cat": 12, "dog": 12})
    (root / "dog" / "x.png").write_bytes((root / "cat" / "cat_001.png").read_bytes())
    done = modelgen("new", "--data", str(root), "--yes", "--output", "out", cwd=tmp_path)
    assert done.returncode == 2
    assert "conflicting labels" in one_line(done.stderr)
    assert "Training on" not in done.stdout and not (tmp_path / "out").exists()


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_a_label_that_climbs_is_refused_and_nothing_is_written(
    tmp_path: Path, make_dataset: MakeDataset
) -> None:
    make_dataset({"circle": 10, "square": 10}, name="pool")
    rows = ["path,label"] + [f"pool/circle/circle_{i:03d}.png,circle" for i in range(10)]
    rows += [f"pool/square/square_{i:03d}.png,../../x" for i in range(10)]
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    before = tree(tmp_path)
    done = modelgen("new", "--yes", "--data", "../../labels.csv", "--output", "out", cwd=work)
    assert done.returncode == 2, done.stderr
    assert "labels.csv line 12: label '../../x' is refused" in one_line(done.stderr)
    assert tree(tmp_path) == before


def test_a_zip_whose_manifest_points_outside_it_is_refused(
    tmp_path: Path, make_dataset: MakeDataset
) -> None:
    import zipfile

    root = make_dataset({"circle": 10, "square": 10})
    (tmp_path / "secret.png").write_bytes((root / "circle" / "circle_000.png").read_bytes())
    lines = ["path,label"]
    with zipfile.ZipFile(tmp_path / "data.zip", "w") as bundle:
        for path in sorted(root.rglob("*.png")):
            bundle.write(path, f"images/{path.name}")
            lines.append(f"images/{path.name},{path.parent.name}")
        lines.append("../../../secret.png,circle")
        bundle.writestr("labels.csv", "\n".join(lines) + "\n")
    done = modelgen("new", "--yes", "--data", "data.zip", "--output", "out", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "labels.csv line 22: path '../../../secret.png' points outside the zip" in one_line(
        done.stderr
    )
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("output", ["data/out", "data", "."])
def test_an_output_overlapping_the_data_is_refused(
    tmp_path: Path, make_dataset: MakeDataset, output: str
) -> None:
    make_dataset({"circle": 10, "square": 10})
    before = tree(tmp_path)
    done = modelgen("new", "--yes", "--force", "--data", "data", "--output", output, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "overlaps the data source" in one_line(done.stderr)
    assert tree(tmp_path) == before


def test_force_refuses_a_folder_modelgen_did_not_generate(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    for name, text in {"README.md": "mine", "pyproject.toml": "[x]", ".gitignore": "*"}.items():
        (home / name).write_text(text)
    before = tree(tmp_path)
    done = modelgen("new", "--yes", "--force", "--output", str(home), cwd=tmp_path)
    assert done.returncode == 2
    assert "is not a project modelgen generated" in one_line(done.stderr)
    assert tree(tmp_path) == before


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("name = 5", "name = 5 must be a string"),
        ('strict = "false"', "strict = 'false' must be a true or false"),
        ('time_budget = "60"', "time_budget = '60' must be a whole number"),
    ],
)
def test_answers_of_the_wrong_type_name_the_key(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "answers.toml").write_text(content + "\n")
    done = modelgen("new", "--yes", "--answers", "answers.toml", cwd=tmp_path)
    assert done.returncode == 2
    assert message in one_line(done.stderr)


def test_user_errors_are_exit_2_not_internal_errors(
    tmp_path: Path, make_dataset: MakeDataset
) -> None:
    root = make_dataset({"circle": 10, "square": 10})
    (tmp_path / "blocker").write_text("a file where a folder should be")
    done = modelgen("new", "--yes", "--data", str(root), "--output", "blocker/out", cwd=tmp_path)
    assert done.returncode == 2 and "is not a writable folder" in one_line(done.stderr)
    done = modelgen("inspect", str(root), "--report", "missing/r.json", cwd=tmp_path)
    assert done.returncode == 2 and "does not exist: create it first" in one_line(done.stderr)
    (tmp_path / "dir.csv").mkdir()
    done = modelgen("inspect", "dir.csv", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    done = modelgen("new", "--yes", "--replay-plan", cwd=tmp_path)
    assert done.returncode == 2 and "pass its modelgen.toml with --answers" in one_line(done.stderr)


def test_help_shows_every_default(tmp_path: Path) -> None:
    done = modelgen("new", "--help", cwd=tmp_path)
    assert done.returncode == 0
    text = " ".join(done.stdout.replace("│", " ").split())
    for default in ("[default: (300)]", "[default: (42)]", "[default: (./NAME)]", "(auto)]"):
        assert default in text, default
    assert "wrap-model" not in text and "ray" not in text.split()


def test_ctrl_c_during_training_says_the_output_was_not_changed(
    tmp_path: Path, make_dataset: MakeDataset
) -> None:
    import signal

    root = make_dataset({"circle": 10, "square": 10})
    # a refit of 100,000 epochs has no validation to stop it early: it runs into the signal
    plan = plan_table(recipe_row("small-cnn", [1, 1]), shipped=[0], refit=[100_000])
    document = {"answers": {"weights": "none"}, "model": {"plan": plan}}
    (tmp_path / "plan.toml").write_text(tomli_w.dumps(document))
    env = tf_env() | {"PYTHONUNBUFFERED": "1"}
    args = ["--answers", "plan.toml", "--replay-plan", "--data", str(root), "--output", "out"]
    # A shell without job control starts background jobs with SIGINT ignored, and children
    # inherit that: install Python's handler, as an interactive shell's child would have it.
    start = (
        "import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
        "sys.argv[0] = 'modelgen'; runpy.run_module('generator', run_name='__main__')"
    )
    with subprocess.Popen(
        [sys.executable, "-c", start, "new", "--yes", *args],
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    ) as process:
        assert process.stdout is not None
        seen = []
        for line in process.stdout:
            seen.append(line)
            if "Training on" in line:
                process.send_signal(signal.SIGINT)
                break
        _, stderr = process.communicate(timeout=300)
    assert any("Training on" in line for line in seen), "".join(seen)
    assert process.returncode == 130, stderr
    assert "the output folder was not changed" in one_line(stderr)
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []
