from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers import MakeDataset
from PIL import Image

from generator.data import preprocess, scan_folder, split_dataset
from generator.errors import DataError


def test_scan_reads_labels_sorted_with_counts(make_dataset: MakeDataset) -> None:
    root = make_dataset({"zebra": 10, "apple": 11})
    dataset = scan_folder(root, min_images_per_class=10)
    assert dataset.labels == ("apple", "zebra")
    assert dataset.counts == {"apple": 11, "zebra": 10}
    assert all(r.width == 32 and len(r.sha256) == 64 for r in dataset.records)


def test_corrupt_and_non_image_files_are_skipped_and_listed(make_dataset: MakeDataset) -> None:
    root = make_dataset({"a": 10, "b": 10})
    good = (root / "a" / "a_000.png").read_bytes()
    (root / "a" / "truncated.png").write_bytes(good[: len(good) // 2])
    (root / "a" / "notes.txt").write_text("hello")
    (root / "b" / "empty.jpg").write_bytes(b"")
    (root / "README.md").write_text("about the data")
    dataset = scan_folder(root, min_images_per_class=10)
    reasons = {s.relpath: s.reason for s in dataset.skipped}
    assert set(reasons) == {"a/truncated.png", "a/notes.txt", "b/empty.jpg"}
    assert reasons["b/empty.jpg"] == "empty file (0 bytes): re-export or remove it"
    assert reasons["a/notes.txt"].startswith("not an image Pillow can read")
    assert reasons["a/truncated.png"].startswith("corrupt or truncated image")
    assert dataset.counts == {"a": 10, "b": 10}
    assert [str(note) for note in dataset.notes] == [
        "README.md: not inside a label folder (1 level deep), ignored"
    ]


def test_no_label_folders(tmp_path: Path) -> None:
    (tmp_path / "loose.png").write_bytes(b"")
    with pytest.raises(DataError, match="has no label folders"):
        scan_folder(tmp_path, min_images_per_class=10)


def test_single_class(make_dataset: MakeDataset) -> None:
    root = make_dataset({"only": 12})
    (root / "empty").mkdir()
    with pytest.raises(DataError, match="at least 2 classes.*only 'only' has images.*empty"):
        scan_folder(root, min_images_per_class=10)


def test_class_below_minimum_names_class_and_count(make_dataset: MakeDataset) -> None:
    root = make_dataset({"a": 12, "b": 4})
    with pytest.raises(DataError, match="at least 10 usable images, but 'b' has 4"):
        scan_folder(root, min_images_per_class=10)


def test_split_is_stratified_disjoint_and_seeded(make_dataset: MakeDataset) -> None:
    dataset = scan_folder(make_dataset({"a": 40, "b": 40, "c": 12}), min_images_per_class=10)
    split = split_dataset(dataset, seed=1, validation_fraction=0.15, test_fraction=0.15)
    parts = [split.train, split.validation, split.test]
    paths = [r.relpath for part in parts for r in part]
    assert sorted(paths) == sorted(r.relpath for r in dataset.records)
    for label in dataset.labels:
        assert all(any(r.label == label for r in part) for part in parts), label
    again = split_dataset(dataset, seed=1, validation_fraction=0.15, test_fraction=0.15)
    assert again == split
    other = split_dataset(dataset, seed=2, validation_fraction=0.15, test_fraction=0.15)
    assert other.test != split.test


def test_adding_images_never_moves_existing_test_images(make_dataset: MakeDataset) -> None:
    root = make_dataset({"a": 50, "b": 50})
    before = split_dataset(
        scan_folder(root, min_images_per_class=10),
        seed=7,
        validation_fraction=0.15,
        test_fraction=0.15,
    )
    extra = make_dataset({"a": 10, "b": 10}, name="extra", seed=99)
    for label in ("a", "b"):
        for path in (extra / label).iterdir():
            shutil.copy(path, root / label / f"new_{path.name}")
    after = split_dataset(
        scan_folder(root, min_images_per_class=10),
        seed=7,
        validation_fraction=0.15,
        test_fraction=0.15,
    )
    assert {r.relpath for r in before.test} <= {r.relpath for r in after.test}
    assert {r.relpath for r in before.train} <= {r.relpath for r in after.train}


def test_preprocess_modes_alpha_and_exif() -> None:
    for mode in ("L", "RGB", "RGBA", "P", "CMYK", "LA"):
        array = preprocess(Image.new(mode, (40, 30)), 16)
        assert array.shape == (16, 16, 3) and array.dtype == np.uint8, mode
    clear = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    assert preprocess(clear, 4).min() == 255
    pixels = np.zeros((10, 20, 3), dtype=np.uint8)
    pixels[:, :5] = 255
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", exif=exif)
    upright = preprocess(Image.open(io.BytesIO(buffer.getvalue())), 20)
    expected = preprocess(image.transpose(Image.Transpose.ROTATE_270), 20)
    assert np.array_equal(upright, expected)


def test_near_copies_of_old_images_never_move_them_when_the_last_split_is_known(
    make_dataset: MakeDataset,
) -> None:
    root = make_dataset({"a": 40, "b": 40}, size=64)
    options = {"seed": 7, "validation_fraction": 0.15, "test_fraction": 0.15}
    first = scan_folder(root, min_images_per_class=10)
    before = split_dataset(first, **options)
    previous = {r.sha256: name for name, part in before.parts().items() for r in part}
    # 20% more images: near copies (re-encoded) of old images, which join their groups
    for record in [*first.records][::5]:
        copy = Image.open(record.path).convert("RGB")
        copy.save(root / record.label / f"copy_{Path(record.relpath).stem}.jpg", quality=90)
    second = scan_folder(root, min_images_per_class=10)
    assert second.near_duplicate_groups >= 10
    after = split_dataset(second, previous=previous, **options).split_of()
    for name, part in before.parts().items():
        assert all(after[r.relpath] == name for r in part), name
    for record in [*first.records][::5]:  # each copy sits with its original
        copy = f"{record.label}/copy_{Path(record.relpath).stem}.jpg"
        assert after[copy] == after[record.relpath]
