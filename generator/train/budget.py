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
MAX_REFIT = 3.0  # an ensemble member's refit trains at most this many times its planned epochs
SOLO_REFIT = 6.0
"""A convnet shipped alone refits for up to this many times its planned epochs. With every
refit allowed 6 times, 600 Fashion-MNIST images at 120 s gave 0.826, 0.819 and 0.824 on
3,150 held-out images against 0.813, 0.811 and 0.814 (seeds 0-2; seeds 1 and 2 shipped a
pair, so ensembles gain too). An ensemble's members stay at MAX_REFIT for the time: the
bundled sample's default run ships a pair, and 6 times made it 84-89 s instead of 52-62 s
wall, at 0.941 test accuracy against 0.956."""
REFIT_SHARE = 0.9  # of the budget left, planned for the refit
CV_MAX_IMAGES = 4000  # train + validation images up to which recipes are cross-validated
FOLDS = 2  # the refit ships, the folds only rank recipes: 2 did as well as 3 in an A/B (README)
AUGMENTED_EPOCHS = 60  # a shifted-image convnet's epochs to converge, from measurements
SHIFT_MAX_IMAGES = 10_000
"""A direct fit on more images than this uses plain ones: with that much data shifts no
longer pay for their slower convergence (60,000 Fashion-MNIST images, 600 s: 39 epochs on
shifted images gave 0.893 where the Keras script's plain images gave 0.918)."""
DIRECT_MAX_EPOCHS = 4 * AUGMENTED_EPOCHS
"""A direct fit trains for the budget, up to this many epochs: with no validation to stop
on, the budget is spent as the Keras script spends it (a cap of 72 shifted epochs left 60%
of a 600 s budget unused at 60,000 images, and 40% of 60 s on a folder of 600
Fashion-MNIST images)."""
DIRECT_SHARE = 0.9  # of the budget left, planned for a direct fit's epochs (a margin: epochs vary)
DIRECT_WARM = 3  # a direct fit's epochs at the base rate, whose time sets how many follow
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
    flops_cache: dict[tuple[Kind, str, int], float]  # each architecture's cost per image

    def build(self, recipe: Recipe, rows: Rows) -> Any:
        raise NotImplementedError

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def calibrate(self, n_classes: int) -> None:
        """Measure this machine's convnet rate once (a few epochs of the default convnet on
        random images; about 1.5 s on 2 cores), when no earlier run on it left one: the
        budget rules need it before the first fit."""
        if Kind.CNN in self.costs.rate:
            return
        rng = np.random.default_rng(0)
        rows = Rows(
            rng.integers(0, 256, (CALIBRATION_ROWS, 32, 32, 3), dtype=np.uint8),
            rng.integers(0, n_classes, CALIBRATION_ROWS),
        )
        with self.reporter.phase("calibrating this machine (once)", total=None):
            trainer = Fresh(build_cnn(32, n_classes), 1e-3)
            result = fit(
                trainer,
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
        self.costs.observe(Kind.CNN, flops(trainer.model), len(rows), result, stopped=False)

    def direct_fit(self, todo: Sequence[Recipe]) -> Recipe | None:
        """The convnet to fit directly, when this machine's remembered rate says the budget
        cannot score recipes and still train the shipped model well: on small data
        (CV_MAX_IMAGES), when it does not hold cross-validating two convnets and a refit
        (cross_validation_first); on large data, when it does not hold the first convnet's
        fit on the train split and its refit. It then trains on train + validation for as
        many epochs as the budget holds, like a plain Keras script (on shifted images when
        the budget holds AUGMENTED_EPOCHS or near and the data is at most SHIFT_MAX_IMAGES,
        else on plain ones, which converge sooner). None: the usual search (also when a
        pretrained head comes first)."""
        cnns = [r for r in todo if r.kind is Kind.CNN]
        if not cnns or todo[0].kind is not Kind.CNN or Kind.CNN not in self.costs.rate:
            return None
        first = cnns[0]
        cost = self._flops(first)
        n = len(self.y)
        refit = round(REFIT_EPOCHS * AUGMENTED_EPOCHS)
        if n <= CV_MAX_IMAGES:
            if self.cross_validation_first(todo):
                return None
        else:
            need = self.costs.estimate(Kind.CNN, cost, self.n_train, AUGMENTED_EPOCHS + PATIENCE)
            need += self.costs.estimate(Kind.CNN, cost, n, refit)
            if need <= self.left():
                return None
        per_epoch = self.costs.estimate(Kind.CNN, cost, n, 1) - OVERHEAD
        # a margin for building, tracing and a busier machine than the remembered rate's
        fits = int(DIRECT_SHARE * (self.left() - OVERHEAD) / per_epoch)
        plain = next((r for r in cnns if r.augment == "none"), first)
        if min(self.direct_cap(), fits) >= 0.6 * AUGMENTED_EPOCHS and n <= SHIFT_MAX_IMAGES:
            return first
        return plain

    def direct_cap(self) -> int:
        """The most epochs a direct fit trains (the budget usually ends it sooner)."""
        return int(min(DIRECT_MAX_EPOCHS, self.options.max_epochs))

    def cross_validation_first(self, todo: Sequence[Recipe]) -> bool:
        """Whether to score by cross-validation from the start: small data, a convnet first,
        and a budget that holds cross-validating the first two convnets for AUGMENTED_EPOCHS
        + PATIENCE epochs a fold and then refitting both (what ships may be their ensemble)
        on all the rows for their longest refit (REFIT_EPOCHS x MAX_REFIT x
        AUGMENTED_EPOCHS each), by this machine's remembered rate. A budget that holds the
        scoring but not those refits does better with one direct fit (600 Fashion-MNIST
        images, seed 2: cross-validated with the pair's refit cut to 1.4-1.6 times its
        planned epochs, 0.802-0.806 at 32-36 s; one direct fit 0.814 at 30 s)."""
        cnns = [r for r in todo if r.kind is Kind.CNN][:2]
        n = len(self.y)
        if not cnns or todo[0].kind is not Kind.CNN or n > CV_MAX_IMAGES:
            return False
        if Kind.CNN not in self.costs.rate:
            return False
        folds = self.options.folds or FOLDS
        rows = n * (folds - 1) // folds
        epochs = AUGMENTED_EPOCHS + PATIENCE
        scoring = sum(
            folds * self.costs.estimate(Kind.CNN, self._flops(r), rows, epochs) for r in cnns
        )
        refit = round(REFIT_EPOCHS * MAX_REFIT * AUGMENTED_EPOCHS)
        refits = sum(self.costs.estimate(Kind.CNN, self._flops(r), n, refit) for r in cnns)
        need = (2 * scoring + 2 * refits) / len(cnns)
        return need <= self.left()

    def _flops(self, recipe: Recipe, rows: Rows | None = None) -> float:
        """A recipe's cost per image; its architecture is built once to count it (`rows`:
        its inputs, which a head's width is read from)."""
        key = (recipe.kind, recipe.family, recipe.input_size)
        if key not in self.flops_cache:
            rows = rows if rows is not None else Rows(np.zeros((0, 1)), self.y[:0])
            self.flops_cache[key] = flops(self.build(recipe, rows))
        return self.flops_cache[key]

    def recipe_estimate(self, recipe: Recipe) -> float:
        """Seconds to score a recipe under the current protocol (0 when unknown)."""
        rows = self.inputs.get(recipe.input_key)
        if rows is None:
            return 0.0
        cost = self._flops(recipe, rows)
        train_rows = len(self.y) * (self.folds - 1) if self.folds > 1 else self.n_train
        return self.costs.estimate(recipe.kind, cost, train_rows)

    def cross_validation_pays(self, first: Scored) -> bool:
        """After a first fit on the train split (a pretrained head's): whether the budget
        left affords cross-validating two recipes like it (on data small enough for
        cross-validation to matter)."""
        if len(self.y) > CV_MAX_IMAGES or first.fits[0].cut:
            return False
        folds = self.options.folds or FOLDS
        epochs = first.fits[0].best_epoch + PATIENCE
        per_recipe = self.costs.estimate(first.recipe.kind, first.flops, len(self.y), epochs)
        scoring = per_recipe * (folds - 1)  # folds fits, each on (folds - 1) / folds of the rows
        return 2 * scoring <= self.left()

    def affordable_refit(self, members: Sequence[Scored]) -> tuple[int, ...]:
        """Each member's refit epochs: REFIT_EPOCHS times its best epochs, and up to
        MAX_REFIT times that (SOLO_REFIT for a convnet shipped alone) when the budget left
        holds them (a convnet with dropout and a decaying learning rate keeps gaining from
        epochs its early-stopped fits did not have: on 600 Fashion-MNIST images at 120 s,
        0.829 held-out accuracy over 3 seeds against 0.811 with REFIT_EPOCHS alone and 0.807
        with the fold models averaged); fewer when the budget is short (down to MIN_REFIT of
        them); none when even that does not fit (then the fold models ship, averaged, or
        under holdout the first fits)."""
        planned = [self.refit_epochs(s) for s in members]
        need = sum(self.refit_estimate(s) for s in members)
        solo = len(members) == 1 and members[0].recipe.kind is Kind.CNN
        affordable = REFIT_SHARE * max(0.0, self.left() - OVERHEAD) / max(need, 1e-9)
        scale = min(SOLO_REFIT if solo else MAX_REFIT, affordable)
        if scale >= MIN_REFIT:
            return tuple(max(1, int(e * scale)) for e in planned)
        folded = self.folds > 1 and all(len(s.fits) == self.folds for s in members)
        ships = "the fold models ship, averaged" if folded else "the first fit ships"
        self.reporter.warn(f"no time left to refit on train + validation: {ships}")
        return ()

    def refit_epochs(self, s: Scored) -> int:
        return max(1, round(REFIT_EPOCHS * np.mean([f.best_epoch for f in s.fits])))

    def refit_estimate(self, s: Scored) -> float:
        """Seconds to refit the recipe on train + validation."""
        return self.costs.estimate(s.recipe.kind, s.flops, len(self.y), self.refit_epochs(s))
