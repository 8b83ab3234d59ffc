"""The dataset doctor: every check on a small corpus, with its exact outcome.

Per-file problems skip the file (counted, listed, named); problems that make training
meaningless raise DataError (exit 2) before any training. Nothing is written in the source.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import shutil
import stat
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import MakeDataset, draw_shape
from PIL import Image

from generator.data import Dataset, SourceOptions, scan_source, split_dataset
from generator.data.archive import extract_zip
from generator.data.changes import diff
from generator.data.checks import MAX_FILE_BYTES
from generator.data.manifest import list_manifest
from generator.errors import DataError

SPLIT = {"validation_fraction": 0.15, "test_fraction": 0.15}


def tree_state(root: Path) -> list[tuple[str, str]]:
    """Every path under root with a hash of its content (or 'dir'/'link')."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in sorted(dirnames + filenames):
            path = Path(dirpath) / name
            if path.is_symlink():
                kind = "link:" + os.readlink(path)
            elif path.is_dir():
                kind = "dir"
            else:
                kind = hashlib.sha256(path.read_bytes()).hexdigest()
            found.append((str(path.relative_to(root)), kind))
    return sorted(found)


def scan(root: Path, extract_root: Path | None = None, **options: Any) -> Dataset:
    return scan_source(
        SourceOptions(root, **options),
        min_images_per_class=10,
        workers=1,
        extract_root=extract_root,
    )


def zipped(root: Path, archive: Path, prefix: str = "") -> Path:
    """archive holding root's images under prefix."""
    with zipfile.ZipFile(archive, "w") as bundle:
        for path in sorted(root.rglob("*.png")):
            bundle.write(path, prefix + path.relative_to(root).as_posix())
    return archive


def image_bytes(image: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


@pytest.fixture
def corpus(make_dataset: MakeDataset) -> Path:
    """Two good classes plus one file for every per-file check."""
    root = make_dataset({"circle": 12, "square": 12}, size=48)
    rng = np.random.default_rng(5)
    shape = draw_shape("circle", 48, rng)
    c, s = root / "circle", root / "square"
    (c / "zero.png").write_bytes(b"")
    (c / "text.jpg").write_text("just words")
    good = image_bytes(shape, "PNG")
    (c / "cut.png").write_bytes(good[: len(good) // 2])
    (c / "bmp-named.jpg").write_bytes(image_bytes(shape, "BMP"))
    (c / "cmyk.jpg").write_bytes(image_bytes(shape.convert("CMYK"), "JPEG"))
    grey16 = Image.frombytes(
        "I;16", (48, 48), rng.integers(0, 65536, (48, 48)).astype("<u2").tobytes()
    )
    (c / "deep.png").write_bytes(image_bytes(grey16, "PNG"))
    (s / "palette.png").write_bytes(image_bytes(shape.convert("P"), "PNG"))
    rgba = shape.convert("RGBA")
    rgba.putalpha(128)
    (s / "alpha.png").write_bytes(image_bytes(rgba, "PNG"))
    frames = [draw_shape("square", 48, rng) for _ in range(3)]
    (s / "moving.gif").write_bytes(
        image_bytes(frames[0], "GIF", save_all=True, append_images=frames[1:])
    )
    exif = shape.getexif()
    exif[0x0112] = 6
    (s / "rotated.jpg").write_bytes(image_bytes(shape, "JPEG", exif=exif))
    (s / "tiny.png").write_bytes(image_bytes(shape.resize((8, 8)), "PNG"))
    (s / "bomb.png").write_bytes(image_bytes(Image.new("1", (9000, 8000)), "PNG"))
    (s / "copy.png").write_bytes((s / "square_000.png").read_bytes())
    return root


def test_every_per_file_check_has_its_outcome(corpus: Path) -> None:
    before = tree_state(corpus)
    dataset = scan(corpus)
    skipped = {s.relpath: s.reason for s in dataset.skipped}
    assert skipped == {
        "circle/zero.png": "empty file (0 bytes): re-export or remove it",
        "circle/text.jpg": "not an image Pillow can read: remove it or convert it to PNG/JPEG",
        "circle/cut.png": skipped["circle/cut.png"],
        "square/tiny.png": "too small (8x8 px; at least 16 px a side is needed): use a larger "
        "copy or remove it",
        "square/bomb.png": "9000x8000 pixels is over the 64,000,000-pixel limit, refused unread "
        "(a decompression bomb, or far larger than training needs): downscale it",
        "square/square_000.png": "exact duplicate of square/copy.png: remove one copy",
    }
    assert skipped["circle/cut.png"].startswith("corrupt or truncated image (")
    notes = "\n".join(str(note) for note in dataset.notes)
    for expected in (
        "circle/bmp-named.jpg: is a BMP file named .jpg: read as BMP; rename it to .bmp",
        "circle/cmyk.jpg: CMYK image, converted to RGB",
        "circle/deep.png: 16-bit image, scaled to 8 bits",
        "square/palette.png: palette image, converted to RGB",
        "square/alpha.png: has transparency, flattened onto white",
        "square/moving.gif: animated (3 frames): the first frame is used",
        "square/rotated.jpg: EXIF orientation 6, rotated upright",
    ):
        assert expected in notes
    kept = {r.relpath for r in dataset.records}
    assert {"circle/bmp-named.jpg", "circle/deep.png", "square/moving.gif"} <= kept
    assert "square/copy.png" in kept  # the first copy in path order stays
    assert dataset.counts == {"circle": 15, "square": 16}
    assert tree_state(corpus) == before  # nothing written, moved or deleted


def test_strict_turns_skips_into_one_error_naming_them(corpus: Path) -> None:
    with pytest.raises(DataError, match=r"6 file\(s\) in .* cannot be used \(--strict\)") as e:
        scan(corpus, strict=True)
    assert "circle/zero.png: empty file" in str(e.value)


def test_same_image_under_two_labels_is_an_error(make_dataset: MakeDataset) -> None:
    root = make_dataset({"cat": 12, "dog": 12})
    (root / "dog" / "really-a-cat.png").write_bytes((root / "cat" / "cat_003.png").read_bytes())
    with pytest.raises(DataError, match="conflicting labels") as caught:
        scan(root)
    assert "cat/cat_003.png ('cat') and dog/really-a-cat.png ('dog')" in str(caught.value)


def test_near_duplicates_share_a_split_and_relabelled_ones_are_flagged(
    make_dataset: MakeDataset,
) -> None:
    root = make_dataset({"a": 20, "b": 20}, size=64)
    original = Image.open(root / "a" / "a_004.png").convert("RGB")
    (root / "a" / "a_004_big.jpg").write_bytes(image_bytes(original.resize((128, 128)), "JPEG"))
    (root / "b" / "b_from_a.jpg").write_bytes(image_bytes(original, "JPEG", quality=60))
    dataset = scan(root)
    keys = {r.relpath: r.split_key for r in dataset.records}
    assert keys["a/a_004.png"] == keys["a/a_004_big.jpg"] == keys["b/b_from_a.jpg"] != ""
    assert dataset.near_duplicate_groups == 1
    assert sum(bool(k) for k in keys.values()) == 3  # unrelated images are not grouped
    assert any("near duplicates under different labels" in w for w in dataset.warnings)
    for seed in range(8):
        split = split_dataset(dataset, seed=seed, **SPLIT).split_of()
        assert split["a/a_004.png"] == split["a/a_004_big.jpg"] == split["b/b_from_a.jpg"]


def test_imbalance_warns_with_the_ratio(make_dataset: MakeDataset) -> None:
    dataset = scan(make_dataset({"common": 44, "rare": 11}))
    assert dataset.warnings == (
        "classes are imbalanced: 'common' has 44 images, 'rare' 11 (4.0x); training weights "
        "classes to compensate, but more 'rare' images would help most",
    )


def test_symlink_loop_unreadable_folder_and_non_utf8_name(
    make_dataset: MakeDataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_dataset({"a": 10, "b": 10})
    (root / "a" / "again").symlink_to(root / "a", target_is_directory=True)
    locked = root / "b" / "locked"
    locked.mkdir()
    with open(os.path.join(os.fsencode(root / "b"), b"caf\xe9.png"), "wb") as fh:
        fh.write((root / "b" / "b_000.png").read_bytes())
    real_scandir = os.scandir

    def scandir(path: str | os.PathLike[str]) -> object:
        if Path(path) == locked:  # root ignores chmod, so refuse the way the OS would
            raise PermissionError(13, "Permission denied")
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    dataset = scan(root)
    assert dataset.counts == {"a": 10, "b": 10}
    assert [str(note) for note in dataset.notes] == [
        "a/again: symbolic link to a folder, not followed (its images are scanned where they "
        "are): remove the link, or copy the folder if its images belong to this label too",
        "b/locked/: folder cannot be read (Permission denied): check its permissions "
        "(chmod +rx)",
    ]
    assert [(s.relpath, s.reason, s.label) for s in dataset.skipped] == [
        ("b/caf\\xe9.png", "file name is not valid UTF-8, skipped: rename it", "b")
    ]
    with pytest.raises(DataError, match=r"1 file\(s\) .* cannot be used") as caught:
        scan(root, strict=True)
    assert "b/caf\\xe9.png: file name is not valid UTF-8" in str(caught.value)


def test_symbolic_links_are_followed_only_to_files_inside_the_data_folder(
    make_dataset: MakeDataset, tmp_path: Path
) -> None:
    root = make_dataset({"a": 10, "b": 10})
    outside = tmp_path / "outside"
    (outside / "more").mkdir(parents=True)
    for i in range(12):
        shutil.copy(root / "a" / f"a_{i % 10:03d}.png", outside / "more" / f"{i}.png")
    (outside / "secret.txt").write_text("not for modelgen")
    (root / "a" / "out.png").symlink_to(outside / "more" / "0.png")
    (root / "b" / "secret.png").symlink_to(outside / "secret.txt")
    (root / "c").symlink_to(outside / "more", target_is_directory=True)
    (root / "b" / "a-again").symlink_to(root / "a", target_is_directory=True)
    (root / "b" / "gone.png").symlink_to(root / "b" / "missing.png")
    (root / "b" / "twin.png").symlink_to(root / "b" / "b_000.png")
    dataset = scan(root)
    assert dataset.counts == {"a": 10, "b": 10}  # no class "c", and b keeps its own images
    outside_note = (
        "symbolic link to outside the data folder, not followed: copy the file or folder "
        "into the data folder, or list the images in a CSV manifest"
    )
    assert [str(note) for note in dataset.notes] == [
        "b/a-again: symbolic link to a folder, not followed (its images are scanned where "
        "they are): remove the link, or copy the folder if its images belong to this label too",
        f"c: {outside_note}",
    ]
    assert sorted((s.relpath, s.reason) for s in dataset.skipped) == [
        ("a/out.png", outside_note),
        (
            "b/gone.png",
            "broken symbolic link (its target does not exist), skipped: remove the link",
        ),
        ("b/secret.png", outside_note),
        ("b/twin.png", "exact duplicate of b/b_000.png: remove one copy"),
    ]


def test_a_zip_made_by_macos_finder_needs_no_cleaning(
    make_dataset: MakeDataset, tmp_path: Path
) -> None:
    root = make_dataset({"a": 10, "b": 10})
    archive = zipped(root, tmp_path / "data.zip")
    with zipfile.ZipFile(archive, "a") as zf:
        for path in sorted(root.rglob("*.png")):
            rel = path.relative_to(root).as_posix()
            zf.writestr(f"__MACOSX/{rel.replace('/', '/._')}", b"\0\5\26\7 resource fork")
    dataset = scan(archive, extract_root=tmp_path / "cache")
    assert dataset.counts == {"a": 10, "b": 10}
    assert [str(note) for note in dataset.notes] == ["__MACOSX: macOS archive metadata, ignored"]


def test_a_zip_without_label_folders_is_named_not_its_extracted_copy(tmp_path: Path) -> None:
    archive = tmp_path / "empty.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("readme.txt", "no images here")
    with pytest.raises(DataError) as caught:
        scan(archive, extract_root=tmp_path / "cache")
    assert str(caught.value) == (
        f"{archive} holds no label folders: zip a folder with one sub-folder of images per "
        "label (cat/, dog/) or a CSV manifest of path,label rows"
    )


def test_label_depth_takes_nested_folders_as_labels(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    root = tmp_path / "animals"
    for label in ("cats/black", "cats/white", "dogs/brown"):
        (root / label).mkdir(parents=True)
        for i in range(10):
            draw_shape("circle", 32, rng).save(root / label / f"{i}.png")
    assert scan(root, label_depth=2).labels == ("cats/black", "cats/white", "dogs/brown")
    assert scan(root).labels == ("cats", "dogs")  # depth 1: nested folders are one class


def _manifest(path: Path, rows: list[list[str]], delimiter: str = ",") -> Path:
    with path.open("w", newline="") as fh:
        csv.writer(fh, delimiter=delimiter).writerows(rows)
    return path


def test_csv_manifest_with_header_and_missing_files(
    make_dataset: MakeDataset, tmp_path: Path
) -> None:
    images = make_dataset({"x": 12, "y": 12}, name="pool")
    rows = [["filename", "class"]]
    for i in range(12):
        rows.append([f"pool/x/x_{i:03d}.png", "t-shirt/top"])
        rows.append([str(images / "y" / f"y_{i:03d}.png"), "2 trousers"])
    rows.append(["pool/x/gone.png", "t-shirt/top"])
    dataset = scan(_manifest(tmp_path / "labels.csv", rows))
    assert dataset.kind == "manifest"
    assert dataset.counts == {"2 trousers": 12, "t-shirt/top": 12}
    assert [(s.relpath, s.reason) for s in dataset.skipped] == [
        ("pool/x/gone.png", "named in labels.csv line 26 but missing: fix the path or the row")
    ]


def test_manifest_rows_that_do_not_fit_the_header_are_noted_with_their_own_line(
    make_dataset: MakeDataset, tmp_path: Path
) -> None:
    """A row with more cells than the header (an unquoted comma in a path) is ignored with a
    note, not read as path and label from its first cells; trailing empty cells are fine;
    blank lines do not shift the line numbers the notes give."""
    make_dataset({"x": 10, "y": 10}, name="pool")
    lines = ["path,label"] + [f"pool/{c}/{c}_{i:03d}.png,{c}" for c in "xy" for i in range(10)]
    lines[3] += ","  # trailing empty cell: kept
    lines[5:5] = ["", ""]  # blank lines 6 and 7
    lines.insert(10, "pool/x/x,000.png,x")  # line 11: an unquoted comma
    lines.insert(12, ",y")  # line 13: no path
    manifest = tmp_path / "labels.csv"
    manifest.write_text("\n".join(lines) + "\n")
    dataset = scan(manifest)
    assert dataset.counts == {"x": 10, "y": 10}
    assert [str(note) for note in dataset.notes] == [
        "labels.csv line 11: has 3 cells where the header has 2, ignored: quote a path or "
        "label that contains ','",
        "labels.csv line 13: needs a path and a label, ignored",
    ]


def test_tsv_without_header_and_named_columns(make_dataset: MakeDataset, tmp_path: Path) -> None:
    make_dataset({"x": 10, "y": 10}, name="pool")
    rows = [[f"pool/{c}/{c}_{i:03d}.png", c] for c in "xy" for i in range(10)]
    assert scan(_manifest(tmp_path / "l.tsv", rows, "\t")).counts == {"x": 10, "y": 10}
    named = [["id", "where", "what"]] + [[str(i), p, lab] for i, (p, lab) in enumerate(rows)]
    manifest = _manifest(tmp_path / "named.csv", named)
    with pytest.raises(DataError, match="cannot tell which manifest column holds the path"):
        scan(manifest)
    dataset = scan(manifest, path_column="where", label_column="what")
    assert dataset.counts == {"x": 10, "y": 10}


def test_zip_of_a_folder_is_extracted_outside_the_source(
    make_dataset: MakeDataset, tmp_path: Path
) -> None:
    root = make_dataset({"a": 10, "b": 10})
    archive = zipped(root, tmp_path / "data.zip", prefix="dataset/")
    before = tree_state(tmp_path)
    dataset = scan(archive, extract_root=tmp_path / "cache")
    assert dataset.kind == "zip" and dataset.counts == {"a": 10, "b": 10}
    after = [entry for entry in tree_state(tmp_path) if not entry[0].startswith("cache")]
    assert after == before


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("../escape.png", "climbs out of the archive"),
        ("/etc/owned.png", "absolute path"),
        ("link.png", "symbolic link"),
    ],
)
def test_unsafe_zips_are_refused(tmp_path: Path, name: str, message: str) -> None:
    archive = tmp_path / "bad.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        info = zipfile.ZipInfo(name)
        if name == "link.png":
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
        bundle.writestr(info, b"target")
    with pytest.raises(DataError, match=message):
        extract_zip(archive, tmp_path / "cache")
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").rglob("*.png"))


def test_zip_over_the_size_limit_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "big.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("a/one.bin", os.urandom(4096))
        bundle.writestr("a/two.bin", os.urandom(4096))
    with pytest.raises(DataError, match="expands to more than"):
        extract_zip(archive, tmp_path / "cache", max_bytes=6000)


def test_fingerprint_diff_names_added_removed_and_relabelled(make_dataset: MakeDataset) -> None:
    root = make_dataset({"a": 12, "b": 12})
    first = scan(root)
    saved = [{"path": r.relpath, "label": r.label, "sha256": r.sha256} for r in first.records]
    (root / "a" / "a_000.png").unlink()
    (root / "b" / "b_001.png").rename(root / "a" / "moved.png")
    draw_shape("b", 32, np.random.default_rng(99)).save(root / "b" / "new.png")
    changes = diff(saved, scan(root))
    assert changes.added == {"b": 1} and changes.removed == {"a": 1}
    assert changes.relabelled == (("a/moved.png", "b", "a"),)
    assert changes.describe().startswith("1 added (b 1); 1 removed (a 1); 1 relabelled (b -> a 1)")
    assert diff(saved, first).empty
    draw_shape("a", 32, np.random.default_rng(7)).save(root / "a" / "a_002.png")  # in place
    draw_shape("c", 32, np.random.default_rng(8)).save(root / "b" / "new.png")
    for i in range(10):
        draw_shape("c", 32, np.random.default_rng(100 + i)).save(root / "b" / f"c{i}.png")
    again = diff(saved, scan(root))
    assert again.modified == ("a/a_002.png",)
    assert again.added == {"b": 11} and again.removed == {"a": 1}  # the change counted once


@pytest.mark.parametrize(
    "label", ["../../escaped", "..", "/abs", "a//b", "cats/", "a\\b", "tab\there", "x" * 201]
)
def test_labels_that_look_like_paths_or_hide_characters_are_refused(
    make_dataset: MakeDataset, tmp_path: Path, label: str
) -> None:
    make_dataset({"x": 10, "y": 10}, name="pool")
    rows = [["path", "label"]] + [[f"pool/x/x_{i:03d}.png", "x"] for i in range(10)]
    rows += [[f"pool/y/y_{i:03d}.png", label] for i in range(10)]
    with pytest.raises(DataError, match=r"labels\.csv line 12: label .* is refused"):
        scan(_manifest(tmp_path / "labels.csv", rows))


def test_labels_with_parts_and_spaces_are_kept_as_data(
    make_dataset: MakeDataset, tmp_path: Path
) -> None:
    make_dataset({"x": 10, "y": 10}, name="pool")
    rows = [["path", "label"]] + [[f"pool/x/x_{i:03d}.png", " t-shirt/top "] for i in range(10)]
    rows += [[f"pool/y/y_{i:03d}.png", "2 trousers"] for i in range(10)]
    assert scan(_manifest(tmp_path / "labels.csv", rows)).labels == ("2 trousers", "t-shirt/top")


def _zip_of(tmp_path: Path, members: dict[str, bytes], name: str = "data.zip") -> Path:
    archive = tmp_path / name
    with zipfile.ZipFile(archive, "w") as bundle:
        for member, content in members.items():
            bundle.writestr(member, content)
    return archive


def test_a_manifest_inside_a_zip_cannot_name_files_outside_it(
    make_dataset: MakeDataset, tmp_path: Path
) -> None:
    root = make_dataset({"a": 10, "b": 10})
    members = {
        f"imgs/{p.name}": p.read_bytes() for p in sorted(root.rglob("*.png"))
    }  # names are unique per label: a_000.png, b_000.png
    outside = tmp_path / "secret.png"
    outside.write_bytes((root / "a" / "a_000.png").read_bytes())
    for path in (str(outside), "../secret.png"):
        lines = ["path,label"] + [f"{m},{m[5]}" for m in members] + [f"{path},a"]
        archive = _zip_of(tmp_path, members | {"labels.csv": "\n".join(lines).encode()})
        with pytest.raises(DataError, match="labels.csv line 22: path .* points outside the zip"):
            scan(archive, extract_root=tmp_path / "cache")
        archive.unlink()


def _patched(archive: Path, old: bytes, new: bytes) -> Path:
    data = archive.read_bytes()
    assert old in data
    archive.write_bytes(data.replace(old, new))
    return archive


def _set_field(archive: Path, value: int, *, local: int, central: int) -> None:
    """Write a 2-byte field of the first member's local and central headers."""
    data = bytearray(archive.read_bytes())
    for header, offset in ((b"PK\x03\x04", local), (b"PK\x01\x02", central)):
        at = data.index(header) + offset
        data[at : at + 2] = value.to_bytes(2, "little")
    archive.write_bytes(bytes(data))


def test_broken_zips_are_refused_naming_the_member(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    payload = b"IMAGEBYTES" * 100
    crc = _patched(
        _zip_of(tmp_path, {"a/one.png": payload}, "crc.zip"), b"IMAGEBYTES" * 3, b"X" * 30
    )
    with pytest.raises(DataError, match=r"crc.zip: a/one.png is corrupt \(Bad CRC-32"):
        extract_zip(crc, tmp_path / "cache")
    locked = _zip_of(tmp_path, {"a/one.png": payload}, "locked.zip")
    _set_field(locked, 0x1, local=6, central=8)  # general purpose flag bit 0: encrypted
    with pytest.raises(DataError, match="a/one.png is encrypted"):
        extract_zip(locked, tmp_path / "cache")
    odd = _zip_of(tmp_path, {"a/one.png": payload}, "odd.zip")
    _set_field(odd, 99, local=8, central=10)  # compression method
    with pytest.raises(DataError, match="a/one.png uses compression method 99"):
        extract_zip(odd, tmp_path / "cache")
    with pytest.raises(DataError, match="empty or unusable name"):
        extract_zip(_zip_of(tmp_path, {"a//b.png": payload}, "empty.zip"), tmp_path / "cache")
    monkeypatch.setattr("generator.data.archive.MAX_ZIP_MEMBERS", 2)
    many = _zip_of(tmp_path, {f"a/{i}.png": payload for i in range(3)}, "many.zip")
    with pytest.raises(DataError, match="holds 3 entries, over the 2 limit"):
        extract_zip(many, tmp_path / "cache")
    assert not any((tmp_path / "cache").rglob("*.png"))


def test_a_file_over_the_size_cap_is_skipped_unread(make_dataset: MakeDataset) -> None:
    root = make_dataset({"a": 10, "b": 10})
    with (root / "a" / "huge.png").open("wb") as fh:  # sparse: no disk, no memory
        fh.truncate(MAX_FILE_BYTES + 1)
    dataset = scan(root)
    assert [(s.relpath, s.reason) for s in dataset.skipped] == [
        (
            "a/huge.png",
            "256 MiB is over the 256 MiB limit for one image, skipped unread: downscale or "
            "recompress it",
        )
    ]


def test_a_class_with_no_usable_image_is_an_error_naming_it(make_dataset: MakeDataset) -> None:
    root = make_dataset({"a": 10, "b": 10})
    (root / "notes").mkdir()
    for i in range(11):
        (root / "notes" / f"{i}.jpg").write_text("not an image")
    with pytest.raises(DataError, match=r"'notes' has 0 \(11 more files skipped\)"):
        scan(root)


def test_an_unreadable_manifest_is_a_data_error(tmp_path: Path) -> None:
    folder = tmp_path / "labels.csv"
    folder.mkdir()
    with pytest.raises(DataError, match="labels.csv cannot be read"):
        list_manifest(folder)
