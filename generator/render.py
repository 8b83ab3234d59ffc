"""Render the project templates, format the Python with black, write the project atomically."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import tempfile
import threading
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import black
import jinja2

from .errors import InterruptedAfterWrite, OutputError, RenderError
from .resources import inside, is_plain_relative, templates_dir

BLACK_MODE = black.Mode(line_length=100, target_versions={black.TargetVersion.PY311})


MARKDOWN_SPECIAL = "\\`*_[]<>|"


def markdown_cell(text: object) -> str:
    """Text (a label, a file name: data) shown literally inside a Markdown table cell."""
    escaped = "".join("\\" + c if c in MARKDOWN_SPECIAL else c for c in str(text))
    return " ".join(escaped.splitlines())


def markdown_quoted(text: object) -> str:
    """Text (a label: data) in double quotes in Markdown prose, shown literally, non-ASCII
    letters included (not JSON's \\u escapes)."""
    return '"' + markdown_cell(text).replace('"', '\\"') + '"'


TOML_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
}


def toml_string(text: object) -> str:
    """A TOML basic string holding text (data: labels): quotes, backslashes and control
    characters escaped, every other character as itself. JSON (`tojson`) is not TOML: it
    writes a character beyond U+FFFF as a surrogate pair, which TOML refuses."""
    escaped = "".join(
        TOML_ESCAPES.get(c) or (f"\\u{ord(c):04X}" if ord(c) < 0x20 or ord(c) == 0x7F else c)
        for c in str(text)
    )
    return f'"{escaped}"'


def _environment(root: Path) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(root)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["md"] = markdown_cell
    env.filters["md_quoted"] = markdown_quoted
    env.filters["toml"] = toml_string
    return env


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


MANIFEST = "modelgen.toml"
"""Where a generated project lists its generated files ([generated] files = {path: sha256})."""
STATE_DIR = ".modelgen"
"""modelgen's own state in a project (the saved context, the pristine texts): never
merged, rewritten whole; `candidates/` in it holds new models a gate refused."""


def is_state(rel: str) -> bool:
    return rel == MANIFEST or rel.startswith(STATE_DIR + "/")


@dataclass(frozen=True)
class Written:
    """What write_project did to an existing project (all empty for a new folder)."""

    removed: tuple[str, ...] = ()  # generated before, no longer produced, unedited
    kept: tuple[str, ...] = ()  # generated before, no longer produced, edited: left alone


def sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def generated_files(output: Path) -> dict[str, str] | None:
    """{relative path: sha256} of the files modelgen generated in output, from its
    modelgen.toml; None when output holds no modelgen project that lists them."""
    try:
        document = tomllib.loads((output / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    generated = document.get("generated")
    files = generated.get("files") if isinstance(generated, dict) else None
    if not isinstance(files, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in files.items()
    ):
        return None
    return {rel: digest for rel, digest in files.items() if is_plain_relative(rel)}


def check_output(output: Path, *, force: bool, sources: Iterable[Path] = ()) -> None:
    """Fail before any work when writing would lose or mix in the user's files: output is a
    file, overlaps the data, is not empty (without --force), or under --force is a folder
    modelgen did not generate; or its parent cannot be written."""
    if output.exists() and not output.is_dir():
        raise OutputError(f"output {output} is a file, not a folder: choose another --output")
    resolved = output.resolve()
    for source in sources:
        source = source.resolve()
        if resolved == source or resolved.is_relative_to(source) or source.is_relative_to(resolved):
            raise OutputError(
                f"output folder {output} overlaps the data source {source}: modelgen never "
                "writes inside the data, nor puts the data inside a project it generates. "
                "Choose an --output outside the data"
            )
    if output.is_dir() and any(output.iterdir()):
        if not force:
            raise OutputError(
                f"output folder {output} is not empty: choose another --output, or pass "
                "--force to regenerate the modelgen project in it (files you added are left "
                "alone)"
            )
        if generated_files(output) is None:
            raise OutputError(
                f"output folder {output} is not empty and is not a project modelgen generated "
                f"(no {MANIFEST} listing its generated files): --force only replaces "
                "modelgen's own files. Choose another --output"
            )
        if not os.access(output, os.W_OK | os.X_OK):
            raise OutputError(f"output folder {output} is not writable: check its permissions")
        return
    parent = next(p for p in (resolved, *resolved.parents) if p.exists())
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(
            f"cannot create {output}: {parent} is not a writable folder. Choose another "
            "--output, or check its permissions"
        )


@contextlib.contextmanager
def finish_before_interrupt() -> Iterator[None]:
    """Hold Ctrl-C while files are swapped in, so a project is never left half replaced;
    an interrupt that arrived meanwhile is raised once the project is whole."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda number, frame: received.append(number))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        raise InterruptedAfterWrite()


def write_project(files: Mapping[str, bytes], output: Path, *, force: bool) -> Written:
    """Write every file to a temporary folder beside output, then move it into place.

    A new output appears whole or not at all. With force, in a project modelgen generated:
    its generated files are replaced, the ones no longer produced are removed unless the
    user edited them, and a file modelgen did not generate is never touched (a new file
    that would replace one is refused before anything changes).
    """
    check_output(output, force=force)
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.", dir=output.parent))
    try:
        for rel, content in files.items():
            target = inside(staging, rel)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        if output.is_dir() and not any(output.iterdir()):
            output.rmdir()
        if not output.exists():
            with finish_before_interrupt():
                os.rename(staging, output)
            return Written()
        return _replace_generated(files, staging, output)
    finally:
        if staging.exists():
            shutil.rmtree(staging)


def _replace_generated(files: Mapping[str, bytes], staging: Path, output: Path) -> Written:
    owned = generated_files(output) or {}
    targets = {rel: inside(output, rel) for rel in files}
    foreign = sorted(
        rel
        for rel, target in targets.items()
        if not is_state(rel) and rel not in owned and (target.exists() or target.is_symlink())
    )
    if foreign:
        raise OutputError(
            f"{output} has files modelgen did not generate where it would write "
            f"({', '.join(foreign[:5])}{' …' if len(foreign) > 5 else ''}): move them away "
            "and run again; nothing was changed"
        )
    stale: list[str] = []
    kept: list[str] = []
    for rel in sorted(set(owned) - set(files)):
        target = inside(output, rel)
        if not target.is_file():
            continue
        (stale if sha256(target.read_bytes()) == owned[rel] else kept).append(rel)
    stale_state = old_base_blobs(output, files)
    with finish_before_interrupt():
        for rel, target in targets.items():
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / rel, target)
        for rel in stale:
            inside(output, rel).unlink()
            remove_empty_parents(output, output / rel)
        for rel in stale_state:
            inside(output, rel).unlink()
    return Written(tuple(stale), tuple(kept))


def old_base_blobs(output: Path, files: Mapping[str, bytes]) -> list[str]:
    """Pristine texts kept for an earlier render that the new one does not keep."""
    base = output / STATE_DIR / "base"
    if not base.is_dir():
        return []
    found = (f"{STATE_DIR}/base/{p.name}" for p in base.iterdir() if p.is_file())
    return sorted(rel for rel in found if rel not in files)


def remove_empty_parents(root: Path, path: Path) -> None:
    for folder in path.parents:
        if folder == root or not folder.is_relative_to(root):
            return
        try:
            folder.rmdir()
        except OSError:  # not empty (or not ours to remove)
            return
