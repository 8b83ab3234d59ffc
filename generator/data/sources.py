"""Where the images come from: a folder per label, a CSV/TSV manifest, or a zip of either.

Listing only: every candidate file with its label, or the reason it cannot be used. Nothing
is ever written inside the data source (a zip is extracted into modelgen's cache).
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..errors import DataError
from ..resources import is_plain_relative
from .archive import extract_zip

MANIFEST_SUFFIXES = (".csv", ".tsv")
PATH_COLUMNS = ("path", "file", "filename", "file_name", "image", "image_path", "filepath")
LABEL_COLUMNS = ("label", "class", "category", "target", "class_name")
MAX_MANIFEST_BYTES = 256 * 1024**2
MAX_LABEL_LENGTH = 200
LABEL_RULE = (
    "a label is 1 to 200 characters with no control character or backslash; '/' may separate "
    "parts (as --label-depth 2 makes 'cats/black'), but no part may be empty, '.' or '..'"
)


@dataclass(frozen=True)
class SourceOptions:
    """Where the images are and how to read them."""

    data: Path  # a folder of label folders, a CSV/TSV manifest, or a .zip of either
    label_depth: int = 1  # folder sources: how many folder levels make the label
    path_column: str | None = None  # manifest sources: None finds it by its header name
    label_column: str | None = None
    strict: bool = False  # unusable files are errors instead of being skipped


@dataclass(frozen=True)
class Note:
    """A finding that does not stop the run: a converted file, an ignored file or folder."""

    path: str | None  # the file or folder it is about (relative to the source); None: all
    text: str

    def __str__(self) -> str:
        return f"{self.path}: {self.text}" if self.path else self.text


@dataclass(frozen=True)
class Entry:
    """A file the source names: its label, or why it cannot be used (problem)."""

    path: Path
    relpath: str
    label: str
    problem: str | None = None


@dataclass(frozen=True)
class Listing:
    root: Path  # what relative paths are relative to
    kind: str  # "folder", "manifest" or "zip"
    entries: list[Entry]
    notes: list[Note]  # source-level findings: ignored files, unreadable folders, loops
    folders: tuple[str, ...] = ()  # label folders found, with or without images


def check_label(label: str, where: str) -> str:
    """The label, stripped of surrounding spaces, or DataError naming where it was found.

    Labels are data, never paths (copied files are named by content hash), but a label that
    looks like a path or hides control characters is almost always a mistake in the source."""
    label = label.strip()
    if 0 < len(label) <= MAX_LABEL_LENGTH and is_plain_relative(label):
        return label
    raise DataError(f"{where}: label {label!r} is refused ({LABEL_RULE}): rename it")


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


# ---- manifest -----------------------------------------------------------------------------


def _pick(header: list[str], wanted: str | None, known: tuple[str, ...], what: str) -> int:
    lowered = [h.strip().lower() for h in header]
    if wanted:
        if wanted.lower() not in lowered:
            raise DataError(
                f"the manifest has no column {wanted!r} (columns: {', '.join(header)}): "
                f"pass --{what}-column with one of them"
            )
        return lowered.index(wanted.lower())
    for name in known:
        if name in lowered:
            return lowered.index(name)
    raise DataError(
        f"cannot tell which manifest column holds the {what} (columns: {', '.join(header)}): "
        f"name it {known[0]!r} in the header or pass --{what}-column"
    )


def _read_manifest(manifest: Path) -> str:
    try:
        size = manifest.stat().st_size
        if size > MAX_MANIFEST_BYTES:
            raise DataError(
                f"manifest {manifest} is {size / 1024**2:.0f} MiB, over the "
                f"{MAX_MANIFEST_BYTES / 1024**2:.0f} MiB limit: split it, or use a folder source"
            )
        return manifest.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"manifest {manifest} is not UTF-8 text ({exc.reason} at byte {exc.start}): "
            "save it as UTF-8"
        ) from None
    except OSError as exc:
        raise DataError(
            f"manifest {manifest} cannot be read ({exc.strerror or exc}): check that it "
            "exists and that you may read it"
        ) from None


def list_manifest(
    manifest: Path,
    path_column: str | None = None,
    label_column: str | None = None,
    *,
    confine: Path | None = None,
) -> Listing:
    """Rows of path,label; a header names the columns (or --path-column/--label-column), and
    without one the first two columns are taken. Relative paths start at the manifest's
    folder. A manifest on disk may name files anywhere its user chose; with `confine` (the
    folder a zip was extracted to), every path must resolve inside it, else DataError."""
    manifest = manifest.resolve()
    base = manifest.parent
    text = _read_manifest(manifest)
    delimiter = "\t" if manifest.suffix.lower() == ".tsv" else _sniff(text)
    numbered = _numbered_rows(text, delimiter)
    rows = [row for _, row in numbered]
    if not rows:
        raise DataError(f"manifest {manifest} is empty: add one line per image, path,label")
    header = [cell.strip().lower() for cell in rows[0]]

    def names_a_file(row: list[str]) -> bool:
        return any(cell.strip() and (base / cell.strip()).is_file() for cell in row)

    looks_like_header = bool(set(header) & {*PATH_COLUMNS, *LABEL_COLUMNS}) or (
        len(rows) > 1 and not names_a_file(rows[0]) and names_a_file(rows[1])
    )
    if path_column or label_column or looks_like_header:
        p = _pick(rows[0], path_column, PATH_COLUMNS, "path")
        lab = _pick(rows[0], label_column, LABEL_COLUMNS, "label")
        numbered, first = numbered[1:], "header"
    else:  # no header: path, label
        p, lab, first = 0, 1, "first row"
    width = len(rows[0])
    entries: list[Entry] = []
    notes: list[Note] = []
    for line, row in numbered:
        if len(row) <= max(p, lab) or not row[p].strip() or not row[lab].strip():
            notes.append(Note(f"{manifest.name} line {line}", "needs a path and a label, ignored"))
            continue
        while len(row) > width and not row[-1].strip():  # trailing empty cells: harmless
            row = row[:-1]
        if len(row) > width:
            notes.append(
                Note(
                    f"{manifest.name} line {line}",
                    f"has {len(row)} cells where the {first} has "
                    f"{width}, ignored: quote a path or label that contains {delimiter!r}",
                )
            )
            continue
        raw = row[p].strip()
        label = check_label(row[lab], f"{manifest.name} line {line}")
        path = Path(raw) if Path(raw).is_absolute() else base / raw
        if confine is not None and not path.resolve().is_relative_to(confine.resolve()):
            raise DataError(
                f"{manifest.name} line {line}: path {raw!r} points outside the zip archive, "
                "refused: inside a zip, every manifest path must name a file in the archive, "
                "relative to the manifest"
            )
        rel = raw if not Path(raw).is_absolute() else path.as_posix()
        problem = None
        if not path.is_file():
            problem = (
                f"named in {manifest.name} line {line} but "
                f"{'is not a file' if path.exists() else 'missing'}: fix the path or the row"
            )
        entries.append(Entry(path, PurePosixPath(rel).as_posix(), label, problem))
    return Listing(base, "manifest", entries, notes)


def _numbered_rows(text: str, delimiter: str) -> list[tuple[int, list[str]]]:
    """The manifest's non-blank rows, each with the line it starts on (blank lines and
    quoted line breaks do not shift the numbers the notes give)."""
    reader = csv.reader(text.splitlines(), delimiter=delimiter)
    numbered = []
    start = 1
    for row in reader:
        if any(row):
            numbered.append((start, row))
        start = reader.line_num + 1
    return numbered


def _sniff(text: str) -> str:
    try:
        return csv.Sniffer().sniff(text[:4096], delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


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
