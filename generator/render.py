"""Render the project templates, format the Python with black, write the project atomically."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import black
import jinja2

from .errors import OutputError, RenderError
from .resources import templates_dir

BLACK_MODE = black.Mode(line_length=100, target_versions={black.TargetVersion.PY311})


def _environment(root: Path) -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(root)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )


def format_python(source: str, origin: str) -> str:
    try:
        return black.format_str(source, mode=BLACK_MODE)
    except black.InvalidInput as exc:
        raise RenderError(f"template {origin} rendered invalid Python: {exc}") from None


def render_tree(
    template: str,
    context: Mapping[str, Any],
    *,
    root: Path | None = None,
) -> dict[str, bytes]:
    """Every file of the template folder rendered: {relative posix path: content}.

    File names are templates too; `*.jinja` files are rendered, others copied as they are.
    """
    base = (root or templates_dir()) / template
    if not base.is_dir():
        raise RenderError(f"template folder {base} is missing: reinstall modelgen")
    env = _environment(base)
    files: dict[str, bytes] = {}
    for path in sorted(p for p in base.rglob("*") if p.is_file()):
        rel = path.relative_to(base).as_posix()
        try:
            target = env.from_string(rel).render(context)
            if rel.endswith(".jinja"):
                target = target.removesuffix(".jinja")
                text = env.get_template(rel).render(context)
                if target.endswith(".py"):
                    text = format_python(text, rel)
                files[target] = text.encode("utf-8")
            else:
                files[target] = path.read_bytes()
        except jinja2.TemplateError as exc:
            raise RenderError(f"template {rel} failed to render: {exc}") from None
    return files


def check_output(output: Path, *, force: bool) -> None:
    """Fail before any work when writing would overwrite the user's files without --force."""
    if output.exists() and not output.is_dir():
        raise OutputError(f"output {output} is a file, not a folder: choose another --output")
    if output.is_dir() and any(output.iterdir()) and not force:
        raise OutputError(
            f"output folder {output} is not empty: choose another --output, or pass --force "
            "to overwrite the generated files in it (other files are left alone)"
        )


def write_project(files: Mapping[str, bytes], output: Path, *, force: bool) -> None:
    """Write every file to a temporary folder beside output, then move it into place.

    A new output appears whole or not at all. With force, an existing folder gets the
    generated files replaced one by one and keeps every other file.
    """
    check_output(output, force=force)
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.", dir=output.parent))
    try:
        for rel, content in files.items():
            target = staging / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        if output.is_dir() and not any(output.iterdir()):
            output.rmdir()
        if not output.exists():
            os.rename(staging, output)
            return
        for rel in files:
            target = output / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / rel, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
