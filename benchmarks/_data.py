"""Generated image folders for the benchmarks (no downloads)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

SHAPES = ("circle", "square", "triangle", "cross", "ring")


def draw(shape: str, size: int, rng: np.random.Generator) -> Image.Image:
    """A coloured shape at a random place and scale on a noisy background."""
    image = Image.fromarray(rng.integers(0, 110, (size, size, 3), dtype=np.uint8))
    pen = ImageDraw.Draw(image)
    colour = tuple(int(c) for c in rng.integers(140, 256, 3))
    half = int(rng.integers(size // 6, size // 3))
    cx, cy = (int(v) for v in rng.integers(half, size - half, 2))
    box = (cx - half, cy - half, cx + half, cy + half)
    if shape == "circle":
        pen.ellipse(box, fill=colour)
    elif shape == "square":
        pen.rectangle(box, fill=colour)
    elif shape == "triangle":
        pen.polygon([(cx, cy - half), (cx - half, cy + half), (cx + half, cy + half)], fill=colour)
    elif shape == "cross":
        pen.rectangle((cx - half, cy - half // 4, cx + half, cy + half // 4), fill=colour)
        pen.rectangle((cx - half // 4, cy - half, cx + half // 4, cy + half), fill=colour)
    else:
        pen.ellipse(box, outline=colour, width=max(2, half // 3))
    return image


def make_folder(root: Path, images: int, size: int = 64, seed: int = 0) -> Path:
    """`images` PNGs spread evenly over SHAPES, one sub-folder per label."""
    rng = np.random.default_rng(seed)
    for i in range(images):
        label = SHAPES[i % len(SHAPES)]
        (root / label).mkdir(parents=True, exist_ok=True)
        draw(label, size, rng).save(root / label / f"{i:06d}.png")
    return root
