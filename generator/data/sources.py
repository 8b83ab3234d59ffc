"""Where the images come from: a folder per label, a CSV/TSV manifest, or a zip of either.

Listing only: every candidate file with its label, or the reason it cannot be used. Nothing
is ever written inside the data source (a zip is extracted into modelgen's cache).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError
from .archive import extract_zip
from .listing import Entry, Listing, Note, check_label
from .manifest import list_manifest

MANIFEST_SUFFIXES = (".csv", ".tsv")


@dataclass(frozen=True)
class SourceOptions:
    """Where the images are and how to read them."""

    data: Path  # a folder of label folders, a CSV/TSV manifest, or a .zip of either
    label_depth: int = 1  # folder sources: how many folder levels make the label
    path_column: str | None = None  # manifest sources: None finds it by its header name
    label_column: str | None = None
    strict: bool = False  # unusable files are errors instead of being skipped


def list_source(
    data: Path,
    *,
    label_depth: int = 1,
    path_column: str | None = None,
    label_column: str | None = None,
    extract_root: Path | None = None,
) -> Listing:
    """Every file the source names, with its label or why it cannot be used: a folder of
    label folders, a CSV/TSV manifest, or a zip of either (extracted into the cache)."""
    if not data.exists():
        raise DataError(
            f"data source {data} does not exist: pass --data with a folder that has one "
            "sub-folder of images per label, a CSV/TSV manifest or a .zip "
            "(or --data sample for the bundled sample)"
        )
    if data.is_file() and data.suffix.lower() == ".zip":
        folder = extract_zip(data, extract_root)
        inner = _zip_content(folder)
        listed = (
            list_manifest(inner, path_column, label_column, confine=folder)
            if inner.is_file()
            else list_folder(inner, label_depth, archive=data)
        )
        return Listing(listed.root, "zip", listed.entries, listed.notes, listed.folders)
    if data.is_file() and data.suffix.lower() in MANIFEST_SUFFIXES:
        return list_manifest(data, path_column, label_column)
    if data.is_file():
        raise DataError(
            f"data source {data} is a file modelgen cannot read as a source: pass a folder of "
            "label folders, a .csv/.tsv manifest (path,label) or a .zip of either"
        )
    return list_folder(data, label_depth)


# ---- folder -------------------------------------------------------------------------------


def _utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes arrive as lone surrogates
        return False
    return True


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir(follow_symlinks=True)
    except OSError:
        return False


def _shown(path: Path) -> str:
    """A printable name, even for a file name that is not valid UTF-8."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


MAC_METADATA = "__MACOSX"  # what the Finder's "Compress" adds to a zip beside the files


def _link_problem(path: Path, root: Path) -> str | None:
    """Why a symbolic link in a folder source is not followed, or None for a link to an
    image file inside the source. Links to folders are never followed: inside the source
    their images are scanned under their own folder (a link would count them twice, under
    another label), and nothing outside the source is read."""
    try:
        target = path.resolve(strict=True)
    except (OSError, RuntimeError):  # missing target, or a loop of links
        return "broken symbolic link (its target does not exist), skipped: remove the link"
    if not target.is_relative_to(root):
        return (
            "symbolic link to outside the data folder, not followed: copy the file or folder "
            "into the data folder, or list the images in a CSV manifest"
        )
    if target.is_dir():
        return (
            "symbolic link to a folder, not followed (its images are scanned where they are): "
            "remove the link, or copy the folder if its images belong to this label too"
        )
    return None


def list_folder(root: Path, label_depth: int = 1, archive: Path | None = None) -> Listing:
    """root/<label>/.../<file>; with label_depth=2, root/<group>/<label>/... and the label is
    "<group>/<label>" (archive: the zip root was extracted from). A symbolic link is
    followed only to a file inside root (_link_problem); a folder is never entered twice (a
    loop of bind mounts)."""
    if label_depth < 1:
        raise DataError(f"--label-depth must be 1 or more, not {label_depth}")
    root = root.resolve()
    entries: list[Entry] = []
    notes: list[Note] = []
    seen: set[tuple[int, int]] = set()
    folders: set[str] = set()

    def walk(folder: Path, parts: tuple[str, ...]) -> None:
        try:
            info = folder.stat()
        except OSError as exc:
            notes.append(Note(_rel(folder), f"cannot be read ({exc.strerror}): check permissions"))
            return
        key = (info.st_dev, info.st_ino)
        if key in seen:
            notes.append(
                Note(
                    _rel(folder),
                    "symbolic link loop (this folder was already scanned), not followed: "
                    "remove the link",
                )
            )
            return
        seen.add(key)
        if len(parts) == label_depth:
            folders.add("/".join(parts))
        try:
            children = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            notes.append(
                Note(
                    f"{_rel(folder)}/",
                    f"folder cannot be read ({exc.strerror}): check its permissions (chmod +rx)",
                )
            )
            return
        for child in children:
            if child.name.startswith("."):  # hidden, and macOS's ._ resource forks
                continue
            if child.name == MAC_METADATA and _is_dir(child):
                notes.append(Note(_rel(Path(child.path)), "macOS archive metadata, ignored"))
                continue
            path = Path(child.path)
            rel = _rel(path)
            if not _utf8(child.name):
                shown = _shown(path.relative_to(root))
                what = "folder name" if _is_dir(child) else "file name"
                label = "/".join(parts[:label_depth]) if len(parts) >= label_depth else ""
                entries.append(
                    Entry(path, shown, label, f"{what} is not valid UTF-8, skipped: rename it")
                )
                continue
            if child.is_symlink():
                problem = _link_problem(path, root)
                if problem is not None and len(parts) >= label_depth and not _is_dir(child):
                    entries.append(Entry(path, rel, "/".join(parts[:label_depth]), problem))
                    continue
                if problem is not None:
                    notes.append(Note(rel, problem))
                    continue
            if _is_dir(child):
                if len(parts) < label_depth:
                    check_label(child.name, f"label folder {root / rel}")
                walk(path, (*parts, child.name))
            elif len(parts) < label_depth:
                notes.append(
                    Note(
                        rel,
                        f"not inside a label folder "
                        f"({label_depth} level{'s' if label_depth > 1 else ''} deep), ignored",
                    )
                )
            else:
                label = "/".join(parts[:label_depth])
                entries.append(Entry(path, rel, label))

    def _rel(path: Path) -> str:
        return path.relative_to(root).as_posix() if path != root else "."

    walk(root, ())
    if not entries and not any("cannot be read" in n.text for n in notes):
        if archive is not None:  # root is the cache's copy: name what the user passed
            raise DataError(
                f"{archive} holds no label folders: zip a folder with one sub-folder of "
                "images per label (cat/, dog/) or a CSV manifest of path,label rows"
            )
        raise DataError(
            f"data source {root} has no label folders: put each class's images in a "
            f"sub-folder named after the label, e.g. {root / 'cat'}/ and {root / 'dog'}/"
        )
    return Listing(root, "folder", entries, notes, tuple(sorted(folders)))


# ---- zip ----------------------------------------------------------------------------------


def _zip_content(folder: Path) -> Path:
    """The extracted folder, the single folder it wraps, or the manifest at its top."""
    visible = [p for p in folder.iterdir() if not p.name.startswith((".", "__MACOSX"))]
    manifests = [p for p in visible if p.is_file() and p.suffix.lower() in MANIFEST_SUFFIXES]
    if len(manifests) == 1:
        return manifests[0]
    if len(visible) == 1 and visible[0].is_dir():
        return _zip_content(visible[0])
    return folder
