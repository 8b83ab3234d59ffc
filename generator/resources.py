"""Where modelgen's own files live: templates and samples (in a checkout and in an installed
wheel) and the cache; and the one rule for joining a relative path to a folder."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from .errors import OutputError

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


def cache_dir() -> Path:
    """MODELGEN_CACHE_DIR, else $XDG_CACHE_HOME/modelgen, else ~/.cache/modelgen."""
    explicit = os.environ.get("MODELGEN_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path("~/.cache").expanduser())
    return Path(base) / "modelgen"


def is_plain_relative(rel: str) -> bool:
    """A relative POSIX path of plain names: not absolute, no empty, '.' or '..' part, no
    backslash, drive or control character. Only such paths are ever joined to a folder."""
    if not rel or "\\" in rel or any(ord(c) < 32 or ord(c) == 127 for c in rel):
        return False
    pure = PurePosixPath(rel)
    if pure.is_absolute() or ":" in pure.parts[0]:
        return False
    return all(part not in ("", ".", "..") for part in rel.split("/"))


def inside(root: Path, rel: str) -> Path:
    """root / rel, refused unless rel is a plain relative path that resolves inside root
    (symbolic links included): nothing read from data may choose where modelgen writes."""
    target = root / rel
    if is_plain_relative(rel):
        resolved_root = root.resolve()
        if target.resolve().is_relative_to(resolved_root):
            return target
    raise OutputError(
        f"refused to write {rel!r}: it would land outside {root}. This is a modelgen bug or a "
        "symbolic link inside the output folder: remove the link and run again"
    )
