"""The plan: what a search trained, as data. Recorded in modelgen.toml (`[model.plan]`) and
replayed from it (`--replay-plan`): the same recipes on the same folds for the same number
of epochs give the same model, with no deadline and no timing in the way."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .families import Kind
from .recipes import Recipe

CROSS_VALIDATION = "cross-validation"
HOLDOUT = "holdout"
DIRECT = "direct"  # one recipe on train + validation for what the budget holds, unscored


@dataclass(frozen=True)
class Evaluated:
    """A recipe and the epochs each of its fits trained (one per fold, or one on the
    validation split; 0: that fold was not reached)."""

    recipe: Recipe
    fold_epochs: tuple[int, ...]


@dataclass(frozen=True)
class Plan:
    """protocol: cross-validation over train + validation, holdout (fit on train, stop on
    validation) for large data, both then refit on train + validation; or direct (one
    unscored fit on train + validation).
    shipped: indices into `evaluated` of the model's members (two or more: an ensemble).
    refit_epochs: each member's epochs on train + validation; empty: no refit, when the
    budget left did not hold one (under cross-validation the members' fold models ship,
    averaged; under holdout their first fits)."""

    protocol: str
    folds: int
    evaluated: tuple[Evaluated, ...]
    shipped: tuple[int, ...]
    refit_epochs: tuple[int, ...] = ()
    embedding: str = "onnxruntime"  # what computed backbone features: onnxruntime or keras

    def names(self, kind: Kind) -> list[str]:
        """The families of that kind the plan trains, each once, in order."""
        found: list[str] = []
        for e in self.evaluated:
            if e.recipe.kind is kind and e.recipe.family not in found:
                found.append(e.recipe.family)
        return found

    def shipped_folds(self) -> int:
        """On how many folds every shipped member was scored (fewer than `folds` when the
        budget cut the chosen recipe short)."""
        return min(sum(1 for e in self.evaluated[i].fold_epochs if e) for i in self.shipped)

    def describe_score(self) -> str:
        """What the shipped model's accuracy was measured on, in words."""
        if self.protocol == CROSS_VALIDATION:
            done = self.shipped_folds()
            if done < self.folds:
                return f"accuracy on {done} of {self.folds} cross-validation folds"
            return f"{self.folds}-fold cross-validated accuracy"
        return "validation accuracy"

    def describe(self, replayed: bool = False) -> list[str]:
        """The plan in words, printed before a replay."""
        how = {
            CROSS_VALIDATION: f"{self.folds}-fold cross-validation over train + validation",
            HOLDOUT: "fits on train, scored on validation",
            DIRECT: "one fit on train + validation, unscored",
        }[self.protocol]
        head = "Replaying the recorded plan" if replayed else "Plan"
        lines = [f"{head}: {len(self.evaluated)} recipes by {how}"]
        for e in self.evaluated:
            lines.append(f"  {e.recipe.name}: epochs {', '.join(map(str, e.fold_epochs))}")
        members = " + ".join(self.evaluated[i].recipe.name for i in self.shipped)
        if self.refit_epochs:
            how = f", refit for {', '.join(map(str, self.refit_epochs))} epochs"
        elif self.protocol == CROSS_VALIDATION:
            how = ", the average of the fold models"
        else:
            how = ""
        lines.append(f"  shipped: {members}{how}")
        return lines

    def to_dict(self) -> dict[str, Any]:
        return {
            "protocol": self.protocol,
            "folds": self.folds,
            "recipes": [
                e.recipe.to_dict() | {"fold_epochs": list(e.fold_epochs)} for e in self.evaluated
            ],
            "shipped": list(self.shipped),
            "refit_epochs": list(self.refit_epochs),
            "embedding": self.embedding,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Plan:
        """A recorded plan; KeyError/ValueError/TypeError when it is malformed."""
        evaluated = []
        for i, row in enumerate(raw["recipes"], 1):
            try:
                recipe = Recipe.from_dict({k: v for k, v in row.items() if k != "fold_epochs"})
                epochs = tuple(int(e) for e in row["fold_epochs"])
            except KeyError as exc:
                raise ValueError(f"recipe {i} has no {exc}") from None
            except (TypeError, ValueError) as exc:
                raise ValueError(f"recipe {i}: {exc}") from None
            if any(e < 0 for e in epochs) or not epochs or not epochs[0]:
                raise ValueError(f"recipe {i} ({recipe.name}) has no first fit")
            evaluated.append(Evaluated(recipe, epochs))
        plan = cls(
            str(raw["protocol"]),
            int(raw["folds"]),
            tuple(evaluated),
            tuple(int(i) for i in raw["shipped"]),
            tuple(int(e) for e in raw.get("refit_epochs", ())),
            str(raw.get("embedding", "onnxruntime")),
        )
        if plan.embedding not in ("onnxruntime", "keras"):
            raise ValueError(f"unknown embedding {plan.embedding!r}")
        if plan.protocol == DIRECT and (len(evaluated) != 1 or len(plan.refit_epochs) != 1):
            raise ValueError("a direct plan trains one recipe, refit once")
        if plan.protocol not in (CROSS_VALIDATION, HOLDOUT, DIRECT):
            raise ValueError(f"unknown protocol {plan.protocol!r}")
        if plan.protocol == CROSS_VALIDATION and plan.folds < 2:
            raise ValueError("cross-validation needs 2 folds or more")
        if not plan.shipped or any(not 0 <= i < len(evaluated) for i in plan.shipped):
            raise ValueError("shipped names no recorded recipe")
        if plan.refit_epochs and len(plan.refit_epochs) != len(plan.shipped):
            raise ValueError("refit_epochs and shipped differ in length")
        if any(
            len(e.fold_epochs) != (plan.folds if plan.protocol == CROSS_VALIDATION else 1)
            for e in evaluated
        ):
            raise ValueError("a recipe's fold_epochs does not match the folds")
        return plan


def shipped_stage(protocol: str, folds: int, refit: bool, folded: bool, members: int) -> str:
    """How the shipped model was trained, in words: refit, its fold models averaged
    (`folded`), or its first fits; or a direct fit."""
    if protocol == DIRECT:
        return "trained on train + validation for the budget, not scored"
    if refit:
        return "refit on train + validation"
    if folded:
        whose = "its" if members == 1 else "each member's"
        return f"the average of {whose} {folds} fold models (no refit)"
    if folds == 1:
        return "trained on train, stopped on validation"
    return "first fold's fit (no time to refit)"
