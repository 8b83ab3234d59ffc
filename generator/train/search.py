"""Train every affordable candidate within the time budget; the best on validation wins."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..data.split import Split
from ..progress import NullReporter, Reporter
from .backbones import MOBILENET_V2, Backbone, LoadedBackbone, load_backbone
from .candidates import Candidate, OutOfTime, cnn_input_size, train_cnn, train_transfer
from .features import FeatureCache
from .runtime import Compute, seed_everything, select_compute, tensorflow

TRANSFER_SHARE = 0.6  # of the budget, when the transfer candidate runs first


@dataclass(frozen=True)
class TrainOptions:
    time_budget: float
    weights: str = "auto"
    seed: int = 42
    compute: str = "auto"
    backbone: Backbone = MOBILENET_V2
    cnn_input_size: int | None = None  # None: chosen from the images' sizes
    cache_root: Path | None = None
    max_epochs: int = 200


@dataclass(frozen=True)
class TrainResult:
    winner: Candidate
    leaderboard: tuple[Candidate, ...]
    skipped: tuple[tuple[str, str], ...]
    compute: Compute
    seconds: float


def _rank(candidate: Candidate) -> tuple[float, float]:
    return (-candidate.val_accuracy, candidate.val_loss)


def train(
    split: Split,
    labels: Sequence[str],
    options: TrainOptions,
    reporter: Reporter | None = None,
) -> TrainResult:
    """Transfer learning when pretrained weights exist, the small CNN always; pick the best."""
    reporter = reporter or NullReporter()
    start = time.monotonic()
    deadline = start + options.time_budget
    compute = select_compute(options.compute)
    reporter.info(f"Training on {compute.describe()}, budget {options.time_budget:.0f}s")
    keras = tensorflow().keras
    keras.mixed_precision.set_global_policy(
        "mixed_float16" if compute.mixed_precision else "float32"
    )
    candidates: list[Candidate] = []
    skipped: list[tuple[str, str]] = []
    try:
        loaded = load_backbone(options.backbone, options.weights)
        if isinstance(loaded, LoadedBackbone):
            reporter.info(f"Using {loaded.source}")
            candidates += _try_transfer(loaded, split, labels, options, start, skipped, reporter)
        else:
            name = f"{options.backbone.name}-frozen"
            reporter.warn(f"skipping {name}: {loaded}")
            skipped.append((name, loaded))
        seed_everything(options.seed)
        with reporter.phase("small CNN", total=options.max_epochs) as advance:
            candidates.append(
                train_cnn(
                    split,
                    labels,
                    input_size=options.cnn_input_size or cnn_input_size(split.train),
                    deadline=deadline,
                    advance_epochs=advance,
                    max_epochs=options.max_epochs,
                )
            )
    finally:
        keras.mixed_precision.set_global_policy("float32")
    leaderboard = tuple(sorted(candidates, key=_rank))
    return TrainResult(
        leaderboard[0], leaderboard, tuple(skipped), compute, time.monotonic() - start
    )


def _try_transfer(
    loaded: LoadedBackbone,
    split: Split,
    labels: Sequence[str],
    options: TrainOptions,
    start: float,
    skipped: list[tuple[str, str]],
    reporter: Reporter,
) -> list[Candidate]:
    seed_everything(options.seed)
    size = loaded.backbone.input_size
    cache = FeatureCache(f"{loaded.backbone.name}-{size}-{loaded.weights_id}", options.cache_root)
    deadline = start + options.time_budget * TRANSFER_SHARE
    try:
        return [
            train_transfer(
                loaded,
                split,
                labels,
                cache=cache,
                deadline=deadline,
                reporter=reporter,
                max_epochs=options.max_epochs,
            )
        ]
    except OutOfTime as exc:
        name = f"{loaded.backbone.name}-frozen"
        reporter.warn(f"skipping {name}: {exc}")
        skipped.append((name, str(exc)))
        return []
