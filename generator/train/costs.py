"""The cost model the search plans with: a model's FLOPs times the rate this run measured
for that kind of model (seconds per FLOP per row per epoch). No probe: every fit measures."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .families import Kind
from .trial import PATIENCE, FitResult

SAFETY = 1.1  # estimates are inflated this much
OVERHEAD = 1.0  # seconds per fit: compiling, resetting, the first epoch's tracing
RATES = "rates|loop2"
"""The calibration file's key prefix for remembered rates: rates an earlier training loop
measured (Keras's `fit`, 1.4-1.9 times slower an epoch in bench_speed.py) are not reused."""


@dataclass
class Costs:
    """Rates per kind of model, and how many epochs fits needed, as measured so far. Rates
    measured by earlier runs on this machine (`remembered`) serve until this run measures
    its own."""

    rate: dict[Kind, float] = field(default_factory=dict)
    epochs_seen: list[int] = field(default_factory=list)
    measured: set[Kind] = field(default_factory=set)

    @classmethod
    def remembered(cls, path: Path, machine: str) -> Costs:
        """The rates the last run on this machine measured (none if unreadable)."""
        try:
            known = json.loads(path.read_text()).get(f"{RATES}|{machine}", {})
            return cls({Kind(k): float(v) for k, v in known.items()})
        except (OSError, ValueError, AttributeError, TypeError):
            return cls()

    def remember(self, path: Path, machine: str) -> None:
        """Keep this run's rates for the next run (best effort: a read-only cache is fine)."""
        if not self.measured:
            return
        try:
            found = json.loads(path.read_text()) if path.is_file() else {}
            if not isinstance(found, dict):
                found = {}
            found[f"{RATES}|{machine}"] = {
                k.value: self.rate[k] for k in sorted(self.measured, key=str)
            }
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(f".{path.name}.{os.getpid()}")
            partial.write_text(json.dumps(found, indent=1, sort_keys=True))
            partial.replace(path)
        except (OSError, ValueError):
            pass

    def observe(
        self, kind: Kind, flops: float, rows: int, result: FitResult, stopped: bool
    ) -> None:
        """Learn from a fit of a model of `flops` on `rows` rows (`stopped`: it had a
        validation set, so its best epoch says how many epochs such fits need)."""
        if flops and rows and result.epoch_seconds > 0:
            measured = result.epoch_seconds / (flops * rows)
            known = self.rate.get(kind) if kind in self.measured else None
            self.rate[kind] = measured if known is None else (known + measured) / 2
            self.measured.add(kind)
        if stopped:
            self.epochs_seen.append(result.best_epoch)

    def estimate(self, kind: Kind, flops: float, rows: int, epochs: int | None = None) -> float:
        """Seconds for `epochs` epochs (default: as many as fits so far needed, and the
        patience) over `rows` rows of a model of `flops`; 0 when that kind is unmeasured."""
        rate = self.rate.get(kind)
        if rate is None:
            return 0.0
        if epochs is None:
            epochs = int(np.mean(self.epochs_seen or [20])) + PATIENCE
        return rate * flops * rows * epochs * SAFETY + OVERHEAD
