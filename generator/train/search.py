"""Search for the best classifier within the time budget.

1. Probe: load every backbone that has weights, time a batch through it and a training step
   of each from-scratch net. 2. Plan the budget (plan.py) and say it. 3. Embed images once
   (cached on disk), run successive halving over head settings on the cached features and
   over convnet settings on cached pixels; the survivor of each family trains on with early
   stopping. 4. Fine-tune the best pretrained candidate, kept only if validation improves.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from ..data.images import load_array
from ..data.scan import ImageRecord
from ..data.split import Split
from ..errors import BudgetError, UsageError, WeightsError
from ..progress import NullReporter, Reporter
from ..resources import cache_dir
from .backbones import LoadedBackbone, load_backbone, registry, weights_for
from .candidates import (
    BATCH_SIZE,
    CNN_ARCHITECTURES,
    Candidate,
    CnnConfig,
    Data,
    HeadConfig,
    Trial,
    build_extractor,
    cnn_input_size,
    cnn_trial,
    config_grid,
    fine_tune_trial,
    head_trial,
    rank,
    transfer_candidate,
)
from .features import feature_cache, pixel_cache
from .plan import ETA, Estimate, FamilyPlan, Plan, make_plan
from .runtime import Compute, seed_everything, select_compute, tensorflow
from .store import ArrayStore

PROBE_BATCH = 16
EXTRACT_BATCH = 32  # images per feature-extraction batch (ArrayStore.fill's default)
PROBE_ROWS = 320  # rows a probe trial trains on: 8 training and 1 validation batch
PROBE_EPOCH_STEPS = 9
"""An epoch costs at least what the probe's 9-step epoch did: below that, Keras's per-epoch
work (callbacks, the validation pass) outweighs the steps."""
PROBE_ALLOWANCE = 0.05  # of the budget, for loading backbones and the probe
OVERRUN = 1.25  # a family may run this much past its planned time before it is cut
SMALL_BUDGET = 30  # seconds; below it, only the cheapest candidate of each kind is tried
SMALL_BUDGET_REASON = f"budgets under {SMALL_BUDGET}s try only the cheapest candidates"


@dataclass(frozen=True)
class TrainOptions:
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
    winner: Candidate
    leaderboard: tuple[Candidate, ...]
    """Every trial: the finals first (best first), then the trials halving dropped."""
    skipped: tuple[tuple[str, str], ...]
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
    finals: dict[int, Candidate] = field(default_factory=dict)  # by id() of their trial
    cut: bool = False

    @property
    def deadline(self) -> float:
        if self.options.plan is not None:  # a replay trains the whole plan, however long
            return float("inf")
        return self.start + self.options.time_budget

    def y(self, records: Sequence[ImageRecord]) -> np.ndarray:
        index = {label: i for i, label in enumerate(self.labels)}
        return np.array([index[r.label] for r in records], dtype=np.int64)

    def data(self, store: ArrayStore) -> Data:
        s = self.split
        return Data(
            store, s.train, s.validation, self.y(s.train), self.y(s.validation), len(self.labels)
        )


def train(
    split: Split,
    labels: Sequence[str],
    options: TrainOptions,
    reporter: Reporter | None = None,
) -> TrainResult:
    reporter = reporter or NullReporter()
    compute = select_compute(options.compute)
    run = _Run(options, split, labels, reporter, time.monotonic(), compute)
    if options.plan is not None:
        reporter.info(f"Training on {compute.describe()}: the recorded plan, with no deadline")
    else:
        reporter.info(f"Training on {compute.describe()}, budget {options.time_budget:.0f}s")
    keras = tensorflow().keras
    keras.mixed_precision.set_global_policy(
        "mixed_float16" if compute.mixed_precision else "float32"
    )
    try:
        if options.plan is not None:
            options = replace(options, backbones=options.plan.names("transfer"))
        loaded: list[LoadedBackbone] = []
        skipped: list[tuple[str, str]] = []
        if options.plan is None or options.backbones:
            loaded, skipped = _load_backbones(options, reporter)
        cnn_size = options.cnn_input_size or cnn_input_size(split.train)
        cnns = options.cnns
        if options.plan is not None:
            plan = _replayed(options.plan, loaded)
        else:
            plan = _planned(run, loaded, cnns, cnn_size, skipped)
        _say_plan(plan, reporter, replayed=options.plan is not None)
        for family in plan.families:
            if family.kind == "transfer":
                _run_transfer(
                    run, next(lb for lb in loaded if lb.backbone.name == family.name), family
                )
        if plan.names("cnn"):
            store = pixel_cache(cnn_size, options.cache_root)
            if _prepare(run, store, cnn_size, None, f"images at {cnn_size}px"):
                for family in plan.families:
                    if family.kind == "cnn":
                        _run_cnn(run, store, cnn_size, family)
        if not run.finals:
            raise BudgetError(
                f"no candidate finished within the {options.time_budget:.0f}s time budget: "
                f"use --time-budget {2 * options.time_budget:.0f} or more"
            )
        best_id, best = min(run.finals.items(), key=lambda item: rank(item[1]))
        family = next(f for f in plan.families if best.name.startswith(f.name))
        if family.kind == "transfer" and family.fine_tune_epochs:
            lb = next(lb for lb in loaded if lb.backbone.name == family.name)
            _fine_tune(run, lb, best_id, family)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    finals = sorted(run.finals.values(), key=rank)
    others = sorted(
        (t.candidate() for t in run.trials if id(t) not in run.finals and t.epochs), key=rank
    )
    return TrainResult(
        finals[0],
        (*finals, *others),
        tuple(skipped),
        compute,
        time.monotonic() - run.start,
        plan,
        run.cut or any(t.cut for t in run.trials),
    )


def _planned(
    run: _Run,
    loaded: list[LoadedBackbone],
    cnns: Sequence[str],
    cnn_size: int,
    skipped: list[tuple[str, str]],
) -> Plan:
    """Probe, then share the budget out (plan.py); skipped gets what was left out and why."""
    options, reporter = run.options, run.reporter
    if options.time_budget < SMALL_BUDGET:
        # too little time to probe and compare everything: the cheapest of each kind
        for lb in loaded[1:]:
            skipped.append((f"{lb.backbone.name}-frozen", SMALL_BUDGET_REASON))
        skipped += [(name, SMALL_BUDGET_REASON) for name in cnns[1:]]
        loaded, cnns = loaded[:1], cnns[:1]
    estimates, measured = _probe(run, loaded, cnns, cnn_size, run.compute)
    # With a cached probe, planned with a fixed allowance for loading and probing, not
    # the time they took: the plan (and so the model) must not depend on this run's
    # timing noise. A run that measured the probe plans with the time really left.
    overhead = PROBE_ALLOWANCE * options.time_budget
    if measured:
        overhead = max(overhead, time.monotonic() - run.start)
    plan = make_plan(options.time_budget, overhead, estimates, options.max_epochs)
    skipped += plan.skipped
    if not plan.families:
        needs = "; ".join(f"{name} {reason}" for name, reason in plan.skipped)
        raise BudgetError(
            f"a {options.time_budget:.0f}s time budget is too short to train anything on "
            f"{len(run.split.train)} training images ({needs}): raise --time-budget"
        )
    for name, reason in plan.skipped:
        reporter.warn(f"skipping {name}: {reason}")
    return plan


def _replayed(plan: Plan, loaded: list[LoadedBackbone]) -> Plan:
    """The recorded plan, once every backbone it names has its weights here."""
    missing = sorted(set(plan.names("transfer")) - {lb.backbone.name for lb in loaded})
    if missing:
        raise WeightsError(
            f"the recorded plan trains {', '.join(missing)}, whose pretrained weights are not "
            "available here (see the warnings above): pass the same --weights as the run "
            "that made the plan"
        )
    unknown = sorted(set(plan.names("cnn")) - set(CNN_ARCHITECTURES))
    if unknown:
        raise UsageError(
            f"the recorded plan names unknown convnets {', '.join(unknown)}: this modelgen "
            f"knows {', '.join(CNN_ARCHITECTURES)}"
        )
    return plan


def _load_backbones(
    options: TrainOptions, reporter: Reporter
) -> tuple[list[LoadedBackbone], list[tuple[str, str]]]:
    loaded: list[LoadedBackbone] = []
    skipped: list[tuple[str, str]] = []
    for backbone in registry(options.backbones):
        result = load_backbone(backbone, weights_for(backbone, options.weights))
        if isinstance(result, str):
            skipped.append((f"{backbone.name}-frozen", result))
        else:
            reporter.info(f"{backbone.name}: {result.source}")
            loaded.append(result)
    if len(skipped) > 1 and len(skipped) == len(registry(options.backbones)):
        first = registry(options.backbones)[0]
        reason = (
            skipped[0][1]
            .replace(f" for {first.name}", "")
            .replace(f"put {first.weights_file}", f"put their files (e.g. {first.weights_file})")
        )
        reporter.warn(
            f"skipping {len(skipped)} pretrained candidates "
            f"({', '.join(name for name, _ in skipped)}): {reason}"
        )
    else:
        for name, reason in skipped:
            reporter.warn(f"skipping {name}: {reason}")
    return loaded, skipped


# ---- probe ----------------------------------------------------------------------------------


def _timed(fn: Any, *args: Any) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


class Timings:
    """Probe timings, measured once per machine x TensorFlow x model x input size and kept
    in the cache: the plan then depends only on the data sizes and the budget, so the same
    data, seed and budget give the same plan and the same model (and a second run skips the
    probe). Delete `probe.json` in the cache folder to measure again."""

    def __init__(self, root: Path | None, compute: Compute) -> None:
        tf = tensorflow()
        self.path = (root or cache_dir()) / "probe.json"
        self.machine = f"{compute.describe()}/tf{tf.__version__}"
        try:
            self.known: dict[str, list[float]] = json.loads(self.path.read_text())
        except (OSError, ValueError):
            self.known = {}
        self.changed = False

    def get(self, key: str, measure: Callable[[], tuple[float, ...]]) -> tuple[float, ...]:
        full = f"{self.machine}/{key}"
        if full not in self.known:
            self.known[full] = [round(value, 6) for value in measure()]
            self.changed = True
        return tuple(self.known[full])

    def save(self) -> None:
        if self.changed:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.known, indent=1, sort_keys=True))
            os.replace(tmp, self.path)


def _median_time(fn: Callable[..., Any], *args: Any, repeat: int = 3) -> float:
    return float(np.median([_timed(fn, *args) for _ in range(repeat)]))


def _probe(
    run: _Run,
    loaded: list[LoadedBackbone],
    cnns: Sequence[str],
    cnn_size: int,
    compute: Compute,
) -> tuple[list[Estimate], bool]:
    """Per-image costs of each backbone and per-step costs of each convnet, and whether any
    had to be measured (rather than read from the machine's probe cache).

    The plan is made as if nothing were cached: caches make a run finish sooner, never
    train differently.
    """
    split = run.split
    n_train, n_val = len(split.train), len(split.validation)
    n_images = n_train + n_val
    timings = Timings(run.options.cache_root, compute)
    sample = [r.path for r in [*split.train, *split.validation][:PROBE_BATCH]]
    sample_id = hashlib.sha256("".join(sorted(str(p) for p in sample)).encode()).hexdigest()
    (decode,) = timings.get(
        f"decode/{sample_id[:16]}",
        lambda: (_timed(lambda: [load_array(p, 224) for p in sample]) / max(1, len(sample)),),
    )
    steps = -(-n_train // BATCH_SIZE) + -(-n_val // 128)  # one epoch, validation included
    n_classes = len(run.labels)
    estimates: list[Estimate] = []
    with run.reporter.phase("timing probe", total=len(loaded) + len(cnns)) as advance:
        for lb in loaded:
            size = lb.backbone.input_size

            def forward_time(lb: LoadedBackbone = lb, size: int = size) -> tuple[float]:
                extractor = build_extractor(lb.model, lb.backbone)
                batch = np.zeros((PROBE_BATCH, size, size, 3), np.float32)
                extractor.predict_on_batch(batch)  # the first call traces the graph
                return (_median_time(extractor.predict_on_batch, batch) / PROBE_BATCH,)

            (forward,) = timings.get(f"{lb.backbone.name}@{size}/forward", forward_time)
            dim = int(lb.model.output_shape[-1])
            first, step = timings.get(
                f"head/{dim}/{n_classes}/first,step",
                partial(_trial_cost, (dim,), "float32", n_classes, partial(_head_probe, lb, dim)),
            )
            estimates.append(
                Estimate(
                    lb.backbone.name,
                    "transfer",
                    prepare_seconds=n_images * (forward + decode),
                    epoch_seconds=max(steps, PROBE_EPOCH_STEPS) * step,
                    trial_seconds=first,
                    max_configs=16,
                    min_rung_epochs=5,
                    # backward costs two to three forward passes; plus Keras's epoch work
                    fine_tune_epoch_seconds=(4 * n_train + n_val) * forward
                    + n_train * decode
                    + 0.1,
                )
            )
            advance(1)
        for name in cnns:
            first, step = timings.get(
                f"{name}@{cnn_size}/{n_classes}/first,step",
                partial(
                    _trial_cost,
                    (cnn_size, cnn_size, 3),
                    "uint8",
                    n_classes,
                    partial(_cnn_probe, name, cnn_size),
                ),
            )
            estimates.append(
                Estimate(
                    name,
                    "cnn",
                    prepare_seconds=n_images * decode,
                    epoch_seconds=max(steps, PROBE_EPOCH_STEPS) * step,
                    trial_seconds=first,
                    max_configs=8,
                    min_rung_epochs=2,
                )
            )
            advance(1)
    timings.save()
    return estimates, timings.changed


HEAD_PROBE = HeadConfig(1e-3, 0.2, 0.0, 0.0)
CNN_PROBE = CnnConfig(1e-3, 0.25, 0.0, True)  # with augmentation: the dearer setting


def _head_probe(lb: LoadedBackbone, dim: int, data: Data) -> Trial:
    return head_trial(lb, data, HEAD_PROBE, dim, 0)


def _cnn_probe(name: str, size: int, data: Data) -> Trial:
    return cnn_trial(name, data, CNN_PROBE, size, 0)


def _trial_cost(
    shape: tuple[int, ...], dtype: str, n_classes: int, make: Callable[[Data], Trial]
) -> tuple[float, float]:
    """(building a trial and its first epoch, one more training step) measured with a real
    trial on PROBE_ROWS random rows: the same model, batches and callbacks as the search."""
    import tempfile

    from ..data.scan import ImageRecord

    rng = np.random.default_rng(0)
    records = [
        ImageRecord(Path(), f"probe/{i}", "", f"{i:064x}", 1, 1, "RGB") for i in range(PROBE_ROWS)
    ]
    with tempfile.TemporaryDirectory(prefix="modelgen-probe-") as tmp:
        store = ArrayStore(Path(tmp), shape, dtype)
        store.add([r.sha256 for r in records], rng.integers(0, 255, (PROBE_ROWS, *shape)))
        split = PROBE_ROWS * 4 // 5
        y = np.arange(PROBE_ROWS) % n_classes
        data = Data(store, records[:split], records[split:], y[:split], y[split:], n_classes)
        start = time.perf_counter()
        trial = make(data)
        trial.run(1, deadline=float("inf"), advance=_ignore, stage="probe")
        first = time.perf_counter() - start
        start = time.perf_counter()
        trial.run(2, deadline=float("inf"), advance=_ignore, stage="probe")
        steps = 2 * (-(-split // BATCH_SIZE) + -(-(PROBE_ROWS - split) // 128))
        return first, (time.perf_counter() - start) / steps


def _ignore(steps: float = 1, description: str | None = None) -> None:
    return None


def _say_plan(plan: Plan, reporter: Reporter, *, replayed: bool = False) -> None:
    if not plan.families:
        return
    if replayed:
        reporter.info("Plan (recorded; replayed in full, with no deadline):")
    else:
        reporter.info(f"Plan (about {plan.seconds:.0f}s of the {plan.budget:.0f}s budget):")
    for f in plan.families:
        rungs = (
            f"{f.configs} settings, halving {'→'.join(map(str, f.rungs))} every "
            f"{f.rung_epochs} epochs, "
            if f.configs > 1
            else ""
        )
        tune = (
            f", fine-tune up to {f.fine_tune_epochs} epochs if it wins"
            if f.fine_tune_epochs
            else ""
        )
        reporter.info(
            f"  {f.name}: {rungs}best trains up to {f.final_epochs} epochs{tune} "
            f"(~{f.seconds:.0f}s)"
        )


# ---- families -------------------------------------------------------------------------------


def _feature_key(lb: LoadedBackbone, compute: Compute) -> str:
    """Features differ by backbone, input size, weights, device, precision and versions."""
    tf = tensorflow()
    return (
        f"{lb.backbone.name}-{lb.backbone.input_size}-{lb.weights_id}-{compute.device}-"
        f"{'fp16' if compute.mixed_precision else 'fp32'}-tf{tf.__version__}-"
        f"keras{tf.keras.__version__}"
    )


def _fixed_batches(fn: Callable[[np.ndarray], Any], size: int) -> Callable[[np.ndarray], Any]:
    """fn on batches padded to one size: a row's features then do not depend on which other
    images share its batch (a warm cache batches differently from a cold one)."""

    def padded(batch: np.ndarray) -> np.ndarray:
        n = len(batch)
        if n < size:
            batch = np.concatenate([batch, np.zeros((size - n, *batch.shape[1:]), batch.dtype)])
        return np.asarray(fn(batch))[:n]

    return padded


def _prepare(
    run: _Run, store: ArrayStore, size: int, compute: Any, what: str, deadline: float | None = None
) -> bool:
    """Fill the store for train + validation; False if the budget ran out first."""
    records = [*run.split.train, *run.split.validation]
    todo = len(store.missing(records))
    if todo < len(records):
        run.reporter.info(f"Cache: {len(records) - todo} of {len(records)} {what} reused")
    if todo:
        with run.reporter.phase(what, total=todo) as advance:
            store.fill(records, size, compute, on_batch=advance, deadline=deadline or run.deadline)
    if store.missing(records):
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
    key = _feature_key(lb, run.compute)
    store = feature_cache(key, int(lb.model.output_shape[-1]), run.options.cache_root)
    what = f"{lb.backbone.name} features"
    embed = _fixed_batches(extractor.predict_on_batch, EXTRACT_BATCH)
    if not _prepare(run, store, lb.backbone.input_size, embed, what, deadline):
        return
    data = run.data(store)
    configs: list[HeadConfig] = config_grid(HeadConfig, run.options.seed)[: family.configs]
    seed_everything(run.options.seed)
    trials = [head_trial(lb, data, c, store.shape[0], run.options.seed) for c in configs]
    head = _halve(run, trials, family, deadline, f"{lb.backbone.name} heads")
    if head is not None:
        run.finals[id(head)] = transfer_candidate(lb, head.candidate())


def _run_cnn(run: _Run, store: ArrayStore, size: int, family: FamilyPlan) -> None:
    deadline = _family_deadline(run, family.seconds)
    data = run.data(store)
    configs: list[CnnConfig] = config_grid(CnnConfig, run.options.seed)[: family.configs]
    seed_everything(run.options.seed)
    trials = [cnn_trial(family.name, data, c, size, run.options.seed) for c in configs]
    best = _halve(run, trials, family, deadline, family.name)
    if best is not None:
        run.finals[id(best)] = best.candidate()


def _fine_tune(run: _Run, lb: LoadedBackbone, best_id: int, family: FamilyPlan) -> None:
    """Unfreeze the top of the backbone; keep the result only if validation improves."""
    size = lb.backbone.input_size
    deadline = _family_deadline(run, family.fine_tune_seconds)
    store = pixel_cache(size, run.options.cache_root)
    if not _prepare(run, store, size, None, f"images at {size}px", deadline):
        return
    best = run.finals[best_id]
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
        del run.finals[best_id]
        run.finals[id(trial)] = tuned
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
