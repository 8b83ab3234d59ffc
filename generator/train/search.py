"""Search for the best classifier within the time budget.

1. Load every backbone that has weights. 2. Plan: probe costs and share the budget out
(probe.py, plan.py), or take a recorded plan. 3. Embed images once (cached on disk), run
successive halving over head settings on the cached features and over convnet settings on
cached pixels; the survivor of each family trains on with early stopping. 4. Fine-tune the
best pretrained candidate, kept only if validation improves.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..data.split import Split
from ..errors import BudgetError, UsageError, WeightsError
from ..progress import NullReporter, Reporter
from .backbones import LoadedBackbone, load_backbones
from .candidates import cnn_trial, fine_tune_trial, head_trial, transfer_candidate
from .families import (
    SMALL_BUDGET_SECONDS,
    Kind,
    Skip,
    SkipCause,
    candidate_name,
    describe_skip,
)
from .features import EXTRACT_BATCH, feature_cache, feature_key, fixed_batches, pixel_cache
from .hyperparameters import CnnConfig, HeadConfig, config_grid
from .networks import CNN_ARCHITECTURES, build_extractor, cnn_input_size
from .plan import ETA, FamilyPlan, Plan, make_plan
from .probe import probe
from .runtime import Compute, seed_everything, select_compute, tensorflow
from .store import ArrayStore
from .trial import Candidate, Data, Trial, rank

PROBE_ALLOWANCE = 0.05  # of the budget, for loading backbones and the probe
OVERRUN = 1.25  # a family may run this much past its planned time before it is cut


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
    max_epochs: int = 200
    plan: Plan | None = None
    """A recorded plan to train again exactly: no probe, no deadline (`--replay-plan`)."""


@dataclass(frozen=True)
class TrainResult:
    """The search's outcome: the winner, the best of each family, every trial, and what was
    left out and why."""

    winner: Candidate
    finals: tuple[Candidate, ...]
    """The best of each family, best first (the winner first)."""
    leaderboard: tuple[Candidate, ...]
    """Every trial: the finals first, then the trials halving dropped."""
    skipped: tuple[Skip, ...]
    compute: Compute
    seconds: float
    plan: Plan
    deadline_cut: bool = False


@dataclass
class _Run:
    options: TrainOptions
    split: Split
    labels: Sequence[str]
    reporter: Reporter
    start: float
    compute: Compute
    trials: list[Trial] = field(default_factory=list)
    finals: dict[str, Candidate] = field(default_factory=dict)  # by family
    cut: bool = False

    @property
    def deadline(self) -> float:
        if self.options.plan is not None:  # a replay trains the whole plan, however long
            return float("inf")
        return self.start + self.options.time_budget

    def images(self) -> list[tuple[str, Path]]:
        """(content hash, path) of every training and validation image."""
        return [(r.sha256, r.path) for r in (*self.split.train, *self.split.validation)]

    def data(self, store: ArrayStore) -> Data:
        index = {label: i for i, label in enumerate(self.labels)}
        s = self.split

        def y(records: Sequence[Any]) -> np.ndarray:
            return np.array([index[r.label] for r in records], dtype=np.int64)

        return Data(
            store,
            [r.sha256 for r in s.train],
            [r.sha256 for r in s.validation],
            y(s.train),
            y(s.validation),
            len(self.labels),
        )


def train(
    split: Split,
    labels: Sequence[str],
    options: TrainOptions,
    reporter: Reporter | None = None,
) -> TrainResult:
    """Train candidates on the split's train part, compare them on its validation part, and
    return the best (see the module docstring for the steps)."""
    reporter = reporter or NullReporter()
    compute = select_compute(options.compute)
    run = _Run(options, split, labels, reporter, time.monotonic(), compute)
    replaying = options.plan is not None
    if replaying:
        reporter.info(f"Training on {compute.describe()}: the recorded plan, with no deadline")
    else:
        reporter.info(f"Training on {compute.describe()}, budget {options.time_budget:.0f}s")
    keras = tensorflow().keras
    keras.mixed_precision.set_global_policy(
        "mixed_float16" if compute.mixed_precision else "float32"
    )
    try:
        loaded, skipped = load_backbones(
            options.plan.names(Kind.TRANSFER) if options.plan else options.backbones,
            options.weights,
            reporter,
            only_named=options.plan is not None,
        )
        cnn_size = options.cnn_input_size or cnn_input_size(split.train)
        if options.plan is not None:
            plan = _replayed(options.plan, loaded)
        else:
            plan = _planned(run, loaded, cnn_size, skipped)
        for line in plan.describe(replayed=replaying):
            reporter.info(line)
        _run_families(run, plan, loaded, cnn_size)
        if not run.finals:
            raise BudgetError(
                f"no candidate finished within the {options.time_budget:.0f}s time budget: "
                f"use --time-budget {2 * options.time_budget:.0f} or more"
            )
        best = min(run.finals.values(), key=rank)
        family = plan.family(best.family)
        if family.kind is Kind.TRANSFER and family.fine_tune_epochs:
            lb = next(lb for lb in loaded if lb.backbone.name == family.name)
            _fine_tune(run, lb, family)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    finals = tuple(sorted(run.finals.values(), key=rank))
    others = sorted((t.candidate() for t in run.trials if t.epochs and not t.final), key=rank)
    return TrainResult(
        finals[0],
        finals,
        (*finals, *others),
        tuple(skipped),
        compute,
        time.monotonic() - run.start,
        plan,
        run.cut or any(t.cut for t in run.trials),
    )


def _run_families(run: _Run, plan: Plan, loaded: list[LoadedBackbone], cnn_size: int) -> None:
    """Every family of the plan: pretrained heads first, then the convnets."""
    for family in plan.families:
        if family.kind is Kind.TRANSFER:
            lb = next(lb for lb in loaded if lb.backbone.name == family.name)
            _run_transfer(run, lb, family)
    if plan.names(Kind.CNN):
        store = pixel_cache(cnn_size, run.options.cache_root)
        if _prepare(run, store, cnn_size, None, f"images at {cnn_size}px"):
            for family in plan.families:
                if family.kind is Kind.CNN:
                    _run_cnn(run, store, cnn_size, family)


def _planned(
    run: _Run,
    loaded: list[LoadedBackbone],
    cnn_size: int,
    skipped: list[Skip],
) -> Plan:
    """Probe, then share the budget out (plan.py); skipped gets what was left out and why."""
    options, reporter = run.options, run.reporter
    cnns = options.cnns
    if options.time_budget < SMALL_BUDGET_SECONDS:
        # too little time to probe and compare everything: the cheapest of each kind
        skipped += [
            Skip(lb.backbone.name, Kind.TRANSFER, SkipCause.SMALL_BUDGET) for lb in loaded[1:]
        ]
        skipped += [Skip(name, Kind.CNN, SkipCause.SMALL_BUDGET) for name in cnns[1:]]
        loaded, cnns = loaded[:1], cnns[:1]
    estimates, measured = probe(
        run.split,
        len(run.labels),
        loaded,
        cnns,
        cnn_size,
        run.compute,
        reporter,
        options.cache_root,
    )
    # With a cached probe, planned with a fixed allowance for loading and probing, not
    # the time they took: the plan (and so the model) must not depend on this run's
    # timing noise. A run that measured the probe plans with the time really left.
    overhead = PROBE_ALLOWANCE * options.time_budget
    if measured:
        overhead = max(overhead, time.monotonic() - run.start)
    plan = make_plan(options.time_budget, overhead, estimates, options.max_epochs)
    skipped += plan.skipped
    if not plan.families:
        needs = "; ".join(
            f"{candidate_name(s.family, s.kind)} {describe_skip(s)}" for s in plan.skipped
        )
        raise BudgetError(
            f"a {options.time_budget:.0f}s time budget is too short to train anything on "
            f"{len(run.split.train)} training images ({needs}): raise --time-budget"
        )
    for skip in plan.skipped:
        reporter.warn(f"skipping {candidate_name(skip.family, skip.kind)}: {describe_skip(skip)}")
    return plan


def _replayed(plan: Plan, loaded: list[LoadedBackbone]) -> Plan:
    """The recorded plan, once every backbone it names has its weights here."""
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
    return plan


def _prepare(
    run: _Run, store: ArrayStore, size: int, compute: Any, what: str, deadline: float | None = None
) -> bool:
    """Fill the store for train + validation; False if the budget ran out first."""
    images = run.images()
    keys = [key for key, _ in images]
    todo = len(store.missing(keys))
    if todo < len(images):
        run.reporter.info(f"Cache: {len(images) - todo} of {len(images)} {what} reused")
    if todo:
        with run.reporter.phase(what, total=todo) as advance:
            store.fill(images, size, compute, on_batch=advance, deadline=deadline or run.deadline)
    if store.missing(keys):
        run.cut = True
        run.reporter.warn(f"the time budget ran out while caching {what} (kept for the next run)")
        return False
    return True


def _halve(
    run: _Run, trials: list[Trial], family: FamilyPlan, deadline: float, label: str
) -> Trial | None:
    """Successive halving, then the survivor trains on with early stopping."""
    run.trials += trials
    alive = trials
    total = sum(family.rungs) * family.rung_epochs + family.final_epochs
    with run.reporter.phase(label, total=total) as advance:
        for i, count in enumerate(family.rungs):
            for trial in alive:
                seed_everything(run.options.seed)
                trial.run(
                    family.rung_epochs,
                    deadline=deadline,
                    advance=advance,
                    stage=f"halving rung {i + 1} of {len(family.rungs)}",
                )
            alive = sorted(alive, key=lambda t: rank(t.candidate()))[: -(-count // ETA)]
        best = alive[0]
        best.run(
            family.final_epochs,
            deadline=deadline,
            advance=advance,
            stage="final",
            early_stopping=True,
        )
    return best if best.epochs else None


def _family_deadline(run: _Run, seconds: float) -> float:
    """When a family's planned time (with some slack) runs out; never, in a replay."""
    if run.options.plan is not None:
        return float("inf")
    return min(run.deadline, time.monotonic() + seconds * OVERRUN + 1)


def _run_transfer(run: _Run, lb: LoadedBackbone, family: FamilyPlan) -> None:
    deadline = _family_deadline(run, family.seconds)
    extractor = build_extractor(lb.model, lb.backbone)
    key = feature_key(lb, run.compute)
    store = feature_cache(key, int(lb.model.output_shape[-1]), run.options.cache_root)
    what = f"{lb.backbone.name} features"
    embed = fixed_batches(extractor.predict_on_batch, EXTRACT_BATCH)
    if not _prepare(run, store, lb.backbone.input_size, embed, what, deadline):
        return
    data = run.data(store)
    configs: list[HeadConfig] = config_grid(HeadConfig, run.options.seed)[: family.configs]
    seed_everything(run.options.seed)
    trials = [head_trial(lb, data, c, store.shape[0], run.options.seed) for c in configs]
    head = _halve(run, trials, family, deadline, f"{lb.backbone.name} heads")
    if head is not None:
        head.final = True
        run.finals[family.name] = transfer_candidate(lb, head.candidate())


def _run_cnn(run: _Run, store: ArrayStore, size: int, family: FamilyPlan) -> None:
    deadline = _family_deadline(run, family.seconds)
    data = run.data(store)
    configs: list[CnnConfig] = config_grid(CnnConfig, run.options.seed)[: family.configs]
    seed_everything(run.options.seed)
    trials = [cnn_trial(family.name, data, c, size, run.options.seed) for c in configs]
    best = _halve(run, trials, family, deadline, family.name)
    if best is not None:
        best.final = True
        run.finals[family.name] = best.candidate()


def _fine_tune(run: _Run, lb: LoadedBackbone, family: FamilyPlan) -> None:
    """Unfreeze the top of the backbone; keep the result only if validation improves."""
    size = lb.backbone.input_size
    deadline = _family_deadline(run, family.fine_tune_seconds)
    store = pixel_cache(size, run.options.cache_root)
    if not _prepare(run, store, size, None, f"images at {size}px", deadline):
        return
    best = run.finals[family.name]
    backbone_weights = lb.model.get_weights()
    head_model = best.model.layers[-1]
    head_weights = head_model.get_weights()
    seed_everything(run.options.seed)
    trial = fine_tune_trial(lb, _head_of(best), run.data(store), run.options.seed)
    run.trials.append(trial)
    with run.reporter.phase(
        f"{lb.backbone.name} fine-tuning", total=family.fine_tune_epochs
    ) as advance:
        trial.run(
            family.fine_tune_epochs,
            deadline=deadline,
            advance=advance,
            stage="fine-tuned",
            early_stopping=True,
        )
    tuned = trial.candidate()
    lb.model.trainable = False
    if trial.epochs and rank(tuned) < rank(best):
        run.reporter.info(
            f"Fine-tuning improved validation (accuracy {best.val_accuracy:.3f} → "
            f"{tuned.val_accuracy:.3f}, loss {best.val_loss:.3f} → {tuned.val_loss:.3f}): kept"
        )
        # the frozen model shares the backbone, which now holds the tuned weights
        for frozen in run.trials:
            if frozen.family == family.name and frozen.final:
                frozen.final = False
        trial.final = True
        run.finals[family.name] = tuned
        return
    run.reporter.info(
        f"Fine-tuning did not improve validation ({tuned.val_accuracy:.3f} vs "
        f"{best.val_accuracy:.3f}): kept the frozen model"
    )
    lb.model.set_weights(backbone_weights)
    head_model.set_weights(head_weights)


def _head_of(candidate: Candidate) -> Candidate:
    """The head part of an assembled transfer candidate (its last layer)."""
    return Candidate(
        **{k: v for k, v in vars(candidate).items() if k not in ("model", "architecture")},
        model=candidate.model.layers[-1],
        architecture=candidate.architecture,
    )
