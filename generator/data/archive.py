"""Zip sources: extracted once per content into modelgen's cache, after every member has
been checked; anything unsafe or broken is refused naming the member."""

from __future__ import annotations

import hashlib
import lzma
import os
import shutil
import stat
import tempfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from ..errors import DataError
from ..resources import cache_dir, inside, is_plain_relative

MAX_ZIP_BYTES = 8 * 1024**3  # uncompressed total a zip may expand to
MAX_ZIP_RATIO = 200  # uncompressed / compressed, per member: beyond it, a zip bomb
MAX_ZIP_MEMBERS = 500_000  # more entries than any image dataset modelgen can train on
ZIP_METHODS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}


def _extract_dir(archive: Path, root: Path | None) -> Path:
    digest = hashlib.sha256()
    with archive.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return (root or cache_dir() / "extracted") / digest.hexdigest()[:24]


def _member_name(archive: Path, info: zipfile.ZipInfo) -> str:
    """The member's relative path, or DataError: absolute, climbing, empty, odd names."""
    name = info.filename
    plain = name.replace("\\", "/").rstrip("/")
    pure = PurePosixPath(plain)
    if name.startswith(("/", "\\")) or pure.is_absolute() or (plain and ":" in pure.parts[0]):
        raise DataError(
            f"{archive} holds an absolute path ({name}), refused: zip the folder "
            "with relative paths"
        )
    if ".." in pure.parts:
        raise DataError(
            f"{archive} holds a path that climbs out of the archive ({name}), "
            "refused: zip the folder with plain relative paths"
        )
    if not is_plain_relative(plain):
        raise DataError(
            f"{archive} holds a member with an empty or unusable name ({name!r}), refused: "
            "re-create the zip from a folder of plainly named files"
        )
    return plain


def _check_members(archive: Path, bundle: zipfile.ZipFile, max_bytes: int) -> list[str]:
    """Every member's name, once the whole archive is known to be safe to extract."""
    infos = bundle.infolist()
    if len(infos) > MAX_ZIP_MEMBERS:
        raise DataError(
            f"{archive} holds {len(infos):,} entries, over the {MAX_ZIP_MEMBERS:,} limit, "
            "refused: split it, or pass the extracted folder as --data"
        )
    total = 0
    names: list[str] = []
    seen: set[str] = set()
    for info in infos:
        name = _member_name(archive, info)
        if stat.S_ISLNK(info.external_attr >> 16):
            raise DataError(
                f"{archive} holds a symbolic link ({name}), refused: zip the files, "
                "not links (zip without --symlinks)"
            )
        if info.flag_bits & 0x1:
            raise DataError(
                f"{archive}: {name} is encrypted, refused: re-create the zip without a password"
            )
        if info.compress_type not in ZIP_METHODS:
            raise DataError(
                f"{archive}: {name} uses compression method {info.compress_type}, which "
                "modelgen cannot read: re-create the zip with plain deflate compression"
            )
        if name in seen:
            raise DataError(
                f"{archive} holds two members named {name}, refused: re-create the zip "
                "from a folder"
            )
        seen.add(name)
        total += info.file_size
        if total > max_bytes:
            raise DataError(
                f"{archive} expands to more than {max_bytes / 1024**3:.0f} GiB, refused: "
                "split it, or pass the extracted folder as --data"
            )
        if info.compress_size and info.file_size / info.compress_size > MAX_ZIP_RATIO:
            raise DataError(
                f"{archive}: {name} expands {info.file_size / info.compress_size:.0f}x "
                "(a zip bomb?), refused: extract it yourself if you trust it"
            )
        names.append(name)
    return names


def extract_zip(archive: Path, root: Path | None = None, max_bytes: int = MAX_ZIP_BYTES) -> Path:
    """Extract into the cache (once per zip content), refusing anything unsafe or broken with
    DataError naming the member: absolute paths, paths that climb out, empty names, symbolic
    links, encryption, unknown compression, too many entries, a total over max_bytes,
    bomb-like ratios, bad CRCs and corrupt data."""
    target = _extract_dir(archive, root)
    if target.is_dir():
        return target
    try:
        bundle = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise DataError(f"{archive} is not a readable zip ({exc}): re-create it") from None
    with bundle:
        names = _check_members(archive, bundle, max_bytes)
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".partial-"))
        try:
            for info, name in zip(bundle.infolist(), names, strict=True):
                if info.is_dir():
                    continue
                out = inside(staging, name)
                out.parent.mkdir(parents=True, exist_ok=True)
                try:
                    with bundle.open(info) as src, out.open("wb") as dst:
                        shutil.copyfileobj(src, dst, 1 << 20)
                except (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError) as exc:
                    raise DataError(
                        f"{archive}: {name} is corrupt ({exc}): re-create the zip"
                    ) from None
                except (OSError, RuntimeError, NotImplementedError) as exc:
                    if isinstance(exc, OSError) and exc.errno is not None:
                        raise DataError(
                            f"cannot extract {archive} into {target.parent} "
                            f"({exc.strerror}): free disk space or set MODELGEN_CACHE_DIR"
                        ) from None
                    raise DataError(
                        f"{archive}: {name} cannot be read ({exc}): re-create the zip"
                    ) from None
            os.replace(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target
