"""Split stability: within a project, the test set only grows and nothing leaks into it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers import draw_shape
from PIL import Image, ImageEnhance

from generator.data import Dataset, SourceOptions, scan_source, split_dataset
from generator.data.split import Split

SPLIT = {"validation_fraction": 0.15, "test_fraction": 0.15}
LABELS = ("circle", "square", "triangle")


def scan(root: Path) -> Dataset:
    return scan_source(SourceOptions(root), min_images_per_class=10, workers=1)


def history(*splits: Split) -> dict[str, str]:
    """What modelgen.toml keeps: every image's split, the latest run winning."""
    kept: dict[str, str] = {}
    for split in splits:
        kept |= split.by_content()
    return kept


def near_copy(source: Path, target: Path) -> None:
    """Re-encoded as JPEG and 1% brighter: the copy a user makes without noticing."""
    with Image.open(source) as image:
        ImageEnhance.Brightness(image.convert("RGB")).enhance(1.01).save(target, quality=90)


@pytest.mark.parametrize("seed", range(50))
def test_the_test_set_only_grows_and_near_copies_of_test_images_stay_in_it(
    tmp_path: Path, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    root = tmp_path / "data"
    for label in LABELS:  # classes of exactly 10 images: the smallest allowed
        (root / label).mkdir(parents=True)
        for i in range(10):
            draw_shape(label, 32, rng).save(root / label / f"{i}.png")
    first = split_dataset(scan(root), seed=seed, **SPLIT)
    for label in LABELS:  # every class is tested and validated from the first run
        for part in (first.test, first.validation):
            assert any(r.label == label for r in part), (label, seed)
    # Second run: a near copy of every test image, and a few new images per class.
    copies = {}
    for record in first.test:
        copy = f"{record.label}/copy_{Path(record.relpath).stem}.jpg"
        near_copy(record.path, root / copy)
        copies[copy] = record.relpath
    for label in LABELS:
        for i in range(3):
            draw_shape(label, 32, rng).save(root / label / f"new_{i}.png")
    second = split_dataset(scan(root), seed=seed, previous=history(first), **SPLIT)
    after = second.split_of()
    for name, part in first.parts().items():  # no image moves, into test or out of it
        assert all(after[r.relpath] == name for r in part), (name, seed)
    assert all(after[copy] == "test" for copy in copies), seed
    # Third run: more new images, with the history of both runs; then a copy is removed.
    for label in LABELS:
        for i in range(4):
            draw_shape(label, 32, rng).save(root / label / f"later_{i}.png")
    gone = sorted(copies)[0]
    (root / gone).unlink()
    third = split_dataset(scan(root), seed=seed, previous=history(first, second), **SPLIT)
    final = third.split_of()
    for name, part in second.parts().items():
        assert all(final[r.relpath] == name for r in part if r.relpath != gone), (name, seed)


def test_an_image_that_comes_back_keeps_its_old_split(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    root = tmp_path / "data"
    for label in LABELS:
        (root / label).mkdir(parents=True)
        for i in range(12):
            draw_shape(label, 32, rng).save(root / label / f"{i}.png")
    first = split_dataset(scan(root), seed=1, **SPLIT)
    tested = first.test[0]
    content = tested.path.read_bytes()
    tested.path.unlink()
    second = split_dataset(scan(root), seed=1, previous=history(first), **SPLIT)
    (root / tested.label / "back.png").write_bytes(content)
    third = split_dataset(scan(root), seed=1, previous=history(first, second), **SPLIT)
    assert third.split_of()[f"{tested.label}/back.png"] == "test"
