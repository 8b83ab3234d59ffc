"""The shipped model: the best recipe, or the average of the best two when their
out-of-fold predictions say averaging helps; refit on train + validation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .backbones import LoadedBackbone
from .networks import (
    CNN_ARCHITECTURES,
    assemble,
    average,
    average_heads,
    build_extractor,
    build_head,
)
from .recipes import Recipe
from .trial import Candidate, FitResult, scores


@dataclass
class Scored:
    """A recipe's fits: out-of-fold probabilities, epochs, time, and its first fit's model."""

    recipe: Recipe
    probabilities: np.ndarray  # NaN rows: folds not reached
    fits: list[FitResult] = field(default_factory=list)
    model: Any = None  # the recipe's model (later fits reuse it)
    fold_weights: list[Any] = field(default_factory=list)  # each fold's fit's weights
    flops: float = 0.0
    abandoned: bool = False  # its first folds put it behind the best: the rest were not fit

    @property
    def covered(self) -> np.ndarray:
        return ~np.isnan(self.probabilities[:, 0])


def fold_epochs(s: Scored, folds: int) -> tuple[int, ...]:
    done = [f.epochs for f in s.fits]
    return tuple(done + [0] * (folds - len(done)))


def scored_scores(s: Scored, y: np.ndarray) -> tuple[float, float]:
    covered = s.covered
    return scores(s.probabilities[covered], y[covered])


def scored_loss(s: Scored, y: np.ndarray) -> float:
    return scored_scores(s, y)[1]


def improves(new: Scored, best: Scored, y: np.ndarray) -> bool:
    """Whether `new` beats `best` beyond noise: its log-loss on the images both were scored
    on is lower by more than one standard error of the paired per-image differences (on a
    few hundred images, a 1% lower log-loss is noise)."""
    rows = new.covered & best.covered
    if rows.sum() < 2:
        return scored_loss(new, y) < scored_loss(best, y)
    mean, error = _paired(new, best, y, rows)
    return mean < -error


def behind(new: Scored, best: Scored, y: np.ndarray) -> bool:
    """Whether `new`, scored on some folds so far, is worse than `best` beyond noise on the
    same images (improves' test, mirrored): its remaining folds would be spent on a recipe
    the search will not choose."""
    rows = new.covered & best.covered
    if rows.sum() < 2:
        return False
    mean, error = _paired(new, best, y, rows)
    return mean > error


def _paired(new: Scored, best: Scored, y: np.ndarray, rows: np.ndarray) -> tuple[float, float]:
    """The mean per-image log-loss difference (new - best) and its standard error."""
    diff = _losses(new, y, rows) - _losses(best, y, rows)
    return float(diff.mean()), float(diff.std(ddof=1) / np.sqrt(len(diff)))


def _losses(s: Scored, y: np.ndarray, rows: np.ndarray) -> np.ndarray:
    p = s.probabilities[rows, y[rows]]
    return np.asarray(-np.log(np.clip(p, 1e-7, 1.0)))


def choose(scored: Sequence[Scored], y: np.ndarray, gain: float, folds: int) -> tuple[int, ...]:
    """Indices of the members: the recipe with the lowest out-of-fold log-loss among those
    scored on every fold (the first recipe if none was), or one the budget cut short that
    already beats it beyond noise on the images both were scored on (`improves`); and a
    second one with the same input when averaging the two cuts that log-loss by `gain`
    without losing accuracy."""
    complete = [i for i, s in enumerate(scored) if len(s.fits) == folds] or [0]

    def score(p: np.ndarray, rows: np.ndarray) -> tuple[float, float]:
        return scores(p[rows], y[rows])

    def alone(i: int) -> tuple[float, float]:
        return score(scored[i].probabilities, scored[i].covered)

    best = min(complete, key=lambda i: (alone(i)[1], -alone(i)[0]))
    for i, s in enumerate(scored):
        cut_short = i not in complete and s.fits and not s.abandoned
        if cut_short and improves(s, scored[best], y):
            best = i
    accuracy, loss = alone(best)
    partner, partner_loss = None, loss * (1 - gain)
    for i in complete:
        if i == best or scored[i].recipe.input_key != scored[best].recipe.input_key:
            continue
        rows = scored[i].covered & scored[best].covered
        both = (scored[i].probabilities + scored[best].probabilities) / 2
        acc_e, loss_e = score(both, rows)
        if loss_e < partner_loss and acc_e >= accuracy:
            partner, partner_loss = i, loss_e
    return (best,) if partner is None else (best, partner)


def combine(
    recipes: Sequence[Recipe],
    models: Sequence[Any],
    n_classes: int,
    backbone: tuple[LoadedBackbone, Any] | None,
) -> tuple[Any, Any]:
    """The members as one model (image in, averaged probabilities out) and a builder of the
    same structure untrained (for a float32 copy). backbone: (loaded backbone, extractor)
    for heads on its features."""
    first = recipes[0]
    size = first.input_size
    if backbone is None:
        model = models[0] if len(models) == 1 else average(models, size)

        def architecture() -> Any:
            built = [CNN_ARCHITECTURES[r.family][1](size, n_classes, r.dropout) for r in recipes]
            return built[0] if len(built) == 1 else average(built, size)

        return model, architecture
    lb, extractor = backbone
    n_features = int(models[0].input_shape[-1])
    head = models[0] if len(models) == 1 else average_heads(models, n_features)

    def transfer() -> Any:
        heads = [build_head(n_features, n_classes, r.dropout, r.l2) for r in recipes]
        one = heads[0] if len(heads) == 1 else average_heads(heads, n_features)
        return assemble(build_extractor(lb.backbone.build(None), lb.backbone), one, size)

    return assemble(extractor, head, size), transfer


def leaderboard_candidate(s: Scored, y: np.ndarray, folds: int, description: str) -> Candidate:
    """A scored recipe as a leaderboard row."""
    accuracy, loss = scored_scores(s, y)
    if folds == 1:
        stage = "validation split"
    elif len(s.fits) == folds:
        stage = f"{folds}-fold cross-validation"
    elif s.abandoned:
        stage = f"{len(s.fits)} of {folds} folds (behind the best: stopped)"
    else:
        stage = f"{len(s.fits)} of {folds} folds (budget)"
    return Candidate(
        s.recipe.family,
        s.recipe.kind,
        description,
        s.recipe.input_size,
        accuracy,
        loss,
        int(round(np.mean([f.epochs for f in s.fits]))),
        sum(f.seconds for f in s.fits),
        s.recipe.settings(),
        stage,
        model=s.model,
        architecture=lambda: None,
        name=s.recipe.name,
    )
