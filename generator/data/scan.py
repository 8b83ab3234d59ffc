"""Read a folder-per-label data source; decode every file before training trusts it."""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from ..errors import DataError
from .images import decode

Image.MAX_IMAGE_PIXELS = 64_000_000  # larger images are refused as possible decompression bombs


@dataclass(frozen=True)
class ImageRecord:
    """One decodable image of the data source."""

    path: Path
    relpath: str
    label: str
    sha256: str
    width: int
    height: int
    mode: str


@dataclass(frozen=True)
class Skipped:
    """A file that was not used, and why."""

    relpath: str
    reason: str


@dataclass(frozen=True)
class Dataset:
    root: Path
    labels: tuple[str, ...]
    records: tuple[ImageRecord, ...]
    skipped: tuple[Skipped, ...] = ()
    notes: tuple[str, ...] = field(default=())

    @property
    def counts(self) -> dict[str, int]:
        counted = Counter(r.label for r in self.records)
        return {label: counted[label] for label in self.labels}

    @property
    def fingerprint(self) -> str:
        """Hash of every (label, relative path, content hash): changes when the data does."""
        digest = hashlib.sha256()
        for r in sorted(self.records, key=lambda r: r.relpath):
            digest.update(f"{r.label}\t{r.relpath}\t{r.sha256}\n".encode())
        return digest.hexdigest()


def _check_file(path: Path) -> tuple[str, Image.Image] | str:
    """(content hash, decoded image), or the reason the file cannot be used."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if not data:
        return "empty file (0 bytes)"
    try:
        image = decode(data)
    except UnidentifiedImageError:
        return "not a readable image (not a format Pillow recognises)"
    except Image.DecompressionBombError:
        return f"image larger than {Image.MAX_IMAGE_PIXELS:,} pixels, refused as unsafe"
    except Exception as exc:  # Pillow raises many types for bad data
        message = str(exc).split("\n")[0] or type(exc).__name__
        return f"not a readable image ({message})"
    return hashlib.sha256(data).hexdigest(), image


def _label_files(folder: Path) -> list[Path]:
    files: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        files.extend(Path(dirpath) / f for f in sorted(filenames) if not f.startswith("."))
    return files


def scan_folder(
    root: Path,
    *,
    min_images_per_class: int,
    on_progress: Callable[[int, int], None] | None = None,
) -> Dataset:
    """Scan root/<label>/**/<image>; raise DataError when training would be meaningless."""
    if not root.is_dir():
        raise DataError(f"data source {root} is not a folder: pass --data with a label folder")
    label_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    notes = tuple(
        f"{p.name}: not inside a label folder, ignored"
        for p in sorted(root.iterdir())
        if p.is_file() and not p.name.startswith(".")
    )
    if not label_dirs:
        raise DataError(
            f"data source {root} has no label folders: put each class's images in a "
            f"sub-folder named after the label, e.g. {root / 'cat'}/ and {root / 'dog'}/"
        )
    work = [(d.name, f) for d in label_dirs for f in _label_files(d)]
    records: list[ImageRecord] = []
    skipped: list[Skipped] = []
    for done, (label, path) in enumerate(work, start=1):
        relpath = path.relative_to(root).as_posix()
        checked = _check_file(path)
        if isinstance(checked, str):
            skipped.append(Skipped(relpath, checked))
        else:
            sha, image = checked
            records.append(ImageRecord(path, relpath, label, sha, *image.size, image.mode))
            image.close()
        if on_progress:
            on_progress(done, len(work))
    counts = Counter(r.label for r in records)
    labels = tuple(d.name for d in label_dirs if counts[d.name])
    empty = [d.name for d in label_dirs if not counts[d.name]]
    if len(labels) < 2:
        found = f"only {labels[0]!r} has images" if labels else "no readable images were found"
        raise DataError(
            f"data source {root} needs at least 2 classes with images, {found}"
            + (f" (empty or unreadable: {', '.join(empty)})" if empty else "")
            + ": add a sub-folder of images for every label"
        )
    small = [(label, counts[label]) for label in labels if counts[label] < min_images_per_class]
    if small:
        listed = ", ".join(f"{label!r} has {n}" for label, n in small)
        raise DataError(
            f"every class needs at least {min_images_per_class} readable images, but {listed} "
            f"(in {root}): add images to those folders or remove them"
        )
    if empty:
        notes += tuple(f"{name}/: no readable images, class ignored" for name in empty)
    return Dataset(root, labels, tuple(records), tuple(skipped), notes)
