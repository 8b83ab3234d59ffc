"""The search's budget rules: what the time left affords (cross-validation, a recipe, a
refit), from the cost model. A mixin of the Runner, which holds the state named here."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from .costs import OVERHEAD, Costs
from .ensemble import Scored
from .families import Kind
from .networks import build_cnn, flops
from .recipes import Recipe
from .trial import PATIENCE, Fresh, Rows, fit

MIN_REFIT = 0.7  # a refit shorter than this share of its epochs is not worth it
MAX_REFIT = 3.0  # a refit trains at most this many times its planned epochs
REFIT_SHARE = 0.9  # of the budget left, planned for the refit
CV_MAX_IMAGES = 4000  # train + validation images up to which recipes are cross-validated
FOLDS = 3
AUGMENTED_EPOCHS = 60  # a shifted-image convnet's epochs to converge, from measurements
SHIFT_MAX_IMAGES = 10_000
"""A direct fit on more images than this uses plain ones: with that much data shifts no
longer pay for their slower convergence (60,000 Fashion-MNIST images, 600 s: 39 epochs on
shifted images gave 0.893 where the Keras script's plain images gave 0.918)."""
PLAIN_MAX_EPOCHS = 4 * AUGMENTED_EPOCHS  # a direct fit on plain images: at most this many
DIRECT_SHARE = 0.95  # of the budget left, planned for a direct fit's epochs
CALIBRATION_ROWS = 512
REFIT_EPOCHS = 1.2  # the refit trains this many times the folds' best epochs (more data)


class BudgetRules:
    """Decisions from the cost model and the time left."""

    costs: Costs
    y: np.ndarray
    n_train: int
    folds: int
    deadline: float
    options: Any
    inputs: dict[tuple[str, int], Rows | None]
    reporter: Any

    def build(self, recipe: Recipe, rows: Rows) -> Any:
        raise NotImplementedError

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def calibrate(self, n_classes: int) -> None:
        """Measure this machine's convnet rate once (a few epochs of the default convnet on
        random images; about 3 s), when no earlier run on it left one: the budget rules need
        it before the first fit."""
        if Kind.CNN in self.costs.rate:
            return
        rng = np.random.default_rng(0)
        rows = Rows(
            rng.integers(0, 256, (CALIBRATION_ROWS, 32, 32, 3), dtype=np.uint8),
            rng.integers(0, n_classes, CALIBRATION_ROWS),
        )
        with self.reporter.phase("calibrating this machine (once)", total=None):
            model = Fresh(build_cnn(32, n_classes), 1e-3).reset()
            result = fit(
                model,
                rows,
                None,
                n_classes,
                transform=None,
                seed=0,
                max_epochs=4,
                deadline=math.inf,
                hard_deadline=math.inf,
                advance=lambda *args, **kwargs: None,
                learning_rate=1e-3,
            )
        self.costs.observe(Kind.CNN, flops(model), len(rows), result, stopped=False)

    def direct_fit(self, todo: Sequence[Recipe]) -> tuple[Recipe, int] | None:
        """(recipe, epochs) when this machine's remembered rate says the budget cannot fit
        the first convnet on the train split and refit it: then one convnet trains on train +
        validation for as many epochs as the budget holds (shifted images when that is
        AUGMENTED_EPOCHS or near and the data is at most SHIFT_MAX_IMAGES, else plain ones,
        which converge sooner), like a plain Keras script. None: the usual search (also when
        a pretrained head comes first)."""
        cnns = [r for r in todo if r.kind is Kind.CNN]
        if not cnns or todo[0].kind is not Kind.CNN or Kind.CNN not in self.costs.rate:
            return None
        first = cnns[0]
        cost = flops(self.build(first, Rows(np.zeros((0, 1)), self.y[:0])))
        n = len(self.y)
        refit = round(REFIT_EPOCHS * AUGMENTED_EPOCHS)
        need = self.costs.estimate(Kind.CNN, cost, self.n_train, AUGMENTED_EPOCHS + PATIENCE)
        need += self.costs.estimate(Kind.CNN, cost, n, refit)
        if need <= self.left():
            return None
        per_epoch = self.costs.estimate(Kind.CNN, cost, n, 1) - OVERHEAD
        # a margin for building, tracing and a busier machine than the remembered rate's
        fits = int(DIRECT_SHARE * (self.left() - OVERHEAD) / per_epoch)
        plain = next((r for r in cnns if r.augment == "none"), first)
        if fits >= 0.6 * AUGMENTED_EPOCHS and n <= SHIFT_MAX_IMAGES:
            return first, min(refit, fits)
        # Plain images on much data: the budget, as the Keras script spends it (at 60,000
        # images the shifted recipe's cap of 72 epochs left 60% of a 600 s budget unused).
        return plain, max(1, min(PLAIN_MAX_EPOCHS, fits))

    def recipe_estimate(self, recipe: Recipe) -> float:
        """Seconds to score a recipe under the current protocol (0 when unknown)."""
        rows = self.inputs.get(
            (recipe.family if recipe.kind is Kind.TRANSFER else "", recipe.input_size)
        )
        if rows is None:
            return 0.0
        cost = flops(self.build(recipe, rows))
        train_rows = len(self.y) * (self.folds - 1) if self.folds > 1 else self.n_train
        return self.costs.estimate(recipe.kind, cost, train_rows)

    def cross_validation_pays(self, first: Scored) -> bool:
        """Whether the budget left affords cross-validating two recipes like the first and
        refitting one (on data small enough for cross-validation to matter)."""
        if len(self.y) > CV_MAX_IMAGES or first.fits[0].cut:
            return False
        folds = self.options.folds or FOLDS
        epochs = first.fits[0].best_epoch + PATIENCE
        per_recipe = self.costs.estimate(first.recipe.kind, first.flops, len(self.y), epochs)
        scoring = per_recipe * (folds - 1)  # folds fits, each on (folds - 1) / folds of the rows
        refit = self.costs.estimate(
            first.recipe.kind, first.flops, len(self.y), first.fits[0].best_epoch
        )
        return 2 * scoring + REFIT_EPOCHS * refit <= self.left()

    def affordable_refit(self, members: Sequence[Scored]) -> tuple[int, ...]:
        """Each member's refit epochs: REFIT_EPOCHS times its best epochs, and up to
        MAX_REFIT times that when the budget left holds them (a convnet with dropout and a
        decaying learning rate keeps gaining from epochs its early-stopped fits did not
        have); fewer when the budget is short (down to MIN_REFIT of them); none when even
        that does not fit (the first fits ship)."""
        planned = [self.refit_epochs(s) for s in members]
        need = sum(self.refit_estimate(s) for s in members)
        scale = min(MAX_REFIT, REFIT_SHARE * max(0.0, self.left() - OVERHEAD) / max(need, 1e-9))
        if scale >= MIN_REFIT:
            return tuple(max(1, int(e * scale)) for e in planned)
        first = "the first fold's fit" if self.folds > 1 else "the fit on the train split"
        self.reporter.warn(f"no time left to refit on train + validation: {first} ships")
        return ()

    def refit_epochs(self, s: Scored) -> int:
        return max(1, round(REFIT_EPOCHS * np.mean([f.best_epoch for f in s.fits])))

    def refit_estimate(self, s: Scored) -> float:
        """Seconds to refit the recipe on train + validation."""
        return self.costs.estimate(s.recipe.kind, s.flops, len(self.y), self.refit_epochs(s))
