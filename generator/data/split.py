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


def _unit(sha256: str, seed: int) -> float:
    """A number in [0, 1) fixed by the image content and the seed."""
    digest = hashlib.sha256(f"{seed}:{sha256}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_dataset(
    dataset: Dataset,
    *,
    seed: int,
    validation_fraction: float,
    test_fraction: float,
    previous: Mapping[str, str] | None = None,
) -> Split:
    """Each image's split depends only on its content and the seed, so adding images later
    never moves an existing one; identical files and near duplicates (same split_key) land
    in the same split. Per class, a split
    the threshold left empty takes the train images with the lowest hash values.

    previous (content hash -> split, from the last run's modelgen.toml) pins images that were
    there before, and their near duplicates with them: a new near copy of an old image can
    change its group's key, but never its split."""
    pinned: dict[str, str] = {}
    for r in sorted(dataset.records, key=lambda r: r.relpath):
        if previous and previous.get(r.sha256) in ("train", "validation", "test"):
            pinned.setdefault(r.split_key or r.sha256, previous[r.sha256])
    train: list[ImageRecord] = []
    validation: list[ImageRecord] = []
    test: list[ImageRecord] = []
    for label in dataset.labels:
        members = sorted(
            (r for r in dataset.records if r.label == label),
            key=lambda r: (_unit(r.split_key or r.sha256, seed), r.relpath),
        )
        parts: dict[str, list[ImageRecord]] = {"train": [], "validation": [], "test": []}
        for record in members:
            key = record.split_key or record.sha256
            u = _unit(key, seed)
            name = pinned.get(key) or (
                "test"
                if u < test_fraction
                else "validation" if u < test_fraction + validation_fraction else "train"
            )
            parts[name].append(record)
        for name in ("test", "validation"):
            if not parts[name] and len(parts["train"]) > 1:
                parts[name].append(parts["train"].pop(0))
        train += parts["train"]
        validation += parts["validation"]
        test += parts["test"]
    order = lambda rs: tuple(sorted(rs, key=lambda r: r.relpath))  # noqa: E731
    return Split(order(train), order(validation), order(test))
