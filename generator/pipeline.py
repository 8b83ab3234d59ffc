"""`modelgen new` as one straight line: scan -> split -> train -> export -> evaluate -> render.

Orchestration only: each step is a stage's public function; the project's files are built
in project.py.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .data import Dataset, Split, check_and_split
from .data.changes import diff
from .data.images import iter_batches
from .data.report import describe_group, grouped_notes
from .errors import UsageError
from .evaluate import Evaluation, evaluate
from .export import Parity, as_float32, check_parity, export_onnx
from .progress import NullReporter, Reporter
from .project import FIRST, Outcome, Release, project_files
from .render import Written, check_output, write_project
from .spec import ProjectSpec
from .train import TrainOptions, TrainResult, train
from .train.plan import Plan


@dataclass(frozen=True)
class BuildResult:
    """What `build_project` made and measured."""

    output: Path
    dataset: Dataset
    split: Split
    training: TrainResult
    parity: Parity
    evaluation: Evaluation
    written: Written = Written()


def build_project(spec: ProjectSpec, reporter: Reporter | None = None) -> BuildResult:
    """Check and split the data, train within the budget (or replay a recorded plan), export
    to ONNX and prove parity, evaluate on the test split, and write the project whole."""
    reporter = reporter or NullReporter()
    check_output(spec.output_path, force=spec.force, sources=[spec.data_path])
    outcome = produce(
        spec,
        reporter,
        lambda dataset: check_output(
            spec.output_path, force=spec.force, sources=data_sources(dataset, spec)
        ),
    )
    release = Release("new --force", NOT_GATED) if spec.history and spec.history.versions else FIRST
    with reporter.phase("writing the project", total=None):
        files = project_files(spec, outcome, release)
        written = write_project(files, spec.output_path, force=spec.force)
    return BuildResult(
        spec.output_path,
        outcome.dataset,
        outcome.split,
        outcome.training,
        outcome.parity,
        outcome.evaluation,
        written,
    )


NOT_GATED = {"status": "not compared", "reasons": ["new --force: a fresh start, no gate"]}


def produce(
    spec: ProjectSpec,
    reporter: Reporter,
    check: Callable[[Dataset], None] = lambda dataset: None,
) -> Outcome:
    """Scan, split, train, export, prove parity and evaluate: everything a project is
    rendered from, written nowhere yet. check(dataset) runs once the data is known."""
    plan = replay_plan(spec)
    if plan is not None and (spec.replay_plan or {}).get("cut_short"):
        reporter.warn(CUT_SHORT)
    dataset, split = _check_data(spec, reporter)
    check(dataset)
    answers = spec.answers
    options = TrainOptions(
        time_budget=answers.time_budget,
        weights=answers.weights,
        seed=answers.seed,
        compute=answers.compute,
        plan=plan,
    )
    training = train(split, dataset.labels, options, reporter)
    winner = training.winner
    truth = np.array([dataset.labels.index(r.label) for r in split.test])
    with tempfile.TemporaryDirectory(prefix="modelgen-export-") as tmp:
        onnx_path = Path(tmp) / "model.onnx"
        with reporter.phase("exporting to ONNX", total=None):
            model = as_float32(winner.model, winner.architecture)
            export_onnx(model, onnx_path, winner.input_size, dataset.labels)
            test_batches = iter_batches([r.path for r in split.test], winner.input_size, 64)
            parity, probabilities = check_parity(model, onnx_path, test_batches)
        model_bytes = onnx_path.read_bytes()
    evaluation = evaluate(probabilities, truth, dataset.labels)
    return Outcome(dataset, split, training, parity, evaluation, model_bytes, probabilities, truth)


def _check_data(spec: ProjectSpec, reporter: Reporter) -> tuple[Dataset, Split]:
    """The doctor, with what it found said: every skip, warning and (grouped) note."""
    with reporter.phase("checking images", total=None) as advance:
        dataset, split = check_and_split(
            spec.source,
            seed=spec.answers.seed,
            previous=spec.history.splits if spec.history else None,
            on_progress=lambda done, total: advance(0, description=f"{done}/{total} files"),
        )
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
    if spec.history is not None:
        reporter.info(f"Data: {diff(spec.history.files, dataset).describe()}")
    return dataset, split


def data_sources(dataset: Dataset, spec: ProjectSpec) -> list[Path]:
    """What the output must not overlap: the source itself, and for a manifest on disk the
    folders its images sit in."""
    sources = [spec.data_path]
    if dataset.kind == "manifest":
        sources += sorted({r.path.parent for r in dataset.records})
    return sources


CUT_SHORT = (
    "the recorded run's time budget stopped a fit inside an epoch; the replay trains that "
    "epoch whole, so its model will differ from the recorded one (replays of this plan give "
    "identical models)"
)


def replay_plan(spec: ProjectSpec) -> Plan | None:
    """The recorded plan --replay-plan asked for (UsageError when it cannot be read)."""
    if spec.replay_plan is None:
        return None
    try:
        return Plan.from_dict(spec.replay_plan)
    except (KeyError, TypeError, ValueError) as exc:
        raise UsageError(
            f"the recorded plan ([model.plan]) cannot be replayed: {exc}: pass the "
            "modelgen.toml of a generated project, unedited"
        ) from None
