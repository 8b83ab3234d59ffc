"""The README's benchmark figures are marked stale when the code they measure changes, and
only then: rewording a comment or a docstring does not change what was measured."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from write_readme import code_of  # noqa: E402

MODULE = '''"""A module."""

LIMIT = 3.0  # a cap
"""What the cap is for."""


def capped(x: float) -> float:
    """x, at most LIMIT."""
    if x > LIMIT:
        "a bare string in a branch"
        return LIMIT
    return x
'''


def test_comments_and_docstrings_are_not_code() -> None:
    reworded = (
        MODULE.replace("A module.", "Another wording.")
        .replace("# a cap", "# the most allowed")
        .replace('"""What the cap is for."""\n', "")
        .replace('    """x, at most LIMIT."""\n', "")
        .replace('        "a bare string in a branch"\n', "")
    )
    assert reworded != MODULE
    assert code_of(reworded) == code_of(MODULE)


def test_a_changed_constant_or_statement_is_code() -> None:
    assert code_of(MODULE.replace("LIMIT = 3.0", "LIMIT = 6.0")) != code_of(MODULE)
    assert code_of(MODULE.replace("if x > LIMIT", "if x >= LIMIT")) != code_of(MODULE)
