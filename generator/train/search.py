"""Search for the best classifier within the time budget.

1. Below CV_MAX_IMAGES train + validation images, when the budget holds cross-validating
   two convnets, every recipe is scored by k-fold cross-validation over them (out-of-fold
   log-loss over every image, not accuracy on a handful), in order, while the budget
   allows (a recipe whose first folds put it behind the best beyond noise is not fit on
   the rest); the first recipe's first fold is the first model, within seconds. When the
   budget is shorter, one convnet trains on all of train + validation for what it holds.
   With pretrained weights a head on their features is fit first, then cross-validation
   when the budget affords it. Above CV_MAX_IMAGES, recipes are fit on train and scored on
   validation. 2. The best recipe (or the average of the best two, when their scores say
   averaging helps) is refit on train + validation for 1.2 times the epochs its fits
   needed, up to 3 times that when the budget left holds them; when it holds none, under
   cross-validation its fold models ship, averaged. The budget is a cap: the search ends
   when its recipes stop improving. It counts training time, from after TensorFlow's
   import.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..data.split import Split
from ..errors import UsageError, WeightsError
from ..progress import NullReporter, Reporter
from .backbones import LoadedBackbone, load_backbones
from .budget import DIRECT_MAX_EPOCHS
from .families import Kind, Skip
from .features import extraction_runtime
from .networks import CNN_ARCHITECTURES, cnn_input_size
from .plan import Plan
from .recipes import recipes
from .runner import Runner
from .runtime import Compute, select_compute, tensorflow
from .sizing import backbone_size, keras_seconds_per_image
from .trial import Candidate


@dataclass(frozen=True)
class TrainOptions:
    """How to search: the budget, weights, seed and device, and (for library callers and
    benchmarks) which families to consider. A recorded `plan` replaces the budget's."""

    time_budget: float
    weights: str = "auto"
    seed: int = 42
    compute: str = "auto"
    backbones: tuple[str, ...] = ()  # empty: the whole registry
    cnns: tuple[str, ...] = tuple(CNN_ARCHITECTURES)
    cnn_input_size: int | None = None  # None: chosen from the images' sizes
    cache_root: Path | None = None
    max_epochs: int = DIRECT_MAX_EPOCHS  # a fit's cap; early stopping ends most sooner
    folds: int | None = None  # None: budget.FOLDS
    plan: Plan | None = None
    """A recorded plan to train again exactly: no deadline (`--replay-plan`)."""


@dataclass(frozen=True)
class TrainResult:
    """The search's outcome: the shipped model, the best of each family, every recipe
    scored, and what was left out and why."""

    winner: Candidate
    finals: tuple[Candidate, ...]
    """The winner, then the best of each other family."""
    leaderboard: tuple[Candidate, ...]
    """Every recipe scored, best first (the winner's members among them)."""
    skipped: tuple[Skip, ...]
    compute: Compute
    seconds: float
    plan: Plan
    deadline_cut: bool = False
    tracing_seconds: float = 0.0
    """Of the training time, what building and tracing models took (first epochs beyond a
    typical one)."""


def train(
    split: Split,
    labels: Sequence[str],
    options: TrainOptions,
    reporter: Reporter | None = None,
) -> TrainResult:
    """Score recipes on the split's train + validation part and build the best (see the
    module docstring for the steps). The test part is never read."""
    reporter = reporter or NullReporter()
    compute = select_compute(options.compute)  # imports TensorFlow (seconds)
    start = time.monotonic()  # the budget is training time, as a training script's clock is
    replay = options.plan
    if replay is not None:
        reporter.info(f"Training on {compute.describe()}: the recorded plan, with no deadline")
    else:
        reporter.info(f"Training on {compute.describe()}, budget {options.time_budget:.0f}s")
    keras = tensorflow().keras
    keras.mixed_precision.set_global_policy(
        "mixed_float16" if compute.mixed_precision else "float32"
    )
    try:
        loaded, skipped = load_backbones(
            replay.names(Kind.TRANSFER) if replay else options.backbones,
            options.weights,
            reporter,
            only_named=replay is not None,
        )
        if replay is not None:
            _check_replayable(replay, loaded)
            for line in replay.describe(replayed=True):
                reporter.info(line)
            todo = [e.recipe for e in replay.evaluated]
        else:
            cnn_size = options.cnn_input_size or cnn_input_size(split.train)
            sized = [
                (lb.backbone.name, backbone_size(lb, split, options, compute, start))
                for lb in loaded
            ]
            todo = recipes(options.cnns, cnn_size, sized)
        runner = Runner(split, labels, options, reporter, compute, start, loaded, skipped)
        if replay is None and sized:
            images = len(split.train) + len(split.validation)
            per_image = keras_seconds_per_image(loaded[0], sized[0][1], compute)
            runner.embedding = extraction_runtime(compute, images, per_image)
        winner, leaderboard, plan = runner.run(todo, replay)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    families: dict[str, Candidate] = {}
    for c in leaderboard:
        families.setdefault(c.family, c)
    finals = (winner, *(c for f, c in families.items() if f != winner.family))
    return TrainResult(
        winner,
        finals,
        tuple(leaderboard),
        tuple(runner.skipped),
        compute,
        time.monotonic() - start,
        plan,
        runner.cut,
        runner.tracing,
    )


def _check_replayable(plan: Plan, loaded: list[LoadedBackbone]) -> None:
    """Every backbone the recorded plan names has its weights here; every convnet is known."""
    missing = sorted(set(plan.names(Kind.TRANSFER)) - {lb.backbone.name for lb in loaded})
    if missing:
        raise WeightsError(
            f"the recorded plan trains {', '.join(missing)}, whose pretrained weights are not "
            "available here (see the warnings above): pass the same --weights as the run "
            "that made the plan"
        )
    unknown = sorted(set(plan.names(Kind.CNN)) - set(CNN_ARCHITECTURES))
    if unknown:
        raise UsageError(
            f"the recorded plan names unknown convnets {', '.join(unknown)}: this modelgen "
            f"knows {', '.join(CNN_ARCHITECTURES)}"
        )
