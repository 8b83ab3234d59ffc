"""Training and export with real TensorFlow on tiny data (no downloads)."""

from __future__ import annotations

import math
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from helpers import MakeDataset, plan_table, recipe_row
from PIL import Image

from generator.data import Split, load_arrays, scan_folder, split_dataset
from generator.errors import ComputeError, UsageError, WeightsError
from generator.evaluate import evaluate
from generator.export import as_float32, check_parity, export_onnx, onnx_predict, onnx_session
from generator.progress import NullReporter
from generator.train import TrainOptions, train
from generator.train.backbones import (
    MOBILENET_V2,
    REGISTRY,
    keras_cache_dir,
    load_backbone,
    load_backbones,
    mobilenet_v2,
    registry,
    weights_for,
)
from generator.train.families import Kind, Skip, SkipCause
from generator.train.features import (
    PIXELS_VERSION,
    extraction_runtime,
    feature_cache,
    feature_store,
    fill,
)
from generator.train.folds import assign_folds
from generator.train.networks import build_cnn, build_extractor, fused_batch_normalization
from generator.train.plan import Plan
from generator.train.recipes import recipes
from generator.train.runner import Runner
from generator.train.runtime import Compute, select_compute, tensorflow

TINY = mobilenet_v2(96)


def _save_legacy_h5(model: object, path: Path) -> None:
    """Write weights the way keras.applications' .h5 files are laid out."""
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(str(path))  # type: ignore[attr-defined]  # legacy HDF5: has model_weights


def test_imagenet_weights_load_offline_from_the_keras_cache() -> None:
    reference = TINY.build(None)
    cached = keras_cache_dir() / TINY.weights_file
    _save_legacy_h5(reference, cached)
    loaded = load_backbone(TINY, "imagenet")
    assert not isinstance(loaded, Skip)
    assert str(cached) in loaded.source
    for a, b in zip(reference.get_weights(), loaded.model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_weights_auto_goes_on_without_them_offline() -> None:
    skip = load_backbone(TINY, "auto")
    assert isinstance(skip, Skip) and skip.cause is SkipCause.NO_WEIGHTS
    assert (skip.family, skip.kind) == ("mobilenet_v2", Kind.TRANSFER)
    assert skip.detail == "not in the Keras cache, and downloads are off (MODELGEN_OFFLINE=1)"
    reporter = NullReporter()
    load_backbones(["mobilenet_v2"], "auto", reporter)
    assert reporter.messages == [
        "warning: skipping mobilenet_v2-frozen: ImageNet weights are not available (not in the "
        "Keras cache, and downloads are off (MODELGEN_OFFLINE=1)); put "
        f"{MOBILENET_V2.weights_file} in {keras_cache_dir()} or pass --weights PATH"
    ]


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
    assert not isinstance(loaded, Skip) and "mine.h5" in loaded.source


def test_gpu_asked_for_and_absent_is_a_clear_error() -> None:
    if tensorflow().config.list_physical_devices("GPU"):
        pytest.skip("this machine has a GPU")
    with pytest.raises(ComputeError, match="--compute cpu"):
        select_compute("gpu")
    assert select_compute("auto").device == "cpu"


def test_features_come_from_a_cached_onnx_backbone_and_match_keras(
    make_dataset: MakeDataset, shared_weights: Path, tmp_path: Path
) -> None:
    dataset = scan_folder(make_dataset({"a": 10, "b": 10}), min_images_per_class=10)
    images = [(r.sha256, r.path) for r in dataset.records]
    loaded = load_backbone(TINY, str(shared_weights))
    assert not isinstance(loaded, Skip)
    extractor = build_extractor(loaded.model, loaded.backbone)
    compute = select_compute("cpu")
    reporter = NullReporter()
    store, embed = feature_store(loaded, extractor, compute, reporter, tmp_path)
    (exported,) = (tmp_path / "backbones").glob("*.onnx")
    assert store.path.name.endswith(f"-onnxruntime-px{PIXELS_VERSION}")
    x = fill(store, images, 96, embed, "features", reporter, float("inf"))
    assert x is not None and x.shape == (20, int(loaded.model.output_shape[-1]))
    pixels = load_arrays([p for _, p in images], 96).astype(np.float32)
    np.testing.assert_allclose(x, extractor.predict_on_batch(pixels), atol=1e-4)
    modified = exported.stat().st_mtime_ns
    again, _ = feature_store(loaded, extractor, compute, reporter, tmp_path)  # exported once
    assert exported.stat().st_mtime_ns == modified and again.missing([k for k, _ in images]) == []


def test_onnxruntime_embeds_when_the_export_pays_for_itself() -> None:
    cpu, gpu = Compute("cpu", (), False), Compute("gpu", ("GPU:0",), True)
    assert extraction_runtime(cpu, 100, 0.02) == "keras"  # 2 s of Keras: not worth 3 s
    assert extraction_runtime(cpu, 5000, 0.02) == "onnxruntime"  # 100 s of Keras
    assert extraction_runtime(gpu, 5000, 0.02) == "keras"


def test_store_embeds_only_new_images_and_survives_a_torn_write(
    make_dataset: MakeDataset, tmp_path: Path
) -> None:
    dataset = scan_folder(make_dataset({"a": 10, "b": 10}), min_images_per_class=10)
    images = [(r.sha256, r.path) for r in dataset.records]
    keys = [key for key, _ in images]
    paths = [path for _, path in images]
    means = lambda batch: batch.astype(np.float32).mean(axis=(1, 2))  # noqa: E731
    first = feature_cache("k", 3, tmp_path)
    assert first.fill(images[:15], 32, means, batch_size=4) == 15
    second = feature_cache("k", 3, tmp_path)  # reloaded from disk
    assert second.missing(keys[:15]) == []
    assert second.fill(images, 32, means) == 5
    expected = load_arrays(paths, 32).mean(axis=(1, 2))
    np.testing.assert_allclose(second.take(keys), expected, rtol=1e-5)
    # A run killed mid-write leaves a partial row and a key without its row: both dropped.
    with (second.path / "rows.bin").open("ab") as fh:
        fh.write(b"\0" * 5)
    with (second.path / "keys.txt").open("a") as fh:
        fh.write("f" * 64 + "\n")
    third = feature_cache("k", 3, tmp_path)
    assert len(third) == 20 and third.missing(keys) == []
    np.testing.assert_allclose(third.take(keys), expected, rtol=1e-5)
    other_shape = feature_cache("k", 4, tmp_path)  # a header that does not match: start afresh
    assert len(other_shape) == 0


def test_runs_sharing_a_store_never_store_a_row_twice_nor_read_anothers_row(
    tmp_path: Path,
) -> None:
    """Two runs on one cache: each store object read the disk before the other wrote."""
    images = []
    for i in range(12):
        path = tmp_path / f"{i}.png"
        Image.fromarray(np.full((8, 8, 3), 10 * i, np.uint8)).save(path)
        images.append((f"k{i}", path))
    keys = [key for key, _ in images]
    expected = 10.0 * np.arange(12)[:, None].repeat(3, axis=1)
    means = lambda batch: batch.astype(np.float32).mean(axis=(1, 2))  # noqa: E731
    first, second = feature_cache("k", 3, tmp_path), feature_cache("k", 3, tmp_path)
    assert first.fill(images[:8], 8, means, batch_size=4) == 8
    assert second.fill(images[4:], 8, means, batch_size=4) == 4  # 4-7 were stored by first
    np.testing.assert_allclose(second.take(keys), expected)
    assert first.fill(images, 8, means) == 0  # takes in what second stored
    np.testing.assert_allclose(first.take(keys), expected)
    lines = (first.path / "keys.txt").read_text().split()
    assert sorted(lines) == sorted(keys)
    # A key file with a key twice (two runs before stores took a lock) keeps reading the
    # right rows; a row torn before its key (killed mid-write) is cut before the next one.
    with (first.path / "rows.bin").open("ab") as fh:
        fh.write(np.full((1, 3), 99, np.float32).tobytes() + b"\0" * 5)
    with (first.path / "keys.txt").open("a") as fh:
        fh.write("k0\n")
    third = feature_cache("k", 3, tmp_path)
    np.testing.assert_allclose(third.take(keys), expected)
    new = tmp_path / "new.png"
    Image.fromarray(np.full((8, 8, 3), 200, np.uint8)).save(new)
    assert third.fill([*images, ("new", new)], 8, means) == 1
    fourth = feature_cache("k", 3, tmp_path)
    np.testing.assert_allclose(fourth.take([*keys, "new"]), [*expected, [200.0] * 3])


def test_concurrent_fills_of_one_store_wait_for_each_other(tmp_path: Path) -> None:
    images = []
    for i in range(16):
        path = tmp_path / f"{i}.png"
        Image.fromarray(np.full((8, 8, 3), i, np.uint8)).save(path)
        images.append((f"k{i}", path))

    def slow_means(batch: np.ndarray) -> np.ndarray:
        time.sleep(0.02)  # long enough for the other thread to reach its fill
        return batch.astype(np.float32).mean(axis=(1, 2))

    stores = [feature_cache("k", 3, tmp_path) for _ in range(2)]
    with ThreadPoolExecutor(2) as pool:
        added = list(pool.map(lambda s: s.fill(images, 8, slow_means, batch_size=2), stores))
    assert sorted(added) == [0, 16]  # the second waited, then found every row stored
    assert sorted((stores[0].path / "keys.txt").read_text().split()) == sorted(
        key for key, _ in images
    )
    for store in stores:
        np.testing.assert_allclose(
            store.take([key for key, _ in images]), np.arange(16)[:, None].repeat(3, axis=1)
        )


def test_registry_names_the_files_keras_downloads_and_loads_them(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from keras.src.utils import file_utils

    asked: list[tuple[str, str]] = []

    def fake_get_file(fname: str, origin: str, **kwargs: object) -> str:
        asked.append((fname, origin))
        raise OSError("offline")

    monkeypatch.setattr(file_utils, "get_file", fake_get_file)
    names = [b.name for b in REGISTRY]
    assert names == [
        "mobilenet_v2",
        "mobilenet_v3_small",
        "mobilenet_v3_large",
        "efficientnet_v2_b0",
        "resnet50_v2",
    ]
    for backbone in REGISTRY:
        small = replace(backbone, input_size=64)
        with pytest.raises(OSError):
            small.build("imagenet")
        fname, origin = asked.pop()
        expected = backbone.weights_file.replace("_128_", "_224_")  # MobileNetV2 by size
        if backbone.name == "mobilenet_v2":
            assert fname == mobilenet_v2(224).weights_file
        else:
            assert fname == expected
        assert origin == replace(backbone, weights_file=fname).weights_url
        model = small.build(None)
        features = model.output_shape[-1]
        assert isinstance(features, int) and features >= 576
        # a weights file under Keras's name loads back into the same architecture
        folder = tmp_path / backbone.name
        _save_legacy_h5(model, folder / small.weights_file)
        loaded = load_backbone(small, weights_for(small, str(folder)))
        assert not isinstance(loaded, Skip), loaded
        for a, b in zip(model.get_weights(), loaded.model.get_weights(), strict=True):
            np.testing.assert_array_equal(a, b)


def test_weights_path_is_matched_to_its_backbone(tmp_path: Path) -> None:
    v2, v3 = REGISTRY[0], REGISTRY[1]
    mine = tmp_path / "mobilenet_v2_1.0_no_top.h5"
    mine.write_bytes(b"x")
    assert weights_for(v2, str(mine)) == str(mine)
    assert weights_for(v3, str(mine)) == "auto"
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / v3.weights_file).write_bytes(b"x")
    assert weights_for(v3, str(folder)) == str(folder / v3.weights_file)
    assert weights_for(v2, str(folder)) == "auto"
    odd = tmp_path / "weights.h5"
    odd.write_bytes(b"x")
    with pytest.raises(UsageError, match="does not say which backbone"):
        weights_for(v2, str(odd))
    with pytest.raises(UsageError, match="unknown backbone vgg16"):
        registry(["vgg16"])


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
    parity, probabilities = check_parity(plain, path, [images[:4], images[4:]])
    assert probabilities.shape == (6, 3)
    assert parity.images == 6 and parity.max_abs_diff <= 1e-4 and parity.top1_agreement == 1.0
    session = onnx_session(path)
    assert session.get_inputs()[0].name == "image"
    assert onnx_predict(session, images).shape == (6, 3)


def test_fused_batch_normalization_trains_as_keras_does() -> None:
    """Same outputs, gradients and moving statistics as Keras's layer, in a training step and
    after it; and it trains under mixed precision."""
    tf = tensorflow()
    rng = np.random.default_rng(0)
    x = tf.constant(rng.uniform(-2, 5, (6, 5, 4, 3)).astype(np.float32))
    upstream = tf.constant(rng.normal(size=(6, 5, 4, 3)).astype(np.float32))
    found = []
    keras_layer = tf.keras.layers.BatchNormalization(momentum=0.9)
    for layer in (keras_layer, fused_batch_normalization()(momentum=0.9)):
        layer.build(x.shape)
        layer.set_weights(
            [np.array(v, "f") for v in ([0.5, 1, 2], [0.1, 0, -1], [1, 0, 2], [2, 1, 3])]
        )
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(layer(x, training=True) * upstream)
        grads = tape.gradient(loss, [x, layer.gamma, layer.beta])
        outputs = [layer(x, training=True), *grads, layer.moving_mean, layer.moving_variance]
        found.append([np.asarray(v) for v in (*outputs, layer(x, training=False))])
    for keras_value, fused_value in zip(*found, strict=True):
        np.testing.assert_allclose(fused_value, keras_value, rtol=1e-4, atol=1e-4)
    graph = tf.function(lambda v: layer(v, training=True)).get_concrete_function(x).graph
    assert "FusedBatchNormV3" in {op.type for op in graph.get_operations()}
    keras = tf.keras
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        layer = fused_batch_normalization()()
        out = layer(tf.cast(x, "float16"), training=True)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert out.dtype == "float16" and layer.moving_mean.dtype == "float32"


def _tiny_split(make_dataset: MakeDataset, **counts: int) -> tuple[tuple[str, ...], Split]:
    dataset = scan_folder(make_dataset(counts or None), min_images_per_class=10)
    return dataset.labels, split_dataset(
        dataset, seed=0, validation_fraction=0.2, test_fraction=0.2
    )


CONVNETS = Plan.from_dict(
    plan_table(
        recipe_row("small-cnn", [2, 2]),
        recipe_row("separable-cnn", [2, 2], augment="shift"),
        shipped=[0],
        refit=[3],
    )
)


def test_search_trains_exactly_a_fixed_plan_and_never_reads_the_test_images(
    make_dataset: MakeDataset,
) -> None:
    labels, split = _tiny_split(make_dataset)
    missing = [replace(r, path=r.path.with_name("gone.png")) for r in split.test]
    for record in split.test:
        record.path.unlink()
    split = replace(split, test=missing)
    options = TrainOptions(time_budget=60, weights="none", plan=CONVNETS)
    result = train(split, labels, options, NullReporter())
    assert not result.deadline_cut and result.plan == CONVNETS
    assert [c.stage for c in result.leaderboard] == ["2-fold cross-validation"] * 2
    assert {c.name for c in result.leaderboard} == {"small-cnn", "separable-cnn (augment shift)"}
    assert all(c.epochs == 2 for c in result.leaderboard)  # early stopping never reached
    winner = result.winner
    assert winner.stage == "refit on train + validation" and winner.epochs == 3
    assert result.finals[0] is winner and result.skipped == ()
    # the winner's score is the out-of-fold score of its recipe
    (row,) = [c for c in result.leaderboard if c.name == "small-cnn"]
    assert (winner.val_accuracy, winner.val_loss) == (row.val_accuracy, row.val_loss)


def test_a_budgeted_search_records_a_plan_that_replays_to_the_same_weights(
    make_dataset: MakeDataset,
) -> None:
    labels, split = _tiny_split(make_dataset)
    reporter = NullReporter()
    options = TrainOptions(time_budget=60, weights="none", max_epochs=4)
    first = train(split, labels, options, reporter)
    assert [(s.family, s.cause) for s in first.skipped][: len(REGISTRY)] == [
        (b.name, SkipCause.WEIGHTS_OFF) for b in REGISTRY
    ]
    plan = Plan.from_dict(first.plan.to_dict())
    assert plan == first.plan
    assert {c.family for c in first.leaderboard} == {e.recipe.family for e in plan.evaluated}
    again = train(split, labels, replace(options, plan=plan))
    assert again.plan == plan
    for a, b in zip(
        first.winner.model.get_weights(), again.winner.model.get_weights(), strict=True
    ):
        np.testing.assert_array_equal(a, b)


def test_an_ensemble_of_heads_on_the_stand_in_weights_exports_as_one_graph(
    make_dataset: MakeDataset, shared_weights: Path, tmp_path: Path
) -> None:
    labels, split = _tiny_split(make_dataset, circle=20, square=20, triangle=20)
    plan = Plan.from_dict(
        plan_table(
            recipe_row("mobilenet_v2", [3, 3], input_size=96, dropout=0.2, l2=1e-4),
            recipe_row("mobilenet_v2", [3, 3], input_size=96, learning_rate=0.003),
            shipped=[0, 1],
            refit=[4, 4],
        )
    )
    options = TrainOptions(time_budget=10, weights=str(shared_weights), plan=plan)
    result = train(split, labels, options, NullReporter())
    winner = result.winner
    assert winner.name == "ensemble of mobilenet_v2-frozen + mobilenet_v2-frozen"
    assert winner.input_size == 96 and winner.epochs == 8
    x = load_arrays([r.path for r in split.test], 96)
    path = tmp_path / "ensemble.onnx"
    export_onnx(winner.model, path, 96)
    parity, probabilities = check_parity(winner.model, path, [x])
    assert parity.max_abs_diff <= 1e-4 and parity.top1_agreement == 1.0
    np.testing.assert_allclose(probabilities.sum(1), 1.0, atol=1e-5)


def test_a_recipe_the_budget_cut_short_replays_and_says_what_its_score_covers(
    make_dataset: MakeDataset,
) -> None:
    """A shipped recipe scored on 1 of 2 folds: the replay trains that fold and the refit
    only, and the score is described as covering that fold, not as cross-validated."""
    from generator.project import selection_text

    labels, split = _tiny_split(make_dataset)
    plan = Plan.from_dict(
        plan_table(
            recipe_row("small-cnn", [2, 2]),
            recipe_row("small-cnn", [2, 0], augment="shift"),
            shipped=[1],
            refit=[2],
        )
    )
    assert plan.shipped_folds() == 1
    assert plan.describe_score() == "accuracy on 1 of 2 cross-validation folds"
    assert "scored on 1 of the 2 folds" in selection_text(plan, 10, 5)
    options = TrainOptions(time_budget=60, weights="none", plan=plan)
    result = train(split, labels, options)
    assert result.plan == plan
    assert result.winner.name == plan.evaluated[1].recipe.name
    assert result.winner.stage == "refit on train + validation"
    whole = replace(plan, shipped=(0,))
    assert whole.describe_score() == "2-fold cross-validated accuracy"
    assert "folds, which" not in selection_text(whole, 10, 5)


def test_a_short_budget_trains_one_convnet_on_train_and_validation(
    make_dataset: MakeDataset,
) -> None:
    """With a remembered rate that makes the usual fit and refit unaffordable, one convnet
    trains on train + validation for what the budget holds; its plan replays exactly."""
    from generator.train.costs import Costs

    labels, split = _tiny_split(make_dataset)
    options = TrainOptions(time_budget=5, weights="none")
    runner = Runner(split, labels, options, NullReporter(), select_compute("cpu"), 0.0, [], [])
    runner.deadline = time.monotonic() + 60
    runner.costs = Costs({Kind.CNN: 1e-8})  # seconds per epoch: a slow machine
    todo = recipes(("small-cnn",), 32, [])
    recipe = runner.direct_fit(todo)
    assert recipe is not None and recipe.augment == "none"  # too few epochs for shifts
    runner.costs = Costs({Kind.CNN: 1e-14})  # a fast machine: the usual search
    assert runner.direct_fit(todo) is None
    plan = Plan.from_dict(
        plan_table(recipe_row("small-cnn", [3]), shipped=[0], refit=[3], folds=1)
        | {"protocol": "direct"}
    )
    result = train(split, labels, replace(options, plan=plan))
    assert result.plan == plan and result.winner.epochs == 3
    assert result.winner.stage == "trained on train + validation for the budget, not scored"
    assert math.isnan(result.winner.val_accuracy)


def test_a_recipe_behind_the_best_after_its_first_fold_is_not_fit_on_the_others(
    make_dataset: MakeDataset,
) -> None:
    """Cross-validation with a budget far beyond need: a recipe that cannot learn (its
    learning rate ~0) is dropped after its first fold, and the search ends there."""
    labels, split = _tiny_split(make_dataset)
    options = TrainOptions(time_budget=3600, weights="none", max_epochs=8, folds=3)
    runner = Runner(
        split, labels, options, NullReporter(), select_compute("cpu"), time.monotonic(), [], []
    )
    good, stuck, never = recipes(("small-cnn", "separable-cnn"), 32, [])[:3]
    stuck = replace(stuck, learning_rate=1e-12)
    winner, board, plan = runner.run([good, stuck, never], None)
    assert plan.protocol == "cross-validation" and [e.recipe for e in plan.evaluated] == [
        good,
        stuck,
    ]
    assert all(plan.evaluated[0].fold_epochs) and plan.evaluated[1].fold_epochs[1:] == (0, 0)
    (row,) = [c for c in board if c.name == stuck.name and c.settings == stuck.settings()]
    assert row.stage == "1 of 3 folds (behind the best: stopped)"
    assert winner.name == good.name and winner.stage == "refit on train + validation"


def test_folds_keep_near_copies_together_and_every_class_in_every_fold() -> None:
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 12)
    groups = [f"g{i // 2}" if i < 8 else f"img{i}" for i in range(len(y))]  # 4 pairs in class 0
    folds = assign_folds(groups, y, 3, seed=5)
    assert folds.tolist() == assign_folds(groups, y, 3, seed=5).tolist()
    assert folds.tolist() != assign_folds(groups, y, 3, seed=6).tolist()
    for i in range(0, 8, 2):
        assert folds[i] == folds[i + 1]
    for f in range(3):
        assert set(y[folds == f]) == {0, 1, 2}
    assert sorted(np.bincount(folds).tolist()) in ([10, 13, 13], [11, 12, 13], [12, 12, 12])
    order = rng.permutation(len(y))  # a row's fold does not depend on the order of rows
    shuffled = assign_folds([groups[i] for i in order], y[order], 3, seed=5)
    assert shuffled.tolist() == folds[order].tolist()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"protocol": "magic"}, "unknown protocol"),
        ({"shipped": [5]}, "shipped names no recorded recipe"),
        ({"refit_epochs": [1, 2]}, "differ in length"),
        ({"folds": 3}, "does not match the folds"),
        ({"embedding": "magic"}, "unknown embedding"),
    ],
)
def test_a_malformed_plan_is_refused(change: dict[str, object], message: str) -> None:
    table = CONVNETS.to_dict() | change
    with pytest.raises(ValueError, match=message):
        Plan.from_dict(table)


def test_the_same_model_exports_to_the_same_bytes(tmp_path: Path) -> None:
    """tf2onnx numbers folded constants from a process-wide counter; canonical names make
    two exports of one model byte-identical."""
    tensorflow().keras.utils.set_random_seed(0)
    model = build_cnn(32, 3)
    first, second = tmp_path / "1.onnx", tmp_path / "2.onnx"
    export_onnx(model, first, 32)
    export_onnx(model, second, 32)
    assert first.read_bytes() == second.read_bytes()
    session = onnx_session(second)
    assert [o.name for o in session.get_outputs()] and session.get_inputs()[0].shape[0] == "N"


def test_with_no_time_to_refit_the_fold_models_ship_averaged_as_one_graph(
    make_dataset: MakeDataset, tmp_path: Path
) -> None:
    """A cross-validation plan with no refit (the budget left held none): the shipped model
    is the mean of every member's fold models, exported as one ONNX graph, and a replay
    builds the same weights."""
    labels, split = _tiny_split(make_dataset)
    plan = Plan.from_dict(
        plan_table(
            recipe_row("small-cnn", [2, 2]),
            recipe_row("small-cnn", [2, 2], augment="shift"),
            shipped=[0, 1],
            refit=[],
        )
    )
    options = TrainOptions(time_budget=60, weights="none", plan=plan)
    result = train(split, labels, options, NullReporter())
    winner = result.winner
    assert result.plan == plan
    assert winner.stage == "the average of each member's 2 fold models (no refit)"
    members = [layer for layer in winner.model.layers if layer.name.startswith("member_")]
    assert len(members) == 4  # 2 recipes x 2 folds
    x = load_arrays([r.path for r in split.test], 32)
    alone = np.mean([np.asarray(m.predict_on_batch(x.astype(np.float32))) for m in members], 0)
    np.testing.assert_allclose(
        winner.model.predict_on_batch(x.astype(np.float32)), alone, atol=1e-6
    )
    path = tmp_path / "folds.onnx"
    export_onnx(winner.model, path, 32)
    parity, _ = check_parity(winner.model, path, [x])
    assert parity.max_abs_diff <= 1e-4 and parity.top1_agreement == 1.0
    again = train(split, labels, options, NullReporter()).winner
    for a, b in zip(winner.model.get_weights(), again.model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_metrics_of_certain_predictions_print_as_zero_log_loss_never_minus_zero() -> None:
    certain = evaluate(np.eye(3, dtype=np.float32), np.arange(3), ["a", "b", "c"])
    assert f"{certain.log_loss:.4f}" == "0.0000" and certain.accuracy == 1.0
    unsure = evaluate(np.array([[0.5, 0.5], [0.2, 0.8]]), np.array([0, 1]), ["a", "b"])
    assert unsure.log_loss == pytest.approx(-(math.log(0.5) + math.log(0.8)) / 2)
