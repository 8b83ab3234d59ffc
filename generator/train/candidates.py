"""The two candidate models: a head on frozen pretrained features, and a small CNN."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..data.images import load_arrays
from ..data.scan import ImageRecord
from ..data.split import Split
from ..progress import Advance, Reporter
from .backbones import LoadedBackbone
from .features import FeatureCache
from .runtime import tensorflow


@dataclass
class Candidate:
    """A trained candidate and its validation score."""

    name: str
    description: str
    input_size: int
    val_accuracy: float
    val_loss: float
    epochs: int
    seconds: float
    settings: dict[str, Any]
    model: Any = field(repr=False, compare=False)
    architecture: Callable[[], Any] = field(repr=False, compare=False)
    """Builds an untrained model of the same structure (for a float32 copy)."""

    def leaderboard_row(self) -> dict[str, Any]:
        return {
            "candidate": self.name,
            "description": self.description,
            "input_size": self.input_size,
            "val_accuracy": round(self.val_accuracy, 4),
            "val_loss": round(self.val_loss, 4),
            "epochs": self.epochs,
            "seconds": round(self.seconds, 1),
            **{k: v for k, v in sorted(self.settings.items())},
        }


class OutOfTime(Exception):
    """The candidate's share of the time budget ran out before it had a model."""


def _callbacks(deadline: float, advance: Advance, patience: int) -> list[Any]:
    keras = tensorflow().keras

    class Deadline(keras.callbacks.Callback):  # type: ignore[name-defined]
        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            if time.monotonic() > deadline:
                self.model.stop_training = True

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            acc = (logs or {}).get("val_accuracy")
            advance(1, description=f"epoch {epoch + 1}, val acc {acc:.3f}" if acc else None)

    return [
        keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=patience, restore_best_weights=True
        ),
        Deadline(),
    ]


def _labels_of(records: Sequence[ImageRecord], labels: Sequence[str]) -> np.ndarray:
    index = {label: i for i, label in enumerate(labels)}
    return np.array([index[r.label] for r in records], dtype=np.int64)


def class_weights(y: np.ndarray, n_classes: int) -> dict[int, float]:
    """Balanced weights, so a rare class costs as much as a common one."""
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    counts[counts == 0] = 1
    return {i: float(len(y) / (n_classes * c)) for i, c in enumerate(counts)}


def _fit(
    model: Any,
    x: tuple[np.ndarray, np.ndarray],
    validation: tuple[np.ndarray, np.ndarray],
    *,
    n_classes: int,
    epochs: int,
    learning_rate: float,
    deadline: float,
    advance: Advance,
    patience: int,
) -> tuple[int, float, float]:
    keras = tensorflow().keras
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    history = model.fit(
        x[0],
        x[1],
        validation_data=validation,
        epochs=epochs,
        batch_size=32,
        class_weight=class_weights(x[1], n_classes),
        callbacks=_callbacks(deadline, advance, patience),
        verbose=0,
    )
    loss, accuracy = model.evaluate(*validation, verbose=0)
    return len(history.history["loss"]), float(accuracy), float(loss)


def build_transfer(
    backbone: Any, size: int, n_classes: int, dropout: float
) -> tuple[Any, Any, Any]:
    """(feature extractor, head, full model): the full model maps 0..255 RGB to probabilities."""
    keras = tensorflow().keras
    extractor = keras.Sequential(
        [keras.Input((size, size, 3)), keras.layers.Rescaling(1 / 127.5, offset=-1), backbone]
    )
    head = keras.Sequential(
        [
            keras.Input((backbone.output_shape[-1],)),
            keras.layers.Dropout(dropout),
            keras.layers.Dense(n_classes, activation="softmax", dtype="float32"),
        ]
    )
    inputs = keras.Input((size, size, 3), name="image")
    model = keras.Model(inputs, head(extractor(inputs)), name="transfer")
    return extractor, head, model


def train_transfer(
    loaded: LoadedBackbone,
    split: Split,
    labels: Sequence[str],
    *,
    cache: FeatureCache,
    deadline: float,
    reporter: Reporter,
    max_epochs: int = 200,
) -> Candidate:
    """Cache frozen-backbone features, train a dense head on them, assemble the full model."""
    start = time.monotonic()
    size = loaded.backbone.input_size
    dropout, learning_rate = 0.2, 1e-3
    extractor, head, model = build_transfer(loaded.model, size, len(labels), dropout)
    records = [*split.train, *split.validation]
    todo = len(cache.missing(records))
    if todo < len(records):
        reporter.info(f"Feature cache: {len(records) - todo} of {len(records)} images reused")
    with reporter.phase(f"features {loaded.backbone.name}@{size}", total=todo) as advance:
        cache.fill(records, extractor, size, on_batch=advance, deadline=deadline)
    if cache.missing(records):
        raise OutOfTime("time budget ran out while extracting features (kept for the next run)")
    with reporter.phase(f"{loaded.backbone.name} head", total=max_epochs) as advance:
        epochs, accuracy, loss = _fit(
            head,
            (cache.matrix(split.train), _labels_of(split.train, labels)),
            (cache.matrix(split.validation), _labels_of(split.validation, labels)),
            n_classes=len(labels),
            epochs=max_epochs,
            learning_rate=learning_rate,
            deadline=deadline,
            advance=advance,
            patience=10,
        )
    return Candidate(
        name=f"{loaded.backbone.name}-frozen",
        description=f"{loaded.backbone.name} features ({loaded.source}) + dense head",
        input_size=size,
        val_accuracy=accuracy,
        val_loss=loss,
        epochs=epochs,
        seconds=time.monotonic() - start,
        settings={"learning_rate": learning_rate, "dropout": dropout},
        model=model,
        architecture=lambda: build_transfer(
            loaded.backbone.build(None), size, len(labels), dropout
        )[2],
    )


def cnn_input_size(records: Sequence[ImageRecord]) -> int:
    """Median short side rounded up to a multiple of 16, within 32..96: small images are not
    blown up (a 28px image gains nothing at 64px but costs 4x), large ones stay affordable."""
    sides = sorted(min(r.width, r.height) for r in records)
    median = sides[len(sides) // 2] if sides else 64
    return int(min(96, max(32, -(-median // 16) * 16)))


def build_cnn(input_size: int, n_classes: int) -> Any:
    """A small convnet in the spirit of the Keras mnist_convnet example, sized for photos."""
    keras = tensorflow().keras
    layers = keras.layers
    return keras.Sequential(
        [
            keras.Input((input_size, input_size, 3), name="image"),
            layers.Rescaling(1 / 255),
            layers.Conv2D(32, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(),
            layers.Conv2D(64, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(),
            layers.Conv2D(128, 3, padding="same", activation="relu"),
            layers.GlobalAveragePooling2D(),
            layers.Dropout(0.3),
            layers.Dense(n_classes, activation="softmax", dtype="float32"),
        ],
        name="small_cnn",
    )


def train_cnn(
    split: Split,
    labels: Sequence[str],
    *,
    input_size: int,
    deadline: float,
    advance_epochs: Advance,
    max_epochs: int = 100,
) -> Candidate:
    """Train the small CNN end to end; needs no pretrained weights."""
    start = time.monotonic()
    x_train = load_arrays([r.path for r in split.train], input_size).astype(np.float32)
    x_val = load_arrays([r.path for r in split.validation], input_size).astype(np.float32)
    model = build_cnn(input_size, len(labels))
    learning_rate = 1e-3
    epochs, accuracy, loss = _fit(
        model,
        (x_train, _labels_of(split.train, labels)),
        (x_val, _labels_of(split.validation, labels)),
        n_classes=len(labels),
        epochs=max_epochs,
        learning_rate=learning_rate,
        deadline=deadline,
        advance=advance_epochs,
        patience=10,
    )
    return Candidate(
        name="small-cnn",
        description="small CNN trained from scratch",
        input_size=input_size,
        val_accuracy=accuracy,
        val_loss=loss,
        epochs=epochs,
        seconds=time.monotonic() - start,
        settings={"learning_rate": learning_rate, "dropout": 0.3},
        model=model,
        architecture=lambda: build_cnn(input_size, len(labels)),
    )
