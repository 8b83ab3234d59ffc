"""The shipped model against held-out images it never saw in training, and its contracts."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image

from shapes_demo import (
    Classifier,
    InvalidImageError,
    ModelIntegrityError,
    Prediction,
    load,
    preprocess,
    to_rgb,
)
from shapes_demo.classifier import METADATA_PATH, MODEL_PATH

DATA = Path(__file__).parent / "data"
EXPECTED = json.loads((DATA / "expected.json").read_text(encoding="utf-8"))
NEAR_TIE = 1e-3  # a recorded top score this close to the runner-up may come out either way


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return load()


def held_out(*, originals: bool = False) -> list[dict[str, object]]:
    return [item for item in EXPECTED["images"] if originals or not item["original"]]


def test_metadata_matches_the_model(classifier: Classifier) -> None:
    assert list(classifier.labels) == EXPECTED["labels"]
    batch = np.zeros((2, classifier.input_size, classifier.input_size, 3), dtype=np.float32)
    probabilities = classifier.probabilities(batch)
    assert probabilities.shape == (2, len(classifier.labels))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-4)
    info = classifier.info
    assert info.labels == classifier.labels and len(info.sha256) == 64 and info.version >= 1


def test_the_onnx_model_carries_its_own_contract() -> None:
    session = ort.InferenceSession(str(MODEL_PATH), providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    assert json.loads(meta["labels"]) == EXPECTED["labels"]
    assert int(meta["input_size"]) == load().input_size
    assert "bilinear" in meta["preprocessing"]


def test_a_model_that_does_not_match_its_metadata_is_refused(tmp_path: Path) -> None:
    model = tmp_path / "model.onnx"
    shutil.copy(METADATA_PATH, tmp_path / "metadata.json")
    model.write_bytes(MODEL_PATH.read_bytes() + b"\0")
    with pytest.raises(ModelIntegrityError, match="sha256"):
        Classifier(model, tmp_path / "metadata.json")
    metadata = json.loads(METADATA_PATH.read_text())
    metadata |= {"labels": [*metadata["labels"], "extra"], "model_sha256": None}
    (tmp_path / "metadata.json").write_text(json.dumps(metadata))
    with pytest.raises(ModelIntegrityError, match="labels"):
        Classifier(MODEL_PATH, tmp_path / "metadata.json")


def test_accuracy_on_held_out_images(classifier: Classifier) -> None:
    images = held_out()
    predictions = classifier.predict_batch([DATA / str(item["path"]) for item in images])
    correct = sum(p.label == item["label"] for p, item in zip(predictions, images, strict=True))
    accuracy = correct / len(images)
    assert accuracy >= EXPECTED["accuracy"] - EXPECTED["tolerance"], (
        f"accuracy {accuracy:.4f} on {len(images)} held-out images, "
        f"recorded {EXPECTED['accuracy']:.4f}"
    )


def test_predictions_match_the_recorded_ones(classifier: Classifier) -> None:
    """Pre-resized copies and original files alike; a near tie may go either way."""
    for item in held_out(originals=True):
        prediction = classifier.predict(DATA / str(item["path"]))
        assert prediction.score == pytest.approx(item["score"], abs=1e-3), item["path"]
        if float(str(item["margin"])) > NEAR_TIE:
            assert prediction.label == item["predicted"], item["path"]
        else:
            assert item["predicted"] in dict(prediction.top_k(2)), item["path"]


def test_a_batch_gives_what_single_images_give(classifier: Classifier) -> None:
    paths = [DATA / str(item["path"]) for item in held_out(originals=True)[:10]]
    batch = classifier.predict_batch(iter(paths), 3)  # any iterable, in chunks of 3
    for path, together in zip(paths, batch, strict=True):
        alone = classifier.predict(path)
        assert together.label == alone.label
        assert together.score == pytest.approx(alone.score, abs=1e-5)


def test_every_kind_of_input_agrees(classifier: Classifier) -> None:
    path = DATA / str(held_out()[0]["path"])
    data = path.read_bytes()
    with Image.open(path) as opened:
        pil = opened.copy()
    rgb = np.asarray(to_rgb(pil))  # the library's own conversion, as a user's array
    with path.open("rb") as handle:
        from_file = classifier.predict(handle)
    results = [classifier.predict(x) for x in (path, str(path), data, io.BytesIO(data), pil, rgb)]
    results += [from_file, classifier.predict(rgb[:, :, ::-1].copy(), channel_order="BGR")]
    assert {r.label for r in results} == {results[0].label}
    for r in results:
        assert r.score == pytest.approx(results[0].score, abs=1e-6)


def test_the_not_sure_threshold(classifier: Classifier) -> None:
    prediction = classifier.predict(DATA / str(held_out()[0]["path"]))
    assert classifier.min_score == prediction.min_score == classifier.info.min_score
    strict = classifier.predict(DATA / str(held_out()[0]["path"]), min_score=1.01)
    assert not strict.confident and strict.answer is None and strict.label == prediction.label
    lax = classifier.predict(DATA / str(held_out()[0]["path"]), min_score=0.0)
    assert lax.confident and lax.answer == lax.label


@pytest.mark.parametrize("probe", EXPECTED["probes"], ids=lambda p: str(p["input"]))
def test_inputs_unlike_the_training_images(
    classifier: Classifier, probe: dict[str, object]
) -> None:
    """A blank image and noise still get a label: what they get, as recorded in the README,
    and whether the threshold calls them "not sure"."""
    size = classifier.input_size
    if probe["input"] == "blank white image":
        image = np.full((size, size, 3), 255, dtype=np.uint8)
    else:
        image = np.random.default_rng(0).integers(0, 256, (size, size, 3)).astype(np.uint8)
    prediction = classifier.predict(image)
    assert prediction.score == pytest.approx(probe["score"], abs=1e-3)
    assert prediction.confident == probe["answered"]


def test_predict_is_thread_safe(classifier: Classifier) -> None:
    paths = [DATA / str(item["path"]) for item in held_out()[:16]] * 4
    alone = [classifier.predict(p) for p in paths]
    with ThreadPoolExecutor(max_workers=8) as pool:
        together = list(pool.map(classifier.predict, paths))
    assert [p.label for p in together] == [p.label for p in alone]
    assert [p.score for p in together] == pytest.approx([p.score for p in alone], abs=1e-5)


def test_load_shares_one_session() -> None:
    assert load() is load()
    assert load(threads=1) is not load()


def test_preprocess_gives_rgb_float32_of_the_model_size(classifier: Classifier) -> None:
    size = classifier.input_size
    for mode in ("L", "RGB", "RGBA", "P", "CMYK", "I;16"):
        image = Image.new(mode, (37, 23))
        array = preprocess(image, size)
        assert array.shape == (size, size, 3), mode
        assert array.dtype == np.float32
        assert array.min() >= 0.0 and array.max() <= 255.0


def test_transparent_pixels_become_white() -> None:
    image = Image.new("RGBA", (8, 8), (10, 20, 30, 0))
    assert preprocess(image, 8).min() == 255.0


def test_exif_orientation_is_applied() -> None:
    pixels = np.zeros((10, 20, 3), dtype=np.uint8)
    pixels[:, :5] = 255  # a white stripe on the left
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif, quality=95)
    upright = preprocess(buffer.getvalue(), 20)
    rotated = preprocess(image.transpose(Image.Transpose.ROTATE_270), 20)
    assert np.abs(upright - rotated).mean() < 8


def test_top_k_is_sorted_and_bounded(classifier: Classifier) -> None:
    path = DATA / str(held_out()[0]["path"])
    ranked = classifier.top_k(path, k=len(classifier.labels) + 5)
    assert len(ranked) == len(classifier.labels)
    scores = [score for _, score in ranked]
    assert scores == sorted(scores, reverse=True)
    assert ranked[0][0] == classifier.predict(path).label
    with pytest.raises(ValueError):
        Prediction("x", 1.0, {"x": 1.0}).top_k(0)


def huge_png() -> bytes:
    """A valid 1x1 PNG whose header claims 10,000 x 10,000 pixels (nothing is allocated)."""
    import struct
    import zlib

    buffer = io.BytesIO()
    Image.new("L", (1, 1)).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    data[16:24] = struct.pack(">II", 10_000, 10_000)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def test_bad_inputs_raise_clear_errors(classifier: Classifier, tmp_path: Path) -> None:
    with pytest.raises(InvalidImageError, match="not a readable image"):
        classifier.predict(b"this is not an image")
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    with pytest.raises(InvalidImageError, match="broken.png"):
        classifier.predict(broken)
    with pytest.raises(FileNotFoundError):
        classifier.predict(tmp_path / "missing.jpg")
    with pytest.raises(InvalidImageError, match=r"\* 255"):
        classifier.predict(np.zeros((8, 8, 3), dtype=np.float64))
    with pytest.raises(InvalidImageError, match="shape"):
        classifier.predict(np.zeros((8, 8, 2), dtype=np.uint8))
    with pytest.raises(InvalidImageError, match="pixel limit"):
        classifier.predict(huge_png())
    truncated = Image.open(io.BytesIO((DATA / str(held_out()[0]["path"])).read_bytes()[:60]))
    with pytest.raises(InvalidImageError, match="PIL image"):
        classifier.predict(truncated)  # a lazily opened PIL image whose decode fails
    with pytest.raises(TypeError):
        classifier.predict(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="channel_order"):
        classifier.predict(np.zeros((8, 8, 3), dtype=np.uint8), channel_order="BRG")  # type: ignore[arg-type]


def test_predict_batch_checks_its_arguments(classifier: Classifier, tmp_path: Path) -> None:
    good = DATA / str(held_out()[0]["path"])
    for wrong in (str(good), good.read_bytes()):
        with pytest.raises(TypeError, match="iterable of images"):
            classifier.predict_batch(wrong)  # type: ignore[arg-type]
    for size in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="batch_size"):
            classifier.predict_batch([good], size)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="errors"):
        classifier.predict_batch([good], errors="ignore")  # type: ignore[call-overload]
    bad = tmp_path / "notes.jpg"
    bad.write_text("not an image")
    with pytest.raises(InvalidImageError):
        classifier.predict_batch([good, bad])
    skipped = classifier.predict_batch([good, bad, good], 2, errors="skip")
    assert skipped[1] is None and skipped[0] is not None and skipped[2] is not None
    assert classifier.predict_batch([]) == []


def test_command_line(tmp_path: Path) -> None:
    item = held_out()[0]
    path = DATA / str(item["path"])
    folder = tmp_path / "folder"
    folder.mkdir()
    shutil.copy(path, folder / "a.png")
    shutil.copy(path, folder / "b.png")
    bad = tmp_path / "notes.jpg"
    bad.write_text("not an image")
    command = [sys.executable, "-m", "shapes_demo"]
    done = subprocess.run(
        [*command, str(path), str(folder), str(tmp_path / "*.jpg"), "--json", "--top-k", "2"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1  # notes.jpg could not be read; the rest were classified
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert [Path(r["image"]).name for r in records] == [path.name, "a.png", "b.png", "notes.jpg"]
    assert records[0]["predictions"][0]["label"] == item["predicted"]
    assert len(records[0]["predictions"]) == 2
    assert "not a readable image" in records[3]["error"]
    strict = subprocess.run(
        [*command, str(path), "--min-score", "1.01"], capture_output=True, text=True, check=True
    )
    assert "not sure" in strict.stdout
    version = subprocess.run([*command, "--version"], capture_output=True, text=True, check=True)
    assert "model version" in version.stdout
    usage = subprocess.run([*command, "--top-k", "0", str(path)], capture_output=True, text=True)
    assert usage.returncode == 2  # argparse's usage error, distinct from unreadable inputs
