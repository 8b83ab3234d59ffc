"""Rebuild ``samples/fashion`` from Debian's ``dataset-fashion-mnist`` package.

Takes the first 80 images of five visually distinct classes from the *train* split
and writes them as PNG, one folder per label. Run from the repository root:

    apt-get install dataset-fashion-mnist
    python samples/make_fashion_sample.py
"""

from __future__ import annotations

import gzip
import shutil
import struct
from pathlib import Path

import numpy as np
from PIL import Image

SOURCE = Path("/usr/share/datasets/fashion-mnist")
COPYRIGHT = Path("/usr/share/doc/dataset-fashion-mnist/copyright")
TARGET = Path(__file__).resolve().parent / "fashion"
CLASSES = {1: "trouser", 2: "pullover", 3: "dress", 7: "sneaker", 8: "bag"}
PER_CLASS = 80


def read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as fh:
        data = fh.read()
    _, _, dtype_code, ndim = struct.unpack(">BBBB", data[:4])
    if dtype_code != 0x08:
        raise ValueError(f"{path}: expected unsigned bytes, found type code {dtype_code:#x}")
    dims = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def main() -> None:
    images = read_idx(SOURCE / "train-images-idx3-ubyte.gz")
    labels = read_idx(SOURCE / "train-labels-idx1-ubyte.gz")
    out = TARGET / "images"
    if out.exists():
        shutil.rmtree(out)
    for code, name in CLASSES.items():
        folder = out / name
        folder.mkdir(parents=True)
        indices = np.flatnonzero(labels == code)[:PER_CLASS]
        for index in indices:
            Image.fromarray(images[index], mode="L").save(
                folder / f"{name}_{index:05d}.png", optimize=True
            )
    shutil.copyfile(COPYRIGHT, TARGET / "LICENSE")


if __name__ == "__main__":
    main()
