"""The generated library must preprocess exactly as training did (byte for byte)."""

from __future__ import annotations

import importlib.util
import io
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from helpers import GOLDEN_CONTEXT
from PIL import Image

from generator.data import preprocess
from generator.render import render_tree


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    files = render_tree("image_classification", GOLDEN_CONTEXT.as_mapping())
    path = Path(tmp_path_factory.mktemp("lib")) / "classifier.py"
    path.write_bytes(files["src/shapes_demo/classifier.py"])
    spec = importlib.util.spec_from_file_location("generated_classifier", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def images() -> dict[str, Image.Image]:
    rng = np.random.default_rng(1)
    rgb = Image.fromarray(rng.integers(0, 256, (45, 61, 3), dtype=np.uint8))
    rgba = Image.fromarray(rng.integers(0, 256, (30, 30, 4), dtype=np.uint8))
    palette = rgb.convert("P")
    palette.info["transparency"] = 3
    rotated = io.BytesIO()
    exif = rgb.getexif()
    exif[0x0112] = 8
    rgb.save(rotated, format="PNG", exif=exif)
    return {
        "rgb": rgb,
        "grey": rgb.convert("L"),
        "rgba": rgba,
        "la": rgba.convert("LA"),
        "palette-transparent": palette,
        "cmyk": rgb.convert("CMYK"),
        "exif-rotated": Image.open(io.BytesIO(rotated.getvalue())),
        "exact-size": rgb.resize((24, 24)),
        "grey-16-bit": Image.frombytes(
            "I;16", (33, 40), rng.integers(0, 65536, (40, 33)).astype("<u2").tobytes()
        ),
    }


@pytest.mark.parametrize("name", sorted(images()))
def test_same_pixels_as_training(generated: ModuleType, name: str) -> None:
    image = images()[name]
    for size in (24, 32, 96):
        training = preprocess(image, size).astype(np.float32)
        serving = generated.preprocess(image, size)
        assert serving.dtype == np.float32
        np.testing.assert_array_equal(serving, training, err_msg=f"{name} at {size}px")
