"""One fit: a recipe's model trained on some rows, stopped early on others, with a deadline
checked between epochs; and the candidate the search hands on."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..progress import Advance
from .families import Kind
from .runtime import tensorflow

PATIENCE = 10  # epochs without a better validation loss before early stopping


def batch_size(n_images: int) -> int:
    """32 below 600 training images (enough steps per epoch where data is scarce), 64 below
    2,000, then 128 (the Keras mnist_convnet example's): larger batches use a CPU's cores
    better."""
    return 32 if n_images < 600 else 64 if n_images < 2000 else 128


@dataclass
class Candidate:
    """A trained model, its score and how it was made."""

    family: str  # a backbone or convnet name
    kind: Kind
    description: str
    input_size: int
    val_accuracy: float  # cross-validated (out-of-fold) or on the validation split
    val_loss: float
    epochs: int
    seconds: float
    settings: dict[str, Any]
    stage: str
    model: Any = field(repr=False, compare=False)
    architecture: Callable[[], Any] = field(repr=False, compare=False)
    """Builds an untrained model of the same structure (for a float32 copy)."""
    name: str = ""
    held_out: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False, compare=False)
    """Probabilities of the images the recipe was scored on, by models that did not train on
    them (out of fold, or on validation), and their labels: where the threshold for "not
    sure" is chosen."""

    def leaderboard_row(self) -> dict[str, Any]:
        return {
            "candidate": self.name,
            "description": self.description,
            "stage": self.stage,
            "input_size": self.input_size,
            "val_accuracy": round(self.val_accuracy, 4),
            "val_loss": round(self.val_loss, 4),
            "epochs": self.epochs,
            "seconds": round(self.seconds, 1),
            "settings": {k: v for k, v in sorted(self.settings.items())},
        }


def rank(candidate: Candidate) -> tuple[float, float]:
    """Lower (cross-validated) log-loss first; ties go to the higher accuracy."""
    return (round(candidate.val_loss, 6), -round(candidate.val_accuracy, 6))


def one_hot(y: np.ndarray, n_classes: int) -> np.ndarray:
    return np.eye(n_classes, dtype=np.float32)[y]


def sample_weights(y: np.ndarray, n_classes: int) -> np.ndarray:
    """Balanced class weights per sample, so a rare class costs as much as a common one."""
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    counts[counts == 0] = 1
    return (len(y) / (n_classes * counts))[y].astype(np.float32)


def augment(seed: int, flip: bool) -> Callable[[np.ndarray], np.ndarray]:
    """Random shifts of up to 1/8 of the side, the gap filled by repeating the edge (and
    horizontal flips), from a seeded generator (numpy, outside the model, so the exported
    graph has no augmentation ops)."""
    rng = np.random.default_rng(seed)

    def transform(x: np.ndarray) -> np.ndarray:
        out = x.copy()
        if flip:
            flipped = rng.random(len(x)) < 0.5
            out[flipped] = out[flipped, :, ::-1]
        limit = max(1, x.shape[1] // 8)
        h, w = x.shape[1:3]
        for i, (dy, dx) in enumerate(rng.integers(-limit, limit + 1, (len(x), 2))):
            # shifted in, with the border's own pixels filling the gap (no wrap-around)
            ys = np.clip(np.arange(h) - dy, 0, h - 1)
            xs = np.clip(np.arange(w) - dx, 0, w - 1)
            out[i] = out[i][ys][:, xs]
        return out

    return transform


def scores(probabilities: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(accuracy, mean log-loss) of predicted probabilities."""
    p = np.clip(probabilities[np.arange(len(y)), y], 1e-7, 1.0)
    return float(np.mean(probabilities.argmax(1) == y)), float(-np.mean(np.log(p)))


@dataclass
class Rows:
    """Inputs (pixels or features) and integer labels, in memory."""

    x: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return len(self.y)

    def take(self, index: np.ndarray) -> Rows:
        return Rows(self.x[index], self.y[index])


def _sequence(
    rows: Rows,
    n_classes: int,
    size: int,
    *,
    seed: int | None = None,
    transform: Callable[[np.ndarray], np.ndarray] | None = None,
    weighted: bool = False,
) -> Any:
    """A Keras PyDataset over in-memory rows, reshuffled every epoch from a seeded generator
    (so fits repeat), converted to float32 a batch at a time."""
    keras = tensorflow().keras
    targets = one_hot(rows.y, n_classes)
    weights = sample_weights(rows.y, n_classes) if weighted else None

    class Batches(keras.utils.PyDataset):  # type: ignore[name-defined]
        def __init__(self) -> None:
            super().__init__(workers=1, use_multiprocessing=False)
            self.rng = np.random.default_rng(seed)
            self.order = np.arange(len(rows))
            self.on_epoch_end()

        def __len__(self) -> int:
            return math.ceil(len(rows) / size)

        def __getitem__(self, index: int) -> tuple[np.ndarray, ...]:
            pick = np.sort(self.order[index * size : (index + 1) * size])
            x = rows.x[pick]
            if transform is not None:
                x = transform(x)
            x = x.astype(np.float32)
            if weights is None:
                return x, targets[pick]
            return x, targets[pick], weights[pick]

        def on_epoch_end(self) -> None:
            if seed is not None:
                self.rng.shuffle(self.order)

    return Batches()


@dataclass
class FitResult:
    """What one fit did."""

    epochs: int  # epochs trained (the replay trains exactly this many)
    best_epoch: int  # the epoch whose weights were kept (1-based; == epochs without stopping)
    seconds: float
    epoch_seconds: float  # a typical epoch's wall time (the first, which traces, left out)
    first_epoch_seconds: float
    stopped_by_budget: bool  # ended between epochs because the next would not fit
    cut: bool  # ended inside an epoch at the hard limit (cannot be replayed exactly)
    probabilities: np.ndarray | None  # on the validation rows, with the kept weights


def fit(
    model: Any,
    train: Rows,
    validation: Rows | None,
    n_classes: int,
    *,
    transform: Callable[[np.ndarray], np.ndarray] | None,
    seed: int,
    max_epochs: int,
    deadline: float,
    hard_deadline: float,
    advance: Advance,
    learning_rate: float,
    warm: int = 0,
    fill: float | None = None,
) -> FitResult:
    """Train a compiled model (`Fresh`) up to max_epochs; with validation rows, stop after
    PATIENCE epochs without a lower validation loss and keep the best weights, at a constant
    learning rate; without (a refit for a known number of epochs), with the learning rate
    on a cosine decay to zero (after `warm` epochs at the base rate). Between epochs, stop
    when the next epoch would end past `deadline`; inside one, only past `hard_deadline`.
    fill: without validation rows, train as many of the max_epochs as this share of the
    time to the deadline holds, counted from the warm epochs' measured time (a direct fit
    spends its budget however far off the cost model's estimate was)."""
    size = batch_size(len(train))
    watch = _Watch(deadline, hard_deadline, advance, validation, PATIENCE)
    planned = None if validation is not None else max_epochs
    filling = (deadline, fill) if fill is not None and planned and warm else None
    schedule = _Cosine(learning_rate, planned, warm, filling)
    start = time.monotonic()
    model.fit(
        _sequence(train, n_classes, size, seed=seed, transform=transform, weighted=True),
        epochs=max_epochs,
        callbacks=[watch, schedule],
        shuffle=False,  # the batches reshuffle themselves, from the seed
        verbose=0,
    )
    if watch.best_weights is not None:
        model.set_weights(watch.best_weights)
    probabilities = None
    if validation is not None:
        probabilities = predict(model, validation.x)
    return FitResult(
        watch.epochs,
        watch.best_epoch or watch.epochs,
        time.monotonic() - start,
        float(np.median(watch.times[1:] or watch.times or [0.0])),
        watch.times[0] if watch.times else 0.0,
        watch.stopped_by_budget,
        watch.cut,
        probabilities,
    )


class Fresh:
    """A compiled model that can be reset to its initial weights and a fresh optimizer, so
    the folds and the refit of one recipe reuse one traced training step (building and
    tracing a new model costs seconds on a CPU)."""

    def __init__(self, model: Any, learning_rate: float) -> None:
        keras = tensorflow().keras
        self.model = model
        self.initial = model.get_weights()
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate),
            loss=keras.losses.CategoricalCrossentropy(),
        )
        self.used = False

    def reset(self) -> Any:
        """The model with its initial weights and an optimizer with no steps taken."""
        if self.used:
            self.model.set_weights(self.initial)
            for variable in self.model.optimizer.variables:
                if "learning_rate" not in variable.path:
                    variable.assign(np.zeros(variable.shape, variable.dtype))
        self.used = True
        return self.model


def predict(model: Any, x: np.ndarray, size: int = 256) -> np.ndarray:
    """Probabilities, a batch at a time."""
    parts = [
        np.asarray(model.predict_on_batch(x[i : i + size].astype(np.float32)))
        for i in range(0, len(x), size)
    ]
    return np.concatenate(parts).astype(np.float64)


class _Watch:
    """Early stopping on validation loss (best weights kept), the deadlines, progress.
    Validation is scored here with one predict per batch of rows, which costs less than
    Keras's evaluation loop on small data."""

    def __new__(cls, *args: Any) -> Any:
        keras = tensorflow().keras

        class Watch(keras.callbacks.Callback):  # type: ignore[name-defined]
            def __init__(
                self,
                deadline: float,
                hard: float,
                advance: Advance,
                validation: Rows | None,
                patience: int,
            ) -> None:
                super().__init__()
                self.deadline, self.hard, self.advance = deadline, hard, advance
                self.validation, self.patience = validation, patience
                self.best_loss = math.inf
                self.best_weights: list[Any] | None = None
                self.best_epoch = 0
                self.epochs = 0
                self.started = 0.0
                self.times: list[float] = []
                self.stopped_by_budget = self.cut = False

            def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
                self.started = time.monotonic()

            def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
                if time.monotonic() > self.hard:
                    self.model.stop_training = True
                    self.cut = True

            def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
                self.epochs = epoch + 1
                description = None
                if self.validation is not None and not self.cut:
                    accuracy, loss = scores(
                        predict(self.model, self.validation.x), self.validation.y
                    )
                    description = f"epoch {epoch + 1}, val acc {accuracy:.3f}"
                    if loss < self.best_loss:
                        self.best_loss, self.best_epoch = loss, epoch + 1
                        self.best_weights = self.model.get_weights()
                    elif epoch + 1 - self.best_epoch >= self.patience:
                        self.model.stop_training = True
                self.advance(1, description=description)
                now = time.monotonic()
                self.times.append(now - self.started)
                if not self.model.stop_training and now + (now - self.started) > self.deadline:
                    self.model.stop_training = True
                    self.stopped_by_budget = True

        return Watch(*args)


class _Cosine:
    """Sets the learning rate at each epoch's start: constant, or (given the number of
    epochs) constant for `warm` epochs, then a cosine decay from the base rate towards zero.
    With `fill` (a deadline, a share), the number of epochs is set after the warm epochs
    from their mean time after the first (which traces): as many as that share of the
    time to the deadline holds, within the given number; training stops there."""

    def __new__(cls, *args: Any) -> Any:
        keras = tensorflow().keras

        class Cosine(keras.callbacks.Callback):  # type: ignore[name-defined]
            def __init__(
                self,
                base: float,
                epochs: int | None,
                warm: int = 0,
                fill: tuple[float, float] | None = None,
            ) -> None:
                super().__init__()
                self.base, self.epochs, self.warm, self.fill = base, epochs, warm, fill
                self.started = 0.0
                self.times: list[float] = []

            def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
                self.started = time.monotonic()
                rate = self.base
                if self.epochs and epoch >= self.warm:
                    decay = (epoch - self.warm) / max(1, self.epochs - self.warm)
                    rate = self.base * 0.5 * (1 + math.cos(math.pi * decay))
                self.model.optimizer.learning_rate.assign(rate)

            def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
                now = time.monotonic()
                self.times.append(now - self.started)
                if self.fill is not None and self.epochs and epoch + 1 == self.warm:
                    deadline, share = self.fill
                    typical = float(np.mean(self.times[1:] or self.times))  # the first traces
                    fits = int(share * (deadline - now) / max(typical, 1e-6))
                    self.epochs = max(self.warm + 1, min(self.epochs, self.warm + fits))
                if self.epochs and epoch + 1 >= self.epochs:
                    self.model.stop_training = True

        return Cosine(*args)
