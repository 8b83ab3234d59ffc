"""The command as a user runs it: no terminal, bad inputs, exit codes and messages."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import MakeDataset, tf_env


def modelgen(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
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
    done = modelgen("new", "--name", "x", cwd=tmp_path)
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
        (["--scenario", "wrap-model"], "is not available yet"),
        (["--compute", "ray"], "is not available yet"),
        (["--time-budget", "2"], "too short"),
    ],
)
def test_unavailable_choices(tmp_path: Path, args: list[str], message: str) -> None:
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
    done = modelgen("new", "--yes", "--data", str(root), "--weights", "imagenet", cwd=tmp_path)
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
