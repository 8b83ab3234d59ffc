"""The user's answers and the frozen project spec that flows through every stage."""

from __future__ import annotations

import keyword
import re
import sys
import tomllib
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from .data.sources import SourceOptions
from .errors import UsageError
from .resources import default_sample

# Only what works is offered: wrapping an existing model and Ray clusters come later.
SCENARIOS: dict[str, str] = {
    "image-classification": "Train an image classifier on a folder of labelled images",
}
COMPUTE_TARGETS: dict[str, str] = {
    "auto": "GPU when TensorFlow sees one, else CPU",
    "cpu": "CPU only",
    "gpu": "GPU (fails when none is visible)",
}
SAMPLE = "sample"
DEFAULT_TIME_BUDGET = 300
MIN_TIME_BUDGET = 10


@dataclass(frozen=True)
class Answers:
    """Every question `modelgen new` asks; saved in the generated project's modelgen.toml."""

    scenario: str = "image-classification"
    data: str = SAMPLE
    compute: str = "auto"
    name: str = "my_classifier"
    output: str = ""
    time_budget: int = DEFAULT_TIME_BUDGET
    weights: str = "auto"
    seed: int = 42
    label_depth: int = 1  # folder sources: how many folder levels make the label
    path_column: str = ""  # manifest sources: "" finds the column by its header name
    label_column: str = ""
    strict: bool = False  # unusable files are errors instead of being skipped

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


ANSWER_FIELDS = tuple(f.name for f in fields(Answers))
ANSWER_TYPES: dict[str, type] = {
    f.name: {"str": str, "int": int, "bool": bool}[str(f.type)] for f in fields(Answers)
}


@dataclass(frozen=True)
class ProjectSpec:
    """The resolved, validated configuration of one run."""

    answers: Answers
    data_path: Path
    output_path: Path
    package: str
    force: bool = False
    verbose: bool = False
    history: History | None = None
    """The images of the modelgen.toml replayed: what changed since, and the splits kept."""
    replay_plan: dict[str, Any] | None = None
    """[model.plan] of a modelgen.toml, with --replay-plan: trained again exactly."""

    @property
    def uses_sample(self) -> bool:
        return self.answers.data == SAMPLE

    @property
    def source(self) -> SourceOptions:
        a = self.answers
        return SourceOptions(
            self.data_path, a.label_depth, a.path_column or None, a.label_column or None, a.strict
        )


MAX_PACKAGE = 100  # characters: the package is a folder name, and file names stop at 255
TAKEN = frozenset(("test", "tests", "numpy", "pil", "pillow", "onnx", "onnxruntime"))
TAKEN |= {"onnxruntime_gpu", "fastapi", "uvicorn", "multipart", "python_multipart", "pytest"}
TAKEN |= {"httpx", "hatchling"}
"""Names the generated project cannot take beside the standard library's: its tests folder,
`test` (the standard library's own tests, missing from sys.stdlib_module_names), and the
import and distribution names of what it depends on (a package named numpy would shadow
numpy, and pip cannot install a distribution that depends on its own name)."""


def package_name(name: str) -> str:
    """The importable package for a project name: 'My Classifier' -> 'my_classifier'. A name
    Python or the generated project already uses (a keyword, a standard-library module such
    as json, a dependency such as numpy: TAKEN) gets a suffix: 'json' -> 'json_model'."""
    package = re.sub(r"[^0-9a-zA-Z]+", "_", name.strip()).strip("_").lower()
    if not package:
        raise UsageError(
            f"project name {name!r} has no letters or digits: pass e.g. --name my_classifier"
        )
    if package[0].isdigit():
        package = f"model_{package}"
    if keyword.iskeyword(package) or package in sys.stdlib_module_names or package in TAKEN:
        package = f"{package}_model"
    if len(package) > MAX_PACKAGE:
        raise UsageError(
            f"project name {name[:40]!r}... makes a package name of {len(package)} characters: "
            f"pass a --name of at most {MAX_PACKAGE}"
        )
    return package


@dataclass(frozen=True)
class History:
    """What a generated project's modelgen.toml says about its images."""

    files: tuple[dict[str, Any], ...]  # [data] files: path, label, sha256, split
    splits: dict[str, str]  # content hash -> split, images no longer there included
    versions: tuple[dict[str, Any], ...] = ()  # [[history]]: the project's model versions


def _toml(path: Path) -> dict[str, Any] | None:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        return None


def load_history(path: Path) -> History | None:
    """The images of a generated modelgen.toml (None for a plain answers file)."""
    document = _toml(path) or {}
    data = document.get("data")
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(data, dict) or not isinstance(files, list):
        return None
    rows = [f for f in files if isinstance(f, dict) and {"path", "label", "sha256"} <= set(f)]
    former = data.get("former", [])
    splits = {
        str(f["sha256"]): str(f["split"])
        for f in [*(former if isinstance(former, list) else []), *rows]
        if isinstance(f, dict) and "sha256" in f and "split" in f
    }
    versions = document.get("history", [])
    kept = tuple(v for v in versions if isinstance(v, dict)) if isinstance(versions, list) else ()
    return History(tuple(rows), splits, kept)


def load_plan(path: Path) -> dict[str, Any]:
    """The [model.plan] table a generated modelgen.toml recorded, for --replay-plan."""
    document = _toml(path) or {}
    model = document.get("model")
    plan = model.get("plan") if isinstance(model, dict) else None
    if not isinstance(plan, dict):
        raise UsageError(
            f"{path} records no plan ([model.plan]): --replay-plan needs the modelgen.toml of "
            "a project generated by this modelgen version"
        )
    return plan


def load_answers_file(path: Path) -> dict[str, Any]:
    """Answers from a TOML file: top-level keys, or the [answers] table of a modelgen.toml."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"answers file {path} does not exist: check the --answers path") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"answers file {path} is not valid TOML ({exc}): fix the file") from None
    if isinstance(data.get("answers"), dict):
        data = data["answers"]
    unknown = sorted(set(data) - set(ANSWER_FIELDS))
    if unknown:
        raise UsageError(
            f"answers file {path} has unknown keys {', '.join(unknown)}: "
            f"expected only {', '.join(ANSWER_FIELDS)}"
        )
    for key, value in data.items():
        wanted = ANSWER_TYPES[key]
        if not isinstance(value, wanted) or (wanted is int and isinstance(value, bool)):
            example = {str: '"text"', int: "42", bool: "true"}[wanted]
            raise UsageError(
                f"answers file {path}: {key} = {value!r} must be a "
                f"{ {str: 'string', int: 'whole number', bool: 'true or false'}[wanted]} "
                f"(e.g. {key} = {example}): fix the file"
            )
    return data


def make_answers(values: dict[str, Any]) -> Answers:
    """Validated answers from a mapping (flags, file or prompts merged)."""
    answers = replace(Answers(), **values)
    if answers.scenario not in SCENARIOS:
        raise UsageError(
            f"unknown scenario {answers.scenario!r}: this version offers --scenario "
            f"{' or '.join(SCENARIOS)}"
        )
    if answers.compute not in COMPUTE_TARGETS:
        raise UsageError(
            f"unknown compute target {answers.compute!r}: use --compute "
            f"{', '.join(COMPUTE_TARGETS)}"
        )
    try:
        budget = int(answers.time_budget)
        seed = int(answers.seed)
        label_depth = int(answers.label_depth)
    except (TypeError, ValueError):
        raise UsageError(
            f"time budget {answers.time_budget!r}, seed {answers.seed!r} and label depth "
            f"{answers.label_depth!r} must be whole numbers"
        ) from None
    if not isinstance(answers.strict, bool):
        raise UsageError(f"strict must be true or false, not {answers.strict!r}")
    if label_depth < 1:
        raise UsageError(f"label depth {label_depth} must be 1 or more: use --label-depth 1")
    if budget < MIN_TIME_BUDGET:
        raise UsageError(
            f"time budget {budget}s is too short to train anything: "
            f"use --time-budget {MIN_TIME_BUDGET} or more"
        )
    package_name(answers.name)
    return replace(
        answers,
        time_budget=budget,
        seed=seed,
        label_depth=label_depth,
        data=str(answers.data),
    )


def resolve(
    answers: Answers,
    *,
    cwd: Path,
    force: bool = False,
    verbose: bool = False,
    history: History | None = None,
    replay_plan: dict[str, Any] | None = None,
) -> ProjectSpec:
    """Turn answers into a spec: absolute paths and the package name.

    history: the images of the modelgen.toml replayed. When the output folder already holds
    a generated project, its own modelgen.toml is the history: a project's images keep their
    splits in every later run, whatever answers file was passed."""
    if answers.data == SAMPLE:
        data_path = default_sample()
    else:  # checked by the doctor (generator/data), the one place that reads sources
        data_path = (cwd / Path(answers.data).expanduser()).resolve()
    output = answers.output or answers.name
    output_path = (cwd / Path(output).expanduser()).resolve()
    own = load_history(output_path / "modelgen.toml")
    if own is not None:
        history = own
    elif history is not None:  # another project's images: its splits, not its versions
        history = replace(history, versions=())
    return ProjectSpec(
        answers=answers,
        data_path=data_path,
        output_path=output_path,
        package=package_name(answers.name),
        force=force,
        verbose=verbose,
        history=history,
        replay_plan=replay_plan,
    )
