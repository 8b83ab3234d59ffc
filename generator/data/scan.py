"""The dataset doctor: list the source, check every file (in parallel), then the dataset.

Problems that make training meaningless raise DataError (exit 2) before any training;
per-file problems skip the file, which is counted and listed (strict=True makes them errors).
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import sys
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..errors import DataError
from .checks import THUMB, FileCheck, check_file
from .listing import Entry, Note
from .sources import SourceOptions, list_source

NEAR_DUPLICATE_BITS = 4  # dhash bits that may differ between near duplicates (of 64)
NEAR_DUPLICATE_MAD = 4.0  # and their colour thumbnails' mean absolute difference (of 255)
WEAK_FLIPS = 2  # weak bits per band tried both ways: 4 keys an image and band
IMBALANCE_RATIO = 3.0  # largest class / smallest class above this is worth a warning
PARALLEL_FROM = 64  # files; below this, threads cost more than they save
CHUNK = 512  # files in flight at once


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
    format: str = ""
    dhash: int = 0
    thumb: bytes = field(default=b"", repr=False)
    dhash_weak: int = 0
    split_key: str = ""  # near duplicates share one, so they share a split


@dataclass(frozen=True)
class Skipped:
    """A file that was not used, and why."""

    relpath: str
    reason: str
    label: str = ""


@dataclass(frozen=True)
class Dataset:
    root: Path
    labels: tuple[str, ...]
    records: tuple[ImageRecord, ...]
    skipped: tuple[Skipped, ...] = ()
    notes: tuple[Note, ...] = field(default=())
    """Kept files that were converted, and source-level findings."""
    warnings: tuple[str, ...] = ()
    """Dataset-level concerns: imbalance, near duplicates under different labels."""
    kind: str = "folder"
    near_duplicate_groups: int = 0

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


def _checked(paths: list[Path], workers: int) -> Iterator[FileCheck]:
    """Results in input order, streamed a chunk at a time (memory holds one chunk, not the
    dataset). Forked worker processes while TensorFlow is not loaded (the CLI checks data
    before importing it): checking a small image is mostly Python, so threads would share
    one core. Threads otherwise, where forking a process that runs TensorFlow's threads is
    unsafe; Pillow's decoders and hashlib release the GIL for the heavy part of large files."""
    if workers <= 1 or len(paths) < PARALLEL_FROM:
        yield from map(check_file, paths)
        return
    pool: Executor
    if "tensorflow" not in sys.modules and "fork" in multiprocessing.get_all_start_methods():
        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"))
    else:
        pool = ThreadPoolExecutor(workers)
    with pool:
        for start in range(0, len(paths), CHUNK):
            yield from pool.map(check_file, paths[start : start + CHUNK], chunksize=32)


def scan_source(
    source: SourceOptions,
    *,
    min_images_per_class: int,
    workers: int | None = None,
    extract_root: Path | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> Dataset:
    """Every usable image of the source, and every file that is not, with the reason; raises
    DataError (exit 2) when the source cannot give a meaningful training set."""
    data, strict = source.data, source.strict
    listing = list_source(
        data,
        label_depth=source.label_depth,
        path_column=source.path_column,
        label_column=source.label_column,
        extract_root=extract_root,
    )
    skipped: list[Skipped] = [
        Skipped(e.relpath, e.problem, e.label) for e in listing.entries if e.problem
    ]
    todo: list[Entry] = [e for e in listing.entries if not e.problem]
    notes: list[Note] = list(listing.notes)
    records: list[ImageRecord] = []
    workers = workers if workers is not None else (os.cpu_count() or 1)
    for done, (entry, check) in enumerate(
        zip(todo, _checked([e.path for e in todo], workers), strict=True), start=1
    ):
        if check.problem:
            skipped.append(Skipped(entry.relpath, check.problem, entry.label))
        else:
            records.append(
                ImageRecord(
                    entry.path,
                    entry.relpath,
                    entry.label,
                    check.sha256,
                    check.width,
                    check.height,
                    check.mode,
                    check.format,
                    check.dhash,
                    check.thumb,
                    dhash_weak=check.dhash_weak,
                )
            )
            notes += [Note(entry.relpath, note) for note in check.notes]
        if on_progress:
            on_progress(done, len(todo))
    records, duplicates = _exact_duplicates(records)
    skipped += duplicates
    if strict and skipped:
        shown = "; ".join(f"{s.relpath}: {s.reason}" for s in skipped[:10])
        more = f" (and {len(skipped) - 10} more)" if len(skipped) > 10 else ""
        raise DataError(
            f"{len(skipped)} file(s) in {data} cannot be used (--strict): {shown}{more}"
        )
    named = {e.label for e in listing.entries if e.label} | set(listing.folders)
    labels = _check_classes(data, records, skipped, named, min_images_per_class)
    records, groups, near_warnings = _near_duplicates(records)
    warnings = near_warnings + _imbalance(records, labels)
    skipped.sort(key=lambda s: s.relpath)
    return Dataset(
        listing.root,
        labels,
        tuple(sorted(records, key=lambda r: r.relpath)),
        tuple(skipped),
        tuple(notes),
        tuple(warnings),
        listing.kind,
        groups,
    )


def scan_folder(
    root: Path,
    *,
    min_images_per_class: int,
    on_progress: Callable[[int, int], None] | None = None,
) -> Dataset:
    """A folder per label (the common case; see scan_source for every option)."""
    return scan_source(
        SourceOptions(root), min_images_per_class=min_images_per_class, on_progress=on_progress
    )


def _exact_duplicates(records: list[ImageRecord]) -> tuple[list[ImageRecord], list[Skipped]]:
    """Keep the first copy of identical content per label; identical content under two
    labels is an error, since one of the labels must be wrong."""
    by_sha: dict[str, list[ImageRecord]] = defaultdict(list)
    for r in sorted(records, key=lambda r: r.relpath):
        by_sha[r.sha256].append(r)
    conflicts = [group for group in by_sha.values() if len({r.label for r in group}) > 1]
    if conflicts:
        shown = "; ".join(
            " and ".join(f"{r.relpath} ({r.label!r})" for r in group[:3]) for group in conflicts[:5]
        )
        more = f" (and {len(conflicts) - 5} more)" if len(conflicts) > 5 else ""
        raise DataError(
            f"conflicting labels: the same image appears under different labels: {shown}{more}: "
            "keep one copy, under the right label"
        )
    kept, skipped = [], []
    for group in by_sha.values():
        kept.append(group[0])
        skipped += [
            Skipped(r.relpath, f"exact duplicate of {group[0].relpath}: remove one copy", r.label)
            for r in group[1:]
        ]
    return kept, skipped


def _check_classes(
    data: Path,
    records: list[ImageRecord],
    skipped: list[Skipped],
    labels_named: set[str],
    minimum: int,
) -> tuple[str, ...]:
    """Every class the source names, sorted; DataError when fewer than 2 have images or any
    has fewer than `minimum` usable ones (0 included: a class is never dropped silently)."""
    counts = Counter(r.label for r in records)
    unusable = Counter(s.label for s in skipped)
    named = sorted(labels_named)
    with_images = [label for label in named if counts[label]]
    empty = [label for label in named if not counts[label]]
    if len(with_images) < 2:
        found = "no readable images were found"
        if with_images:
            found = f"only {with_images[0]!r} has images"
        raise DataError(
            f"data source {data} needs at least 2 classes with images, {found}"
            + (f" (empty or unreadable: {', '.join(empty)})" if empty else "")
            + ": add images for every label"
        )
    small = [label for label in named if counts[label] < minimum]
    if small:
        listed = ", ".join(
            f"{label!r} has {counts[label]}"
            + (f" ({unusable[label]} more files skipped)" if unusable[label] else "")
            for label in small
        )
        raise DataError(
            f"every class needs at least {minimum} usable images, but {listed} (in {data}): "
            "add images to those classes, or remove their folders or manifest rows"
        )
    return tuple(named)


def _near_duplicates(
    records: list[ImageRecord],
) -> tuple[list[ImageRecord], int, list[str]]:
    """Group images whose difference hashes are within NEAR_DUPLICATE_BITS (weak bits, near
    ties a re-encoding may flip, not counted); every member gets the group's split key, so
    near copies cannot sit on both sides of train/test.

    Pigeonhole: two 64-bit hashes within 4 strong bits agree on at least one of 5 12-bit
    bands up to weak bits, so only images sharing a band key are compared (no all-pairs pass
    over 50,000 images). Each image files its band under its own value and the values with
    its first WEAK_FLIPS weak bits flipped; a thumbnail comparison confirms each pair.
    """
    parent = list(range(len(records)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    bands = NEAR_DUPLICATE_BITS + 1
    width = 64 // bands
    mask = np.uint64((1 << width) - 1)
    hashes = np.array([r.dhash for r in records], dtype=np.uint64)
    weak = np.array([r.dhash_weak for r in records], dtype=np.uint64)
    strong = ~weak
    thumbs = Thumbs(
        np.frombuffer(b"".join(r.thumb for r in records), dtype=np.uint8).reshape(len(records), -1)
    )
    index = np.arange(len(records))
    for band in range(bands):
        shift = np.uint64(band * width)
        keys, owners = _band_keys((hashes >> shift) & mask, (weak >> shift) & mask, index)
        order = np.argsort(keys, kind="stable")
        keys, owners = keys[order], owners[order]
        starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
        for begin, end in zip(starts, np.r_[starts[1:], len(keys)], strict=True):
            if end - begin > 1:
                for a, b in _close_pairs(owners[begin:end], hashes, strong, thumbs):
                    parent[find(int(a))] = find(int(b))
    groups: dict[int, list[int]] = defaultdict(list)
    for i in range(len(records)):
        groups[find(i)].append(i)
    out = list(records)
    warnings = []
    count = 0
    for members in groups.values():
        if len(members) < 2:
            continue
        count += 1
        key = min(records[i].sha256 for i in members)
        for i in members:
            out[i] = replace(records[i], split_key=key)
        labels = sorted({records[i].label for i in members})
        if len(labels) > 1:
            names = ", ".join(f"{records[i].relpath} ({records[i].label!r})" for i in members[:4])
            warnings.append(f"near duplicates under different labels: {names}: check those labels")
    return out, count, warnings


BLOCK = 256  # rows of a bucket compared at once against the rest of it


def _close_pairs(
    bucket: np.ndarray, hashes: np.ndarray, strong: np.ndarray, thumbs: Thumbs
) -> list[tuple[int, int]]:
    """The pairs of one band bucket within NEAR_DUPLICATE_BITS strong bits and confirmed by
    their thumbnails. Blocks of rows against the rest of the bucket, so a bucket of
    thousands (uniform backgrounds share band keys) costs array operations, not a Python
    loop per image."""
    found: list[tuple[int, int]] = []
    h, s = hashes[bucket], strong[bucket]
    for start in range(0, len(bucket) - 1, BLOCK):
        rows = slice(start, min(start + BLOCK, len(bucket)))
        differ = (h[rows, None] ^ h[None, start:]) & s[rows, None] & s[None, start:]
        close = np.bitwise_count(differ) <= NEAR_DUPLICATE_BITS
        close &= thumbs.may_match(bucket[rows], bucket[start:])
        i, j = np.nonzero(np.triu(close, k=1))  # each pair once, never an image with itself
        if len(i):
            found += thumbs.confirm(bucket[start + i], bucket[start + j])
    return found


class Thumbs:
    """The thumbnails' mean absolute difference test, cheapest bound first: the difference
    of block means never exceeds the mean absolute difference of the pixels they average,
    so pairs whose channel means (then 4x4-block means) already differ by more than
    NEAR_DUPLICATE_MAD are rejected without changing any result. On Fashion-MNIST, tens of
    millions of pairs agree on their hash's strong bits (black backgrounds), and only
    thousands are near copies."""

    def __init__(self, thumbs: np.ndarray) -> None:
        self.full = thumbs
        cells = thumbs.reshape(len(thumbs), THUMB // 4, 4, THUMB // 4, 4, 3).astype(np.float32)
        self.blocks = cells.mean(axis=(2, 4)).reshape(len(thumbs), -1)
        self.means = self.blocks.reshape(len(thumbs), -1, 3).mean(axis=1)
        self.grey = self.means.mean(axis=1)

    def may_match(self, rows: np.ndarray, columns: np.ndarray) -> np.ndarray:
        """The cheapest bound, as a rows x columns matrix: mean brightness."""
        return np.abs(self.grey[rows, None] - self.grey[None, columns]) <= NEAR_DUPLICATE_MAD + 1e-3

    def confirm(self, a: np.ndarray, b: np.ndarray) -> list[tuple[int, int]]:
        for level in (self.means, self.blocks):
            keep = np.abs(level[a] - level[b]).mean(axis=1) <= NEAR_DUPLICATE_MAD + 1e-3
            a, b = a[keep], b[keep]
        found: list[tuple[int, int]] = []
        for chunk in range(0, len(a), 65536):
            x, y = a[chunk : chunk + 65536], b[chunk : chunk + 65536]
            mad = np.abs(self.full[x].astype(np.int16) - self.full[y]).mean(axis=1)
            keep = mad <= NEAR_DUPLICATE_MAD
            found += zip(x[keep].tolist(), y[keep].tolist(), strict=True)
        return found


def _band_keys(
    values: np.ndarray, weak: np.ndarray, index: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(key, image) pairs of one band: each value, and the value with its lowest WEAK_FLIPS
    weak bits flipped in every combination."""
    one = np.uint64(1)
    low = weak & (~weak + one)  # lowest weak bit (0 when none)
    rest = weak ^ low
    second = rest & (~rest + one) if WEAK_FLIPS > 1 else np.zeros_like(weak)
    keys, owners = [values], [index]
    for flip, has in ((low, low != 0), (second, second != 0), (low | second, second != 0)):
        keys.append(values[has] ^ flip[has])
        owners.append(index[has])
    return np.concatenate(keys), np.concatenate(owners)


def _imbalance(records: list[ImageRecord], labels: tuple[str, ...]) -> list[str]:
    counts = Counter(r.label for r in records)
    largest = max(labels, key=lambda label: counts[label])
    smallest = min(labels, key=lambda label: counts[label])
    ratio = counts[largest] / counts[smallest]
    if ratio <= IMBALANCE_RATIO:
        return []
    return [
        f"classes are imbalanced: {largest!r} has {counts[largest]} images, {smallest!r} "
        f"{counts[smallest]} ({ratio:.1f}x); training weights classes to compensate, but "
        f"more {smallest!r} images would help most"
    ]
