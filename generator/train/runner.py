"""The search's loop: inputs for each recipe (pixels or cached features), its fits on every
fold while the budget allows, the choice, the refit, and the candidates it hands on."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..data.split import Split
from ..progress import Reporter
from .backbones import LoadedBackbone
from .ensemble import Scored, choose, combine, fold_epochs, scored_loss, scored_scores
from .families import Kind, Skip, SkipCause
from .features import EXTRACT_BATCH, feature_cache, feature_key, fixed_batches, pixel_cache
from .folds import assign_folds
from .networks import (
    CNN_ARCHITECTURES,
    build_extractor,
    build_head,
    flops,
)
from .plan import Evaluated, Plan
from .recipes import Recipe, describe
from .runtime import Compute, seed_everything
from .sizing import resized
from .store import ArrayStore
from .trial import PATIENCE, Candidate, FitResult, Fresh, Rows, augment, fit, rank, scores

HARD_OVERRUN = 0.1  # of the budget: inside an epoch, training stops only this far past it
ENSEMBLE_GAIN = 0.03  # averaging two recipes must cut the out-of-fold log-loss this much
IMPROVEMENT = 0.01  # a recipe improves on the best when it cuts its log-loss this much
STALE_RECIPES = 1  # the search ends after this many recipes in a row fail to improve
REFIT_EPOCHS = 1.2  # the refit trains this many times the folds' best epochs (more data)


class Runner:
    """One search: the pool (train then validation rows), its folds, and the recipes'
    scores."""

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
        index = {label: i for i, label in enumerate(labels)}
        self.y = np.array([index[r.label] for r in self.records], dtype=np.int64)
        self.n_classes = len(labels)
        self.loaded = {lb.backbone.name: lb for lb in loaded}
        self.skipped = list(skipped)
        replay = options.plan is not None
        self.deadline = math.inf if replay else start + options.time_budget
        self.hard = math.inf if replay else self.deadline + HARD_OVERRUN * options.time_budget
        self.cut = False
        self.inputs: dict[tuple[str, int], Rows | None] = {}
        self.extractors: dict[tuple[str, int], Any] = {}
        self.rate: dict[Kind, float] = {}  # seconds per row x epoch x FLOP, per kind
        self.epochs_seen: list[int] = []
        self.models: dict[Recipe, Fresh] = {}

    def set_protocol(self, protocol: str, folds: int) -> None:
        self.protocol, self.folds = protocol, folds
        if folds > 1:
            groups = [r.split_key or r.sha256 for r in self.records]
            self.fold = assign_folds(groups, self.y, folds, self.options.seed)
        else:  # holdout: fold 0 is the validation split, the train split is never held out
            self.fold = np.where(np.arange(len(self.records)) < self.n_train, -1, 0)

    # -- inputs -----------------------------------------------------------------------
    def rows(self, recipe: Recipe) -> Rows | None:
        """Pixels at the recipe's size, or its backbone's features; None if the budget ran
        out while preparing them (what was done stays cached)."""
        key = _input_key(recipe)
        if key not in self.inputs:
            self.inputs[key] = self._prepare(recipe)
        return self.inputs[key]

    def _prepare(self, recipe: Recipe) -> Rows | None:
        """Fill the pixel or feature cache for the pool and load it (rows are small)."""
        root, size = self.options.cache_root, recipe.input_size
        if recipe.kind is Kind.CNN:
            store, compute, what = pixel_cache(size, root), None, f"images at {size}px"
        else:
            lb = resized(self.loaded[recipe.family], size)
            extractor = build_extractor(lb.model, lb.backbone)
            self.extractors[(recipe.family, size)] = (lb, extractor)
            store = feature_cache(
                feature_key(lb, self.compute), int(lb.model.output_shape[-1]), root
            )
            compute = fixed_batches(extractor.predict_on_batch, EXTRACT_BATCH)
            what = f"{recipe.family} features at {size}px"
        images = [(r.sha256, r.path) for r in self.records]
        keys = [k for k, _ in images]
        todo = len(store.missing(keys))
        if todo < len(images):
            self.reporter.info(f"Cache: {len(images) - todo} of {len(images)} {what} reused")
        if todo:
            with self.reporter.phase(what, total=todo) as advance:
                store.fill(images, size, compute, on_batch=advance, deadline=self.hard)
        if store.missing(keys):
            self.cut = True
            self.reporter.warn(
                f"the time budget ran out while preparing {what} (kept for the next run)"
            )
            return None
        return _in_memory(store, keys, self.y)

    # -- costs ------------------------------------------------------------------------
    def estimate(self, kind: Kind, cost: float, rows: int, epochs: int | None = None) -> float:
        """Seconds for `epochs` epochs (default: as many as fits so far needed) over `rows`
        rows of a model of `cost` FLOPs, at the rate this run measured for that kind of
        model (0 when none was measured yet)."""
        rate = self.rate.get(kind)
        if rate is None:
            return 0.0
        if epochs is None:
            seen = self.epochs_seen or [20]
            epochs = int(np.mean(seen)) + PATIENCE
        return rate * cost * rows * epochs * 1.2 + 1.0

    def left(self) -> float:
        return self.deadline - time.monotonic()

    # -- fits -------------------------------------------------------------------------
    def build(self, recipe: Recipe, rows: Rows) -> Any:
        if recipe.kind is Kind.TRANSFER:
            return build_head(rows.x.shape[1], self.n_classes, recipe.dropout, recipe.l2)
        _, builder = CNN_ARCHITECTURES[recipe.family]
        return builder(recipe.input_size, self.n_classes, recipe.dropout)

    def fit_one(
        self, recipe: Recipe, train: Rows, validation: Rows | None, epochs: int, label: str
    ) -> tuple[Any, FitResult]:
        """One fit of the recipe (its model reset, not rebuilt, after the first), and the
        measured rate the cost model plans with."""
        seed = self.options.seed
        seed_everything(seed)
        if recipe not in self.models or self.compute.mixed_precision:
            self.models[recipe] = Fresh(self.build(recipe, train), recipe.learning_rate)
        model = self.models[recipe].reset()
        transform = None
        if recipe.augment != "none":
            transform = augment(seed, flip=recipe.augment == "shift+flip")
        with self.reporter.phase(label, total=epochs) as advance:
            result = fit(
                model,
                train,
                validation,
                self.n_classes,
                transform=transform,
                seed=seed,
                max_epochs=epochs,
                deadline=self.deadline,
                hard_deadline=self.hard,
                advance=advance,
            )
        self.cut = self.cut or result.cut
        cost = flops(model) * len(train) * result.epochs
        if cost and result.seconds > 0:
            measured = result.seconds / cost
            known = self.rate.get(recipe.kind)
            self.rate[recipe.kind] = measured if known is None else (known + measured) / 2
        if validation is not None:
            self.epochs_seen.append(result.best_epoch)
        return model, result

    def evaluate(
        self, recipe: Recipe, recorded: Sequence[int] | None, refit_reserve: float
    ) -> Scored | None:
        """The recipe's fits on every fold the budget allows (all of them in a replay)."""
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
                need = self.estimate(recipe.kind, scored.flops, int((~held).sum()))
                if need + refit_reserve > self.left():
                    break
            label = (
                recipe.name if self.folds == 1 else f"{recipe.name}, fold {f + 1} of {self.folds}"
            )
            model, result = self.fit_one(recipe, rows.take(~held), rows.take(held), epochs, label)
            scored.flops = scored.flops or flops(model)
            assert result.probabilities is not None
            scored.probabilities[held] = result.probabilities
            scored.fits.append(result)
            if f == 0:
                scored.model, scored.weights = model, model.get_weights()
            if result.cut:
                break
        return scored

    # -- the whole search ----------------------------------------------------------------
    def run(
        self, todo: Sequence[Recipe], replay: Plan | None
    ) -> tuple[Candidate, list[Candidate], Plan]:
        """Score the recipes in order while the budget allows (each must leave time for the
        refit of the best so far), ending early when they stop improving; then ship."""
        scored: list[Scored] = []
        best_loss, stale = math.inf, 0
        for i, recipe in enumerate(todo):
            recorded = replay.evaluated[i].fold_epochs if replay else None
            reserve = 0.0
            if replay is None and stale >= STALE_RECIPES:
                self.reporter.info(
                    f"{recipe_count(i)} did not improve on the best: the search ends here"
                )
                break
            if replay is None and scored:
                best = min(scored, key=lambda s: scored_loss(s, self.y))
                reserve = self.refit_estimate(best)
                rows = self.inputs.get(_input_key(recipe))
                cost = flops(self.build(recipe, rows)) if rows is not None else 0.0
                folds_rows = len(self.y) * (self.folds - 1) if self.folds > 1 else self.n_train
                need = self.estimate(recipe.kind, cost, folds_rows) if cost else 0.0
                if need + reserve > self.left() or self.left() <= 0:
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
            result = self.evaluate(recipe, recorded, reserve)
            if result is None or not result.fits:
                continue
            scored.append(result)
            loss = scored_loss(result, self.y)
            if len(result.fits) < self.folds:
                break  # the budget ran out inside this recipe
            if loss < best_loss * (1 - IMPROVEMENT):
                best_loss, stale = loss, 0
            else:
                stale += 1
        if not scored:
            from ..errors import BudgetError

            raise BudgetError(
                f"the {self.options.time_budget:.0f}s time budget ran out before a first model "
                "was trained: raise --time-budget"
            )
        return self.finish(scored, replay)

    def refit_estimate(self, s: Scored) -> float:
        if self.folds == 1:
            return 0.0
        epochs = round(REFIT_EPOCHS * np.mean([f.best_epoch for f in s.fits]))
        return self.estimate(s.recipe.kind, s.flops, len(self.y), epochs) / 1.2

    def finish(
        self, scored: list[Scored], replay: Plan | None
    ) -> tuple[Candidate, list[Candidate], Plan]:
        """Choose the members (or take the recorded ones), refit them if there is time, and
        record what was done as the plan."""
        if replay is not None:
            members, refit = replay.shipped, replay.refit_epochs
        else:
            members = choose(scored, self.y, ENSEMBLE_GAIN, self.folds)
            refit = ()
            if self.folds > 1:
                epochs = tuple(
                    max(1, round(REFIT_EPOCHS * np.mean([f.best_epoch for f in scored[i].fits])))
                    for i in members
                )
                need = sum(self.refit_estimate(scored[i]) for i in members)
                if need <= self.left():
                    refit = epochs
                else:
                    self.reporter.warn(
                        "no time left to refit on train + validation: the first fold's model ships"
                    )
        winner, refit_done = self.ship([scored[i] for i in members], refit)
        plan = Plan(
            self.protocol,
            self.folds,
            tuple(Evaluated(s.recipe, fold_epochs(s, self.folds)) for s in scored),
            tuple(members),
            refit_done,
        )
        board = sorted((self.candidate(s) for s in scored), key=rank)
        return winner, board, plan

    def ship(
        self, members: Sequence[Scored], refit: Sequence[int]
    ) -> tuple[Candidate, tuple[int, ...]]:
        """Refit each member on train + validation (when `refit` gives their epochs; else
        their first fold's fits ship), combine them into one model, and describe it."""
        models, done, seconds = [], [], 0.0
        for s, epochs in zip(members, refit, strict=False):
            rows = self.rows(s.recipe)
            assert rows is not None
            label = f"{s.recipe.name}, refit on train + validation"
            model, result = self.fit_one(s.recipe, rows, None, epochs, label)
            models.append(model)
            done.append(result.epochs)
            seconds += result.seconds
        if not refit:
            for s in members:
                s.model.set_weights(s.weights)
            models = [s.model for s in members]
            seconds = sum(s.fits[0].seconds for s in members)
        first = members[0].recipe
        backbone = None
        if first.kind is Kind.TRANSFER:
            backbone = self.extractors[(first.family, first.input_size)]
        recipes = [s.recipe for s in members]
        model, architecture = combine(recipes, models, self.n_classes, backbone)
        covered = np.logical_and.reduce([s.covered for s in members])
        probabilities = np.mean([s.probabilities for s in members], axis=0)
        accuracy, loss = scores(probabilities[covered], self.y[covered])
        if refit:
            stage = "refit on train + validation"
        elif self.folds == 1:
            stage = "trained on train, stopped on validation"
        else:
            stage = "first fold's fit (no time to refit)"
        name = " + ".join(r.name for r in recipes)
        settings = first.settings()
        if len(members) > 1:
            settings, name = {"members": [r.name for r in recipes]}, f"ensemble of {name}"
        winner = Candidate(
            first.family,
            first.kind,
            " + ".join(describe(r, self.loaded) for r in recipes),
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
        )
        return winner, tuple(done)

    def candidate(self, s: Scored) -> Candidate:
        """A scored recipe as a leaderboard row."""
        accuracy, loss = scored_scores(s, self.y)
        complete = len(s.fits) == self.folds
        stage = (
            "validation split"
            if self.folds == 1
            else (
                f"{self.folds}-fold cross-validation"
                if complete
                else f"{len(s.fits)} of {self.folds} folds (budget)"
            )
        )
        return Candidate(
            s.recipe.family,
            s.recipe.kind,
            describe(s.recipe, self.loaded),
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


def _in_memory(store: ArrayStore, keys: Sequence[str], y: np.ndarray) -> Rows:
    return Rows(store.take(keys), y)


def _input_key(recipe: Recipe) -> tuple[str, int]:
    return (recipe.family if recipe.kind is Kind.TRANSFER else "", recipe.input_size)


def recipe_count(i: int) -> str:
    return "The last recipe" if STALE_RECIPES == 1 else f"The last {STALE_RECIPES} recipes"
