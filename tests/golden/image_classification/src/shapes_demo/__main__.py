"""Command line.

    python -m shapes_demo IMAGE_OR_FOLDER_OR_GLOB... [--top-k N] [--json] [--min-score S]
    python -m shapes_demo serve [--host H] [--port N]     (needs the [serve] extra)

Exit codes: 0 every input classified, 1 some input could not be read (each is reported),
2 wrong usage (argparse's own code).
"""

from __future__ import annotations

import argparse
import glob
import json
import sys
from collections.abc import Iterator, Sequence
from importlib import metadata
from pathlib import Path

from .classifier import InvalidImageError, Prediction, load

DISTRIBUTION = "shapes_demo".replace("_", "-")
EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
INPUT_ERROR = 1


def version() -> str:
    try:
        installed = metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        installed = "not installed"
    info = load().info
    return f"{DISTRIBUTION} {installed} (model version {info.version}, sha256 {info.sha256[:12]})"


def expand(arguments: Sequence[str]) -> Iterator[tuple[str, str | None]]:
    """(input, error) for each file named, found in a folder, or matched by a glob."""
    for argument in arguments:
        path = Path(argument)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix.lower() in EXTENSIONS)
            yield from ((str(p), None) for p in found)
            if not found:
                yield argument, "folder holds no image files"
        elif path.exists():
            yield argument, None
        elif glob.has_magic(argument):
            matched = sorted(glob.glob(argument, recursive=True))
            yield from ((m, None) for m in matched if Path(m).is_file())
            if not matched:
                yield argument, "no file matches this pattern"
        else:
            yield argument, "no such file or folder"


def _record(source: str, prediction: Prediction, top_k: int) -> dict[str, object]:
    return {
        "image": source,
        "label": prediction.answer,
        "confident": prediction.confident,
        "min_score": prediction.min_score,
        "predictions": [
            {"label": label, "score": round(score, 6)} for label, score in prediction.top_k(top_k)
        ],
    }


def classify(arguments: argparse.Namespace) -> int:
    """Classify every input in batches; one line (or JSON record) per input, errors too."""
    classifier = load()
    status = 0
    inputs = list(expand(arguments.images))
    for start in range(0, len(inputs), arguments.batch_size):
        chunk = inputs[start : start + arguments.batch_size]
        readable = [source for source, error in chunk if error is None]
        predictions = iter(
            classifier.predict_batch(readable, min_score=arguments.min_score, errors="skip")
        )
        for source, error in chunk:
            prediction = next(predictions) if error is None else None
            if prediction is None:
                status = INPUT_ERROR
                reason = error or _reason(source)
                if arguments.json:
                    print(json.dumps({"image": source, "error": reason}))
                else:
                    print(f"{source}: error: {reason}", file=sys.stderr)
                continue
            if arguments.json:
                print(json.dumps(_record(source, prediction, arguments.top_k)))
            else:
                shown = ", ".join(
                    f"{label} {score:.3f}" for label, score in prediction.top_k(arguments.top_k)
                )
                doubt = (
                    "" if prediction.confident else f" (not sure: below {prediction.min_score:.3f})"
                )
                print(f"{source}: {shown}{doubt}")
    return status


def _reason(source: str) -> str:
    """Why an input could not be read (it failed once already; read it again for the text)."""
    try:
        load().predict(source)
    except (InvalidImageError, OSError) as exc:
        return str(exc)
    return "could not be classified"


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["serve"]:
        return serve(argv[1:])
    parser = argparse.ArgumentParser(
        prog="shapes_demo",
        description="Classify images with the shipped ONNX model. `shapes_demo serve` runs "
        "the web service (a file named serve: pass ./serve).",
    )
    parser.add_argument("images", nargs="*", help="image files, folders or glob patterns")
    parser.add_argument("--top-k", type=_positive, default=1, help="labels shown per image")
    parser.add_argument("--json", action="store_true", help="one JSON record per input")
    parser.add_argument(
        "--min-score",
        type=float,
        default=None,
        help="below this score the answer is 'not sure' (default: the model's own threshold)",
    )
    parser.add_argument("--batch-size", type=_positive, default=32, help="images per batch")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    arguments = parser.parse_args(argv)
    if arguments.version:
        print(version())
        return 0
    if not arguments.images:
        parser.error("give at least one image, folder or glob")
    return classify(arguments)


def serve(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="shapes_demo serve", description="Run the web service.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    arguments = parser.parse_args(argv)
    try:
        import uvicorn

        from .serve import create_app
    except ImportError:
        print(f"the web service needs: pip install '{DISTRIBUTION}[cpu,serve]'", file=sys.stderr)
        return INPUT_ERROR
    uvicorn.run(create_app(), host=arguments.host, port=arguments.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
