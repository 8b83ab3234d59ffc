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


def build_separable_cnn(
    input_size: int, n_classes: int, dropout: float = 0.3, fused: bool = True
) -> Any:
    """A residual separable-convolution net after the Keras "image classification from
    scratch" example, at a third of its width. fused=False: with Keras's own batch
    normalization layer (the same model, trained more slowly; for comparison)."""
    keras = tensorflow().keras
    layers = keras.layers
    batch_norm = fused_batch_normalization() if fused else layers.BatchNormalization
    inputs = keras.Input((input_size, input_size, 3), name="image")
    x = layers.Rescaling(1 / 255)(inputs)
    x = layers.Conv2D(32, 3, strides=2, padding="same", use_bias=False)(x)
    x = batch_norm(momentum=0.9)(x)
    x = layers.Activation("relu")(x)
    previous = x
    for width in (64, 128):
        x = layers.SeparableConv2D(width, 3, padding="same", use_bias=False)(x)
        x = batch_norm(momentum=0.9)(x)
        x = layers.Activation("relu")(x)
        x = layers.SeparableConv2D(width, 3, padding="same", use_bias=False)(x)
        x = batch_norm(momentum=0.9)(x)
        x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
        residual = layers.Conv2D(width, 1, strides=2, padding="same")(previous)
        x = layers.add([x, residual])
        x = layers.Activation("relu")(x)
        previous = x
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(n_classes, activation="softmax", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="separable_cnn")


_FUSED: list[type] = []


def fused_batch_normalization() -> type:
    """Keras's BatchNormalization, whose training step is TensorFlow's fused kernel: Keras 3
    computes it from a dozen small ops (moments, then the normalization), which on a CPU
    make the separable convnet's training step 1.2 times slower at 28px and 1.5 times at
    64px (bench_speed.py measures the step with both). The same computation, equal up to
    float rounding (so a seeded run's weights differ from the Keras layer's): the moving
    variance is kept without Bessel's correction, as Keras keeps it; inference (and so the
    exported graph) is Keras's own."""
    if _FUSED:
        return _FUSED[0]
    tf = tensorflow()
    base: Any = tf.keras.layers.BatchNormalization

    class FusedBatchNormalization(base):
        def call(self, inputs: Any, training: Any = None, mask: Any = None) -> Any:
            fusable = self.scale and self.center and not (self.renorm or self.synchronized)
            fusable = fusable and mask is None
            channels_last = len(inputs.shape) == 4 and self.axis in (-1, 3)
            if not (training and self.trainable and fusable and channels_last):
                return super().call(inputs, training=training, mask=mask)
            x = tf.cast(inputs, tf.float32)
            y, mean, variance, *_ = tf.raw_ops.FusedBatchNormV3(
                x=x,
                scale=self.gamma,
                offset=self.beta,
                mean=tf.constant([], tf.float32),
                variance=tf.constant([], tf.float32),
                epsilon=self.epsilon,
                exponential_avg_factor=1.0,
                data_format="NHWC",
                is_training=True,
            )
            n = tf.cast(tf.reduce_prod(tf.shape(x)[:-1]), tf.float32)
            variance = variance * (n - 1.0) / tf.maximum(n, 1.0)  # the kernel's is corrected
            m = self.momentum
            self.moving_mean.assign(self.moving_mean * m + mean * (1.0 - m))
            self.moving_variance.assign(self.moving_variance * m + variance * (1.0 - m))
            return tf.cast(y, self.compute_dtype)

    _FUSED.append(FusedBatchNormalization)
    return FusedBatchNormalization


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
