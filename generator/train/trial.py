"""One fit: a recipe's model trained on some rows, stopped early on others, with a deadline
checked between epochs; and the candidate the search hands on."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
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
        flipped = rng.random(len(x)) < 0.5 if flip else np.zeros(len(x), dtype=bool)
        limit = max(1, x.shape[1] // 8)
        h, w = x.shape[1:3]
        shifts = rng.integers(-limit, limit + 1, (len(x), 2))
        # each output pixel's source row and column: shifted in, with the border's own
        # pixels filling the gap (no wrap-around); a flipped image reads its columns mirrored
        ys = np.clip(np.arange(h) - shifts[:, :1], 0, h - 1)
        xs = np.clip(np.arange(w) - shifts[:, 1:], 0, w - 1)
        xs = np.where(flipped[:, None], w - 1 - xs, xs)
        return x[np.arange(len(x))[:, None, None], ys[:, :, None], xs[:, None, :]]

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


def _batches(
    rows: Rows,
    targets: np.ndarray,
    weights: np.ndarray,
    size: int,
    order: np.ndarray,
    transform: Callable[[np.ndarray], np.ndarray] | None,
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """One epoch's batches in `order`: float32 inputs (shifted by `transform`), one-hot
    targets, balanced sample weights."""
    for start in range(0, len(order), size):
        pick = np.sort(order[start : start + size])
        x = rows.x[pick]
        if transform is not None:
            x = transform(x)
        yield x.astype(np.float32), targets[pick], weights[pick]


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
    trainer: Fresh,
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
    """Train a compiled model (`Fresh`, reset here) up to max_epochs; with validation rows,
    stop after PATIENCE epochs without a lower validation loss and keep the best weights, at
    a constant learning rate; without (a refit for a known number of epochs), with the
    learning rate on a cosine decay to zero (after `warm` epochs at the base rate). Between
    epochs, stop when the next epoch would end past `deadline`; inside one, only past
    `hard_deadline`. fill: without validation rows, train as many of the max_epochs as this
    share of the time to the deadline holds, counted from the warm epochs' measured time (a
    direct fit spends its budget however far off the cost model's estimate was).

    The loop is this module's own, around the model's traced Keras training step: on small
    data Keras's `fit` costs as much again in per-epoch and per-batch work (bench_speed.py
    measures the two side by side)."""
    model = trainer.reset()
    size = batch_size(len(train))
    watch = _Watch(deadline, advance, validation, PATIENCE)
    planned = None if validation is not None else max_epochs
    filling = (deadline, fill) if fill is not None and planned and warm else None
    schedule = _Cosine(learning_rate, planned, warm, filling)
    targets = one_hot(train.y, n_classes)
    weights = sample_weights(train.y, n_classes)
    rng = np.random.default_rng(seed)
    order = np.arange(len(train))
    start = time.monotonic()
    for epoch in range(max_epochs):
        began = time.monotonic()
        model.optimizer.learning_rate.assign(schedule.rate(epoch))
        rng.shuffle(order)
        for batch in _batches(train, targets, weights, size, order, transform):
            trainer.step(batch)
            if time.monotonic() > hard_deadline:
                watch.cut = True
                break
        if watch.end(model, epoch, began) or schedule.done(epoch, watch.times):
            break
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
        tf = tensorflow()
        keras = tf.keras
        self.model = model
        self.initial = model.get_weights()
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate),
            loss=keras.losses.CategoricalCrossentropy(),
        )
        model.optimizer.build(model.trainable_variables)  # its slots exist before tracing
        batch = (
            tf.TensorSpec((None, *model.input_shape[1:]), tf.float32),
            tf.TensorSpec((None, model.output_shape[-1]), tf.float32),
            tf.TensorSpec((None,), tf.float32),
        )  # any batch size: the last, smaller batch is not traced again
        self.step = tf.function(model.train_step, input_signature=[batch])
        """One batch's step: Keras's own (loss scaling under mixed precision included)."""
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
    """Early stopping on validation loss (best weights kept), the deadline between epochs,
    progress, and each epoch's wall time. Validation is scored with one predict per batch
    of rows, which costs less than Keras's evaluation loop on small data."""

    def __init__(
        self,
        deadline: float,
        advance: Advance,
        validation: Rows | None,
        patience: int,
    ) -> None:
        self.deadline, self.advance = deadline, advance
        self.validation, self.patience = validation, patience
        self.best_loss = math.inf
        self.best_weights: list[Any] | None = None
        self.best_epoch = 0
        self.epochs = 0
        self.times: list[float] = []
        self.stopped_by_budget = self.cut = False

    def end(self, model: Any, epoch: int, began: float) -> bool:
        """After an epoch that began at `began`: whether training stops here."""
        self.epochs = epoch + 1
        stop = self.cut
        description = None
        if self.validation is not None and not self.cut:
            accuracy, loss = scores(predict(model, self.validation.x), self.validation.y)
            description = f"epoch {epoch + 1}, val acc {accuracy:.3f}"
            if loss < self.best_loss:
                self.best_loss, self.best_epoch = loss, epoch + 1
                self.best_weights = model.get_weights()
            elif epoch + 1 - self.best_epoch >= self.patience:
                stop = True
        self.advance(1, description=description)
        now = time.monotonic()
        self.times.append(now - began)
        if not stop and now + (now - began) > self.deadline:
            stop = self.stopped_by_budget = True
        return stop


class _Cosine:
    """The learning rate for each epoch: constant, or (given the number of epochs) constant
    for `warm` epochs, then a cosine decay from the base rate towards zero. With `fill` (a
    deadline, a share), the number of epochs is set after the warm epochs from their mean
    time after the first (which traces): as many as that share of the time to the deadline
    holds, within the given number; training stops there."""

    def __init__(
        self,
        base: float,
        epochs: int | None,
        warm: int = 0,
        fill: tuple[float, float] | None = None,
    ) -> None:
        self.base, self.epochs, self.warm, self.fill = base, epochs, warm, fill

    def rate(self, epoch: int) -> float:
        if self.epochs and epoch >= self.warm:
            decay = (epoch - self.warm) / max(1, self.epochs - self.warm)
            return self.base * 0.5 * (1 + math.cos(math.pi * decay))
        return self.base

    def done(self, epoch: int, times: list[float]) -> bool:
        """After an epoch (`times`: each epoch's seconds so far): whether the planned
        epochs are done."""
        if self.fill is not None and self.epochs and epoch + 1 == self.warm:
            deadline, share = self.fill
            typical = float(np.mean(times[1:] or times))  # the first traces
            fits = int(share * (deadline - time.monotonic()) / max(typical, 1e-6))
            self.epochs = max(self.warm + 1, min(self.epochs, self.warm + fits))
        return bool(self.epochs and epoch + 1 >= self.epochs)
