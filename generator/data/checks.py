"""The per-file checks of the dataset doctor. Runs in worker processes: plain data in and out.

A file is either skipped (`problem` says why and what to do) or kept, possibly with notes
about what was converted on the way (CMYK, 16-bit, palette, transparency, animation, EXIF).
"""

from __future__ import annotations

import hashlib
import io
import stat
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from .images import SIXTEEN_BIT, reduce_jpeg, upright

MAX_PIXELS = 64_000_000  # larger images are refused as possible decompression bombs
MAX_FILE_BYTES = 256 * 1024**2  # larger files are skipped unread (a 64 MP 16-bit RGB TIFF fits)
MIN_SIDE = 16  # smaller images carry too little to learn from
THUMB = 12  # side of the colour thumbnail that confirms near duplicates
FINGERPRINT_SIZE = 64  # a large JPEG is fingerprinted from a decode at reduced scale
WEAK_MARGIN = 1  # grey levels: a dhash bit this close to a tie may flip in a near copy

Image.MAX_IMAGE_PIXELS = MAX_PIXELS

# Pillow's format name -> the file extensions that announce it.
EXTENSIONS = {
    "JPEG": (".jpg", ".jpeg", ".jpe", ".jfif"),
    "MPO": (".jpg", ".jpeg", ".mpo"),
    "PNG": (".png",),
    "BMP": (".bmp", ".dib"),
    "GIF": (".gif",),
    "TIFF": (".tif", ".tiff"),
    "WEBP": (".webp",),
    "PPM": (".ppm", ".pgm", ".pbm", ".pnm"),
    "ICO": (".ico",),
    "TGA": (".tga",),
}


@dataclass(frozen=True)
class FileCheck:
    """What one file turned out to be."""

    problem: str | None  # None: usable
    sha256: str = ""
    width: int = 0
    height: int = 0
    mode: str = ""
    format: str = ""
    dhash: int = 0  # 64-bit difference hash of the (first frame of the) image
    thumb: bytes = b""  # THUMB x THUMB RGB thumbnail, to confirm near duplicates
    notes: tuple[str, ...] = ()
    dhash_weak: int = 0  # the dhash bits decided by a near tie: a re-encoding may flip them


def fingerprints(image: Image.Image) -> tuple[int, int, bytes]:
    """(difference hash, its weak bits, small colour thumbnail). The 64-bit hash barely moves
    under resizing, recompression or small edits, so it finds near-duplicate candidates
    cheaply; a bit whose two cells differ by at most WEAK_MARGIN grey levels is weak (a
    re-encoded or 1% brighter copy may flip it), and the search tries both values of such
    bits. On small or flat images unrelated pictures can share the hash, so the thumbnail
    confirms (hand-written: the imagehash package would add scipy and PyWavelets for these
    lines, and has no notion of weak bits)."""
    grey = image.convert("L")
    small = grey.resize((9, 8), Image.Resampling.BILINEAR).tobytes()
    bits = weak = 0
    for row in range(8):
        for col in range(8):
            left, right = small[row * 9 + col], small[row * 9 + col + 1]
            bits = (bits << 1) | (left > right)
            weak = (weak << 1) | (abs(left - right) <= WEAK_MARGIN)
    thumb = image.convert("RGB").resize((THUMB, THUMB), Image.Resampling.BILINEAR)
    return bits, weak, thumb.tobytes()


def check_file(path: Path) -> FileCheck:
    """Read, hash and fully decode one file; never raises for bad data. The size is checked
    before a byte is read, so a stray multi-GB file costs nothing."""
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            return FileCheck("not a regular file (a device, pipe or socket): remove it")
        if info.st_size > MAX_FILE_BYTES:
            return FileCheck(
                f"{info.st_size / 1024**2:,.0f} MiB is over the {MAX_FILE_BYTES // 1024**2} MiB "
                "limit for one image, skipped unread: downscale or recompress it"
            )
        with path.open("rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        return FileCheck(f"cannot be read ({exc.strerror or exc}): check its permissions")
    if len(data) > MAX_FILE_BYTES:  # it grew after the size check
        return FileCheck(
            f"over the {MAX_FILE_BYTES // 1024**2} MiB limit for one image, skipped: "
            "downscale or recompress it"
        )
    if not data:
        return FileCheck("empty file (0 bytes): re-export or remove it")
    sha = hashlib.sha256(data).hexdigest()
    try:
        with warnings.catch_warnings():
            # the size is checked below, before decoding, with a message that names it
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > MAX_PIXELS:
                return FileCheck(
                    f"{width}x{height} pixels is over the {MAX_PIXELS:,}-pixel limit, refused "
                    "unread (a decompression bomb, or far larger than training needs): "
                    "downscale it",
                    sha,
                )
            # every byte is still decoded (a truncated file fails), a large JPEG at 1/2 to
            # 1/8 scale: the fingerprints need far fewer pixels (a 4032 x 3024 photo is
            # checked in 20.5 ms of CPU instead of 117)
            reduce_jpeg(image, FINGERPRINT_SIZE)
            image.load()
    except UnidentifiedImageError:
        return FileCheck("not an image Pillow can read: remove it or convert it to PNG/JPEG", sha)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        return FileCheck(f"over the {MAX_PIXELS:,}-pixel limit, refused unread: downscale it", sha)
    except Exception as exc:  # Pillow raises many types for corrupt data
        message = str(exc).split("\n")[0] or type(exc).__name__
        return FileCheck(f"corrupt or truncated image ({message}): re-export or remove it", sha)
    fmt = image.format or ""
    if min(width, height) < MIN_SIDE:
        return FileCheck(
            f"too small ({width}x{height} px; at least {MIN_SIDE} px a side is needed): "
            "use a larger copy or remove it",
            sha,
            width,
            height,
            image.mode,
            fmt,
        )
    notes = list(_notes(path, image, fmt))
    dhash, weak, thumb = fingerprints(upright(image))
    return FileCheck(None, sha, width, height, image.mode, fmt, dhash, thumb, tuple(notes), weak)


def _notes(path: Path, image: Image.Image, fmt: str) -> list[str]:
    notes = []
    suffix = path.suffix.lower()
    expected = EXTENSIONS.get(fmt)
    if expected and suffix not in expected:
        notes.append(
            f"is a {fmt} file named {suffix or '(no extension)'}: read as {fmt}; rename it "
            f"to {expected[0]} so other tools read it too"
        )
    mode = image.mode
    if mode == "CMYK":
        notes.append("CMYK image, converted to RGB")
    elif mode in SIXTEEN_BIT:
        notes.append(f"{'16' if mode.startswith('I;16') else '32'}-bit image, scaled to 8 bits")
    elif mode == "P":
        notes.append("palette image, converted to RGB")
    if mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        notes.append("has transparency, flattened onto white")
    frames = getattr(image, "n_frames", 1)
    if frames > 1:
        notes.append(f"animated ({frames} frames): the first frame is used")
    orientation = image.getexif().get(0x0112, 1)
    if orientation not in (0, 1):
        notes.append(f"EXIF orientation {orientation}, rotated upright")
    return notes
