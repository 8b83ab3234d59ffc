"""The held-out images a generated project tests itself on: small copies, pre-resized to the
model's input size (the library's preprocessing of them gives exactly the array of the
original, so the recorded predictions hold), plus a few originals for the decode path."""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np

from .data import ImageRecord, Split
from .data.checks import EXTENSIONS

MAX_TEST_IMAGES = 200  # copied into the generated project's tests
ORIGINALS = 5  # of those, also copied as they are
ACCURACY_TOLERANCE = 0.02


def copied_name(record: ImageRecord) -> str:
    """Named by content and format only: labels and source paths are data, never paths."""
    return f"images/{record.sha256[:16]}{EXTENSIONS.get(record.format, ('.img',))[0]}"


def resized_name(record: ImageRecord) -> str:
    return f"images/{record.sha256[:16]}.png"


def test_images(
    split: Split,
    labels: tuple[str, ...],
    probabilities: np.ndarray,
    input_size: int,
    probes: list[dict[str, Any]],
) -> dict[str, bytes]:
    """tests/data/: the chosen test images and expected.json (what the model said of each,
    with the margin to the runner-up, so a near tie is not a failure; and what it said of
    a blank and a noise image)."""
    from PIL import Image

    from .data.images import load_array

    files: dict[str, bytes] = {}
    images: list[dict[str, Any]] = []
    for n, i in enumerate(subset(split, labels)):
        record, row = split.test[i], probabilities[i]
        order = np.argsort(-row, kind="stable")
        facts = {
            "label": record.label,
            "predicted": labels[int(order[0])],
            "score": round(float(row[order[0]]), 6),
            "margin": round(float(row[order[0]] - row[order[1]]), 6) if len(row) > 1 else 1.0,
        }
        buffer = io.BytesIO()
        Image.fromarray(load_array(record.path, input_size)).save(buffer, format="PNG")
        files[f"tests/data/{resized_name(record)}"] = buffer.getvalue()
        images.append({"path": resized_name(record), "original": False} | facts)
        if n < ORIGINALS:
            files[f"tests/data/originals/{copied_name(record)}"] = record.path.read_bytes()
            images.append({"path": f"originals/{copied_name(record)}", "original": True} | facts)
    resized = [item for item in images if not item["original"]]
    accuracy = float(np.mean([item["label"] == item["predicted"] for item in resized]))
    files["tests/data/expected.json"] = (
        json.dumps(
            {
                "labels": list(labels),
                "accuracy": round(accuracy, 6),
                "tolerance": ACCURACY_TOLERANCE,
                "images": images,
                "probes": probes,
            },
            indent=2,
        )
        + "\n"
    ).encode("utf-8")
    return files


def subset(split: Split, labels: tuple[str, ...]) -> list[int]:
    """Indices of the test images copied into the project: all, or a per-class round robin."""
    by_label = {
        label: [i for i, r in enumerate(split.test) if r.label == label] for label in labels
    }
    chosen: list[int] = []
    while len(chosen) < min(MAX_TEST_IMAGES, len(split.test)):
        for label in labels:
            if by_label[label] and len(chosen) < MAX_TEST_IMAGES:
                chosen.append(by_label[label].pop(0))
    return sorted(chosen)
