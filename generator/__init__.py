"""modelgen: build a tested, shippable image-classifier project from labelled images."""

from __future__ import annotations

__version__ = "0.1.0"
