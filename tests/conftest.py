from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

# Keras reads KERAS_HOME once, at import: point it at an empty folder before any test imports it.
os.environ["KERAS_HOME"] = tempfile.mkdtemp(prefix="modelgen-tests-keras-")
# Every process a test starts, module-scoped fixtures included, uses an empty cache of its own
# and never downloads weights: the offline paths are the ones tested, on any network.
os.environ["MODELGEN_CACHE_DIR"] = tempfile.mkdtemp(prefix="modelgen-tests-cache-")
os.environ["MODELGEN_OFFLINE"] = "1"
REPO = Path(__file__).resolve().parent.parent
collect_ignore = ["golden"]  # rendered templates: compared as files, not run
SHARED_WEIGHTS = REPO.parent / "shared" / "weights" / "mobilenet_v2_1.0_no_top.h5"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden", action="store_true", help="rewrite tests/golden from the templates"
    )


@pytest.fixture(autouse=True)
def _isolated_caches(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Never read or write the user's ~/.keras or ~/.cache/modelgen from tests."""
    monkeypatch.setenv("MODELGEN_CACHE_DIR", str(tmp_path_factory.mktemp("modelgen-cache")))
    yield
    shutil.rmtree(Path(os.environ["KERAS_HOME"]) / "models", ignore_errors=True)


def draw_shape(shape: str, size: int, rng: np.random.Generator) -> Image.Image:
    """A coloured shape on a noisy background: easy for a small CNN, no downloads needed."""
    background = rng.integers(0, 90, size=(size, size, 3), dtype=np.uint8)
    image = Image.fromarray(background)
    draw = ImageDraw.Draw(image)
    colour = tuple(int(c) for c in rng.integers(150, 256, size=3))
    margin = int(rng.integers(2, size // 5))
    box = (margin, margin, size - margin, size - margin)
    if shape == "circle":
        draw.ellipse(box, fill=colour)
    elif shape == "square":
        draw.rectangle(box, fill=colour)
    else:
        draw.polygon(
            [(size // 2, margin), (margin, size - margin), (size - margin, size - margin)],
            fill=colour,
        )
    return image


MakeDataset = Callable[..., Path]


@pytest.fixture
def make_dataset(tmp_path: Path) -> MakeDataset:
    """make_dataset(counts={"circle": 12, ...}, size=32, name="data") -> folder per label."""

    def make(
        counts: dict[str, int] | None = None, *, size: int = 32, name: str = "data", seed: int = 0
    ) -> Path:
        counts = counts or {"circle": 14, "square": 14, "triangle": 14}
        rng = np.random.default_rng(seed)
        root = tmp_path / name
        for label, n in counts.items():
            (root / label).mkdir(parents=True, exist_ok=True)
            for i in range(n):
                draw_shape(label, size, rng).save(root / label / f"{label}_{i:03d}.png")
        return root

    return make


@pytest.fixture
def shared_weights() -> Path:
    if not SHARED_WEIGHTS.is_file():
        pytest.skip("the stand-in MobileNetV2 weights (../shared/weights) are not here")
    return SHARED_WEIGHTS


def tf_env() -> dict[str, str]:
    env = dict(os.environ)
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    return env
