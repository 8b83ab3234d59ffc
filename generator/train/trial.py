"""A trial: one model with one setting, trained in steps and scored on validation; and the
candidate it yields. The state keras-tuner keeps in its Trial."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..progress import Advance
from .families import Kind, candidate_name
from .hyperparameters import BATCH_SIZE, PATIENCE
from .runtime import tensorflow
from .store import ArrayStore, batches


@dataclass
class Candidate:
    """A trained model, its validation score and how it was made."""

    family: str  # a backbone or convnet name: what the plan and the search know it by
    kind: Kind
    description: str
    input_size: int
    val_accuracy: float
    val_loss: float
    epochs: int
    seconds: float
    settings: dict[str, Any]
    stage: str
    model: Any = field(repr=False, compare=False)
    architecture: Callable[[], Any] = field(repr=False, compare=False)
    """Builds an untrained model of the same structure (for a float32 copy)."""
    fine_tuned: bool = False

    @property
    def name(self) -> str:
        return candidate_name(self.family, self.kind, fine_tuned=self.fine_tuned)

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
    """Higher validation accuracy first; ties go to the lower validation loss."""
    return (-round(candidate.val_accuracy, 6), round(candidate.val_loss, 6))


def one_hot(y: np.ndarray, n_classes: int) -> np.ndarray:
    return np.eye(n_classes, dtype=np.float32)[y]


def sample_weights(y: np.ndarray, n_classes: int) -> np.ndarray:
    """Balanced class weights per sample, so a rare class costs as much as a common one."""
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    counts[counts == 0] = 1
    return (len(y) / (n_classes * counts))[y].astype(np.float32)


def augment(seed: int) -> Callable[[np.ndarray], np.ndarray]:
    """Random horizontal flips and shifts of up to 1/8 of the side, from a seeded generator
    (numpy, outside the model, so the exported graph has no augmentation ops)."""
    rng = np.random.default_rng(seed)

    def transform(x: np.ndarray) -> np.ndarray:
        out = x.copy()
        flip = rng.random(len(x)) < 0.5
        out[flip] = out[flip, :, ::-1]
        limit = max(1, x.shape[1] // 8)
        for i, (dy, dx) in enumerate(rng.integers(-limit, limit + 1, (len(x), 2))):
            out[i] = np.roll(out[i], (int(dy), int(dx)), axis=(0, 1))
        return out

    return transform


@dataclass
class Data:
    """Train and validation rows in a store, with their integer labels."""

    store: ArrayStore
    train: Sequence[str]  # content hashes: the store's keys
    validation: Sequence[str]
    y_train: np.ndarray
    y_validation: np.ndarray
    n_classes: int

    def train_batches(self, seed: int, transform: Callable[[np.ndarray], np.ndarray] | None) -> Any:
        return batches(
            self.store,
            self.train,
            one_hot(self.y_train, self.n_classes),
            batch_size=BATCH_SIZE,
            weights=sample_weights(self.y_train, self.n_classes),
            shuffle_seed=seed,
            transform=transform,
        )

    def validation_batches(self) -> Any:
        return batches(
            self.store,
            self.validation,
            one_hot(self.y_validation, self.n_classes),
            batch_size=128,
        )


class Trial:
    """One model with one setting, trained in steps (successive halving resumes it)."""

    def __init__(
        self,
        family: str,
        kind: Kind,
        description: str,
        input_size: int,
        settings: dict[str, Any],
        build: Callable[[], Any],
        data: Data,
        *,
        learning_rate: float,
        label_smoothing: float,
        transform: Callable[[np.ndarray], np.ndarray] | None,
        seed: int,
        fine_tuned: bool = False,
    ) -> None:
        keras = tensorflow().keras
        self.family, self.kind, self.fine_tuned = family, kind, fine_tuned
        self.description, self.input_size = description, input_size
        self.settings = settings
        self.architecture = build
        self.data = data
        self.model = build()
        self.model.compile(
            optimizer=keras.optimizers.Adam(learning_rate),
            loss=keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing),
            metrics=["accuracy"],
        )
        self.train_data = data.train_batches(seed, transform)
        self.validation_data = data.validation_batches()
        self.epochs = 0
        self.seconds = 0.0
        self.val_accuracy = 0.0
        self.val_loss = float("inf")
        self.stage = "not run"
        self.cut = False  # the deadline ended a run of this trial early
        self.final = False  # the search kept it as its family's final

    def run(
        self,
        epochs: int,
        *,
        deadline: float,
        advance: Advance,
        stage: str,
        early_stopping: bool = False,
    ) -> None:
        """Train `epochs` more epochs (fewer if early stopping or the deadline ends it)."""
        if epochs <= 0:
            return
        if time.monotonic() > deadline:
            self.cut = True
            return
        start = time.monotonic()
        found = callbacks(deadline, advance, early_stopping)
        history = self.model.fit(
            self.train_data,
            validation_data=self.validation_data,
            initial_epoch=self.epochs,
            epochs=self.epochs + epochs,
            callbacks=found,
            shuffle=False,  # the batches reshuffle themselves, from the seed
            verbose=0,
        )
        self.cut = self.cut or found[0].fired
        ran = len(history.history.get("loss", []))
        self.epochs += ran
        self.stage = stage
        if early_stopping:
            loss, accuracy = self.model.evaluate(self.validation_data, verbose=0)
        elif ran:
            loss = history.history["val_loss"][-1]
            accuracy = history.history["val_accuracy"][-1]
        else:
            loss, accuracy = self.val_loss, self.val_accuracy
        self.val_loss, self.val_accuracy = float(loss), float(accuracy)
        self.seconds += time.monotonic() - start

    def candidate(self) -> Candidate:
        return Candidate(
            family=self.family,
            kind=self.kind,
            description=self.description,
            input_size=self.input_size,
            val_accuracy=self.val_accuracy,
            val_loss=self.val_loss,
            epochs=self.epochs,
            seconds=self.seconds,
            settings=self.settings,
            stage=self.stage,
            model=self.model,
            architecture=self.architecture,
            fine_tuned=self.fine_tuned,
        )


def callbacks(deadline: float, advance: Advance, early_stopping: bool) -> list[Any]:
    """A deadline that stops training (first, so a trial can tell it fired), progress per
    epoch, and early stopping on validation loss with the best weights restored."""
    keras = tensorflow().keras

    class Deadline(keras.callbacks.Callback):  # type: ignore[name-defined]
        fired = False

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            if time.monotonic() > deadline:
                self.model.stop_training = True
                self.fired = True

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            acc = (logs or {}).get("val_accuracy")
            advance(1, description=f"epoch {epoch + 1}, val acc {acc:.3f}" if acc else None)

    found: list[Any] = [Deadline()]
    if early_stopping:
        found.append(
            keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=PATIENCE, restore_best_weights=True
            )
        )
    return found
