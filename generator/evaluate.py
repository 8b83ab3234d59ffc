"""Test-set metrics, computed from the exported model's probabilities."""

from __future__ import annotations

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

    def to_dict(self) -> dict[str, Any]:
        return {
            "accuracy": round(self.accuracy, 4),
            "macro_accuracy": round(self.macro_accuracy, 4),
            "log_loss": round(self.log_loss, 4),
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
    log_loss = float(-np.mean(np.log(np.clip(picked, 1e-15, 1.0))))
    return Evaluation(
        labels=tuple(labels),
        accuracy=float(np.mean(predicted == truth)),
        macro_accuracy=float(np.mean(recalls)),
        log_loss=log_loss,
        per_class=per_class,
        confusion=tuple(tuple(int(v) for v in row) for row in confusion),
        support=len(truth),
    )
