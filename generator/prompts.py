"""Questions as data; answers from prompts, flags or an answers file."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import questionary

from .errors import UsageError
from .spec import (
    COMPUTE_TARGETS,
    MIN_TIME_BUDGET,
    SAMPLE,
    SCENARIOS,
    Answers,
    package_name,
)

_DEFAULTS = Answers()


@dataclass(frozen=True)
class Question:
    key: str
    flag: str
    ask: Callable[[dict[str, Any], dict[str, Any]], Any]
    """ask(answers so far, prompt_toolkit keyword arguments) -> the answer."""


def _ask(question: questionary.Question) -> Any:
    return question.unsafe_ask()  # Ctrl-C raises KeyboardInterrupt: the CLI exits 130


def _scenario(_: dict[str, Any], io: dict[str, Any]) -> str:
    if len(SCENARIOS) == 1:  # nothing to choose between: not asked
        return next(iter(SCENARIOS))
    choices = [questionary.Choice(title=text, value=key) for key, text in SCENARIOS.items()]
    return str(_ask(questionary.select("What do you want to build?", choices, **io)))


def _data(_: dict[str, Any], io: dict[str, Any]) -> str:
    choice = _ask(
        questionary.select(
            "Where are the labelled images?",
            [
                questionary.Choice("The bundled sample (Fashion-MNIST, 5 classes)", SAMPLE),
                questionary.Choice("A folder with one sub-folder of images per label", "folder"),
                questionary.Choice("A CSV/TSV manifest (path,label on each line)", "manifest"),
                questionary.Choice("A .zip of either", "zip"),
            ],
            **io,
        )
    )
    if choice == SAMPLE:
        return SAMPLE
    suffixes = {"manifest": (".csv", ".tsv"), "zip": (".zip",)}.get(str(choice))

    def valid(text: str) -> bool | str:
        path = Path(text.strip()).expanduser()
        if not text.strip():
            return "Enter a path"
        if suffixes is None:
            return path.is_dir() or f"{path} is not a folder"
        if not path.is_file():
            return f"{path} is not a file"
        return path.suffix.lower() in suffixes or f"expected a {' or '.join(suffixes)} file"

    return str(
        _ask(
            questionary.path(
                "Folder of labelled images:" if suffixes is None else f"{choice.title()} file:",
                only_directories=suffixes is None,
                validate=valid,
                **io,
            )
        )
    ).strip()


def _compute(_: dict[str, Any], io: dict[str, Any]) -> str:
    choices = [
        questionary.Choice(title=f"{key}: {text}", value=key)
        for key, text in COMPUTE_TARGETS.items()
    ]
    return str(_ask(questionary.select("Where should training run?", choices, **io)))


def _valid_name(text: str) -> bool | str:
    try:
        package_name(text)
    except UsageError:
        return "Use letters, digits, - or _"
    return True


def _name(_: dict[str, Any], io: dict[str, Any]) -> str:
    return str(
        _ask(questionary.text("Project name:", default=_DEFAULTS.name, validate=_valid_name, **io))
    ).strip()


def _output(answers: dict[str, Any], io: dict[str, Any]) -> str:
    default = f"./{answers.get('name', _DEFAULTS.name)}"
    return str(_ask(questionary.path("Output folder:", default=default, **io))).strip()


def _budget(_: dict[str, Any], io: dict[str, Any]) -> int:
    def valid(text: str) -> bool | str:
        ok = text.strip().isdigit() and int(text) >= MIN_TIME_BUDGET
        return ok or f"A whole number of seconds, at least {MIN_TIME_BUDGET}"

    text = _ask(
        questionary.text(
            "Training time budget (seconds):",
            default=str(_DEFAULTS.time_budget),
            validate=valid,
            **io,
        )
    )
    return int(text)


QUESTIONS: tuple[Question, ...] = (
    Question("scenario", "--scenario", _scenario),
    Question("data", "--data", _data),
    Question("compute", "--compute", _compute),
    Question("name", "--name", _name),
    Question("output", "--output", _output),
    Question("time_budget", "--time-budget", _budget),
)


def collect(
    given: dict[str, Any],
    *,
    use_defaults: bool,
    interactive: bool,
    prompt_io: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Complete the given answers: defaults with --yes, else prompts, never a hang.

    prompt_io: extra prompt_toolkit arguments (input/output), used by tests.
    """
    answers = dict(given)
    missing = [q for q in QUESTIONS if q.key not in answers]
    if use_defaults or not missing:
        return answers
    if not interactive:
        flags = ", ".join(q.flag for q in missing)
        raise UsageError(
            f"no terminal to ask questions on, and these answers are missing: {flags}: "
            "pass them as flags, or --answers FILE, or --yes to take the defaults"
        )
    for question in missing:
        answers[question.key] = question.ask(answers, prompt_io or {})
    return answers


def ask_moved_data(missing: Path, prompt_io: dict[str, Any] | None = None) -> str:
    """Where the data source recorded in a project went (`modelgen retrain`)."""

    def valid(text: str) -> bool | str:
        path = Path(text.strip()).expanduser()
        return path.exists() or f"{path} does not exist"

    question = questionary.path(
        f"The data source {missing} is gone. Where is it now?",
        validate=valid,
        **(prompt_io or {}),
    )
    return str(_ask(question)).strip()
