"""Data sources, validation and the train/validation/test split."""

from __future__ import annotations

from .doctor import (
    MIN_IMAGES_PER_CLASS,
    TEST_FRACTION,
    VALIDATION_FRACTION,
    check_and_split,
)
from .images import load_arrays, preprocess, to_rgb
from .scan import Dataset, ImageRecord, Skipped, scan_folder, scan_source
from .sources import SourceOptions
from .split import Split, split_dataset

__all__ = [
    "MIN_IMAGES_PER_CLASS",
    "TEST_FRACTION",
    "VALIDATION_FRACTION",
    "Dataset",
    "ImageRecord",
    "Skipped",
    "SourceOptions",
    "Split",
    "check_and_split",
    "load_arrays",
    "preprocess",
    "scan_folder",
    "scan_source",
    "split_dataset",
    "to_rgb",
]
