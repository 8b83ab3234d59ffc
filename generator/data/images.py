"""Image decoding and preprocessing; the generated library repeats these steps exactly."""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image

RESAMPLE = Image.Resampling.BILINEAR
DRAFT_MARGIN = 2  # a JPEG decoded at reduced scale keeps at least twice the input's side
SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N", "I")
ORIENTATIONS = {  # EXIF orientation -> the transpose that makes the image upright
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def upright(image: Image.Image) -> Image.Image:
    """The image turned as its EXIF orientation says: the pixels of Pillow's
    ImageOps.exif_transpose, without the full-size copy it makes when there is nothing to
    turn. With to_rgb's convert skipped for RGB images too, preprocessing a 1024 x 1024 JPEG
    to 128 px took 5.2 ms of CPU instead of 9.4 ms (a 160 px one, 0.33 instead of 0.34)."""
    image.load()
    turn = ORIENTATIONS.get(image.getexif().get(ExifTags.Base.Orientation, 1))
    return image if turn is None else image.transpose(turn)


def to_rgb(image: Image.Image) -> Image.Image:
    """Apply EXIF orientation, scale 16-bit grey to 8 bits, flatten transparency onto
    white, return an RGB image: `image` itself when it is already upright RGB (callers here
    own the image; the generated library's public to_rgb copies)."""
    image = upright(image)
    if image.mode in SIXTEEN_BIT:  # 16/32-bit grey: keep the top 8 bits, not clipped values
        image = image.convert("I").point(lambda value: value * (1 / 256)).convert("L")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return image if image.mode == "RGB" else image.convert("RGB")


def preprocess(image: Image.Image, size: int) -> np.ndarray:
    """RGB, resized with Pillow to size x size: uint8 array (size, size, 3)."""
    rgb = to_rgb(image)
    if rgb.size != (size, size):
        rgb = rgb.resize((size, size), RESAMPLE)
    return np.asarray(rgb, dtype=np.uint8)


def reduce_jpeg(image: Image.Image, size: int) -> None:
    """Before an opened JPEG is loaded: let libjpeg decode it at 1/2, 1/4 or 1/8 scale when
    every side stays at least DRAFT_MARGIN times `size` (what Pillow's own `thumbnail` does).
    The bilinear resize to `size` then sees almost the same pixels (bench_speed, 4032 x 3024
    photos at 224 px: 0.16 grey levels from a full decode's on average, at most 2), and
    decoding plus resizing took 22 ms of CPU instead of 57. Smaller images and other formats
    are left alone, so their pixels do not change at all."""
    if image.format in ("JPEG", "MPO"):
        side = DRAFT_MARGIN * size
        image.draft(None, (side, side))


def decode(data: bytes, size: int | None = None) -> Image.Image:
    """Fully decode image bytes (a truncated file fails here, not mid-training); a large
    JPEG at reduced scale when it is to be resized to `size` (reduce_jpeg)."""
    image = Image.open(io.BytesIO(data))
    if size is not None:
        reduce_jpeg(image, size)
    image.load()
    return image


def load_array(path: Path, size: int) -> np.ndarray:
    return preprocess(decode(path.read_bytes(), size), size)


def iter_batches(
    paths: Sequence[Path], size: int, batch_size: int, workers: int = 1
) -> Iterator[np.ndarray]:
    """Preprocessed images in batches, so memory holds one batch at a time; each batch's
    images decoded on `workers` threads (Pillow releases the GIL), or on the calling thread
    when `workers` is 1. With onnxruntime's idle threads not spinning
    (train.embed.onnx_embedder), decoding on both cores of 2 embedded 1,024 JPEGs 1.07 times
    as fast at 128 px (1.04-1.16 over 8 interleaved rounds) and 1.01 times at 224 px
    (0.99-1.05) as one decoding thread beside spinning ones: decoding costs more, relative
    to inference, on smaller inputs."""
    chunks = (paths[start : start + batch_size] for start in range(0, len(paths), batch_size))
    if workers <= 1:  # on the calling thread
        for chunk in chunks:
            yield np.stack([load_array(path, size) for path in chunk])
        return
    with ThreadPoolExecutor(workers) as pool:
        for chunk in chunks:
            yield np.stack(list(pool.map(lambda path: load_array(path, size), chunk)))


def load_arrays(paths: Sequence[Path], size: int) -> np.ndarray:
    if not paths:
        return np.zeros((0, size, size, 3), dtype=np.uint8)
    return np.concatenate(list(iter_batches(paths, size, 256)))
