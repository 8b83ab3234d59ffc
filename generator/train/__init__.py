"""Training: backbones, devices, feature cache and the candidate search."""

from __future__ import annotations

from .candidates import Candidate
from .search import TrainOptions, TrainResult, train

__all__ = ["Candidate", "TrainOptions", "TrainResult", "train"]
