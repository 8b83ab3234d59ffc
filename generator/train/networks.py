"""Which networks modelgen tries: a dense head on a frozen backbone's features, and two
convnets trained from scratch. Builders only; training is trial.py's."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from .backbones import Backbone
from .runtime import tensorflow


class Sized(Protocol):
    """What the convnet input size is chosen from: an image's width and height."""

    @property
    def width(self) -> int: ...

    @property
    def height(self) -> int: ...


def build_head(n_features: int, n_classes: int, dropout: float, l2: float) -> Any:
    """Softmax regression on frozen features (with dropout on them)."""
    keras = tensorflow().keras
    return keras.Sequential(
        [
            keras.Input((n_features,)),
            keras.layers.Dropout(dropout),
            keras.layers.Dense(
                n_classes,
                activation="softmax",
                dtype="float32",
                kernel_regularizer=keras.regularizers.L2(l2) if l2 else None,
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


def cnn_input_size(records: Sequence[Sized]) -> int:
    """The median short side rounded up to a multiple of 4, within 24..96: most images are
    then not resampled at all (a 28px image stays 28px: blowing it up gains nothing and
    blurs it), and large ones stay affordable."""
    sides = sorted(min(r.width, r.height) for r in records)
    median = sides[len(sides) // 2] if sides else 64
    return int(min(96, max(24, -(-median // 4) * 4)))


def build_cnn(input_size: int, n_classes: int, dropout: float = 0.5) -> Any:
    """The convnet of the Keras mnist_convnet example: two convolution + pooling blocks,
    flattened (where the digit or object sits matters), dropout, softmax."""
    keras = tensorflow().keras
    layers = keras.layers
    return keras.Sequential(
        [
            keras.Input((input_size, input_size, 3), name="image"),
            layers.Rescaling(1 / 255),
            layers.Conv2D(32, 3, activation="relu"),
            layers.MaxPooling2D(),
            layers.Conv2D(64, 3, activation="relu"),
            layers.MaxPooling2D(),
            layers.Flatten(),
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
    "small-cnn": ("small CNN trained from scratch (the Keras mnist_convnet design)", build_cnn),
    "separable-cnn": ("residual separable CNN trained from scratch", build_separable_cnn),
}


def average(members: Sequence[Any], size: int, name: str = "ensemble") -> Any:
    """One model whose output is the mean of the members' probabilities (one ONNX graph)."""
    keras = tensorflow().keras
    inputs = keras.Input((size, size, 3), name="image")
    _rename(members)
    outputs = keras.layers.Average(dtype="float32")([m(inputs) for m in members])
    return keras.Model(inputs, outputs, name=name)


def average_heads(heads: Sequence[Any], n_features: int) -> Any:
    """Heads on the same features averaged into one head."""
    keras = tensorflow().keras
    inputs = keras.Input((n_features,))
    _rename(heads)
    outputs = keras.layers.Average(dtype="float32")([h(inputs) for h in heads])
    return keras.Model(inputs, outputs, name="head")


def _rename(members: Sequence[Any]) -> None:
    """Members of one graph need distinct names (two heads are both "head")."""
    for i, member in enumerate(members):
        member.name = f"member_{i}"


def flops(model: Any) -> float:
    """Multiply-adds x 2 of one forward pass of one image, from the layers' shapes (convs,
    separable and depthwise convs, dense layers; nested models included): the cost model
    the search plans with, scaled by the rate this machine is measured at."""
    keras = tensorflow().keras
    total = 0.0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            total += flops(layer)
            continue
        try:
            out = layer.output.shape
            inp = layer.input.shape
        except (AttributeError, ValueError):
            continue
        if isinstance(layer, keras.layers.SeparableConv2D):
            kh, kw = layer.kernel_size
            spatial = out[1] * out[2]
            total += 2 * spatial * (kh * kw * inp[-1] + inp[-1] * out[-1])
        elif isinstance(layer, keras.layers.DepthwiseConv2D):
            kh, kw = layer.kernel_size
            total += 2 * out[1] * out[2] * kh * kw * out[-1]
        elif isinstance(layer, keras.layers.Conv2D):
            kh, kw = layer.kernel_size
            total += 2 * out[1] * out[2] * out[-1] * kh * kw * inp[-1]
        elif isinstance(layer, keras.layers.Dense):
            total += 2 * inp[-1] * out[-1]
    return float(total)
