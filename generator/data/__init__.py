"""Data sources, validation and the train/validation/test split."""

from __future__ import annotations

from .images import load_arrays, preprocess, to_rgb
from .scan import Dataset, ImageRecord, Skipped, scan_folder, scan_source
from .split import Split, split_dataset

__all__ = [
    "Dataset",
    "ImageRecord",
    "Skipped",
    "Split",
    "load_arrays",
    "preprocess",
    "scan_folder",
    "scan_source",
    "split_dataset",
    "to_rgb",
]
