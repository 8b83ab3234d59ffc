"""Frozen-backbone features, computed once per image and kept on disk."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..data.images import iter_batches
from ..data.scan import ImageRecord


def cache_dir() -> Path:
    """MODELGEN_CACHE_DIR, else $XDG_CACHE_HOME/modelgen, else ~/.cache/modelgen."""
    explicit = os.environ.get("MODELGEN_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path("~/.cache").expanduser())
    return Path(base) / "modelgen"


class FeatureCache:
    """Feature vectors keyed by image content hash, one file per backbone x size x weights.

    Only images whose hash is missing are embedded, so a rerun or a retrain with a few new
    images costs only the new ones.
    """

    def __init__(self, key: str, root: Path | None = None) -> None:
        self.path = (root or cache_dir()) / "features" / f"{key}.npz"
        self._vectors: dict[str, np.ndarray] = {}
        if self.path.is_file():
            try:
                with np.load(self.path) as stored:
                    for sha, vector in zip(stored["keys"], stored["vectors"], strict=True):
                        self._vectors[str(sha)] = vector
            except (OSError, ValueError, KeyError):
                self._vectors = {}  # a damaged cache is recomputed, never trusted

    def missing(self, records: Sequence[ImageRecord]) -> list[ImageRecord]:
        seen: set[str] = set()
        todo = []
        for r in records:
            if r.sha256 not in self._vectors and r.sha256 not in seen:
                seen.add(r.sha256)
                todo.append(r)
        return todo

    def fill(
        self,
        records: Sequence[ImageRecord],
        extractor: Any,
        input_size: int,
        *,
        batch_size: int = 32,
        on_batch: Callable[[int], None] | None = None,
        deadline: float | None = None,
    ) -> int:
        """Embed the records not cached yet; returns how many were computed.

        Stops early past the deadline; what was computed is saved even on Ctrl-C.
        """
        todo = self.missing(records)
        paths = [r.path for r in todo]
        done = 0
        try:
            for batch in iter_batches(paths, input_size, batch_size):
                vectors = np.asarray(extractor.predict_on_batch(batch.astype(np.float32)))
                for r, v in zip(todo[done : done + len(batch)], vectors, strict=True):
                    self._vectors[r.sha256] = v.astype(np.float32)
                done += len(batch)
                if on_batch:
                    on_batch(len(batch))
                if deadline is not None and time.monotonic() > deadline:
                    break
        finally:
            if done:
                self._save()
        return done

    def matrix(self, records: Sequence[ImageRecord]) -> np.ndarray:
        return np.stack([self._vectors[r.sha256] for r in records])

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        keys = sorted(self._vectors)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, suffix=".npz.tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez(
                    fh, keys=np.array(keys), vectors=np.stack([self._vectors[k] for k in keys])
                )
            os.replace(tmp, self.path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
