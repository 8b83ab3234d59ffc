"""Folds for cross-validation: stratified by class, near duplicates kept together, and the
same for the same images and seed (a row's fold comes from a hash, not from the order)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np


def assign_folds(groups: Sequence[str], y: np.ndarray, k: int, seed: int) -> np.ndarray:
    """The fold (0..k-1) of each row. Per class, the near-duplicate groups (a group key per
    row; a group's class is its first row's) are ordered by a hash of the seed and the key
    and dealt out in turn, so every fold gets every class that has k groups or more and a
    group never spans two folds."""
    first_class: dict[str, int] = {}
    for key, label in zip(groups, y, strict=True):
        first_class.setdefault(key, int(label))
    by_class: dict[int, list[str]] = {}
    for key, label in first_class.items():
        by_class.setdefault(label, []).append(key)
    fold_of: dict[str, int] = {}
    offset = 0
    for label in sorted(by_class):
        keys = sorted(
            by_class[label], key=lambda g: hashlib.sha256(f"{seed}:{g}".encode()).digest()
        )
        for i, key in enumerate(keys):
            fold_of[key] = (i + offset) % k
        offset += len(keys)  # the next class starts where this one stopped: even fold sizes
    return np.array([fold_of[key] for key in groups], dtype=np.int64)
