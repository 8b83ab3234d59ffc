"""Pretrained backbones: what they need, and how their weights are found or refused."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UsageError, WeightsError
from ..progress import Reporter
from .families import Kind, Skip, SkipCause, candidate_name, describe_skip
from .runtime import tensorflow

KERAS_WEIGHTS = "https://storage.googleapis.com/tensorflow/keras-applications/"


@dataclass(frozen=True)
class Backbone:
    """A Keras application used as a frozen feature extractor (and fine-tuned at the top)."""

    name: str
    application: str  # the keras.applications function
    input_size: int
    weights_file: str  # the no-top file name keras.applications downloads and caches
    weights_folder: str  # its folder under KERAS_WEIGHTS
    scale_inputs: bool  # True: the caller maps 0..255 to -1..1; False: built into the model
    fine_tune_layers: int  # top layers unfrozen when fine-tuning
    options: tuple[tuple[str, Any], ...] = ()

    @property
    def weights_url(self) -> str:
        return KERAS_WEIGHTS + self.weights_folder + "/" + self.weights_file

    def build(self, weights: str | None) -> Any:
        """The backbone with global average pooling; 0..255 scaling is added by the caller
        when scale_inputs is set."""
        tf = tensorflow()
        factory = getattr(tf.keras.applications, self.application)
        return factory(
            input_shape=(self.input_size, self.input_size, 3),
            include_top=False,
            weights=weights,
            pooling="avg",
            **dict(self.options),
        )

    def matches(self, file_name: str) -> bool:
        """Whether a weights file's name says it is for this backbone."""
        plain = file_name.lower().replace("-", "_")
        return plain.startswith(self.name) or plain == self.weights_file.lower()


def mobilenet_v2(size: int) -> Backbone:
    return Backbone(
        "mobilenet_v2",
        "MobileNetV2",
        size,
        f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_{size}_no_top.h5",
        "mobilenet_v2",
        scale_inputs=True,
        fine_tune_layers=30,
        options=(("alpha", 1.0),),
    )


MOBILENET_V2 = mobilenet_v2(128)

# Cheapest first: the search extracts features in this order while the budget allows.
REGISTRY: tuple[Backbone, ...] = (
    MOBILENET_V2,
    Backbone(
        "mobilenet_v3_small",
        "MobileNetV3Small",
        224,
        "weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5",
        "mobilenet_v3",
        scale_inputs=False,
        fine_tune_layers=25,
        options=(("include_preprocessing", True),),
    ),
    Backbone(
        "mobilenet_v3_large",
        "MobileNetV3Large",
        224,
        "weights_mobilenet_v3_large_224_1.0_float_no_top_v2.h5",
        "mobilenet_v3",
        scale_inputs=False,
        fine_tune_layers=25,
        options=(("include_preprocessing", True),),
    ),
    Backbone(
        "efficientnet_v2_b0",
        "EfficientNetV2B0",
        224,
        "efficientnetv2-b0_notop.h5",
        "efficientnet_v2",
        scale_inputs=False,
        fine_tune_layers=30,
        options=(("include_preprocessing", True),),
    ),
    Backbone(
        "resnet50_v2",
        "ResNet50V2",
        224,
        "resnet50v2_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "resnet",
        scale_inputs=True,
        fine_tune_layers=20,
    ),
)


def registry(names: Sequence[str] | None = None) -> tuple[Backbone, ...]:
    """The registry, or the named part of it (unknown names are a usage error)."""
    if not names:
        return REGISTRY
    known = {b.name: b for b in REGISTRY}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UsageError(f"unknown backbone {', '.join(unknown)}: choose from {', '.join(known)}")
    return tuple(known[n] for n in names)


def weights_for(backbone: Backbone, weights: str) -> str:
    """--weights as it applies to one backbone: auto|imagenet|none stay as they are; a folder
    supplies the files named as Keras names them; a file is for the backbone its name starts
    with (the others fall back to auto)."""
    if weights in ("auto", "imagenet", "none"):
        return weights
    path = Path(weights).expanduser()
    if path.is_dir():
        found = path / backbone.weights_file
        return str(found) if found.is_file() else "auto"
    if not path.exists():
        raise UsageError(
            f"weights file {path} does not exist: pass --weights with the path of a no-top "
            ".h5 file (or a folder of them), or --weights auto|imagenet|none"
        )
    if not any(b.matches(path.name) for b in REGISTRY):
        raise UsageError(
            f"weights file {path} does not say which backbone it is for: name it after one "
            f"of {', '.join(b.name for b in REGISTRY)} (e.g. {MOBILENET_V2.name}_1.0_no_top.h5) "
            "or use the file name Keras uses, such as "
            f"{MOBILENET_V2.weights_file}"
        )
    return str(path) if backbone.matches(path.name) else "auto"


def keras_cache_dir() -> Path:
    """Where keras.applications keeps downloaded weights: $KERAS_HOME/models, else
    ~/.keras/models (Keras reads KERAS_HOME once, when it is imported)."""
    from keras.src.backend import config

    return Path(os.path.expanduser(config.keras_home())) / "models"


@dataclass(frozen=True)
class LoadedBackbone:
    backbone: Backbone
    model: Any
    weights_id: str  # stable id of the weights, part of the feature-cache key
    source: str  # said to the user
    weights_name: str  # short and machine-independent, for the generated project


def _file_id(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def _short_reason(exc: Exception) -> str:
    """Keras's offline failure repeats the URL; keep the cause ("URL fetch failure on U: None
    -- [Errno -2] Name or service not known" -> "download failed: [Errno -2] ...")."""
    text = str(exc).split("\n")[0]
    if text.startswith("URL fetch failure"):
        return "download failed: " + text.rpartition(" -- ")[2]
    return text


OFFLINE = "MODELGEN_OFFLINE"
"""Set to 1 to never download weights: only files already in the Keras cache are used."""


class _Unavailable(Exception):
    """The weights file could not be had or read; the message says why, in a few words."""


def _fetch(backbone: Backbone, cached: Path) -> str:
    """The weights file: from the Keras cache, else downloaded into it (unless offline)."""
    if cached.is_file():
        return str(cached)
    if os.environ.get(OFFLINE, "") not in ("", "0"):
        raise _Unavailable(f"not in the Keras cache, and downloads are off ({OFFLINE}=1)")
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # "Downloading data from ..."
            return str(
                tensorflow().keras.utils.get_file(
                    backbone.weights_file, backbone.weights_url, cache_subdir="models"
                )
            )
    except OSError as exc:
        raise _Unavailable(_short_reason(exc)) from None
    except Exception as exc:  # Keras raises a plain Exception when the download fails
        if str(exc).startswith("URL fetch failure"):
            raise _Unavailable(_short_reason(exc)) from None
        raise


def _build_checked(backbone: Backbone, weights: str) -> Any:
    """The backbone with a weights file; a file that does not fit is _Unavailable."""
    try:
        return backbone.build(weights)
    except (OSError, ValueError) as exc:  # h5py cannot read it; shapes or layers differ
        raise _Unavailable(str(exc).split("\n")[0]) from None


def load_backbone(backbone: Backbone, weights: str) -> LoadedBackbone | Skip:
    """The backbone with pretrained weights, or (for --weights auto / none) why there is none.

    weights: "auto" tries ImageNet and falls back; "imagenet" requires it; "none" skips;
    anything else is a path to a local weights file.
    """
    if weights == "none":
        return Skip(backbone.name, Kind.TRANSFER, SkipCause.WEIGHTS_OFF)
    if weights in ("auto", "imagenet"):
        cached = keras_cache_dir() / backbone.weights_file
        try:
            # The file first (found in the Keras cache, or downloaded there), then the model:
            # offline, a missing file costs no model build.
            model = _build_checked(backbone, _fetch(backbone, cached))
        except _Unavailable as exc:
            if weights == "auto":
                return Skip(backbone.name, Kind.TRANSFER, SkipCause.NO_WEIGHTS, str(exc))
            raise WeightsError(
                f"ImageNet weights for {backbone.name} could not be loaded ({exc}): download "
                f"{backbone.weights_url} to {cached}, pass --weights PATH to a local copy, "
                "or use --weights auto to go on without them"
            ) from None
        weights_id = _file_id(cached) if cached.is_file() else "imagenet"
        return LoadedBackbone(
            backbone, model, weights_id, f"ImageNet weights ({cached})", "ImageNet weights"
        )
    path = Path(weights).expanduser()
    if not path.is_file():
        raise UsageError(
            f"weights file {path} does not exist: pass --weights with the path of a "
            f"{backbone.name} no-top .h5 file, or --weights auto|imagenet|none"
        )
    try:
        model = _build_checked(backbone, str(path))
    except _Unavailable as exc:
        raise WeightsError(
            f"weights file {path} does not fit {backbone.name} at {backbone.input_size}px "
            f"({exc}): pass a no-top .h5 file such as {backbone.weights_file}"
        ) from None
    return LoadedBackbone(
        backbone, model, _file_id(path), f"weights file {path}", f"weights {path.name}"
    )


def load_backbones(
    names: Sequence[str], weights: str, reporter: Reporter, *, only_named: bool = False
) -> tuple[list[LoadedBackbone], list[Skip]]:
    """The named backbones (all, when none is named, unless only_named), with their weights,
    and those that have none; says which, and where missing weights would go."""
    if only_named and not names:
        return [], []
    loaded: list[LoadedBackbone] = []
    skipped: list[Skip] = []
    for backbone in registry(names):
        result = load_backbone(backbone, weights_for(backbone, weights))
        if isinstance(result, Skip):
            skipped.append(result)
        else:
            reporter.info(f"{backbone.name}: {result.source}")
            loaded.append(result)
    if not skipped:
        return loaded, skipped
    where = keras_cache_dir()
    if len(skipped) > 1 and not loaded:
        first = registry(names)[0]
        files = f"their files (e.g. {first.weights_file})"
        shown = ", ".join(candidate_name(s.family, s.kind) for s in skipped)
        why = _why(skipped[0], files, where)
        reporter.warn(f"skipping {len(skipped)} pretrained candidates ({shown}): {why}")
    else:
        for skip in skipped:
            backbone = registry((skip.family,))[0]
            reporter.warn(
                f"skipping {candidate_name(skip.family, skip.kind)}: "
                f"{_why(skip, backbone.weights_file, where)}"
            )
    return loaded, skipped


def _why(skip: Skip, files: str, where: Path) -> str:
    """A skip in words, with where the weights would go when they are missing."""
    if skip.cause is SkipCause.NO_WEIGHTS:
        return f"{describe_skip(skip)}; put {files} in {where} or pass --weights PATH"
    return describe_skip(skip)
