"""The search's rules on synthetic scores: when a recipe improves, when two are averaged,
how the refit is sized, what is remembered per machine, the input size, the shifts. No
training."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from generator.train.budget import MAX_REFIT, MIN_REFIT, SOLO_REFIT, BudgetRules
from generator.train.costs import RATES, Costs
from generator.train.ensemble import Scored, behind, choose, improves
from generator.train.families import Kind
from generator.train.networks import cnn_input_size
from generator.train.recipes import Recipe
from generator.train.trial import FitResult, augment

RECIPE = Recipe("small-cnn", Kind.CNN, 32)
RNG = np.random.default_rng(0)
Y = RNG.integers(0, 3, 300)


def fit_result(best_epoch: int = 20) -> FitResult:
    return FitResult(best_epoch + 10, best_epoch, 5.0, 0.1, 0.5, False, False, None)


def scored(right: float, recipe: Recipe = RECIPE, noise: float = 0.0) -> Scored:
    """Out-of-fold probabilities giving the true class `right` (plus noise per image)."""
    p = np.full((len(Y), 3), (1 - right) / 2)
    p[np.arange(len(Y)), Y] = right
    if noise:
        p += RNG.uniform(0, noise, p.shape)
        p /= p.sum(1, keepdims=True)
    return Scored(recipe, p, [fit_result()] * 3)


def test_a_recipe_improves_only_beyond_the_noise_of_its_per_image_losses() -> None:
    best = scored(0.7, noise=0.3)
    assert improves(scored(0.9, noise=0.3), best, Y)
    assert not improves(scored(0.5, noise=0.3), best, Y)
    same = Scored(RECIPE, best.probabilities.copy(), best.fits)
    assert not improves(same, best, Y)  # equal is not better
    nudged = Scored(RECIPE, best.probabilities.copy(), best.fits)
    nudged.probabilities[0, Y[0]] += 0.05  # one image a little better: noise
    nudged.probabilities[0] /= nudged.probabilities[0].sum()
    assert not improves(nudged, best, Y)


def test_a_recipe_is_behind_only_beyond_the_noise_on_the_folds_it_was_scored_on() -> None:
    best = scored(0.7, noise=0.3)
    first_fold = np.arange(len(Y)) < len(Y) // 3

    def on_first_fold(right: float) -> Scored:
        s = scored(right, noise=0.3)
        s.probabilities[~first_fold] = np.nan
        return s

    assert behind(on_first_fold(0.4), best, Y)
    assert not behind(on_first_fold(0.9), best, Y)
    same = Scored(RECIPE, best.probabilities.copy(), best.fits)
    same.probabilities[~first_fold] = np.nan
    assert not behind(same, best, Y)  # equal is not worse
    one = on_first_fold(0.1)
    one.probabilities[1:] = np.nan
    assert not behind(one, best, Y)  # one image says nothing


def test_two_recipes_are_averaged_only_when_it_helps_and_they_read_the_same_input() -> None:
    a = scored(0.6)
    wrong_half = a.probabilities.copy()
    half = np.arange(len(Y)) < len(Y) // 2
    b_probs = np.full_like(wrong_half, 0.2)
    b_probs[np.arange(len(Y)), Y] = np.where(half, 0.6, 0.6)
    b = Scored(Recipe("small-cnn", Kind.CNN, 32, augment="shift"), b_probs, a.fits)
    assert choose([a, b], Y, 0.03, 3) in ((0,), (1,))  # the same predictions: no gain
    # complementary errors: each is confidently wrong where the other is right
    pa, pb = np.full((len(Y), 3), 0.05), np.full((len(Y), 3), 0.05)
    pa[np.arange(len(Y)), Y] = np.where(half, 0.9, 0.45)
    pb[np.arange(len(Y)), Y] = np.where(half, 0.45, 0.9)
    pa[np.arange(len(Y)), (Y + 1) % 3] = np.where(half, 0.05, 0.5)
    pb[np.arange(len(Y)), (Y + 1) % 3] = np.where(half, 0.5, 0.05)
    x = Scored(RECIPE, pa, a.fits)
    z = Scored(Recipe("small-cnn", Kind.CNN, 32, augment="shift"), pb, a.fits)
    assert sorted(choose([x, z], Y, 0.03, 3)) == [0, 1]
    other_size = Scored(Recipe("small-cnn", Kind.CNN, 48, augment="shift"), pb, a.fits)
    assert len(choose([x, other_size], Y, 0.03, 3)) == 1  # different inputs: not one graph
    partial = Scored(z.recipe, pb, a.fits[:2])  # not scored on every fold
    assert choose([x, partial], Y, 0.03, 3) == (0,)


def test_a_recipe_the_budget_cut_short_is_chosen_when_already_better_beyond_noise() -> None:
    best = scored(0.6, noise=0.3)
    first_fold = np.arange(len(Y)) < len(Y) // 2
    cut = scored(0.95, Recipe("small-cnn", Kind.CNN, 32, augment="shift"), noise=0.3)
    cut.probabilities[~first_fold] = np.nan
    cut.fits = cut.fits[:1]
    assert choose([best, cut], Y, 0.03, 3) == (1,)
    cut.abandoned = True  # stopped by the search, not the budget: never chosen
    assert choose([best, cut], Y, 0.03, 3) == (0,)
    cut.abandoned = False
    close = Scored(cut.recipe, best.probabilities.copy(), cut.fits)  # as good: not chosen
    close.probabilities[~first_fold] = np.nan
    assert choose([best, close], Y, 0.03, 3) == (0,)


@dataclass
class FakeRules(BudgetRules):
    """The budget rules over a fixed time left and a known rate."""

    seconds_left: float = 0.0

    def __post_init__(self) -> None:
        self.costs = Costs({Kind.CNN: 1e-9}, measured={Kind.CNN})
        self.y = Y
        self.n_train = 200
        self.folds = 3
        self.deadline = time.monotonic() + self.seconds_left
        self.reporter = type("R", (), {"warn": lambda self, text: None})()
        self.flops_cache = {}

    def left(self) -> float:
        return self.seconds_left


def test_the_refit_grows_with_the_time_left_and_is_dropped_when_too_short() -> None:
    member = scored(0.8)
    member.flops = 1e6
    rules = FakeRules()
    planned = rules.refit_epochs(member)  # 1.2 x the best epochs
    assert planned == 24
    need = rules.refit_estimate(member)
    rules.seconds_left = 100 * need  # plenty: a convnet alone is capped at SOLO_REFIT
    assert rules.affordable_refit([member]) == (int(planned * SOLO_REFIT),)
    rules.seconds_left = need  # about enough: close to the plan
    (epochs,) = rules.affordable_refit([member])
    assert MIN_REFIT * planned <= epochs <= planned
    rules.seconds_left = 0.3 * need  # too little: the fold models ship, averaged
    assert rules.affordable_refit([member]) == ()


def test_an_ensembles_members_and_a_head_alone_refit_for_at_most_max_refit() -> None:
    """The longer refit is for a convnet shipped alone; an ensemble's members, and a head on
    features, stop at MAX_REFIT times their planned epochs however much time is left."""
    assert SOLO_REFIT > MAX_REFIT
    first, second = scored(0.8), scored(0.7, Recipe("separable-cnn", Kind.CNN, 32))
    first.flops = second.flops = 1e6
    rules = FakeRules()
    planned = rules.refit_epochs(first)
    rules.seconds_left = 100 * (rules.refit_estimate(first) + rules.refit_estimate(second))
    assert rules.affordable_refit([first, second]) == (int(planned * MAX_REFIT),) * 2
    head = scored(0.8, Recipe("mobilenet_v2", Kind.TRANSFER, 128))
    head.flops = 1e6
    rules.costs.rate[Kind.TRANSFER] = 1e-9
    rules.seconds_left = 100 * rules.refit_estimate(head)
    assert rules.affordable_refit([head]) == (int(planned * MAX_REFIT),)


def test_rates_are_remembered_per_machine_and_garbage_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "calibration.json"
    costs = Costs()
    costs.observe(Kind.CNN, 1e6, 100, fit_result(), stopped=True)
    costs.remember(path, "machine-a")
    again = Costs.remembered(path, "machine-a")
    assert again.rate == {Kind.CNN: pytest.approx(0.1 / 1e8)} and not again.measured
    assert Costs.remembered(path, "machine-b").rate == {}
    path.write_text("[1, 2")
    assert Costs.remembered(path, "machine-a").rate == {}
    path.write_text(json.dumps({f"{RATES}|machine-a": {"cnn": "fast"}}))
    assert Costs.remembered(path, "machine-a").rate == {}


@dataclass(frozen=True)
class Image:
    width: int
    height: int


@pytest.mark.parametrize(
    ("sides", "size"), [((28, 28, 28), 28), ((25, 25), 28), ((10, 12), 24), ((300, 500), 96)]
)
def test_convnets_read_images_at_their_own_size_when_small(
    sides: tuple[int, ...], size: int
) -> None:
    assert cnn_input_size([Image(s, s + 3) for s in sides]) == size


def test_shifts_repeat_the_edge_instead_of_wrapping_round() -> None:
    x = np.zeros((64, 8, 8, 3), np.uint8)
    x[:, :, -1] = 255  # a bright right edge
    shifted = augment(seed=1, flip=False)(x)
    moved = [i for i in range(len(x)) if not np.array_equal(shifted[i], x[i])]
    assert moved  # some images moved
    # shifts are of at most 1 px here; wrapping round by +1 would make the left column bright
    assert all(shifted[i][:, 0].max() == 0 for i in range(len(x)))
    assert any(shifted[i][:, -1].max() == 0 for i in range(len(x)))  # some moved right
    assert np.array_equal(augment(seed=1, flip=False)(x), shifted)  # seeded: repeatable


def test_flips_mirror_some_images_which_are_then_shifted_like_the_rest() -> None:
    x = np.random.default_rng(0).integers(0, 256, (64, 16, 16, 3), dtype=np.uint8)
    out = augment(seed=2, flip=True)(x)

    def shifts_of(image: np.ndarray) -> bool:
        """Whether `image` shifted by up to 2 px (edges repeated) is an output."""
        for dy in range(-2, 3):
            for dx in range(-2, 3):
                ys = np.clip(np.arange(16) - dy, 0, 15)
                xs = np.clip(np.arange(16) - dx, 0, 15)
                if any(np.array_equal(image[ys][:, xs], o) for o in out):
                    return True
        return False

    mirrored = [shifts_of(image[:, ::-1]) for image in x]
    kept = [shifts_of(image) for image in x]
    assert all(m or k for m, k in zip(mirrored, kept, strict=True))
    assert 10 < sum(mirrored) < 54 and 10 < sum(kept) < 54  # about half of each


def test_small_data_is_cross_validated_from_the_start_when_the_budget_holds_it() -> None:
    """Cross-validating the first two convnets for AUGMENTED_EPOCHS + PATIENCE epochs a fold,
    and the longest refits of both (what ships may be their ensemble), decide between scoring
    recipes from the start and one direct fit on all the data, which then spends the budget."""
    from types import SimpleNamespace

    from generator.train.budget import (
        AUGMENTED_EPOCHS,
        DIRECT_SHARE,
        FOLDS,
        MAX_REFIT,
        REFIT_EPOCHS,
    )
    from generator.train.costs import OVERHEAD
    from generator.train.networks import CNN_ARCHITECTURES, flops
    from generator.train.recipes import recipes
    from generator.train.trial import PATIENCE

    class Rules(FakeRules):
        options = SimpleNamespace(folds=None, max_epochs=1000)

        def build(self, recipe: Recipe, rows: object) -> object:
            return CNN_ARCHITECTURES[recipe.family][1](recipe.input_size, 3, recipe.dropout)

    todo = recipes(("small-cnn", "separable-cnn"), 28, [])
    first, second = todo[0], todo[1]
    assert (first.augment, second.augment) == ("shift", "none")
    rules = Rules()
    rows = len(Y) * (FOLDS - 1) // FOLDS
    need = sum(
        FOLDS * rules.costs.estimate(Kind.CNN, flops(rules.build(r, None)), rows, 70)
        for r in (first, second)
    )
    assert AUGMENTED_EPOCHS + PATIENCE == 70
    cost = flops(rules.build(first, None))
    refits = [
        rules.costs.estimate(
            Kind.CNN,
            flops(rules.build(r, None)),
            len(Y),
            round(REFIT_EPOCHS * MAX_REFIT * AUGMENTED_EPOCHS),
        )
        for r in (first, second)
    ]
    rules.seconds_left = 1.01 * need
    assert not rules.cross_validation_first(todo)  # the scoring fits, the refits do not
    rules.seconds_left = 1.01 * (need + refits[0])
    assert not rules.cross_validation_first(todo)  # the first one's refit fits, not both
    need += sum(refits)
    rules.seconds_left = 1.05 * need
    assert rules.cross_validation_first(todo) and rules.direct_fit(todo) is None
    per_epoch = rules.costs.estimate(Kind.CNN, cost, len(Y), 1) - OVERHEAD
    for share in (0.9, 0.5):
        rules.seconds_left = share * need
        assert not rules.cross_validation_first(todo)
        fits = int(DIRECT_SHARE * (rules.seconds_left - OVERHEAD) / per_epoch)
        assert fits > 0.6 * AUGMENTED_EPOCHS  # enough epochs for shifted images
        assert rules.direct_fit(todo) == first
    rules.seconds_left = 100 * need
    assert rules.cross_validation_first(todo)
    rules.y = np.zeros(5000, dtype=np.int64)  # large data: never cross-validated
    rules.seconds_left = 1e9
    assert not rules.cross_validation_first(todo)


def test_a_direct_fit_sets_its_length_from_its_warm_epochs_and_then_decays(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Three epochs at the base rate; their measured time then sets how many epochs end
    before the deadline (within the cap), over which the rate decays to zero and training
    stops. A replay (no fill) follows the same schedule for the recorded epochs."""
    from generator.train import trial

    clock = [100.0]
    monkeypatch.setattr(trial.time, "monotonic", lambda: clock[0])

    def run(schedule: trial._Cosine, epochs: int, seconds: float) -> list[float]:
        rates: list[float] = []
        times: list[float] = []
        for epoch in range(epochs):
            rates.append(schedule.rate(epoch))
            clock[0] += seconds
            times.append(seconds)
            if schedule.done(epoch, times):
                break
        return rates

    # 2 s an epoch, 100 s to the deadline at the start: after 3 epochs 94 s are left,
    # 0.95 of them hold 44 more epochs
    filled = run(trial._Cosine(1e-3, 200, 3, (200.0, 0.95)), 200, 2.0)
    assert len(filled) == 47
    assert filled[:4] == [1e-3] * 4  # the decay starts from the base rate
    assert all(a > b for a, b in zip(filled[3:], filled[4:], strict=False))
    assert filled[-1] < 1e-3 * 0.01
    clock[0] = 0.0
    assert run(trial._Cosine(1e-3, 47, 3), 200, 5.0) == filled  # a replay, any speed
    clock[0] = 0.0
    assert len(run(trial._Cosine(1e-3, 30, 3, (1e9, 0.95)), 200, 1.0)) == 30  # the cap
