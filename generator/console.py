"""How the command talks to the terminal: progress bars, one-line errors with their exit
codes, and TensorFlow's native log kept out of sight."""

from __future__ import annotations

import contextlib
import os
import sys
import time
import traceback
from collections.abc import Iterator
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress

from .errors import InterruptedAfterWrite, ModelgenError
from .progress import Advance

console = Console(highlight=False)
errors = Console(stderr=True, highlight=False, soft_wrap=True)


class RichReporter:
    """The stages' Reporter, drawn with rich: messages above live progress bars."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.seconds: dict[str, float] = {}  # wall time per phase, for --verbose

    def info(self, message: str) -> None:
        self.progress.console.print(escape(message))

    def warn(self, message: str) -> None:
        self.progress.console.print(f"[yellow]warning:[/] {escape(message)}")

    @contextlib.contextmanager
    def phase(self, description: str, total: float | None) -> Iterator[Advance]:
        task = self.progress.add_task(description, total=total)

        def advance(steps: float = 1, description: str | None = None) -> None:
            label = f"{task_name}: {description}" if description else None
            self.progress.update(task, advance=steps, description=label)

        task_name = description
        start = time.monotonic()
        try:
            yield advance
        finally:
            self.seconds[description] = self.seconds.get(description, 0.0) + (
                time.monotonic() - start
            )
            done = self.progress.tasks[task].completed
            self.progress.update(task, total=done or 1, completed=done or 1)


@contextlib.contextmanager
def quiet_native_stderr(enabled: bool) -> Iterator[Path | None]:
    """Send file descriptor 2 (TensorFlow's C++ logs, warnings) to a log file."""
    if not enabled:
        yield None
        return
    from .resources import cache_dir

    log = cache_dir() / "last-run.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    sys.stderr.flush()
    saved = os.dup(2)
    with log.open("w") as fh:
        os.dup2(fh.fileno(), 2)
        try:
            yield log
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


@contextlib.contextmanager
def exit_codes(verbose: bool) -> Iterator[None]:
    """One red line and exit 2 for the user's errors, 130 for Ctrl-C (saying whether the
    output changed), 1 with a short message for bugs (the traceback with --verbose)."""
    try:
        yield
    except ModelgenError as exc:
        errors.print(f"[red]error:[/] {escape(str(exc))}")
        raise typer.Exit(exc.exit_code) from None
    except InterruptedAfterWrite:
        errors.print("[red]interrupted[/] after the project was written whole")
        raise typer.Exit(130) from None
    except KeyboardInterrupt:
        errors.print(
            "[red]interrupted[/]: the output folder was not changed (caches are kept for the "
            "next run)"
        )
        raise typer.Exit(130) from None
    except Exception as exc:
        if verbose:
            errors.print(traceback.format_exc())
        errors.print(
            f"[red]internal error:[/] {type(exc).__name__}: {escape(str(exc))} "
            "(run again with --verbose for the traceback, and report it)"
        )
        raise typer.Exit(1) from None
