"""Training and export with real TensorFlow on tiny data (no downloads)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import MakeDataset

from generator.data import load_arrays, scan_folder, split_dataset
from generator.errors import ComputeError, UsageError, WeightsError
from generator.export import as_float32, check_parity, export_onnx, onnx_predict, onnx_session
from generator.progress import NullReporter
from generator.train import TrainOptions, train
from generator.train.backbones import MOBILENET_V2, Backbone, keras_cache_dir, load_backbone
from generator.train.candidates import build_cnn
from generator.train.features import FeatureCache
from generator.train.runtime import select_compute, tensorflow

TINY = Backbone("mobilenet_v2", input_size=96)


def _save_legacy_h5(model: object, path: Path) -> None:
    """Write weights the way keras.applications' .h5 files are laid out."""
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(str(path))  # type: ignore[attr-defined]  # legacy HDF5: has model_weights


def test_imagenet_weights_load_offline_from_the_keras_cache() -> None:
    reference = TINY.build(None)
    cached = keras_cache_dir() / TINY.weights_file
    _save_legacy_h5(reference, cached)
    loaded = load_backbone(TINY, "imagenet")
    assert not isinstance(loaded, str)
    assert str(cached) in loaded.source
    for a, b in zip(reference.get_weights(), loaded.model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_weights_auto_goes_on_without_them_offline() -> None:
    reason = load_backbone(TINY, "auto")
    assert isinstance(reason, str)
    assert "ImageNet weights for mobilenet_v2 are not available" in reason
    assert TINY.weights_file in reason


def test_weights_imagenet_required_offline_says_where_to_put_the_file() -> None:
    with pytest.raises(WeightsError) as caught:
        load_backbone(TINY, "imagenet")
    message = str(caught.value)
    assert str(keras_cache_dir() / TINY.weights_file) in message
    assert "--weights PATH" in message


def test_weights_path(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="does not exist"):
        load_backbone(TINY, str(tmp_path / "nope.h5"))
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not hdf5")
    with pytest.raises(WeightsError, match="junk.h5 does not fit"):
        load_backbone(TINY, str(junk))
    good = tmp_path / "mine.h5"
    _save_legacy_h5(TINY.build(None), good)
    loaded = load_backbone(TINY, str(good))
    assert not isinstance(loaded, str) and "mine.h5" in loaded.source


def test_gpu_asked_for_and_absent_is_a_clear_error() -> None:
    if tensorflow().config.list_physical_devices("GPU"):
        pytest.skip("this machine has a GPU")
    with pytest.raises(ComputeError, match="--compute cpu"):
        select_compute("gpu")
    assert select_compute("auto").device == "cpu"


def test_feature_cache_embeds_only_new_images(make_dataset: MakeDataset, tmp_path: Path) -> None:
    dataset = scan_folder(make_dataset({"a": 10, "b": 10}), min_images_per_class=10)
    keras = tensorflow().keras
    extractor = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.GlobalAveragePooling2D()])
    records = list(dataset.records)
    first = FeatureCache("k", tmp_path)
    assert first.fill(records[:15], extractor, 32) == 15
    second = FeatureCache("k", tmp_path)  # reloaded from disk
    assert second.missing(records[:15]) == []
    assert second.fill(records, extractor, 32) == 5
    expected = load_arrays([r.path for r in records], 32).mean(axis=(1, 2))
    np.testing.assert_allclose(second.matrix(records), expected, rtol=1e-5)


def test_export_parity_and_float32_copy_of_a_mixed_precision_model(tmp_path: Path) -> None:
    keras = tensorflow().keras
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = build_cnn(32, 3)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    images = np.random.default_rng(0).integers(0, 256, (6, 32, 32, 3)).astype(np.uint8)
    plain = as_float32(model, lambda: build_cnn(32, 3))
    assert plain is not model and plain.dtype_policy.name == "float32"
    np.testing.assert_allclose(
        plain.predict_on_batch(images.astype("float32")),
        model.predict_on_batch(images.astype("float32")),
        atol=5e-3,
    )
    path = tmp_path / "m.onnx"
    export_onnx(plain, path, 32)
    parity, probabilities = check_parity(plain, path, images)
    assert probabilities.shape == (6, 3)
    assert parity.images == 6 and parity.max_abs_diff <= 1e-4 and parity.top1_agreement == 1.0
    session = onnx_session(path)
    assert session.get_inputs()[0].name == "image"
    assert onnx_predict(session, images).shape == (6, 3)


def test_train_without_weights_trains_the_cnn_and_says_why(make_dataset: MakeDataset) -> None:
    dataset = scan_folder(make_dataset(), min_images_per_class=10)
    split = split_dataset(dataset, seed=0, validation_fraction=0.2, test_fraction=0.2)
    reporter = NullReporter()
    result = train(
        split,
        dataset.labels,
        TrainOptions(time_budget=60, weights="none", max_epochs=15),
        reporter,
    )
    assert result.winner.name == "small-cnn"
    assert result.winner.input_size == 32
    assert result.skipped == (
        ("mobilenet_v2-frozen", "pretrained weights turned off (--weights none)"),
    )
    assert any("skipping mobilenet_v2-frozen" in m for m in reporter.messages)
    assert 0.0 <= result.winner.val_accuracy <= 1.0


def test_transfer_candidate_with_the_stand_in_weights(
    make_dataset: MakeDataset, shared_weights: Path
) -> None:
    dataset = scan_folder(make_dataset(), min_images_per_class=10)
    split = split_dataset(dataset, seed=0, validation_fraction=0.2, test_fraction=0.2)
    result = train(
        split,
        dataset.labels,
        TrainOptions(time_budget=120, weights=str(shared_weights), max_epochs=20),
    )
    names = {c.name for c in result.leaderboard}
    assert names == {"mobilenet_v2-frozen", "small-cnn"}
    transfer = next(c for c in result.leaderboard if c.name == "mobilenet_v2-frozen")
    assert transfer.input_size == MOBILENET_V2.input_size
