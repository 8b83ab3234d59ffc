from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from generator.errors import UsageError
from generator.prompts import collect
from generator.spec import make_answers

DOWN = "\x1b[B"
ENTER = "\r"


@pytest.fixture
def keyboard() -> Iterator[Any]:
    with create_pipe_input() as pipe:
        yield pipe


def answer(pipe: Any, keys: str, given: dict[str, Any] | None = None) -> dict[str, Any]:
    pipe.send_text(keys)
    return collect(
        given or {},
        use_defaults=False,
        interactive=True,
        prompt_io={"input": pipe, "output": DummyOutput()},
    )


def test_enter_everywhere_takes_the_defaults(keyboard: Any) -> None:
    answers = answer(keyboard, ENTER * 5)
    assert answers == {
        "scenario": "image-classification",
        "data": "sample",
        "compute": "auto",
        "name": "my_classifier",
        "output": "./my_classifier",
        "time_budget": 300,
    }
    make_answers(answers)


def test_typed_answers(keyboard: Any, tmp_path: Any) -> None:
    keys = (
        DOWN
        + ENTER  # data: a folder
        + str(tmp_path)
        + ENTER
        + DOWN
        + ENTER  # compute: cpu
        + "\x7f" * 20
        + "parts"
        + ENTER  # name
        + ENTER  # output: default follows the name
        + "\x7f" * 5
        + "60"
        + ENTER  # budget
    )
    answers = answer(keyboard, keys)
    assert answers["data"] == str(tmp_path)
    assert answers["compute"] == "cpu"
    assert answers["name"] == "parts"
    assert answers["output"] == "./parts"
    assert answers["time_budget"] == 60


def test_a_scenario_without_alternatives_is_not_asked(keyboard: Any) -> None:
    answers = answer(
        keyboard, "", given={k: 1 for k in ("data", "compute", "name", "output", "time_budget")}
    )
    assert answers["scenario"] == "image-classification"


def test_budget_prompt_rejects_non_numbers(keyboard: Any) -> None:
    given = {
        "scenario": "image-classification",
        "data": "sample",
        "compute": "cpu",
        "name": "x",
        "output": "x",
    }
    answers = answer(keyboard, "\x7f" * 5 + "abc" + ENTER + "\x7f" * 3 + "45" + ENTER, given)
    assert answers["time_budget"] == 45


def test_flags_are_not_asked_again() -> None:
    given = {
        "scenario": "image-classification",
        "data": "sample",
        "compute": "cpu",
        "name": "x",
        "output": "x",
        "time_budget": 30,
    }
    assert collect(given, use_defaults=False, interactive=False) == given


def test_no_terminal_names_the_missing_flags() -> None:
    with pytest.raises(UsageError) as caught:
        collect({"name": "x"}, use_defaults=False, interactive=False)
    message = str(caught.value)
    for flag in ("--scenario", "--data", "--compute", "--output", "--time-budget", "--yes"):
        assert flag in message
    assert "--name" not in message


def test_yes_asks_nothing() -> None:
    assert collect({"name": "x"}, use_defaults=True, interactive=False) == {"name": "x"}


@pytest.mark.parametrize(("downs", "suffix"), [(2, ".csv"), (3, ".zip")])
def test_manifest_and_zip_sources_are_offered_and_checked(
    keyboard: Any, tmp_path: Any, downs: int, suffix: str
) -> None:
    source = tmp_path / f"images{suffix}"
    source.write_bytes(b"")
    folder = tmp_path / "not-a-file"
    folder.mkdir()
    keys = (
        DOWN * downs
        + ENTER  # data: manifest or zip
        + str(folder)
        + ENTER  # refused: a folder where a file is expected
        + "\x7f" * len(str(folder))
        + str(source)
        + ENTER
        + ENTER * 4  # compute, name, output, budget: defaults
    )
    assert answer(keyboard, keys)["data"] == str(source)
