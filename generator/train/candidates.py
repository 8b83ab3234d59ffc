"""Candidate models and the trials that train them: heads on cached backbone features,
two from-scratch convnets, and fine-tuning of a backbone's top."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..data.scan import ImageRecord
from ..progress import Advance
from .backbones import Backbone, LoadedBackbone
from .runtime import tensorflow
from .store import ArrayStore, batches

BATCH_SIZE = 32
PATIENCE = 8


@dataclass(frozen=True)
class HeadConfig:
    """A dense softmax head on frozen features."""

    learning_rate: float
    dropout: float
    l2: float
    label_smoothing: float


@dataclass(frozen=True)
class CnnConfig:
    """A convnet trained from scratch on pixels."""

    learning_rate: float
    dropout: float
    label_smoothing: float
    augment: bool


def config_grid(kind: type[HeadConfig] | type[CnnConfig], seed: int) -> list[Any]:
    """Every setting combination in a seeded order; the search tries a prefix of it."""
    grid: list[Any]
    if kind is HeadConfig:
        grid = [
            HeadConfig(*values)
            for values in itertools.product((1e-3, 3e-3, 3e-4), (0.2, 0.5), (0.0, 1e-4), (0.0, 0.1))
        ]
    else:
        grid = [
            CnnConfig(*values)
            for values in itertools.product((1e-3, 3e-3), (0.25, 0.5), (0.0, 0.1), (False, True))
        ]
    # The first entry stays first (the sensible default), the rest are shuffled.
    rest = grid[1:]
    np.random.default_rng(seed).shuffle(rest)
    return [grid[0], *rest]


@dataclass
class Candidate:
    """A trained model, its validation score and how it was made."""

    name: str
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
    train: Sequence[ImageRecord]
    validation: Sequence[ImageRecord]
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
        name: str,
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
    ) -> None:
        keras = tensorflow().keras
        self.name, self.description, self.input_size = name, description, input_size
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
            name=self.name,
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
        )


def callbacks(deadline: float, advance: Advance, early_stopping: bool) -> list[Any]:
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


# ---- models -------------------------------------------------------------------------------


def build_head(n_features: int, n_classes: int, config: HeadConfig) -> Any:
    keras = tensorflow().keras
    return keras.Sequential(
        [
            keras.Input((n_features,)),
            keras.layers.Dropout(config.dropout),
            keras.layers.Dense(
                n_classes,
                activation="softmax",
                dtype="float32",
                kernel_regularizer=keras.regularizers.L2(config.l2) if config.l2 else None,
            ),
        ],
        name="head",
    )


def build_extractor(backbone_model: Any, backbone: Backbone) -> Any:
    """0..255 RGB in, pooled features out."""
    keras = tensorflow().keras
    layers: list[Any] = [keras.Input((backbone.input_size, backbone.input_size, 3))]
    if backbone.scale_inputs:
        layers.append(keras.layers.Rescaling(1 / 127.5, offset=-1))
    return keras.Sequential([*layers, backbone_model], name="extractor")


def assemble(extractor: Any, head: Any, size: int) -> Any:
    """The exported model: image in (0..255), probabilities out."""
    keras = tensorflow().keras
    inputs = keras.Input((size, size, 3), name="image")
    return keras.Model(inputs, head(extractor(inputs)), name="transfer")


def head_trial(
    loaded: LoadedBackbone, data: Data, config: HeadConfig, n_features: int, seed: int
) -> Trial:
    backbone = loaded.backbone
    return Trial(
        f"{backbone.name}-frozen",
        f"{backbone.name} ({loaded.weights_name}) frozen, dense head on its features",
        backbone.input_size,
        asdict(config),
        lambda: build_head(n_features, data.n_classes, config),
        data,
        learning_rate=config.learning_rate,
        label_smoothing=config.label_smoothing,
        transform=None,
        seed=seed,
    )


def transfer_candidate(loaded: LoadedBackbone, head: Candidate) -> Candidate:
    """The full model (backbone + trained head) for a winning head."""
    backbone = loaded.backbone
    model = assemble(build_extractor(loaded.model, backbone), head.model, backbone.input_size)
    n_features = int(head.model.input_shape[-1])
    n_classes = int(head.model.output_shape[-1])
    config = HeadConfig(**head.settings)
    return Candidate(
        **{k: v for k, v in vars(head).items() if k not in ("model", "architecture")},
        model=model,
        architecture=lambda: assemble(
            build_extractor(backbone.build(None), backbone),
            build_head(n_features, n_classes, config),
            backbone.input_size,
        ),
    )


def fine_tune_trial(
    loaded: LoadedBackbone, head: Candidate, data: Data, seed: int, learning_rate: float = 1e-5
) -> Trial:
    """Backbone + trained head, the top layers unfrozen (BatchNorm stays frozen, in inference
    mode), trained on augmented pixels at a low learning rate."""
    backbone = loaded.backbone
    base = transfer_candidate(loaded, head)
    backbone_model = loaded.model
    backbone_model.trainable = True
    for layer in backbone_model.layers[: -backbone.fine_tune_layers]:
        layer.trainable = False
    keras = tensorflow().keras
    for layer in backbone_model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
    settings = dict(head.settings) | {
        "fine_tune_layers": backbone.fine_tune_layers,
        "fine_tune_learning_rate": learning_rate,
        "augment": True,
    }
    trial = Trial(
        f"{backbone.name}-fine-tuned",
        f"{backbone.name} ({loaded.weights_name}), top {backbone.fine_tune_layers} layers "
        "fine-tuned on augmented images",
        backbone.input_size,
        settings,
        lambda: base.model,
        data,
        learning_rate=learning_rate,
        label_smoothing=float(head.settings["label_smoothing"]),
        transform=augment(seed),
        seed=seed,
    )
    trial.architecture = base.architecture
    trial.val_accuracy, trial.val_loss = head.val_accuracy, head.val_loss
    return trial


def cnn_input_size(records: Sequence[ImageRecord]) -> int:
    """Median short side rounded up to a multiple of 16, within 32..96: small images are not
    blown up (a 28px image gains nothing at 64px but costs 4x), large ones stay affordable."""
    sides = sorted(min(r.width, r.height) for r in records)
    median = sides[len(sides) // 2] if sides else 64
    return int(min(96, max(32, -(-median // 16) * 16)))


def build_cnn(input_size: int, n_classes: int, dropout: float = 0.3) -> Any:
    """The small convnet of the Keras mnist_convnet example, one block deeper for photos."""
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
            layers.Dropout(dropout),
            layers.Dense(n_classes, activation="softmax", dtype="float32"),
        ],
        name="small_cnn",
    )


def build_separable_cnn(input_size: int, n_classes: int, dropout: float = 0.3) -> Any:
    """A residual separable-convolution net after the Keras "image classification from
    scratch" example, at a third of its width."""
    keras = tensorflow().keras
    layers = keras.layers
    inputs = keras.Input((input_size, input_size, 3), name="image")
    x = layers.Rescaling(1 / 255)(inputs)
    x = layers.Conv2D(32, 3, strides=2, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization(momentum=0.9)(x)
    x = layers.Activation("relu")(x)
    previous = x
    for width in (64, 128):
        x = layers.SeparableConv2D(width, 3, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization(momentum=0.9)(x)
        x = layers.Activation("relu")(x)
        x = layers.SeparableConv2D(width, 3, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization(momentum=0.9)(x)
        x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
        residual = layers.Conv2D(width, 1, strides=2, padding="same")(previous)
        x = layers.add([x, residual])
        x = layers.Activation("relu")(x)
        previous = x
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(n_classes, activation="softmax", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="separable_cnn")


CNN_ARCHITECTURES: dict[str, tuple[str, Callable[[int, int, float], Any]]] = {
    "small-cnn": ("small CNN trained from scratch (Keras mnist_convnet style)", build_cnn),
    "separable-cnn": ("residual separable CNN trained from scratch", build_separable_cnn),
}


def cnn_trial(name: str, data: Data, config: CnnConfig, input_size: int, seed: int) -> Trial:
    description, builder = CNN_ARCHITECTURES[name]
    return Trial(
        name,
        description,
        input_size,
        asdict(config),
        lambda: builder(input_size, data.n_classes, config.dropout),
        data,
        learning_rate=config.learning_rate,
        label_smoothing=config.label_smoothing,
        transform=augment(seed) if config.augment else None,
        seed=seed,
    )
