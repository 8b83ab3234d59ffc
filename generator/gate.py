"""The regression gate of `modelgen retrain`: the project's own model.onnx (the incumbent)
and the newly trained model (the candidate) scored in the same run on the same test images.
Numbers stored by an earlier run are history, never the baseline.

Rule (defaults): the candidate is refused when
- it gets more of the shared test images wrong than the incumbent, beyond noise: an exact
  one-sided McNemar test on the images one model gets right and the other wrong, p < ALPHA;
- or any class loses more than MAX_RECALL_DROP of recall, and that loss is beyond noise by
  the same test on the class's images or is at least MIN_CLASS_LOSS images (a class with 4
  test images can never reach p < 0.05, yet losing all 4 is no noise).
Images of classes the incumbent does not know are reported apart: neither model can be
compared on them. With no incumbent, or none that can be run, there is no baseline and the
gate says so instead of passing silently.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from .render import markdown_cell

ALPHA = 0.05
MAX_RECALL_DROP = 0.10
MIN_CLASS_LOSS = 3  # net images newly wrong in one class that refuse whatever the p-value

PASSED, REFUSED, NO_BASELINE, ACCEPTED = "passed", "refused", "no baseline", "accepted"


@dataclass(frozen=True)
class Incumbent:
    model: Path
    labels: tuple[str, ...]
    input_size: int


@dataclass(frozen=True)
class Side:
    """One model on the shared images."""

    accuracy: float
    macro_f1: float
    recall: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {
            "accuracy": round(self.accuracy, 4),
            "macro_f1": round(self.macro_f1, 4),
            "recall": {k: round(v, 4) for k, v in self.recall.items()},
        }


@dataclass(frozen=True)
class Verdict:
    status: str  # PASSED, REFUSED, NO_BASELINE or ACCEPTED
    reasons: tuple[str, ...]  # why refused (or why there is no baseline)
    shared: int = 0  # test images both models can be judged on
    incumbent: Side | None = None
    candidate: Side | None = None
    worse: int = 0  # shared images the incumbent gets right and the candidate wrong
    better: int = 0  # the reverse
    p_worse: float = 1.0  # one-sided exact McNemar: P(at least `worse` of the discordant)
    per_class: dict[str, dict[str, Any]] = field(default_factory=dict)
    new_classes: dict[str, dict[str, Any]] = field(default_factory=dict)  # candidate only
    accepted_because: str = ""

    @property
    def blocks(self) -> bool:
        return self.status == REFUSED

    def accept(self, reason: str) -> Verdict:
        return replace(self, status=ACCEPTED, accepted_because=reason)

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "reasons": list(self.reasons),
            "accepted_because": self.accepted_because,
            "shared_test_images": self.shared,
            "incumbent": self.incumbent.to_dict() if self.incumbent else None,
            "candidate": self.candidate.to_dict() if self.candidate else None,
            "paired": {"worse": self.worse, "better": self.better, "p_worse": self.p_worse},
            "per_class": self.per_class,
            "new_classes": self.new_classes,
            "rule": {
                "alpha": ALPHA,
                "max_recall_drop": MAX_RECALL_DROP,
                "min_class_loss": MIN_CLASS_LOSS,
            },
        }


def p_at_least(worse: int, better: int) -> float:
    """Exact one-sided McNemar: the chance of `worse` or more of the worse+better discordant
    images going against the candidate if both models were equally good (binomial, p=1/2)."""
    n = worse + better
    if n == 0:
        return 1.0
    return min(1.0, sum(math.comb(n, k) for k in range(worse, n + 1)) / 2**n)


def _side(right: np.ndarray, truth: Sequence[str], predicted: Sequence[str]) -> Side:
    labels = sorted(set(truth))
    recall, f1s = {}, []
    for label in labels:
        mine = np.array([t == label for t in truth])
        called = np.array([p == label for p in predicted])
        tp = float(np.sum(mine & called))
        r = tp / mine.sum()
        p = tp / called.sum() if called.sum() else 0.0
        recall[label] = r
        f1s.append(2 * p * r / (p + r) if p + r else 0.0)
    return Side(float(np.mean(right)) if len(right) else 0.0, float(np.mean(f1s)), recall)


def compare(
    truth: Sequence[str],
    candidate: Sequence[str],
    incumbent: Sequence[str] | None,
    known: Sequence[str],
    *,
    why_none: str = "",
) -> Verdict:
    """The verdict from both models' predicted labels on the same test images.

    truth: each test image's label now; known: the labels the incumbent was trained on."""
    truth_arr, cand_arr = np.array(truth, dtype=object), np.array(candidate, dtype=object)
    unknown = np.array([t not in set(known) for t in truth])
    new_classes = {
        label: {
            "images": int(np.sum(truth_arr == label)),
            "candidate_recall": round(float(np.mean(cand_arr[truth_arr == label] == label)), 4),
        }
        for label in sorted(set(truth_arr[unknown]))
    }
    if incumbent is None:
        return Verdict(NO_BASELINE, (why_none,), new_classes=new_classes)
    shared = ~unknown
    if not shared.any():
        reason = "no test image is of a class the current model knows"
        return Verdict(NO_BASELINE, (reason,), new_classes=new_classes)
    inc_arr = np.array(incumbent, dtype=object)
    t, c, i = truth_arr[shared], cand_arr[shared], inc_arr[shared]
    cand_right, inc_right = c == t, i == t
    worse = int(np.sum(inc_right & ~cand_right))
    better = int(np.sum(~inc_right & cand_right))
    p_worse = p_at_least(worse, better)
    reasons = []
    if worse > better and p_worse < ALPHA:
        reasons.append(
            f"{worse} shared test images newly wrong and {better} newly right "
            f"(one-sided McNemar p = {p_worse:.3g} < {ALPHA})"
        )
    per_class = {}
    for label in sorted(set(t)):
        rows = t == label
        lost = int(np.sum(inc_right[rows] & ~cand_right[rows]))
        won = int(np.sum(~inc_right[rows] & cand_right[rows]))
        drop = (lost - won) / int(rows.sum())
        p_class = p_at_least(lost, won)
        per_class[label] = {
            "images": int(rows.sum()),
            "incumbent_recall": round(float(np.mean(inc_right[rows])), 4),
            "candidate_recall": round(float(np.mean(cand_right[rows])), 4),
            "p_worse": round(p_class, 4),
        }
        if drop > MAX_RECALL_DROP and (p_class < ALPHA or lost - won >= MIN_CLASS_LOSS):
            reasons.append(
                f"class {label!r} recall fell by {drop:.0%} ({lost} images newly wrong, {won} "
                f"newly right; p = {p_class:.3g})"
            )
    return Verdict(
        REFUSED if reasons else PASSED,
        tuple(reasons),
        shared=int(shared.sum()),
        incumbent=_side(inc_right, list(t), list(i)),
        candidate=_side(cand_right, list(t), list(c)),
        worse=worse,
        better=better,
        p_worse=round(p_worse, 6),
        per_class=per_class,
        new_classes=new_classes,
    )


def read_incumbent(project: Path, package: str) -> tuple[Incumbent | None, str]:
    """The project's own model and what it needs (labels, input size), or why there is
    none to compare with."""
    model = project / "src" / package / "model.onnx"
    metadata = project / "src" / package / "metadata.json"
    if not model.is_file():
        return None, f"the project has no {model.relative_to(project).as_posix()}"
    try:
        meta = json.loads(metadata.read_text(encoding="utf-8"))
        labels, size = tuple(str(x) for x in meta["labels"]), int(meta["input_size"])
    except (OSError, ValueError, KeyError, TypeError):
        return None, f"{metadata.relative_to(project).as_posix()} is missing or unreadable"
    return Incumbent(model, labels, size), ""


def predict_incumbent(incumbent: Incumbent, paths: Sequence[Path]) -> list[str] | None:
    """The incumbent's label for each image, preprocessed as the generated library does;
    None when its model cannot be run (then there is no baseline)."""
    from .data.images import iter_batches
    from .export import onnx_predict, onnx_session

    try:
        session = onnx_session(incumbent.model)
        probabilities = [
            onnx_predict(session, batch)
            for batch in iter_batches(list(paths), incumbent.input_size, 64)
        ]
    except Exception:  # onnxruntime raises its own types for a corrupt or foreign model
        return None
    if not probabilities:
        return []
    best = np.concatenate(probabilities).argmax(axis=1)
    if best.max(initial=0) >= len(incumbent.labels):
        return None
    return [incumbent.labels[int(k)] for k in best]


def markdown(verdict: Verdict) -> str:
    """The comparison as a Markdown table, for a pull request."""
    lines = [f"**Regression gate: {verdict.status}**", ""]
    if verdict.incumbent and verdict.candidate:
        inc, cand = verdict.incumbent, verdict.candidate
        lines += [
            f"Scored in the same run on the same {verdict.shared} test images.",
            "",
            "| metric | current model | new model | change |",
            "|---|---|---|---|",
            _row("accuracy", inc.accuracy, cand.accuracy),
            _row("macro-F1", inc.macro_f1, cand.macro_f1),
        ]
        for label, row in verdict.per_class.items():
            name = f"recall: {markdown_cell(label)} ({row['images']})"
            lines.append(_row(name, row["incumbent_recall"], row["candidate_recall"]))
        lines += [
            "",
            f"Paired: {verdict.worse} images newly wrong, {verdict.better} newly right "
            f"(one-sided exact McNemar p = {verdict.p_worse:.3g}; refused below {ALPHA}, or "
            f"when a class loses more than {MAX_RECALL_DROP:.0%} of recall beyond noise or "
            f"{MIN_CLASS_LOSS}+ images).",
        ]
    for label, row in verdict.new_classes.items():
        lines.append(
            f"- new class {markdown_cell(label)}: {row['images']} test images, recall "
            f"{row['candidate_recall']:.3f} (not comparable: the current model does not know it)"
        )
    lines += [f"- {reason}" for reason in verdict.reasons if reason]
    if verdict.accepted_because:
        lines.append(f"- accepted anyway: {verdict.accepted_because}")
    return "\n".join(lines) + "\n"


def _row(name: str, before: float, after: float) -> str:
    return f"| {name} | {before:.4f} | {after:.4f} | {after - before:+.4f} |"
