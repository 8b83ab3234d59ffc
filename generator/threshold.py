"""When the generated library should say "not sure": a score threshold chosen on images the
shipped recipe's models did not train on (out-of-fold predictions, or the validation split),
then measured on the test split. And the Wilson interval the model card gives each rate."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

TARGET_PRECISION = 0.99
"""The threshold is the lowest top score at which the answered images are at least this
accurate."""
MIN_ANSWERED = 10  # a precision on fewer images than this is not trusted


def choose_threshold(
    probabilities: np.ndarray, truth: np.ndarray, target: float = TARGET_PRECISION
) -> float | None:
    """The lowest score t such that the images whose top score is >= t are at least target
    accurate (over at least MIN_ANSWERED of them); 0.0 when every image may be answered;
    None when no threshold reaches the target."""
    if len(truth) < MIN_ANSWERED:
        return None
    top = probabilities.max(axis=1)
    right = probabilities.argmax(axis=1) == truth
    order = np.argsort(-top, kind="stable")
    ranked = top[order]
    cumulative = np.cumsum(right[order]) / np.arange(1, len(order) + 1)
    # Only where a run of equal scores ends: images with the same score are answered alike.
    ends = [i for i in range(len(order)) if i == len(order) - 1 or ranked[i + 1] < ranked[i]]
    reached = [i for i in ends if i >= MIN_ANSWERED - 1 and cumulative[i] >= target]
    if not reached:
        return None
    if reached[-1] == len(order) - 1:
        return 0.0
    return round(float(ranked[reached[-1]]), 6)


def abstention(probabilities: np.ndarray, truth: np.ndarray, threshold: float) -> dict[str, Any]:
    """What the threshold does on a split: how many images are left unanswered, and the
    accuracy on the answered ones (with its 95% interval)."""
    top = probabilities.max(axis=1)
    answered = top >= threshold
    right = probabilities.argmax(axis=1) == truth
    n = int(answered.sum())
    correct = int(right[answered].sum())
    low, high = wilson(correct, n)
    return {
        "threshold": threshold,
        "images": len(truth),
        "answered": n,
        "abstain_rate": round(1 - n / len(truth), 4) if len(truth) else 0.0,
        "answered_accuracy": round(correct / n, 4) if n else None,
        "answered_accuracy_95": [round(low, 4), round(high, 4)],
    }


def wilson(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """The Wilson score interval for a proportion (95% by default): sound at 0 and 1 and on
    the small test sets image projects have, where the normal approximation is not."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)
