"""`modelgen new` as one straight line: scan -> split -> train -> export -> evaluate -> render."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import tomli_w

from . import __version__
from .data import Dataset, ImageRecord, Split, scan_source, split_dataset
from .data.changes import diff
from .data.checks import EXTENSIONS
from .data.images import iter_batches
from .data.report import describe_group, grouped_notes
from .errors import UsageError
from .evaluate import Evaluation, confusion_png, evaluate, top_losses
from .export import Parity, as_float32, check_parity, export_onnx
from .progress import NullReporter, Reporter
from .render import MANIFEST, Written, check_output, render_tree, sha256, write_project
from .spec import SAMPLE, ProjectSpec
from .train import TrainOptions, TrainResult, train
from .train.plan import Plan

MAX_TEST_IMAGES = 200  # copied into the generated project's tests
TOP_LOSSES = 12  # most confidently wrong test images shown in the README
THUMBNAIL = 96
ACCURACY_TOLERANCE = 0.02
VERSIONED = ("tensorflow", "keras", "tf2onnx", "onnx", "onnxruntime", "numpy", "pillow")


@dataclass(frozen=True)
class BuildResult:
    output: Path
    dataset: Dataset
    split: Split
    training: TrainResult
    parity: Parity
    evaluation: Evaluation
    written: Written = Written()


def scan(spec: ProjectSpec, reporter: Reporter) -> tuple[Dataset, Split]:
    answers = spec.answers
    with reporter.phase("checking images", total=None) as advance:
        dataset = scan_source(
            spec.data_path,
            min_images_per_class=spec.min_images_per_class,
            label_depth=answers.label_depth,
            path_column=answers.path_column or None,
            label_column=answers.label_column or None,
            strict=answers.strict,
            on_progress=lambda done, total: advance(0, description=f"{done}/{total} files"),
        )
    split = split_dataset(
        dataset,
        seed=spec.answers.seed,
        validation_fraction=spec.validation_fraction,
        test_fraction=spec.test_fraction,
        previous=spec.previous_splits,
    )
    return dataset, split


def data_sources(dataset: Dataset, spec: ProjectSpec) -> list[Path]:
    """What the output must not overlap: the source itself, and for a manifest on disk the
    folders its images sit in."""
    sources = [spec.data_path]
    if dataset.kind == "manifest":
        sources += sorted({r.path.parent for r in dataset.records})
    return sources


def build_project(spec: ProjectSpec, reporter: Reporter | None = None) -> BuildResult:
    """Scan and split the data, train within the budget, export to ONNX and check it,
    evaluate on the test split, render the project and write it whole (see the README)."""
    reporter = reporter or NullReporter()
    plan = _replay_plan(spec)
    check_output(spec.output_path, force=spec.force, sources=[spec.data_path])
    dataset, split = scan(spec, reporter)
    check_output(spec.output_path, force=spec.force, sources=data_sources(dataset, spec))
    reporter.info(
        f"Data: {len(dataset.records)} images in {len(dataset.labels)} classes "
        f"({len(split.train)} train / {len(split.validation)} validation / {len(split.test)} test)"
    )
    for skipped in dataset.skipped:
        reporter.warn(f"skipped {skipped.relpath}: {skipped.reason}")
    for warning in dataset.warnings:
        reporter.warn(warning)
    for text, paths in grouped_notes(dataset.notes):
        reporter.info(f"note: {describe_group(text, paths)}")
    if spec.previous_files is not None:
        reporter.info(f"Data: {diff(spec.previous_files, dataset).describe()}")
    answers = spec.answers
    training = train(
        split,
        dataset.labels,
        TrainOptions(
            time_budget=answers.time_budget,
            weights=answers.weights,
            seed=answers.seed,
            compute=answers.compute,
            plan=plan,
        ),
        reporter,
    )
    winner = training.winner
    truth = np.array([dataset.labels.index(r.label) for r in split.test])
    with tempfile.TemporaryDirectory(prefix="modelgen-export-") as tmp:
        onnx_path = Path(tmp) / "model.onnx"
        with reporter.phase("exporting to ONNX", total=None):
            model = as_float32(winner.model, winner.architecture)
            export_onnx(model, onnx_path, winner.input_size)
            test_batches = iter_batches([r.path for r in split.test], winner.input_size, 64)
            parity, probabilities = check_parity(model, onnx_path, test_batches)
        model_bytes = onnx_path.read_bytes()
    evaluation = evaluate(probabilities, truth, dataset.labels)
    files = project_files(
        spec, dataset, split, training, parity, evaluation, model_bytes, probabilities, truth
    )
    written = write_project(files, spec.output_path, force=spec.force)
    return BuildResult(spec.output_path, dataset, split, training, parity, evaluation, written)


def _replay_plan(spec: ProjectSpec) -> Plan | None:
    if spec.replay_plan is None:
        return None
    try:
        return Plan.from_dict(spec.replay_plan)
    except ValueError as exc:
        raise UsageError(
            f"the recorded plan ([model.plan]) cannot be replayed: {exc}: pass the "
            "modelgen.toml of a generated project, unedited"
        ) from None


def _test_subset(split: Split, labels: tuple[str, ...]) -> list[int]:
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


def _thumbnail(record: ImageRecord) -> bytes:
    from PIL import Image

    from .data.images import decode, to_rgb

    image = to_rgb(decode(record.path.read_bytes()))
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


def _copied_name(record: ImageRecord) -> str:
    """Named by content and format only: labels and source paths are data, never paths."""
    return f"images/{record.sha256[:16]}{EXTENSIONS.get(record.format, ('.img',))[0]}"


def project_files(
    spec: ProjectSpec,
    dataset: Dataset,
    split: Split,
    training: TrainResult,
    parity: Parity,
    evaluation: Evaluation,
    model_bytes: bytes,
    probabilities: np.ndarray,
    truth: np.ndarray,
) -> dict[str, bytes]:
    """Every file of the generated project: rendered templates plus data files."""
    labels = dataset.labels
    winner = training.winner
    package = spec.package
    metrics = evaluation.to_dict()
    leaderboard = [c.leaderboard_row() for c in training.leaderboard]
    finals = [row for row in leaderboard if row["stage"] in ("final", "fine-tuned")]
    losses, thumbnails = top_loss_files(split, labels, probabilities, truth)
    chosen = _test_subset(split, labels)
    images = []
    for i in chosen:
        record = split.test[i]
        best = int(np.argmax(probabilities[i]))
        images.append(
            {
                "path": _copied_name(record),
                "label": record.label,
                "predicted": labels[best],
                "score": round(float(probabilities[i][best]), 6),
            }
        )
    subset_accuracy = float(np.mean([item["label"] == item["predicted"] for item in images]))
    data_summary = {
        "images": len(dataset.records),
        "train": len(split.train),
        "validation": len(split.validation),
        "test": len(split.test),
        "skipped": len(dataset.skipped),
    }
    context: dict[str, Any] = {
        "project_name": spec.answers.name,
        "package": package,
        "distribution": package.replace("_", "-"),
        "labels": list(labels),
        "input_size": winner.input_size,
        "metrics": metrics,
        "winner": leaderboard[0],
        "leaderboard": leaderboard,
        "finals": finals,
        "trials": len(leaderboard),
        "top_losses": losses,
        "budget": {
            "seconds": spec.answers.time_budget,
            "used": round(training.seconds),
            "cut": training.deadline_cut,
        },
        # the reason up to the first ";" (the rest names folders on this machine)
        "skipped": _grouped(training.skipped),
        "parity": {"max_abs_diff": parity.max_abs_diff, "top1_agreement": parity.top1_agreement},
        "data": data_summary,
        "seed": spec.answers.seed,
    }
    files = render_tree("image_classification", context)
    files[f"src/{package}/model.onnx"] = model_bytes
    files["reports/confusion_matrix.png"] = confusion_png(evaluation)
    files |= thumbnails
    files[f"src/{package}/metadata.json"] = _json(
        {
            "labels": list(labels),
            "input_size": winner.input_size,
            "input_name": "image",
            "model_sha256": hashlib.sha256(model_bytes).hexdigest(),
        }
    )
    files["tests/data/expected.json"] = _json(
        {
            "labels": list(labels),
            "accuracy": round(subset_accuracy, 6),
            "tolerance": ACCURACY_TOLERANCE,
            "images": images,
        }
    )
    for i in chosen:
        files[f"tests/data/{_copied_name(split.test[i])}"] = split.test[i].path.read_bytes()
    report = {
        "test": metrics,
        "parity": context["parity"] | {"images": parity.images},
        "leaderboard": leaderboard,
        "top_losses": losses,
        "training_seconds": round(training.seconds, 1),
        "time_budget": spec.answers.time_budget,
        "budget_cut_training_short": training.deadline_cut,
        "compute": training.compute.describe(),
    }
    files["reports/metrics.json"] = _json(report)
    generated = {rel: sha256(content) for rel, content in sorted(files.items())}
    files[MANIFEST] = _modelgen_toml(spec, dataset, split, training, report, generated)
    return files


def _grouped(skipped: tuple[tuple[str, str], ...]) -> list[list[str]]:
    """[names, reason] per distinct reason (up to the first ";": the rest names folders on
    this machine), in first-seen order."""
    by_reason: dict[str, list[str]] = {}
    for name, reason in skipped:
        key = reason.split("; ")[0]
        for other in by_reason:  # "ImageNet weights for X are not available (...)" per X
            if key.replace(name.removesuffix("-frozen"), "X") == other.replace(
                by_reason[other][0].removesuffix("-frozen"), "X"
            ):
                key = other
                break
        by_reason.setdefault(key, []).append(name)
    return [
        (
            [", ".join(names), reason.replace(f" for {names[0].removesuffix('-frozen')}", "")]
            if len(names) > 1
            else [names[0], reason]
        )
        for reason, names in by_reason.items()
    ]


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
    dataset: Dataset,
    split: Split,
    training: TrainResult,
    report: dict[str, Any],
    generated: dict[str, str],
) -> bytes:
    """Answers (paths relative to the project, so the file replays from anywhere), data
    fingerprint with every image's split (and the splits of images no longer there, so an
    image keeps its split if it comes back), the plan, versions, results, and the hash of
    every generated file (what --force may replace)."""
    answers = spec.answers.to_dict()
    answers["output"] = "."
    if spec.answers.data != SAMPLE:
        answers["data"] = Path(os.path.relpath(spec.data_path, spec.output_path)).as_posix()
    split_of = split.split_of()
    current = {r.sha256 for r in dataset.records}
    former = [
        {"sha256": sha, "split": name}
        for sha, name in sorted((spec.previous_splits or {}).items())
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
            "skipped": [{"candidate": n, "reason": r} for n, r in training.skipped],
            "plan": training.plan.to_dict(),
        },
        "metrics": {
            "test": {
                k: report["test"][k]
                for k in ("accuracy", "macro_accuracy", "log_loss", "top_k_accuracy", "support")
            },
            "parity": report["parity"],
        },
        "versions": _versions(),
        "generated": {"files": generated},
    }
    return tomli_w.dumps(document).encode("utf-8")
