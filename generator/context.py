"""What the project templates are rendered from, and how it is saved in a project so that
`modelgen update` can render them again without training (.modelgen/context.json)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from .render import STATE_DIR


@dataclass(frozen=True)
class BudgetSummary:
    seconds: int
    used: int
    cut: bool


@dataclass(frozen=True)
class ParitySummary:
    max_abs_diff: float
    top1_agreement: float


@dataclass(frozen=True)
class DataSummary:
    images: int
    train: int
    validation: int
    test: int
    skipped: int
    source: str = "folder"  # folder, manifest or zip
    counts: dict[str, int] = field(default_factory=dict)  # images per label


@dataclass(frozen=True)
class TemplateContext:
    """Every value the templates use: a renamed or missing one fails type checking here,
    not the render."""

    project_name: str
    package: str
    distribution: str
    labels: list[str]
    input_size: int
    metrics: dict[str, Any]  # Evaluation.to_dict()
    winner: dict[str, Any]  # leaderboard rows: Candidate.leaderboard_row()
    leaderboard: list[dict[str, Any]]
    finals: list[dict[str, Any]]
    trials: int
    selection: str  # how the recipes were compared, in words
    top_losses: list[dict[str, Any]]
    budget: BudgetSummary
    skipped: list[tuple[str, str]]  # (candidate names, reason), no paths of this machine
    parity: ParitySummary
    data: DataSummary
    seed: int
    history: list[dict[str, Any]]  # [[history]] of modelgen.toml, this version last
    card: dict[str, Any]  # card.Card.to_dict(): the "not sure" threshold, probes, intervals

    def as_mapping(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def to_json(self) -> bytes:
        """What `modelgen update` renders the templates from again (.modelgen/context.json)."""
        return (
            json.dumps({"schema": CONTEXT_SCHEMA, "context": asdict(self)}, indent=2) + "\n"
        ).encode()

    @classmethod
    def from_json(cls, content: bytes) -> TemplateContext:
        """The saved context; ValueError when it is not one this modelgen can render."""
        document = json.loads(content)
        if not isinstance(document, dict) or document.get("schema") != CONTEXT_SCHEMA:
            raise ValueError("its schema is not the one this modelgen version writes")
        values = document["context"]
        missing = sorted({f.name for f in fields(cls)} - set(values))
        if missing:
            raise ValueError(f"it lacks {', '.join(missing)}")
        values = {f.name: values[f.name] for f in fields(cls)}
        values["budget"] = BudgetSummary(**values["budget"])
        values["parity"] = ParitySummary(**values["parity"])
        values["data"] = DataSummary(**values["data"])
        values["skipped"] = [tuple(pair) for pair in values["skipped"]]
        return cls(**values)


CONTEXT_SCHEMA = 1
CONTEXT = f"{STATE_DIR}/context.json"
BASE = f"{STATE_DIR}/base"  # the pristine render of every generated text file, by content hash
