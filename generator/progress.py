"""How stages report progress without printing: the CLI supplies a Reporter."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol

Advance = Callable[..., None]
"""advance(steps=1, description=None): move a phase on, optionally renaming it."""


class Reporter(Protocol):
    def info(self, message: str) -> None: ...

    def warn(self, message: str) -> None: ...

    def phase(self, description: str, total: float | None) -> AbstractContextManager[Advance]: ...


class NullReporter:
    """Collects messages; used by tests and library callers that want silence."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def info(self, message: str) -> None:
        self.messages.append(message)

    def warn(self, message: str) -> None:
        self.messages.append(f"warning: {message}")

    @contextmanager
    def phase(self, description: str, total: float | None) -> Iterator[Advance]:
        def advance(steps: float = 1, description: str | None = None) -> None:
            return None

        yield advance
