"""Command line: python -m shapes_demo IMAGE... [--top-k N] [--json]"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from .classifier import InvalidImageError, load


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="shapes_demo", description="Classify images with the shipped ONNX model."
    )
    parser.add_argument("images", nargs="+", help="image files to classify")
    parser.add_argument("--top-k", type=int, default=1, help="how many labels to show per image")
    parser.add_argument("--json", action="store_true", help="print one JSON object per image")
    args = parser.parse_args(argv)
    if args.top_k < 1:
        parser.error("--top-k must be at least 1")
    classifier = load()
    status = 0
    for path in args.images:
        try:
            ranked = classifier.predict(path).top_k(args.top_k)
        except (OSError, InvalidImageError) as exc:
            print(f"{path}: error: {exc}", file=sys.stderr)
            status = 2
            continue
        if args.json:
            print(
                json.dumps(
                    {
                        "image": path,
                        "predictions": [
                            {"label": label, "score": round(score, 6)} for label, score in ranked
                        ],
                    }
                )
            )
        else:
            shown = ", ".join(f"{label} {score:.3f}" for label, score in ranked)
            print(f"{path}: {shown}")
    return status


if __name__ == "__main__":
    sys.exit(main())
