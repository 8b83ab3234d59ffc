"""The search's loop: inputs for each recipe (pixels or cached features), its fits on every
fold while the budget allows, the choice, the refit, and the candidates it hands on."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..data.split import Split
from ..progress import Reporter
from .backbones import LoadedBackbone
from .budget import DIRECT_SHARE, DIRECT_WARM, FOLDS, BudgetRules
from .costs import Costs
from .ensemble import (
    Scored,
    behind,
    choose,
    combine,
    fold_epochs,
    improves,
    leaderboard_candidate,
    scored_loss,
)
from .families import Kind, Skip, SkipCause
from .features import ONNXRUNTIME, feature_store, fill, pixel_cache
from .folds import assign_folds
from .networks import (
    CNN_ARCHITECTURES,
    build_extractor,
    build_head,
)
from .plan import CROSS_VALIDATION, DIRECT, HOLDOUT, Evaluated, Plan, shipped_stage
from .recipes import Recipe, describe, shipped_name
from .runtime import Compute, seed_everything
from .sizing import calibration_file, machine_key, resized
from .trial import Candidate, FitResult, Fresh, Rows, augment, fit, rank, scores

HARD_OVERRUN = 0.1  # of the budget: inside an epoch, training stops only this far past it
ENSEMBLE_GAIN = 0.03  # averaging two recipes must cut the out-of-fold log-loss this much
STALE_RECIPES = 1  # the search ends after this many recipes in a row fail to improve


class Runner(BudgetRules):
    """One search: the pool (train then validation rows), its folds, the recipes' scores."""

    def __init__(
        self,
        split: Split,
        labels: Sequence[str],
        options: Any,
        reporter: Reporter,
        compute: Compute,
        start: float,
        loaded: list[LoadedBackbone],
        skipped: list[Skip],
    ) -> None:
        self.options, self.reporter, self.compute = options, reporter, compute
        self.records = [*split.train, *split.validation]
        self.n_train = len(split.train)
        self.y = np.array([list(labels).index(r.label) for r in self.records], dtype=np.int64)
        self.n_classes = len(labels)
        self.loaded = {lb.backbone.name: lb for lb in loaded}
        self.skipped = list(skipped)
        replay = options.plan is not None
        self.deadline = math.inf if replay else start + options.time_budget
        self.hard = math.inf if replay else self.deadline + HARD_OVERRUN * options.time_budget
        self.cut = False
        self.embedding = options.plan.embedding if options.plan else ONNXRUNTIME
        self.tracing = 0.0  # seconds of first epochs beyond a typical one: builds, tracing
        self.inputs: dict[tuple[str, int], Rows | None] = {}
        self.extractors: dict[tuple[str, int], Any] = {}
        self.costs = Costs.remembered(calibration_file(), machine_key(compute))
        self.models: dict[Recipe, Fresh] = {}
        self.flops_cache = {}
        self.filling: float | None = None  # a direct fit's share of the time left

    def set_protocol(self, protocol: str, folds: int) -> None:
        self.protocol, self.folds = protocol, folds
        if folds > 1:
            groups = [r.split_key or r.sha256 for r in self.records]
            self.fold = assign_folds(groups, self.y, folds, self.options.seed)
        else:  # holdout: fold 0 is the validation split, the train split is never held out
            self.fold = np.where(np.arange(len(self.records)) < self.n_train, -1, 0)

    def rows(self, recipe: Recipe) -> Rows | None:
        """Pixels at the recipe's size, or its backbone's features; None if the budget ran
        out while preparing them (what was done stays cached)."""
        key = recipe.input_key
        if key not in self.inputs:
            self.inputs[key] = self._prepare(recipe)
        return self.inputs[key]

    def _prepare(self, recipe: Recipe) -> Rows | None:
        """Fill the pixel or feature cache for the pool and load it (rows are small)."""
        root, size = self.options.cache_root, recipe.input_size
        if recipe.kind is Kind.CNN:
            store, embed, what = pixel_cache(size, root), None, f"images at {size}px"
        else:
            lb = resized(self.loaded[recipe.family], size)
            extractor = build_extractor(lb.model, lb.backbone)
            self.extractors[(recipe.family, size)] = (lb, extractor)
            store, embed = feature_store(
                lb, extractor, self.compute, self.reporter, root, self.embedding
            )
            what = f"{recipe.family} features at {size}px"
        images = [(r.sha256, r.path) for r in self.records]
        x = fill(store, images, size, embed, what, self.reporter, self.hard)
        if x is None:
            self.cut = True
            return None
        return Rows(x, self.y)

    def build(self, recipe: Recipe, rows: Rows) -> Any:
        if recipe.kind is Kind.TRANSFER:
            return build_head(rows.x.shape[1], self.n_classes, recipe.dropout, recipe.l2)
        _, builder = CNN_ARCHITECTURES[recipe.family]
        return builder(recipe.input_size, self.n_classes, recipe.dropout)

    def fit_one(
        self,
        recipe: Recipe,
        train: Rows,
        validation: Rows | None,
        epochs: int,
        label: str,
        warm: int = 0,
        fill: float | None = None,
    ) -> tuple[Any, FitResult]:
        """One fit of the recipe (its model reset, not rebuilt, after the first), and the
        measured rate the cost model plans with (warm, fill: see trial.fit)."""
        seed = self.options.seed
        seed_everything(seed)
        if recipe not in self.models or self.compute.mixed_precision:
            self.models[recipe] = Fresh(self.build(recipe, train), recipe.learning_rate)
        trainer = self.models[recipe]
        transform = None
        if recipe.augment != "none":
            transform = augment(seed, flip=recipe.augment == "shift+flip")
        with self.reporter.phase(label, total=epochs) as advance:
            result = fit(
                trainer,
                train,
                validation,
                self.n_classes,
                transform=transform,
                seed=seed,
                max_epochs=epochs,
                learning_rate=recipe.learning_rate,
                deadline=self.deadline,
                hard_deadline=self.hard,
                advance=advance,
                warm=warm,
                fill=fill,
            )
        model = trainer.model
        self.cut = self.cut or result.cut
        self.tracing += max(0.0, result.first_epoch_seconds - result.epoch_seconds)
        cost = self._flops(recipe, train)
        self.costs.observe(recipe.kind, cost, len(train), result, validation is not None)
        return model, result

    def evaluate(
        self, recipe: Recipe, recorded: Sequence[int] | None, rival: Scored | None = None
    ) -> Scored | None:
        """The recipe's fits on every fold the budget allows (the recorded ones in a
        replay); it stops early when its first folds put it behind `rival` (the best so
        far) beyond noise."""
        rows = self.rows(recipe)
        if rows is None:
            return None
        scored = Scored(recipe, np.full((len(rows), self.n_classes), np.nan))
        for f in range(self.folds):
            held = self.fold == f
            epochs = self.options.max_epochs if recorded is None else recorded[f]
            if epochs == 0:
                break
            if recorded is None and f > 0 and scored.flops:
                need = self.costs.estimate(recipe.kind, scored.flops, int((~held).sum()))
                if need > self.left():
                    break  # the fold would not end within the budget
            label = (
                recipe.name if self.folds == 1 else f"{recipe.name}, fold {f + 1} of {self.folds}"
            )
            model, result = self.fit_one(recipe, rows.take(~held), rows.take(held), epochs, label)
            scored.flops = self._flops(recipe, rows)
            assert result.probabilities is not None
            scored.probabilities[held] = result.probabilities
            scored.fits.append(result)
            scored.fold_weights.append(model.get_weights())
            if f == 0:
                scored.model = model
            if result.cut:
                break
            last = f == self.folds - 1
            if (
                recorded is None
                and rival is not None
                and not last
                and behind(scored, rival, self.y)
            ):
                scored.abandoned = True
                self.reporter.info(
                    f"{recipe.name}: behind {rival.recipe.name} after {f + 1} of "
                    f"{self.folds} folds, beyond noise: its other folds are not fit"
                )
                break
        return scored

    def run(
        self, todo: Sequence[Recipe], replay: Plan | None
    ) -> tuple[Candidate, list[Candidate], Plan]:
        """How the recipes are scored, from the budget: on small data whose budget holds
        cross-validating two convnets, cross-validation from the start (the first recipe's
        first fold is the first model); when it does not, one direct fit (`direct_fit`). With
        a pretrained head first (cheap once its features exist), its fit on the train split
        comes first, then cross-validation when the budget affords it. Large data: fits on
        the train split scored on validation. Recipes run in order while each fits in the
        budget (and, under holdout, leaves time for the refit of the best so far); a recipe
        whose first folds put it behind the best is not fit on the others; the search ends
        when they stop improving. Then the chosen members are refit on train + validation
        when the time left holds it; when it does not, their fold models ship, averaged
        (under cross-validation), or their first fits.
        """
        todo = list(todo)
        scored: list[Scored] = []
        if replay is not None and replay.protocol == DIRECT:
            return self.direct(replay.evaluated[0].recipe, replay.refit_epochs[0])
        if replay is not None:
            self.set_protocol(replay.protocol, replay.folds)
        else:
            if todo and todo[0].kind is Kind.CNN:
                self.calibrate(self.n_classes)
            direct = self.direct_fit(todo)
            if direct is not None:  # as many epochs as the budget holds, measured as it runs
                return self.direct(direct, self.direct_cap(), fill=DIRECT_SHARE)
            if self.cross_validation_first(todo):
                self.set_protocol(CROSS_VALIDATION, (self.options.folds or FOLDS))
            else:
                self.set_protocol(HOLDOUT, 1)
            while todo and not scored and self.folds == 1:
                first = self.evaluate(todo.pop(0), None)
                if first is not None and first.fits:
                    scored.append(first)
            if scored and self.folds == 1 and self.cross_validation_pays(scored[0]):
                todo.insert(0, scored.pop().recipe)
                self.set_protocol(CROSS_VALIDATION, (self.options.folds or FOLDS))
        best = min(scored, key=lambda s: scored_loss(s, self.y)) if scored else None
        stale = 0
        for i, recipe in enumerate(todo):
            recorded = replay.evaluated[i].fold_epochs if replay else None
            reserve = 0.0
            if replay is None and stale >= STALE_RECIPES:
                self.reporter.info(
                    f"The last {STALE_RECIPES} recipe(s) did not improve on the best: the search "
                    "ends here"
                )
                break
            if replay is None and scored:
                best = min(scored, key=lambda s: scored_loss(s, self.y))
                reserve = self.refit_estimate(best) if self.folds == 1 else 0.0
                need = self.recipe_estimate(recipe)
                if need + reserve > self.left():
                    self.skipped.append(
                        Skip(
                            recipe.family,
                            recipe.kind,
                            SkipCause.UNAFFORDABLE,
                            f"{recipe.name}: needs about {need:.0f}s and the budget leaves "
                            f"{max(0.0, self.left() - reserve):.0f}s",
                        )
                    )
                    continue
            result = self.evaluate(recipe, recorded, best)
            if result is None or not result.fits:
                continue
            scored.append(result)
            if replay is None and len(result.fits) < self.folds and not result.abandoned:
                break  # the budget ran out inside this recipe
            if best is None or improves(result, best, self.y):
                best, stale = result, 0
            else:
                stale += 1
        if not scored:
            from ..errors import BudgetError

            raise BudgetError(
                f"the {self.options.time_budget:.0f}s time budget ran out before a first model "
                "was trained: raise --time-budget"
            )
        self.costs.remember(calibration_file(), machine_key(self.compute))
        return self.finish(scored, replay)

    def direct(
        self, recipe: Recipe, epochs: int, fill: float | None = None
    ) -> tuple[Candidate, list[Candidate], Plan]:
        """One recipe trained on train + validation for `epochs` (see direct_fit), or with
        `fill`, for as many of them as the budget holds; DIRECT_WARM epochs at the base
        rate, then a cosine decay."""
        self.set_protocol(DIRECT, 1)
        scored = Scored(recipe, np.full((len(self.y), self.n_classes), np.nan))
        self.filling = fill
        winner, done = self.ship([scored], (epochs,))
        self.costs.remember(calibration_file(), machine_key(self.compute))
        plan = Plan(DIRECT, 1, (Evaluated(recipe, done),), (0,), done, self.embedding)
        return winner, [winner], plan

    def finish(
        self, scored: list[Scored], replay: Plan | None
    ) -> tuple[Candidate, list[Candidate], Plan]:
        """Choose the members (or take the recorded ones), refit them if there is time, and
        record what was done as the plan."""
        if replay is not None:
            members, refit = replay.shipped, replay.refit_epochs
        else:
            members = choose(scored, self.y, ENSEMBLE_GAIN, self.folds)
            refit = self.affordable_refit([scored[i] for i in members])
        winner, refit_done = self.ship([scored[i] for i in members], refit)
        plan = Plan(
            self.protocol,
            self.folds,
            tuple(Evaluated(s.recipe, fold_epochs(s, self.folds)) for s in scored),
            tuple(members),
            refit_done,
            self.embedding,
        )
        board = sorted(
            (
                leaderboard_candidate(s, self.y, self.folds, describe(s.recipe, self.loaded))
                for s in scored
            ),
            key=rank,
        )
        return winner, board, plan

    def ship(
        self, members: Sequence[Scored], refit: Sequence[int]
    ) -> tuple[Candidate, tuple[int, ...]]:
        """Refit each member on train + validation (when `refit` gives their epochs; else
        under cross-validation their fold models, averaged, or their first fits), combine
        them into one model, and describe it."""
        models, done, seconds = [], [], 0.0
        for s, epochs in zip(members, refit, strict=False):
            rows = self.rows(s.recipe)
            assert rows is not None
            label = f"{s.recipe.name}, refit on train + validation"
            warm = DIRECT_WARM if self.protocol == DIRECT else 0
            model, result = self.fit_one(s.recipe, rows, None, epochs, label, warm, self.filling)
            self.cut = self.cut or result.stopped_by_budget  # its cosine schedule was cut
            models.append(model)
            done.append(result.epochs)
            seconds += result.seconds
        recipes = [s.recipe for s in members]
        folded = not refit and self.folds > 1 and all(len(s.fits) == self.folds for s in members)
        if folded:  # every fold's model, averaged
            for s in members:
                rows = self.rows(s.recipe)
                assert rows is not None
                for weights in s.fold_weights:
                    model = self.build(s.recipe, rows)
                    model.set_weights(weights)
                    models.append(model)
            recipes = [s.recipe for s in members for _ in s.fold_weights]
            seconds = sum(f.seconds for s in members for f in s.fits)
        elif not refit:
            for s in members:
                s.model.set_weights(s.fold_weights[0])
            models = [s.model for s in members]
            seconds = sum(s.fits[0].seconds for s in members)
        first = members[0].recipe
        backbone = None
        if first.kind is Kind.TRANSFER:
            backbone = self.extractors[(first.family, first.input_size)]
        model, architecture = combine(recipes, models, self.n_classes, backbone)
        covered = np.logical_and.reduce([s.covered for s in members])
        probabilities = np.mean([s.probabilities for s in members], axis=0)
        accuracy, loss = math.nan, math.nan  # a direct fit is not scored before the test
        if covered.any():
            accuracy, loss = scores(probabilities[covered], self.y[covered])
        stage = shipped_stage(self.protocol, self.folds, bool(refit), folded, len(members))
        name, settings = shipped_name([s.recipe for s in members])
        winner = Candidate(
            first.family,
            first.kind,
            " + ".join(describe(s.recipe, self.loaded) for s in members),
            first.input_size,
            accuracy,
            loss,
            sum(done) or members[0].fits[0].epochs,
            seconds,
            settings,
            stage,
            model=model,
            architecture=architecture,
            name=name,
            held_out=(probabilities[covered], self.y[covered]) if covered.any() else None,
        )
        return winner, tuple(done)
