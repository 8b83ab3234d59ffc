"""What the generated README (a model card) and metadata.json say about the model beyond
its test metrics: the "not sure" threshold and what it does, what the model makes of
inputs unlike its training images, and intervals for every rate."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .evaluate import Evaluation
from .export import PREPROCESSING
from .threshold import TARGET_PRECISION, abstention, choose_threshold, wilson

RULE = (
    f"the lowest top score at which at least {TARGET_PRECISION:.0%} of the images scored by "
    "models that did not train on them (out-of-fold, or the validation split) were right"
)


@dataclass(frozen=True)
class Card:
    threshold: float | None  # metadata.json's min_score
    held_out: dict[str, Any] | None  # the threshold on the images it was chosen on
    test: dict[str, Any] | None  # ... and on the test split
    probes: list[dict[str, Any]]  # what a blank and a noise image get
    intervals: dict[str, list[float]]  # 95% Wilson intervals of the test rates

    def to_dict(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold,
            "rule": RULE,
            "held_out": self.held_out,
            "test": self.test,
            "probes": self.probes,
            "intervals": self.intervals,
        }


def model_card(
    model: bytes,
    input_size: int,
    labels: tuple[str, ...],
    held_out: tuple[np.ndarray, np.ndarray] | None,
    test: tuple[np.ndarray, np.ndarray],
    evaluation: Evaluation,
) -> Card:
    """The threshold chosen on held_out (out-of-fold or validation probabilities, truth) and
    measured on test, the probes' answers, and Wilson intervals for accuracy and recalls."""
    threshold = choose_threshold(*held_out) if held_out is not None else None
    chosen_on = abstention(*held_out, threshold) if held_out and threshold is not None else None
    on_test = abstention(*test, threshold) if threshold is not None else None
    n = evaluation.support
    correct = int(round(evaluation.accuracy * n))
    intervals = {"accuracy": [round(x, 4) for x in wilson(correct, n)]}
    for label, row in evaluation.per_class.items():
        support = int(row["support"])
        hits = int(round(float(row["recall"]) * support))
        intervals[f"recall {label}"] = [round(x, 4) for x in wilson(hits, support)]
    return Card(
        threshold, chosen_on, on_test, probes(model, input_size, labels, threshold), intervals
    )


def probes(
    model: bytes, input_size: int, labels: tuple[str, ...], threshold: float | None
) -> list[dict[str, Any]]:
    """The model's answer for a white image and for uniform noise (seed 0), inputs it was
    never trained for: it still names a class, and the threshold is what can catch it."""
    import onnxruntime as ort

    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    blank = np.full((input_size, input_size, 3), 255, dtype=np.float32)
    noise = np.random.default_rng(0).integers(0, 256, (input_size, input_size, 3))
    found = []
    for name, image in (("blank white image", blank), ("uniform noise", noise)):
        batch = image[None].astype(np.float32)
        row = np.asarray(session.run(None, {session.get_inputs()[0].name: batch})[0][0])
        best = int(np.argmax(row))
        score = round(float(row[best]), 4)
        found.append(
            {
                "input": name,
                "label": labels[best],
                "score": score,
                "answered": threshold is None or score >= threshold,
            }
        )
    return found


def metadata(
    labels: tuple[str, ...],
    input_size: int,
    model_sha256: str,
    version: int,
    card: Card,
    evaluation: Evaluation,
) -> dict[str, Any]:
    """src/<package>/metadata.json: what the library needs and checks at load."""
    return {
        "labels": list(labels),
        "input_size": input_size,
        "model_sha256": model_sha256,
        "model_version": version,
        "min_score": card.threshold,
        "min_score_rule": RULE,
        "preprocessing": PREPROCESSING,
        "metrics": {
            "test_accuracy": round(evaluation.accuracy, 4),
            "test_accuracy_95": card.intervals["accuracy"],
            "test_macro_accuracy": round(evaluation.macro_accuracy, 4),
            "test_images": evaluation.support,
        },
    }
