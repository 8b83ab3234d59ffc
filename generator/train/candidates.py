"""How each family's trials are made: heads on cached features, convnets on pixels, and the
fine-tuning of a winning backbone's top layers."""

from __future__ import annotations

from dataclasses import asdict

from .backbones import LoadedBackbone
from .families import Kind
from .hyperparameters import CnnConfig, HeadConfig
from .networks import CNN_ARCHITECTURES, assemble, build_extractor, build_head
from .runtime import tensorflow
from .trial import Candidate, Data, Trial, augment


def head_trial(
    loaded: LoadedBackbone, data: Data, config: HeadConfig, n_features: int, seed: int
) -> Trial:
    backbone = loaded.backbone
    return Trial(
        backbone.name,
        Kind.TRANSFER,
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
        backbone.name,
        Kind.TRANSFER,
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
        fine_tuned=True,
    )
    trial.architecture = base.architecture
    trial.val_accuracy, trial.val_loss = head.val_accuracy, head.val_loss
    return trial


def cnn_trial(name: str, data: Data, config: CnnConfig, input_size: int, seed: int) -> Trial:
    description, builder = CNN_ARCHITECTURES[name]
    return Trial(
        name,
        Kind.CNN,
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
