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
from PIL import Image, ImageOps, PngImagePlugin

from generator.data import preprocess, to_rgb
from generator.data.checks import check_file
from generator.data.images import decode, load_array
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


def oriented(orientation: int, fmt: str) -> bytes:
    """A 10 x 20 picture whose left quarter is white, saved with an EXIF orientation tag
    (fmt "XMP": a PNG carrying the orientation in XMP instead)."""
    pixels = np.zeros((10, 20, 3), dtype=np.uint8)
    pixels[:, :5] = 255
    pixels[:3, :, 1] = 128  # and a top band: every turn and flip gives different pixels
    image = Image.fromarray(pixels)
    buffer = io.BytesIO()
    if fmt == "XMP":
        info = PngImagePlugin.PngInfo()
        info.add_itxt(
            "XML:com.adobe.xmp",
            f'<x:xmpmeta><rdf:Description tiff:Orientation="{orientation}"/></x:xmpmeta>',
        )
        image.save(buffer, format="PNG", pnginfo=info)
    else:
        exif = image.getexif()
        exif[0x0112] = orientation
        image.save(buffer, format=fmt, exif=exif, **({"quality": 95} if fmt == "JPEG" else {}))
    return buffer.getvalue()


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "XMP"])
def test_every_orientation_as_pillows_exif_transpose(generated: ModuleType, fmt: str) -> None:
    seen = set()
    for orientation in range(1, 9):
        data = oriented(orientation, fmt)
        reference = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")
        expected = np.asarray(reference.resize((16, 16), Image.Resampling.BILINEAR))
        training = preprocess(Image.open(io.BytesIO(data)), 16)
        serving = generated.preprocess(data, 16)
        np.testing.assert_array_equal(training, expected, err_msg=f"{fmt} {orientation}")
        np.testing.assert_array_equal(serving, expected, err_msg=f"{fmt} {orientation}")
        seen.add(expected.tobytes())
    assert len(seen) == 8  # the test images tell all eight orientations apart


def test_to_rgb_leaves_the_callers_image_alone(generated: ModuleType) -> None:
    rng = np.random.default_rng(2)
    image = Image.fromarray(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8))
    before = image.tobytes()
    for function in (to_rgb, generated.to_rgb):
        rgb = function(image)
        assert rgb.tobytes() == before
    public = generated.to_rgb(image)
    assert public is not image  # the library's to_rgb always returns a new image
    public.paste((0, 0, 0), (0, 0, 12, 12))
    assert image.tobytes() == before


def photo(width: int, height: int, orientation: int = 1, progressive: bool = False) -> bytes:
    """A smooth picture with grain, as a JPEG (quality 90): like a camera photo, its
    decoding at reduced scale is close to, but not the same as, a full decode."""
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 / width, y * 255 / height, (x + y) * 127 / (width + height)], -1)
    grain = np.random.default_rng(3).normal(0, 6, (height, width, 3))
    image = Image.fromarray(np.clip(base + grain, 0, 255).astype(np.uint8))
    exif = image.getexif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90, exif=exif, progressive=progressive)
    return buffer.getvalue()


def full_decode(data: bytes, size: int) -> np.ndarray:
    return preprocess(Image.open(io.BytesIO(data)), size)  # a PIL image: never drafted


@pytest.mark.parametrize("orientation", [1, 6])
def test_a_large_jpeg_file_is_decoded_at_reduced_scale_alike(
    generated: ModuleType, tmp_path: Path, orientation: int
) -> None:
    data = photo(1100, 800, orientation)
    path = tmp_path / "photo.jpg"
    path.write_bytes(data)
    # 800 // 256 = 3: libjpeg's 1/2 scale keeps both sides over 256; 1/4 would not
    assert decode(data, 128).size == (550, 400)
    assert decode(data).size == (1100, 800)
    training = load_array(path, 128)
    for given in (path, str(path), data, io.BytesIO(data)):
        np.testing.assert_array_equal(generated.pixels(given, 128), training)
    full = full_decode(data, 128)
    np.testing.assert_array_equal(generated.pixels(Image.open(path), 128), full)
    difference = np.abs(training.astype(int) - full)
    assert 0 < difference.mean() < 0.5 and difference.max() <= 8


def test_a_jpeg_under_twice_the_input_size_is_decoded_whole(generated: ModuleType) -> None:
    for width, height, size in ((500, 375, 224), (2000, 400, 224), (250, 300, 128)):
        data = photo(width, height)
        assert decode(data, size).size == (width, height)
        full = full_decode(data, size)
        np.testing.assert_array_equal(preprocess(decode(data, size), size), full)
        np.testing.assert_array_equal(generated.pixels(data, size), full)


@pytest.mark.parametrize("progressive", [False, True])
def test_a_truncated_large_jpeg_is_still_refused(
    generated: ModuleType, tmp_path: Path, progressive: bool
) -> None:
    data = photo(1100, 800, progressive=progressive)
    whole, cut = tmp_path / "whole.jpg", tmp_path / "cut.jpg"
    whole.write_bytes(data)
    cut.write_bytes(data[: len(data) * 3 // 4])
    assert check_file(whole).problem is None
    assert (check_file(cut).problem or "").startswith("corrupt or truncated image")
    with pytest.raises(OSError):
        load_array(cut, 128)
    with pytest.raises(generated.InvalidImageError):
        generated.pixels(cut, 128)
