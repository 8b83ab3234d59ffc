"""The `modelgen` command: flag parsing, prompts, progress and exit codes; no logic."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from . import __version__
from .cli_regenerate import check, retrain, update
from .console import RichReporter, console, exit_codes, quiet_native_stderr
from .errors import UsageError
from .spec import (
    DEFAULT_TIME_BUDGET,
    SAMPLE,
    Answers,
    load_answers_file,
    load_history,
    load_plan,
    make_answers,
    resolve,
)

_DEFAULTS = Answers()

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Build a tested, shippable image-classifier project from labelled images.",
)


def _file_answers(path: Path) -> dict[str, Any]:
    """Answers from a file; its relative paths are relative to the file's folder."""
    values = load_answers_file(path)
    base = path.resolve().parent
    for key in ("data", "output"):
        value = values.get(key)
        if isinstance(value, str) and value and value != SAMPLE:
            values[key] = str((base / value).resolve())
    return values


@app.callback()
def _main() -> None:
    """modelgen: labelled images in, a tested classifier project out."""


LabelDepth = Annotated[
    int | None,
    typer.Option(
        help="Folder sources: folder levels that make the label.",
        show_default=str(_DEFAULTS.label_depth),
    ),
]
PathColumn = Annotated[
    str | None, typer.Option(help="Manifest sources: the column with image paths.")
]
LabelColumn = Annotated[str | None, typer.Option(help="Manifest sources: the column with labels.")]
Strict = Annotated[
    bool | None,
    typer.Option("--strict", help="Stop on any unusable file instead of skipping it."),
]


@app.command()
def version() -> None:
    """Print modelgen's version."""
    console.print(__version__)


@app.command()
def new(
    scenario: Annotated[
        str | None,
        typer.Option(help="What to build: image-classification.", show_default=_DEFAULTS.scenario),
    ] = None,
    data: Annotated[
        str | None,
        typer.Option(
            help="Folder with one sub-folder of images per label, a CSV/TSV manifest "
            "(path,label), a .zip of either, or 'sample'."
        ),
    ] = None,
    compute: Annotated[
        str | None,
        typer.Option(help="Where training runs: auto, cpu or gpu.", show_default=_DEFAULTS.compute),
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="Project name.", show_default=_DEFAULTS.name)
    ] = None,
    output: Annotated[
        str | None, typer.Option(help="Output folder.", show_default="./NAME")
    ] = None,
    time_budget: Annotated[
        int | None,
        typer.Option(
            help="Training time budget in seconds.", show_default=str(DEFAULT_TIME_BUDGET)
        ),
    ] = None,
    weights: Annotated[
        str | None,
        typer.Option(
            help="auto (ImageNet if available), imagenet (required), none, or PATH.",
            show_default=_DEFAULTS.weights,
        ),
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="Random seed.", show_default=str(_DEFAULTS.seed))
    ] = None,
    label_depth: LabelDepth = None,
    path_column: PathColumn = None,
    label_column: LabelColumn = None,
    strict: Strict = None,
    answers: Annotated[
        Path | None, typer.Option("--answers", help="TOML file of answers (or a modelgen.toml).")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Take defaults, ask nothing.")] = False,
    replay_plan: Annotated[
        bool,
        typer.Option(
            "--replay-plan",
            help="Train exactly the plan recorded in the --answers modelgen.toml, with no "
            "deadline: the same data and versions give a byte-identical model.onnx on CPU.",
        ),
    ] = False,
    force: Annotated[
        bool,
        typer.Option(
            help="Regenerate the modelgen project in a non-empty output folder: its generated "
            "files are replaced, files you added are never touched."
        ),
    ] = False,
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose", "-v", help="Show TensorFlow logs, tracebacks and the time per phase."
        ),
    ] = False,
) -> None:
    """Train an image classifier and generate its project."""
    from . import prompts

    with exit_codes(verbose):
        given: dict[str, Any] = _file_answers(answers) if answers else {}
        flags = {
            "scenario": scenario,
            "data": data,
            "compute": compute,
            "name": name,
            "output": output,
            "time_budget": time_budget,
            "weights": weights,
            "seed": seed,
            "label_depth": label_depth,
            "path_column": path_column,
            "label_column": label_column,
            "strict": strict,
        }
        given.update({k: v for k, v in flags.items() if v is not None})
        interactive = sys.stdin.isatty() and sys.stdout.isatty()
        collected = prompts.collect(given, use_defaults=yes, interactive=interactive)
        if replay_plan and not answers:
            raise UsageError(
                "--replay-plan replays the plan of a generated project: pass its modelgen.toml "
                "with --answers"
            )
        spec = resolve(
            make_answers(collected),
            cwd=Path.cwd(),
            force=force,
            verbose=verbose,
            history=load_history(answers) if answers else None,
            replay_plan=load_plan(answers) if answers and replay_plan else None,
        )
        _build(spec)


@app.command()
def inspect(
    data: Annotated[
        Path,
        typer.Argument(help="Folder of label folders, a CSV/TSV manifest, or a .zip of either."),
    ],
    report: Annotated[
        Path | None, typer.Option(help="Write a JSON report: every file, its split or problem.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Split seed, as for `new`.")] = 42,
    label_depth: LabelDepth = None,
    path_column: PathColumn = None,
    label_column: LabelColumn = None,
    strict: Strict = None,
    compare: Annotated[
        Path | None,
        typer.Option(help="A generated project's modelgen.toml: say what changed since."),
    ] = None,
) -> None:
    """Check a data source without training: counts, sizes, modes and every problem found."""

    from .data import SourceOptions, check_and_split
    from .data.changes import diff
    from .data.report import (
        check_report_path,
        dataset_report,
        describe_group,
        grouped_notes,
        write_report,
    )
    from .resources import default_sample

    with exit_codes(False):
        if str(data) == SAMPLE:  # as for `new --data sample`
            data = default_sample()
        if report:
            check_report_path(report, data)
        history = load_history(compare) if compare else None
        if compare and history is None:
            raise UsageError(
                f"{compare} has no [data] file list: pass the modelgen.toml of a generated "
                "project"
            )
        with Progress(
            SpinnerColumn(), TextColumn("{task.description}"), console=console, transient=True
        ) as progress:
            task = progress.add_task("checking images", total=None)
            source = SourceOptions(
                data.resolve(), label_depth or 1, path_column, label_column, bool(strict)
            )
            dataset, split = check_and_split(
                source,
                seed=seed,
                previous=history.splits if history else None,
                on_progress=lambda done, total: progress.update(
                    task, description=f"checking images {done}/{total}"
                ),
            )
        summary = dataset_report(dataset, split)
        console.print(
            f"{len(dataset.records)} images in {len(dataset.labels)} classes "
            f"({dataset.kind} source), {len(dataset.skipped)} skipped",
            markup=False,
        )
        for label, count in summary["counts"].items():
            console.print(f"  {label}: {count}", markup=False)
        console.print(
            "split (train/validation/test): "
            + "/".join(str(n) for n in summary["split"].values())
            + f"; sizes {summary['sizes']['min']} to {summary['sizes']['max']}; "
            + f"modes {summary['modes']}",
            markup=False,
        )
        for skipped in dataset.skipped:
            console.print(f"[yellow]skipped[/] {escape(skipped.relpath)}: {escape(skipped.reason)}")
        for warning in dataset.warnings:
            console.print(f"[yellow]warning:[/] {escape(warning)}")
        for text, paths in grouped_notes(dataset.notes):
            console.print(f"note: {escape(describe_group(text, paths))}")
        if history is not None:
            changes = diff(history.files, dataset).describe()
            console.print(f"since {escape(str(compare))}: {escape(changes)}")
        if report:
            write_report(summary, report)
            console.print(f"report written to {escape(str(report))}")


def _build(spec: Any) -> None:
    from .pipeline import build_project

    data = "the bundled sample" if spec.uses_sample else str(spec.data_path)
    console.print(f"Building [bold]{escape(spec.answers.name)}[/] from {escape(data)}")
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("left"),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )
    reporter = RichReporter(progress)
    with quiet_native_stderr(not spec.verbose), progress:
        result = build_project(spec, reporter)
    if spec.verbose:
        _say_fixed_costs(reporter.seconds, result.training.tracing_seconds)
    t = result.training
    winner = t.winner
    console.print()
    table = Table("candidate", "settings", "val acc", "val loss", "epochs", "seconds")
    for c in t.finals:
        settings = ", ".join(f"{k}={v}" for k, v in sorted(c.settings.items()))
        table.add_row(
            c.name,
            settings,
            f"{c.val_accuracy:.4f}" if c.val_accuracy == c.val_accuracy else "-",
            f"{c.val_loss:.4f}" if c.val_loss == c.val_loss else "-",
            str(c.epochs),
            f"{c.seconds:.1f}",
        )
    console.print(table)
    console.print(
        f"(the shipped model, then the best of each other family; all {len(t.leaderboard)} "
        "recipes scored are in modelgen.toml)"
    )
    score = (
        f"{t.plan.describe_score()} {winner.val_accuracy:.3f}"
        if winner.val_accuracy == winner.val_accuracy  # NaN: a direct fit, not scored
        else "no time to compare recipes: trained on train + validation for the budget"
    )
    console.print(
        f"[green]Done[/] in {t.seconds:.0f}s of training (budget {spec.answers.time_budget:.0f}s"
        f"{', cut short by it' if t.deadline_cut else ''}). Winner: [bold]{winner.name}[/] "
        f"({score})"
    )
    e = result.evaluation
    console.print(
        f"Test accuracy {e.accuracy:.4f} (macro {e.macro_accuracy:.4f}) on {e.support} held-out "
        f"images, measured with the ONNX model; ONNX vs Keras max difference "
        f"{result.parity.max_abs_diff:.1e}, top-1 agreement {result.parity.top1_agreement:.0%}"
    )
    try:
        shown = os.path.relpath(result.output)
    except ValueError:
        shown = str(result.output)
    console.print(f"Project written to [bold]{escape(str(result.output))}[/]")
    written = result.written
    if written.removed:
        console.print(
            f"Removed {len(written.removed)} generated files no longer produced: "
            + escape(", ".join(written.removed))
        )
    if written.kept:
        console.print(
            f"[yellow]Kept[/] {len(written.kept)} files modelgen no longer produces, because "
            "you edited them: " + escape(", ".join(written.kept))
        )
    console.print("Next:")
    console.print(f'  cd {shown} && pip install -e ".[cpu,test]" && pytest', markup=False)
    console.print(f"  python -m {spec.package} IMAGE --top-k 3", markup=False)


def _say_fixed_costs(phases: dict[str, float], tracing: float) -> None:
    """--verbose: where the wall time went, TensorFlow's import first, and the part of the
    fits spent building and tracing models."""
    from .train.runtime import IMPORT_SECONDS

    console.print("Time per phase (wall seconds):")
    if IMPORT_SECONDS:
        console.print(f"  importing TensorFlow: {IMPORT_SECONDS[0]:.1f}", markup=False)
    for name, seconds in phases.items():
        console.print(f"  {name}: {seconds:.1f}", markup=False)
    console.print(
        f"  of the fits, building and tracing models (each fit's first epoch beyond a typical "
        f"one): {tracing:.1f}",
        markup=False,
    )


app.command()(retrain)
app.command()(update)
app.command()(check)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
