"""Training: backbones, devices, feature cache and the candidate search."""

from __future__ import annotations

from .families import Kind, Skip, SkipCause
from .search import TrainOptions, TrainResult, train
from .trial import Candidate

__all__ = ["Candidate", "Kind", "Skip", "SkipCause", "TrainOptions", "TrainResult", "train"]
