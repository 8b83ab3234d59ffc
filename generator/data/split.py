"""Seeded, content-hash based train/validation/test split, stratified per class."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from .scan import Dataset, ImageRecord


@dataclass(frozen=True)
class Split:
    train: tuple[ImageRecord, ...]
    validation: tuple[ImageRecord, ...]
    test: tuple[ImageRecord, ...]

    def parts(self) -> dict[str, tuple[ImageRecord, ...]]:
        return {"train": self.train, "validation": self.validation, "test": self.test}

    def sizes(self) -> dict[str, int]:
        return {name: len(records) for name, records in self.parts().items()}

    def split_of(self) -> dict[str, str]:
        """{relative path: "train" | "validation" | "test"}"""
        return {r.relpath: name for name, records in self.parts().items() for r in records}

    def by_content(self) -> dict[str, str]:
        """{content hash: split}: what modelgen.toml keeps so later runs keep the split."""
        return {r.sha256: name for name, records in self.parts().items() for r in records}


def _unit(sha256: str, seed: int) -> float:
    """A number in [0, 1) fixed by the image content and the seed."""
    digest = hashlib.sha256(f"{seed}:{sha256}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


SPLITS = ("train", "validation", "test")
JOIN_ORDER = ("test", "validation", "train")
"""A new image near an old one joins the old group's most held-out split: a near copy of a
test image in training would inflate the test score."""


def split_dataset(
    dataset: Dataset,
    *,
    seed: int,
    validation_fraction: float,
    test_fraction: float,
    previous: Mapping[str, str] | None = None,
) -> Split:
    """Split per class by content: the same images and seed always give the same split.

    previous (content hash -> split) holds every image a project has ever had, from its
    modelgen.toml. Each of those keeps its split forever, so the test set only grows and an
    image once fitted on never becomes a test image. A new image takes the split of the
    near-duplicate group it joins (the group's most held-out one); an image with no old
    relative gets its split from a hash of its group key and the seed. Per class, a split
    left empty takes the new train group with the lowest hash: old images never move."""
    previous = previous or {}
    groups: dict[str, list[ImageRecord]] = {}
    for r in dataset.records:
        groups.setdefault(r.split_key or r.sha256, []).append(r)
    assigned: dict[str, str] = {}  # relpath -> split, for groups with old members
    free: dict[str, str] = {}  # group key -> split, for groups without old members
    for key, members in groups.items():
        old = {previous[r.sha256] for r in members if previous.get(r.sha256) in SPLITS}
        if not old:
            u = _unit(key, seed)
            free[key] = (
                "test"
                if u < test_fraction
                else "validation" if u < test_fraction + validation_fraction else "train"
            )
            continue
        joined = next(name for name in JOIN_ORDER if name in old)
        for r in members:  # old images keep theirs; new ones join the group
            name = previous.get(r.sha256)
            assigned[r.relpath] = name if name in SPLITS else joined
    for label in dataset.labels:
        _fill_empty_splits(dataset, label, groups, free, assigned, seed)
    for key, name in free.items():
        for r in groups[key]:
            assigned[r.relpath] = name
    parts: dict[str, list[ImageRecord]] = {name: [] for name in SPLITS}
    for r in sorted(dataset.records, key=lambda r: r.relpath):
        parts[assigned[r.relpath]].append(r)
    return Split(*(tuple(parts[name]) for name in SPLITS))


def _fill_empty_splits(
    dataset: Dataset,
    label: str,
    groups: Mapping[str, list[ImageRecord]],
    free: dict[str, str],
    assigned: Mapping[str, str],
    seed: int,
) -> None:
    """Give the class a test and a validation image when it has none, taking whole new
    groups from train, lowest hash first (so the choice is the same in every run)."""

    def split_of(r: ImageRecord) -> str:
        key = r.split_key or r.sha256
        return free[key] if key in free else assigned[r.relpath]

    members = [r for r in dataset.records if r.label == label]
    for name in ("test", "validation"):
        if any(split_of(r) == name for r in members):
            continue
        movable = sorted(
            {
                (_unit(r.split_key or r.sha256, seed), r.split_key or r.sha256)
                for r in members
                if (r.split_key or r.sha256) in free and split_of(r) == "train"
            }
        )
        trained = sum(split_of(r) == "train" for r in members)
        for _, key in movable:
            if trained - len(groups[key]) >= 1:
                free[key] = name
                break
