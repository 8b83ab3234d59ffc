"""Test-set metrics, computed from the exported model's probabilities."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Evaluation:
    labels: tuple[str, ...]
    accuracy: float
    macro_accuracy: float
    log_loss: float
    per_class: dict[str, dict[str, float]]
    confusion: tuple[tuple[int, ...], ...]  # rows: true label, columns: predicted
    support: int
    top_k: dict[str, float]  # "top_2": share of images whose label is in the 2 best guesses

    def to_dict(self) -> dict[str, Any]:
        return {
            "accuracy": round(self.accuracy, 4),
            "macro_accuracy": round(self.macro_accuracy, 4),
            "log_loss": round(self.log_loss, 4),
            "top_k_accuracy": self.top_k,
            "support": self.support,
            "labels": list(self.labels),
            "per_class": self.per_class,
            "confusion_matrix": [list(row) for row in self.confusion],
        }


def evaluate(probabilities: np.ndarray, truth: np.ndarray, labels: Sequence[str]) -> Evaluation:
    """Accuracy (micro), macro accuracy (mean recall), log-loss, per-class P/R/F1, confusion."""
    n = len(labels)
    predicted = probabilities.argmax(axis=1)
    confusion = np.zeros((n, n), dtype=np.int64)
    np.add.at(confusion, (truth, predicted), 1)
    per_class: dict[str, dict[str, float]] = {}
    recalls = []
    for i, label in enumerate(labels):
        tp = confusion[i, i]
        support = confusion[i].sum()
        predicted_as = confusion[:, i].sum()
        precision = tp / predicted_as if predicted_as else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        if support:
            recalls.append(recall)
        per_class[label] = {
            "precision": round(float(precision), 4),
            "recall": round(float(recall), 4),
            "f1": round(float(f1), 4),
            "support": int(support),
        }
    picked = probabilities[np.arange(len(truth)), truth].astype(np.float64)
    # 0.0 minus, not unary minus: certain, right predictions give 0.0, never -0.0 ("-0.0000")
    log_loss = 0.0 - float(np.mean(np.log(np.clip(picked, 1e-15, 1.0))))
    order = np.argsort(-probabilities, axis=1, kind="stable")
    top_k = {
        f"top_{k}": round(float(np.mean((order[:, :k] == truth[:, None]).any(axis=1))), 4)
        for k in (2, 3, 5)
        if k < n
    }
    return Evaluation(
        labels=tuple(labels),
        accuracy=float(np.mean(predicted == truth)),
        macro_accuracy=float(np.mean(recalls)),
        log_loss=log_loss,
        per_class=per_class,
        confusion=tuple(tuple(int(v) for v in row) for row in confusion),
        support=len(truth),
        top_k=top_k,
    )


def top_losses(probabilities: np.ndarray, truth: np.ndarray, limit: int = 12) -> list[int]:
    """Indices of the wrong predictions made with the most confidence, worst first."""
    predicted = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predicted != truth)
    confidence = probabilities[wrong, predicted[wrong]]
    return [int(i) for i in wrong[np.argsort(-confidence, kind="stable")][:limit]]


def confusion_png(evaluation: Evaluation) -> bytes:
    """The confusion matrix as a PNG (row-normalised colours, counts written in the cells).
    Same numbers, same bytes: no timestamp or version in the file."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    counts = np.array(evaluation.confusion, dtype=np.float64)
    rows = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)
    n = len(evaluation.labels)
    side = min(12.0, 2.5 + 0.55 * n)
    figure, axes = plt.subplots(figsize=(side, side * 0.85), dpi=100)
    try:
        axes.imshow(share, cmap="Blues", vmin=0, vmax=1)
        axes.set_xticks(range(n), evaluation.labels, rotation=45, ha="right")
        axes.set_yticks(range(n), evaluation.labels)
        axes.set_xlabel("predicted")
        axes.set_ylabel("true label")
        axes.set_title(f"Confusion matrix ({evaluation.support} test images)")
        if n <= 30:
            for (i, j), value in np.ndenumerate(counts):
                colour = "white" if share[i, j] > 0.5 else "black"
                axes.text(j, i, str(int(value)), ha="center", va="center", color=colour, fontsize=8)
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", metadata={"Software": None})
        return buffer.getvalue()
    finally:
        plt.close(figure)
