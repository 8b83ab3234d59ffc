"""The shipped model against held-out images it never saw in training, and its contracts."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from shapes_demo import Classifier, InvalidImageError, Prediction, load, preprocess

DATA = Path(__file__).parent / "data"
EXPECTED = json.loads((DATA / "expected.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return load()


def held_out() -> list[dict[str, object]]:
    return list(EXPECTED["images"])


def test_metadata_matches_the_model(classifier: Classifier) -> None:
    assert list(classifier.labels) == EXPECTED["labels"]
    batch = np.zeros((2, classifier.input_size, classifier.input_size, 3), dtype=np.float32)
    probabilities = classifier.probabilities(batch)
    assert probabilities.shape == (2, len(classifier.labels))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-4)


def test_accuracy_on_held_out_images(classifier: Classifier) -> None:
    images = held_out()
    predictions = classifier.predict_batch([DATA / str(item["path"]) for item in images])
    correct = sum(p.label == item["label"] for p, item in zip(predictions, images))
    accuracy = correct / len(images)
    assert accuracy >= EXPECTED["accuracy"] - EXPECTED["tolerance"], (
        f"accuracy {accuracy:.4f} on {len(images)} held-out images, "
        f"recorded {EXPECTED['accuracy']:.4f}"
    )


def test_predictions_match_the_recorded_ones(classifier: Classifier) -> None:
    for item in held_out():
        prediction = classifier.predict(DATA / str(item["path"]))
        assert prediction.label == item["predicted"], item["path"]
        assert prediction.score == pytest.approx(item["score"], abs=1e-3), item["path"]


def test_path_bytes_pil_and_array_inputs_agree(classifier: Classifier) -> None:
    path = DATA / str(held_out()[0]["path"])
    data = path.read_bytes()
    with Image.open(path) as opened:
        pil = opened.copy()
    rgb = np.asarray(pil.convert("RGB"))
    results = [classifier.predict(x) for x in (path, str(path), data, pil, rgb)]
    assert {r.label for r in results} == {results[0].label}
    for r in results:
        assert r.score == pytest.approx(results[0].score, abs=1e-6)


def test_preprocess_gives_rgb_float32_of_the_model_size(classifier: Classifier) -> None:
    size = classifier.input_size
    for mode in ("L", "RGB", "RGBA", "P", "CMYK"):
        image = Image.new(mode, (37, 23))
        array = preprocess(image, size)
        assert array.shape == (size, size, 3), mode
        assert array.dtype == np.float32
        assert 0.0 <= array.min() and array.max() <= 255.0


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


def test_bad_inputs_raise_clear_errors(classifier: Classifier, tmp_path: Path) -> None:
    with pytest.raises(InvalidImageError, match="not a readable image"):
        classifier.predict(b"this is not an image")
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    with pytest.raises(InvalidImageError, match="broken.png"):
        classifier.predict(broken)
    with pytest.raises(FileNotFoundError):
        classifier.predict(tmp_path / "missing.jpg")
    with pytest.raises(InvalidImageError, match="uint8"):
        classifier.predict(np.zeros((8, 8, 3), dtype=np.float64))
    with pytest.raises(InvalidImageError, match="shape"):
        classifier.predict(np.zeros((8, 8, 2), dtype=np.uint8))
    with pytest.raises(TypeError):
        classifier.predict(42)  # type: ignore[arg-type]


def test_command_line(tmp_path: Path) -> None:
    item = held_out()[0]
    path = DATA / str(item["path"])
    done = subprocess.run(
        [sys.executable, "-m", "shapes_demo", str(path), "--json", "--top-k", "2"],
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(done.stdout)
    assert result["predictions"][0]["label"] == item["predicted"]
    assert len(result["predictions"]) == 2
    bad = tmp_path / "notes.jpg"
    bad.write_text("not an image")
    failed = subprocess.run(
        [sys.executable, "-m", "shapes_demo", str(bad)], capture_output=True, text=True
    )
    assert failed.returncode == 2
    assert "notes.jpg" in failed.stderr
