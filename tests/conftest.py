from __future__ import annotations

import os
import tempfile

# Keras reads KERAS_HOME once, at import: point it at an empty folder before any test imports it.
os.environ["KERAS_HOME"] = tempfile.mkdtemp(prefix="modelgen-tests-keras-")
# Every process a test starts, module-scoped fixtures included, uses an empty cache of its own
# and never downloads weights: the offline paths are the ones tested, on any network.
os.environ["MODELGEN_CACHE_DIR"] = tempfile.mkdtemp(prefix="modelgen-tests-cache-")
os.environ["MODELGEN_OFFLINE"] = "1"

import shutil  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from helpers import SHARED_WEIGHTS, MakeDataset, draw_shape  # noqa: E402

collect_ignore = ["golden"]  # rendered templates: compared as files, not run


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
