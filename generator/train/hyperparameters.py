"""The settings the search compares: hyper-parameters of heads and convnets, as data."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np

BATCH_SIZE = 32
PATIENCE = 8  # epochs without a better validation loss before early stopping


@dataclass(frozen=True)
class HeadConfig:
    """A dense softmax head on frozen features."""

    learning_rate: float
    dropout: float
    l2: float
    label_smoothing: float


@dataclass(frozen=True)
class CnnConfig:
    """A convnet trained from scratch on pixels."""

    learning_rate: float
    dropout: float
    label_smoothing: float
    augment: bool


def config_grid(kind: type[HeadConfig] | type[CnnConfig], seed: int) -> list[Any]:
    """Every setting combination in a seeded order; the search tries a prefix of it."""
    grid: list[Any]
    if kind is HeadConfig:
        grid = [
            HeadConfig(*values)
            for values in itertools.product((1e-3, 3e-3, 3e-4), (0.2, 0.5), (0.0, 1e-4), (0.0, 0.1))
        ]
    else:
        grid = [
            CnnConfig(*values)
            for values in itertools.product((1e-3, 3e-3), (0.25, 0.5), (0.0, 0.1), (False, True))
        ]
    # The first entry stays first (the sensible default), the rest are shuffled.
    rest = grid[1:]
    np.random.default_rng(seed).shuffle(rest)
    return [grid[0], *rest]
