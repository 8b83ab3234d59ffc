"""The commands that work on a generated project: retrain, update, check. Flags, output and
exit codes only; the work is in regenerate.py and drift.py."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from .console import RichReporter, console, exit_codes, quiet_native_stderr
from .errors import UsageError

REFUSED_EXIT = 1  # the gate refused the new model: nothing changed
CONFLICT_EXIT = 3  # written, with conflicts to resolve

ProjectArg = Annotated[
    Path, typer.Argument(help="The generated project's folder (holding modelgen.toml).")
]
DryRun = Annotated[
    bool,
    typer.Option("--dry-run", help="Show what would change (files, merges, conflicts, gate)."),
]
Json = Annotated[bool, typer.Option("--json", help="Print one JSON document, nothing else.")]
Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="Tracebacks and TF logs.")]


@contextlib.contextmanager
def _output(as_json: bool) -> Iterator[None]:
    """With --json, stdout carries only the JSON document (errors still go to stderr)."""
    console.quiet = as_json
    try:
        yield
    finally:
        console.quiet = False


def _emit(document: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(document, indent=2) + "\n")


def retrain(
    project: ProjectArg = Path("."),
    data: Annotated[
        str | None,
        typer.Option(help="Where the data source is now, when it moved (saved relative)."),
    ] = None,
    time_budget: Annotated[
        int | None, typer.Option(help="Training time budget in seconds.", show_default="saved")
    ] = None,
    replay_plan: Annotated[
        bool,
        typer.Option(
            "--replay-plan",
            help="Train the plan recorded in modelgen.toml again (no search, no deadline) on "
            "the data as it is now.",
        ),
    ] = False,
    accept_regression: Annotated[
        str | None,
        typer.Option(
            help="Take a new model the gate refuses; the REASON goes into the history.",
            metavar="REASON",
        ),
    ] = None,
    report_md: Annotated[
        Path | None, typer.Option(help="Write the gate's comparison as Markdown (for a PR).")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Ask nothing.")] = False,
    dry_run: DryRun = False,
    as_json: Json = False,
    verbose: Verbose = False,
) -> None:
    """Rescan the data, train, compare with the project's model, re-render keeping edits.

    Exit 0 done, 1 the gate refused the new model (nothing changed), 2 bad input,
    3 written with merge conflicts to resolve, 130 interrupted (nothing changed)."""
    from . import prompts
    from .regenerate import open_project, retrain
    from .spec import load_plan

    with exit_codes(verbose), _output(as_json), _guarded(project, dry_run):
        if accept_regression is not None and not accept_regression.strip():
            raise UsageError(
                '--accept-regression needs a reason for the history: --accept-regression "WHY"'
            )
        interactive = not yes and sys.stdin.isatty() and sys.stdout.isatty()
        opened = open_project(
            project,
            data=data,
            ask=prompts.ask_moved_data if interactive else None,
            time_budget=time_budget,
            verbose=verbose,
        )
        if replay_plan:
            from dataclasses import replace

            plan = load_plan(opened.root / "modelgen.toml")
            opened = replace(opened, spec=replace(opened.spec, replay_plan=plan))
        if report_md and not report_md.resolve().parent.is_dir():
            raise UsageError(f"--report-md {report_md}: its folder does not exist: create it")
        console.print(f"Retraining [bold]{escape(str(opened.root))}[/]")
        with _progress() as reporter, quiet_native_stderr(not verbose):
            result = retrain(opened, reporter, accept_regression=accept_regression, dry_run=dry_run)
        if report_md and result.verdict:
            from .gate import markdown

            report_md.write_text(markdown(result.verdict), encoding="utf-8")
        if as_json:
            _emit(result.to_dict() | {"dry_run": dry_run})
        _say_result(result, dry_run)
    _exit(result)


def update(project: ProjectArg = Path("."), dry_run: DryRun = False, as_json: Json = False) -> None:
    """Re-render the project with this modelgen's templates; no training, edits kept.

    Exit 0 done, 2 bad input, 3 written with merge conflicts to resolve."""
    from .regenerate import open_project, update

    with exit_codes(False), _output(as_json), _guarded(project, dry_run):
        result = update(open_project(project, need_data=False), dry_run=dry_run)
        if as_json:
            _emit(result.to_dict() | {"dry_run": dry_run})
        _say_result(result, dry_run)
    _exit(result)


def check(
    project: ProjectArg = Path("."),
    data: Annotated[
        str | None, typer.Option(help="Where the data source is now, when it moved.")
    ] = None,
    ignore_edits: Annotated[
        bool, typer.Option("--ignore-edits", help="Edited generated files are not drift.")
    ] = False,
    as_json: Json = False,
) -> None:
    """Exit 0 when the data and the templates are as at the last generation, 1 when not.

    Drift: images added, removed or relabelled; templates newer; conflict markers left;
    generated files edited. Writes nothing."""
    from .drift import check
    from .regenerate import open_project

    with exit_codes(False), _output(as_json):
        drift = check(open_project(project, data=data))
        reasons = drift.reasons(count_edits=not ignore_edits)
        if as_json:
            _emit(drift.to_dict(count_edits=not ignore_edits))
        for line in reasons or ["up to date: data and templates as at the last generation"]:
            console.print(escape(line))
        for note in drift.notes:
            console.print(f"note: {escape(note)}")
        if drift.deleted:
            console.print(f"deleted by you (they stay deleted): {escape(', '.join(drift.deleted))}")
    if reasons:  # outside exit_codes, which reports any exception as an internal error
        raise typer.Exit(1)


def _exit(result: Any) -> None:
    if result.verdict and result.verdict.blocks:
        raise typer.Exit(REFUSED_EXIT)
    if result.merge and result.merge.conflicts:
        raise typer.Exit(CONFLICT_EXIT)


@contextlib.contextmanager
def _guarded(project: Path, dry_run: bool) -> Iterator[None]:
    """One writer at a time; what a killed run left is rolled back first (a dry run, which
    writes nothing, asks for a real run to do that)."""
    from .transaction import locked, pending, recover

    if not project.is_dir():
        raise UsageError(f"{project} is not a folder: pass a generated project's folder")
    with locked(project):
        if dry_run and pending(project):
            raise UsageError(
                f"a run on {project} was interrupted and left files to put back: run without "
                "--dry-run first, which rolls it back"
            )
        if recover(project):
            console.print(
                "[yellow]A retrain or update was killed while swapping files in: the "
                "project's files were put back as they were before it.[/]"
            )
        yield


@contextlib.contextmanager
def _progress() -> Iterator[RichReporter]:
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=console,
    )
    with progress:
        yield RichReporter(progress)


def _say_result(result: Any, dry_run: bool) -> None:
    """The data changes, the gate's table, and what happened to each file."""
    verdict = result.verdict
    if verdict is not None:
        _say_gate(verdict)
    if result.merge is None:
        where = f" It is kept in {escape(str(result.candidate))}." if result.candidate else ""
        console.print(
            "[red]The new model was refused[/]: the project was not changed." + where + " "
            'Pass --accept-regression "REASON" to take it anyway.'
        )
        return
    quiet = ("unchanged", "kept yours")  # in --json; said here only when it matters
    changed = [c for c in result.merge.changes if c.action.value not in quiet]
    verb = "would be" if dry_run else ("was" if len(result.merge.conflicts) == 1 else "were")
    if not changed:
        console.print(f"No generated file {'would change' if dry_run else 'changed'}.")
    for change in changed:
        note = f" ({change.note})" if change.note else ""
        console.print(f"  {change.action.value:>26}  {escape(change.path)}{escape(note)}")
    conflicts = result.merge.conflicts
    if conflicts:
        count = sum(max(c.conflicts, 1) for c in conflicts)
        console.print(
            f"[red]{_count(len(conflicts), 'file')} {verb} left with "
            f"{_count(count, 'conflict')}[/]: "
            + escape(", ".join(c.path for c in conflicts))
            + ". Resolve the <<<<<<< yours / >>>>>>> new render blocks"
            + (
                ", then `git add` them (git lists them as unmerged)."
                if result.in_git_index
                else "."
            )
        )
    if dry_run:
        console.print("Dry run: nothing was written.")


def _say_gate(verdict: Any) -> None:
    if verdict.incumbent is None:
        console.print(f"Gate: no baseline to compare with ({escape('; '.join(verdict.reasons))})")
    else:
        table = Table("test images", "metric", "current model", "new model")
        n = str(verdict.shared)
        table.add_row(
            n, "accuracy", f"{verdict.incumbent.accuracy:.4f}", f"{verdict.candidate.accuracy:.4f}"
        )
        table.add_row(
            n, "macro-F1", f"{verdict.incumbent.macro_f1:.4f}", f"{verdict.candidate.macro_f1:.4f}"
        )
        for label, row in verdict.per_class.items():
            table.add_row(
                str(row["images"]),
                f"recall {label}",
                f"{row['incumbent_recall']:.4f}",
                f"{row['candidate_recall']:.4f}",
            )
        console.print(table)
        console.print(
            f"Gate [bold]{verdict.status}[/]: {verdict.worse} test images newly wrong, "
            f"{verdict.better} newly right (one-sided McNemar p = {verdict.p_worse:.3g})"
        )
        for reason in verdict.reasons:
            console.print(f"  {escape(reason)}")
    for label, row in verdict.new_classes.items():
        console.print(
            f"  new class {escape(label)}: {row['images']} test images, recall "
            f"{row['candidate_recall']:.3f} (the current model does not know it)"
        )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"
