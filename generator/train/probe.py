"""The timing probe: what each candidate family costs on this machine, measured with a real
trial on random rows and kept per machine x TensorFlow version, so later runs plan from the
cache alone."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from ..data.images import load_array
from ..data.split import Split
from ..progress import Reporter
from ..resources import cache_dir
from .backbones import LoadedBackbone
from .candidates import cnn_trial, head_trial
from .families import Kind
from .hyperparameters import BATCH_SIZE, CnnConfig, HeadConfig
from .networks import build_extractor
from .plan import Estimate
from .runtime import Compute, tensorflow
from .store import ArrayStore
from .trial import Data, Trial

PROBE_BATCH = 16

PROBE_ROWS = 320  # rows a probe trial trains on: 8 training and 1 validation batch

PROBE_EPOCH_STEPS = 9
"""An epoch costs at least what the probe's 9-step epoch did: below that, Keras's per-epoch
work (callbacks, the validation pass) outweighs the steps."""


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


def probe(
    split: Split,
    n_classes: int,
    loaded: list[LoadedBackbone],
    cnns: Sequence[str],
    cnn_size: int,
    compute: Compute,
    reporter: Reporter,
    cache_root: Path | None = None,
) -> tuple[list[Estimate], bool]:
    """Per-image costs of each backbone and per-step costs of each convnet, and whether any
    had to be measured (rather than read from the machine's probe cache).

    The plan is made as if nothing were cached: caches make a run finish sooner, never
    train differently.
    """
    n_train, n_val = len(split.train), len(split.validation)
    n_images = n_train + n_val
    timings = Timings(cache_root, compute)
    sample = [r.path for r in [*split.train, *split.validation][:PROBE_BATCH]]
    sample_id = hashlib.sha256("".join(sorted(str(p) for p in sample)).encode()).hexdigest()
    (decode,) = timings.get(
        f"decode/{sample_id[:16]}",
        lambda: (_timed(lambda: [load_array(p, 224) for p in sample]) / max(1, len(sample)),),
    )
    steps = -(-n_train // BATCH_SIZE) + -(-n_val // 128)  # one epoch, validation included
    estimates: list[Estimate] = []
    with reporter.phase("timing probe", total=len(loaded) + len(cnns)) as advance:
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
                    Kind.TRANSFER,
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
                    Kind.CNN,
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
    rng = np.random.default_rng(0)
    keys = [f"{i:064x}" for i in range(PROBE_ROWS)]
    with tempfile.TemporaryDirectory(prefix="modelgen-probe-") as tmp:
        store = ArrayStore(Path(tmp), shape, dtype)
        store.add(keys, rng.integers(0, 255, (PROBE_ROWS, *shape)))
        split = PROBE_ROWS * 4 // 5
        y = np.arange(PROBE_ROWS) % n_classes
        data = Data(store, keys[:split], keys[split:], y[:split], y[split:], n_classes)
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
