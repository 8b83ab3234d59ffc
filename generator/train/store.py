"""Per-image arrays kept on disk: computed once per image content, read back in batches.

A store is a folder with an append-only raw array file, a key file (one image hash per line,
written after its row), a small JSON header and a lock file: runs sharing the cache write one
at a time, each taking in the rows the others added first. Rows are read through a memory
map, so the process never holds the whole dataset; an interrupted run keeps every complete row.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from ..data.images import iter_batches

BatchFn = Callable[[np.ndarray], np.ndarray]
T = TypeVar("T")


class ArrayStore:
    """Rows of a fixed shape and dtype, one per image content hash."""

    def __init__(self, path: Path, shape: tuple[int, ...], dtype: str) -> None:
        self.path = path
        self.shape = shape
        self.dtype = np.dtype(dtype)
        self.row_bytes = int(np.prod(shape)) * self.dtype.itemsize
        self._rows: dict[str, int] = {}  # key -> row number in the file
        self._count = 0  # rows in the file (a key written twice by an older version: 2 rows)
        self._map: np.ndarray | None = None
        self._load()

    @property
    def _data(self) -> Path:
        return self.path / "rows.bin"

    @property
    def _keys(self) -> Path:
        return self.path / "keys.txt"

    def _load(self, repair: bool = False) -> None:
        """Read the rows on disk: a header that does not match starts the store afresh (under
        the lock); a torn tail (a run killed mid-write, or one writing now) is not read, and
        with `repair` (holding the lock, so no run is writing) it is cut off."""
        header = {"shape": list(self.shape), "dtype": self.dtype.str, "version": 1}
        header_file = self.path / "header.json"
        try:
            valid = json.loads(header_file.read_text()) == header
        except (OSError, ValueError):
            valid = False
        if not valid:  # absent or written by something else: start afresh, never trust it
            if not repair:
                with self._writing():  # rereads under the lock, another run may have begun
                    return
            self.path.mkdir(parents=True, exist_ok=True)
            for stale in (self._data, self._keys):
                stale.unlink(missing_ok=True)
            header_file.write_text(json.dumps(header))
            self._rows, self._count = {}, 0
            return
        size = self._data.stat().st_size if self._data.exists() else 0
        text = self._keys.read_text() if self._keys.exists() else ""
        # whole rows and whole lines only: a key is written after its row, so a key line
        # without its newline, or without its row, is a write in progress or torn
        keys = text.split("\n")[:-1]
        count = min(size // self.row_bytes, len(keys))
        self._rows = {}
        for row, key in enumerate(keys[:count]):  # the first row of a key written twice
            self._rows.setdefault(key, row)
        self._count = count
        self._map = None
        torn = size != count * self.row_bytes or len(keys) != count or text[-1:] not in ("", "\n")
        if repair and torn:
            with self._data.open("ab") as fh:
                fh.truncate(count * self.row_bytes)
            self._keys.write_text("".join(f"{k}\n" for k in keys[:count]))

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """One writer at a time, across processes (runs sharing the cache): an exclusive lock
        on the store's lock file, and the rows other runs added since this store last read
        the disk taken in, so no row is stored twice and no key points at another's row."""
        import fcntl

        self.path.mkdir(parents=True, exist_ok=True)
        with (self.path / "lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                self._load(repair=True)
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def __len__(self) -> int:
        return len(self._rows)

    def missing(self, keys: Iterable[str]) -> list[str]:
        """The keys (content hashes) not stored yet, each once, in order."""
        seen: set[str] = set()
        todo = []
        for key in keys:
            if key not in self._rows and key not in seen:
                seen.add(key)
                todo.append(key)
        return todo

    def fill(
        self,
        images: Sequence[tuple[str, Path]],
        image_size: int,
        compute: BatchFn | None = None,
        *,
        batch_size: int = 32,
        on_batch: Callable[[int], None] | None = None,
        deadline: float | None = None,
    ) -> int:
        """Store the rows of the (key, image path) pairs not stored yet: `compute` maps a
        uint8 image batch to rows (None stores the pixels). Returns how many were added;
        stops past the deadline."""
        paths = dict(images)
        done = 0
        with self._writing(), self._data.open("ab") as data, self._keys.open("a") as keys:
            todo = self.missing(key for key, _ in images)
            batches = iter_batches(
                [paths[key] for key in todo], image_size, batch_size, workers=os.cpu_count() or 1
            )
            for batch in prefetched(batches):
                rows = batch if compute is None else compute(batch)
                self._append(data, keys, todo[done : done + len(batch)], rows)
                done += len(batch)
                if on_batch:
                    on_batch(len(batch))
                if deadline is not None and time.monotonic() > deadline:
                    break
        return done

    def add(self, keys: Sequence[str], rows: np.ndarray) -> None:
        """Store rows computed elsewhere (one per key)."""
        with self._writing(), self._data.open("ab") as data, self._keys.open("a") as key_file:
            self._append(data, key_file, keys, rows)

    def _append(self, data: Any, keys: Any, names: Sequence[str], rows: np.ndarray) -> None:
        data.write(np.ascontiguousarray(rows, dtype=self.dtype).tobytes())
        data.flush()
        keys.write("".join(f"{name}\n" for name in names))  # after its row: see _load
        keys.flush()
        for row, name in enumerate(names, start=self._count):
            self._rows.setdefault(name, row)
        self._count += len(names)

    def rows(self, keys: Sequence[str]) -> np.ndarray:
        """Row numbers of the keys (all must be stored)."""
        return np.array([self._rows[key] for key in keys], dtype=np.int64)

    def view(self) -> np.ndarray:
        """A read-only memory map of every stored row."""
        if self._map is None or len(self._map) != self._count:
            self._map = np.memmap(
                self._data, dtype=self.dtype, mode="r", shape=(self._count, *self.shape)
            )
        return self._map

    def take(self, keys: Sequence[str]) -> np.ndarray:
        """The keys' rows as one in-memory array (use for small subsets)."""
        return np.asarray(self.view()[self.rows(keys)])


def prefetched(items: Iterator[T]) -> Iterator[T]:
    """The items, the next one produced on a thread while the caller works on the current
    one (decoding overlaps inference: Pillow and onnxruntime release the GIL)."""
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(next, items, None)
        while True:
            item = future.result()
            if item is None:
                return
            future = pool.submit(next, items, None)
            yield item
