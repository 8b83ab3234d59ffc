"""The errors modelgen reports to the user: one line, exit code 2, no traceback."""

from __future__ import annotations


class ModelgenError(Exception):
    """Base of every error caused by the user's input or environment (exit code 2).

    The message says what was expected, what was found, and how to fix it.
    """

    exit_code = 2


class UsageError(ModelgenError):
    """Raised when answers, flags or an answers file are missing, unknown or contradictory."""


class DataError(ModelgenError):
    """Raised when the data source cannot give a meaningful training set."""


class WeightsError(ModelgenError):
    """Raised when pretrained weights were required but cannot be loaded."""


class ComputeError(ModelgenError):
    """Raised when the requested compute target is not available on this machine."""


class OutputError(ModelgenError):
    """Raised when the output folder cannot be written without losing the user's files."""


class ExportError(ModelgenError):
    """Raised when the ONNX export does not reproduce the Keras model's predictions."""


class RenderError(ModelgenError):
    """Raised when a template fails to render or its Python output is not valid code."""


class BudgetError(ModelgenError):
    """The time budget is too short to train anything on this data."""


class InterruptedAfterWrite(KeyboardInterrupt):
    """Ctrl-C arrived while the project was being swapped in: the swap finished first."""
