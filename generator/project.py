"""The generated project's files: the template context, the model, the reports, the test
images and modelgen.toml, built from what a run measured. No training, no TensorFlow."""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import tomli_w

from . import __version__
from . import card as model_cards
from .context import (
    BASE,
    CONTEXT,
    BudgetSummary,
    DataSummary,
    ParitySummary,
    TemplateContext,
)
from .data import Dataset, ImageRecord, Split
from .evaluate import Evaluation, confusion_png, top_losses
from .export import Parity
from .heldout import test_images
from .render import MANIFEST, render_tree, sha256
from .spec import SAMPLE, ProjectSpec
from .train import TrainResult
from .train.families import candidate_name, describe_skip, grouped_skips
from .train.plan import CROSS_VALIDATION, DIRECT, Plan

TOP_LOSSES = 12  # most confidently wrong test images shown in the README
THUMBNAIL = 96
VERSIONED = ("tensorflow", "keras", "tf2onnx", "onnx", "onnxruntime", "numpy", "pillow")


@dataclass(frozen=True)
class Outcome:
    """What one run measured, as the project's files report it."""

    dataset: Dataset
    split: Split
    training: TrainResult
    parity: Parity
    evaluation: Evaluation
    model: bytes  # model.onnx
    probabilities: np.ndarray  # the ONNX model's, on the test split
    truth: np.ndarray  # the test split's label indices


@dataclass(frozen=True)
class Release:
    """How this model version came about, for the [[history]] of modelgen.toml."""

    how: str  # "new", "new --force", "retrain"
    gate: dict[str, Any]  # gate.Verdict.to_dict() (or a status with its reasons)


FIRST = Release("new", {"status": "no baseline", "reasons": ["the project's first model"]})


def base_blobs(files: dict[str, bytes]) -> dict[str, bytes]:
    """The pristine text files to keep for the next three-way merge: {path: content}."""
    from .merge import is_text

    return {
        f"{BASE}/{sha256(content)}": content
        for rel, content in files.items()
        if rel != MANIFEST and is_text(content)
    }


def selection_text(plan: Plan, train: int, validation: int) -> str:
    """How the README says the recipes were compared."""
    if plan.protocol == CROSS_VALIDATION:
        text = (
            f"scored by {plan.folds}-fold cross-validation over the {train} + {validation} train "
            "and validation images (accuracy and log-loss of each image's out-of-fold prediction)"
        )
        done = plan.shipped_folds()
        if done < plan.folds:
            text += (
                f"; the budget ended while the shipped recipe was scored on {done} of the "
                f"{plan.folds} folds, which already put it ahead of the rest, and its scores "
                "are on those folds' images"
            )
        return text
    if plan.protocol == DIRECT:
        return (
            f"not compared: the budget held one convnet, trained on all {train} + {validation} "
            "train and validation images for as many epochs as fit in it"
        )
    return f"trained on the {train} train images and scored on the {validation} validation images"


def project_files(
    spec: ProjectSpec, outcome: Outcome, release: Release = FIRST
) -> dict[str, bytes]:
    """Every file of the generated project: rendered templates plus data files, and
    modelgen's state (modelgen.toml, the saved context and the pristine texts)."""
    dataset, split, training = outcome.dataset, outcome.split, outcome.training
    earlier = [*(spec.history.versions if spec.history else ()), version_entry(outcome, release)]
    history = [{"version": n} | entry for n, entry in enumerate(earlier, start=1)]
    labels, package = dataset.labels, spec.package
    leaderboard = [c.leaderboard_row() for c in training.leaderboard]
    losses, thumbnails = top_loss_files(split, labels, outcome.probabilities, outcome.truth)
    size = training.winner.input_size
    card = model_cards.model_card(
        outcome.model,
        size,
        labels,
        training.winner.held_out,
        (outcome.probabilities, outcome.truth),
        outcome.evaluation,
    )
    context = TemplateContext(
        project_name=spec.answers.name,
        package=package,
        distribution=package.replace("_", "-"),
        labels=list(labels),
        input_size=training.winner.input_size,
        metrics=outcome.evaluation.to_dict(),
        winner=training.winner.leaderboard_row(),
        leaderboard=leaderboard,
        finals=[c.leaderboard_row() for c in training.finals],
        trials=len(leaderboard),
        selection=selection_text(training.plan, len(split.train), len(split.validation)),
        top_losses=losses,
        budget=BudgetSummary(
            spec.answers.time_budget, round(training.seconds), training.deadline_cut
        ),
        skipped=[(", ".join(names), reason) for names, reason in grouped_skips(training.skipped)],
        parity=ParitySummary(outcome.parity.max_abs_diff, outcome.parity.top1_agreement),
        data=DataSummary(
            len(dataset.records),
            len(split.train),
            len(split.validation),
            len(split.test),
            len(dataset.skipped),
            dataset.kind,
            dict(dataset.counts),
        ),
        seed=spec.answers.seed,
        history=history,
        card=card.to_dict(),
    )
    files = render_tree("image_classification", context.as_mapping())
    rendered = set(files)
    files[f"src/{package}/model.onnx"] = outcome.model
    files["reports/confusion_matrix.png"] = confusion_png(outcome.evaluation)
    files |= thumbnails
    files[f"src/{package}/metadata.json"] = _json(
        model_cards.metadata(
            labels, size, sha256(outcome.model), len(history), card, outcome.evaluation
        )
    )
    files |= test_images(split, labels, outcome.probabilities, size, card.probes)
    report = {
        "test": context.metrics,
        "parity": {
            "max_abs_diff": context.parity.max_abs_diff,
            "top1_agreement": context.parity.top1_agreement,
            "images": outcome.parity.images,
        },
        "leaderboard": leaderboard,
        "top_losses": losses,
        "training_seconds": round(training.seconds, 1),
        "time_budget": spec.answers.time_budget,
        "budget_cut_training_short": training.deadline_cut,
        "compute": training.compute.describe(),
        "model_card": card.to_dict(),
    }
    files["reports/metrics.json"] = _json(report)
    generated = {rel: sha256(content) for rel, content in sorted(files.items())}
    files |= base_blobs(files)
    files[CONTEXT] = context.to_json()
    artifacts = sorted(set(generated) - rendered)
    files[MANIFEST] = _modelgen_toml(spec, outcome, report, generated, artifacts, history)
    return files


def version_entry(outcome: Outcome, release: Release) -> dict[str, Any]:
    """One [[history]] row: what this model version was trained on, how it scored, and what
    the gate said. No timestamps: the same inputs give the same file."""
    dataset, split, training = outcome.dataset, outcome.split, outcome.training
    gate = release.gate
    summary: dict[str, Any] = {
        "status": gate["status"],
        "reasons": [r for r in gate.get("reasons", []) if r],
    }
    if gate.get("accepted_because"):
        summary["accepted_because"] = gate["accepted_because"]
    if gate.get("incumbent") and gate.get("candidate"):
        summary |= {
            "shared_test_images": gate["shared_test_images"],
            "previous_accuracy": gate["incumbent"]["accuracy"],
            "new_accuracy": gate["candidate"]["accuracy"],
            "p_worse": gate["paired"]["p_worse"],
        }
    return {
        "how": release.how,
        "modelgen": __version__,
        "data_fingerprint": dataset.fingerprint,
        "images": len(dataset.records),
        "classes": list(dataset.labels),
        "counts": dict(dataset.counts),
        "split": split.sizes(),
        "winner": training.winner.name,
        "test_accuracy": round(outcome.evaluation.accuracy, 4),
        "test_macro_accuracy": round(outcome.evaluation.macro_accuracy, 4),
        "test_images": outcome.evaluation.support,
        "gate": summary,
    }


def _thumbnail(record: ImageRecord) -> bytes:
    from PIL import Image

    from .data.images import decode, to_rgb

    image = to_rgb(decode(record.path.read_bytes(), THUMBNAIL))
    image.thumbnail((THUMBNAIL, THUMBNAIL), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _loss_name(rank: int, record: ImageRecord) -> str:
    return f"reports/top-losses/{rank:02d}-{record.sha256[:12]}.png"


def top_loss_files(
    split: Split, labels: tuple[str, ...], probabilities: np.ndarray, truth: np.ndarray
) -> tuple[list[dict[str, Any]], dict[str, bytes]]:
    """The most confidently wrong test images (where the model is surest and wrong): their
    rows for the README and report, and their thumbnails."""
    rows = []
    thumbnails = {}
    for rank, i in enumerate(top_losses(probabilities, truth, TOP_LOSSES), start=1):
        record = split.test[i]
        predicted = int(np.argmax(probabilities[i]))
        thumbnails[_loss_name(rank, record)] = _thumbnail(record)
        rows.append(
            {
                "image": _loss_name(rank, record),
                "source": record.relpath,
                "label": record.label,
                "predicted": labels[predicted],
                "confidence": round(float(probabilities[i][predicted]), 4),
                "label_probability": round(float(probabilities[i][truth[i]]), 4),
            }
        )
    return rows, thumbnails


def _json(value: Any) -> bytes:
    return (json.dumps(value, indent=2, sort_keys=False) + "\n").encode("utf-8")


def _versions() -> dict[str, str]:
    found = {"modelgen": __version__}
    for name in VERSIONED:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def _modelgen_toml(
    spec: ProjectSpec,
    outcome: Outcome,
    report: dict[str, Any],
    generated: dict[str, str],
    artifacts: list[str],
    history: list[dict[str, Any]],
) -> bytes:
    """Answers (paths relative to the project, so the file replays from anywhere), data
    fingerprint with every image's split (and the splits of images no longer there, so an
    image keeps its split if it comes back), the plan, versions, results, and the hash of
    every generated file (what --force may replace)."""
    dataset, split, training = outcome.dataset, outcome.split, outcome.training
    answers = spec.answers.to_dict()
    answers["output"] = "."
    if spec.answers.data != SAMPLE:
        answers["data"] = Path(os.path.relpath(spec.data_path, spec.output_path)).as_posix()
    split_of = split.split_of()
    current = {r.sha256 for r in dataset.records}
    former = [
        {"sha256": sha, "split": name}
        for sha, name in sorted((spec.history.splits if spec.history else {}).items())
        if sha not in current
    ]
    document = {
        "answers": answers,
        "data": {
            "fingerprint": dataset.fingerprint,
            "counts": dataset.counts,
            "split": split.sizes(),
            "source": dataset.kind,
            "skipped": [{"path": s.relpath, "reason": s.reason} for s in dataset.skipped],
            "notes": [str(note) for note in dataset.notes],
            "warnings": list(dataset.warnings),
            "near_duplicate_groups": dataset.near_duplicate_groups,
            "files": [
                {
                    "path": r.relpath,
                    "label": r.label,
                    "sha256": r.sha256,
                    "split": split_of[r.relpath],
                }
                for r in sorted(dataset.records, key=lambda r: r.relpath)
            ],
            "former": former,
        },
        "model": {
            "winner": training.winner.name,
            "input_size": training.winner.input_size,
            "leaderboard": report["leaderboard"],
            "skipped": [
                {
                    "candidate": candidate_name(s.family, s.kind),
                    "cause": s.cause.value,
                    "reason": describe_skip(s),
                }
                for s in training.skipped
            ],
            "plan": training.plan.to_dict() | {"cut_short": training.deadline_cut},
        },
        "metrics": {
            "test": {
                k: report["test"][k]
                for k in ("accuracy", "macro_accuracy", "log_loss", "top_k_accuracy", "support")
            },
            "parity": report["parity"],
        },
        "versions": _versions(),
        "generated": {"files": generated, "artifacts": artifacts},
        "history": history,
    }
    return tomli_w.dumps(document).encode("utf-8")
