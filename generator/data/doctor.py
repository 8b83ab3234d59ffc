"""The dataset doctor as one call: list a source, check every file, split what is usable.
`modelgen new` and `modelgen inspect` both run it, with the same options."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from .scan import Dataset, scan_source
from .sources import SourceOptions
from .split import Split, split_dataset

MIN_IMAGES_PER_CLASS = 10
VALIDATION_FRACTION = 0.15
TEST_FRACTION = 0.15


def check_and_split(
    source: SourceOptions,
    *,
    seed: int,
    previous: Mapping[str, str] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    workers: int | None = None,
    extract_root: Path | None = None,
) -> tuple[Dataset, Split]:
    """Scan the source (DataError, exit 2, when it cannot give a meaningful training set)
    and split it; previous holds the splits a project already gave (content hash -> split),
    which are kept."""
    dataset = scan_source(
        source,
        min_images_per_class=MIN_IMAGES_PER_CLASS,
        workers=workers,
        extract_root=extract_root,
        on_progress=on_progress,
    )
    split = split_dataset(
        dataset,
        seed=seed,
        validation_fraction=VALIDATION_FRACTION,
        test_fraction=TEST_FRACTION,
        previous=previous,
    )
    return dataset, split
