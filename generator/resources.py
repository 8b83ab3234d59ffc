"""Where the templates and bundled samples live, in a checkout and in an installed wheel."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _bundled(name: str) -> Path:
    # A wheel carries them inside the package (hatch force-include); a checkout beside it.
    for candidate in (_PACKAGE / "_bundled" / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"modelgen's {name}/ folder is missing from {_PACKAGE}: reinstall")


def templates_dir() -> Path:
    return _bundled("templates")


def samples_dir() -> Path:
    return _bundled("samples")


def default_sample() -> Path:
    """The bundled dataset `modelgen new --yes` trains on."""
    return samples_dir() / "fashion" / "images"
