"""A CSV/TSV manifest source: rows of path,label (a header may name the columns)."""

from __future__ import annotations

import csv
from pathlib import Path, PurePosixPath

from ..errors import DataError
from .listing import Entry, Listing, Note, check_label

PATH_COLUMNS = ("path", "file", "filename", "file_name", "image", "image_path", "filepath")
LABEL_COLUMNS = ("label", "class", "category", "target", "class_name")
MAX_MANIFEST_BYTES = 256 * 1024**2


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
