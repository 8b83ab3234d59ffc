"""What a candidate family is, and why one was not trained: the values the planner, the
search and the reports pass each other. Only display code turns them into words."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Kind(Enum):
    """How a family learns."""

    TRANSFER = "transfer"  # a head on a frozen pretrained backbone's cached features
    CNN = "cnn"  # a convnet trained from scratch on pixels


class SkipCause(Enum):
    """Why a family was not trained."""

    WEIGHTS_OFF = "weights off"  # --weights none
    NO_WEIGHTS = "no weights"  # pretrained weights could not be had
    SMALL_BUDGET = "small budget"  # tiny budgets try only the cheapest family of each kind
    UNAFFORDABLE = "unaffordable"  # its share of the budget is too small for it
    NOTHING_FITS = "nothing fits"  # the budget is too small for any family


@dataclass(frozen=True)
class Skip:
    """A family that was not trained: its cause, and a detail in a few words (numbers or an
    error; never a path on this machine, so it can go into the generated project)."""

    family: str
    kind: Kind
    cause: SkipCause
    detail: str = ""


def candidate_name(family: str, kind: Kind, *, fine_tuned: bool = False) -> str:
    """The name a leaderboard shows: "mobilenet_v2-frozen", "mobilenet_v2-fine-tuned",
    "small-cnn"."""
    if kind is Kind.TRANSFER:
        return f"{family}-{'fine-tuned' if fine_tuned else 'frozen'}"
    return family


SMALL_BUDGET_SECONDS = 30  # below it, only the cheapest candidate of each kind is tried


def describe_skip(skip: Skip) -> str:
    """Why, in words that do not name the family (so skips with one cause group well)."""
    if skip.cause is SkipCause.WEIGHTS_OFF:
        return "pretrained weights turned off (--weights none)"
    if skip.cause is SkipCause.NO_WEIGHTS:
        return f"ImageNet weights are not available ({skip.detail})"
    if skip.cause is SkipCause.SMALL_BUDGET:
        return f"budgets under {SMALL_BUDGET_SECONDS}s try only the cheapest candidates"
    return skip.detail


def grouped_skips(skips: tuple[Skip, ...] | list[Skip]) -> list[tuple[list[str], str]]:
    """(candidate names, reason) per distinct reason, in first-seen order."""
    groups: dict[str, list[str]] = {}
    for skip in skips:
        groups.setdefault(describe_skip(skip), []).append(candidate_name(skip.family, skip.kind))
    return [(names, reason) for reason, names in groups.items()]
