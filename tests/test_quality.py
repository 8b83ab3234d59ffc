"""House style, checked in the default test run: ruff, black and mypy over the package."""

from __future__ import annotations

import subprocess
import sys

import pytest
from helpers import REPO


@pytest.mark.parametrize(
    "command",
    [
        ["ruff", "check", "generator", "tests", "samples", "benchmarks"],
        ["black", "--check", "--quiet", "generator", "tests", "samples", "benchmarks"],
        ["mypy"],
    ],
    ids=["ruff", "black", "mypy"],
)
def test_tool_passes(command: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", *command], cwd=REPO, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout + done.stderr
