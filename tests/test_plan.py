"""The budget plan: pure arithmetic on probe estimates (no training)."""

from __future__ import annotations

from dataclasses import replace

from generator.train.families import Kind, SkipCause
from generator.train.plan import RESERVE, Estimate, FamilyPlan, halving_epochs, make_plan

CNN = Estimate("small-cnn", Kind.CNN, 0.5, 0.4, 1.5, max_configs=8, min_rung_epochs=2)
SEP = Estimate("separable-cnn", Kind.CNN, 0.5, 0.5, 3.0, max_configs=8, min_rung_epochs=2)
HEAD = Estimate("mobilenet_v2", Kind.TRANSFER, 4.0, 0.06, 0.6, 16, 5, fine_tune_epoch_seconds=4.0)


def test_halving_arithmetic() -> None:
    family = FamilyPlan("x", Kind.CNN, 8, 3, 20, 0, 0.0, 0.0)
    assert family.rungs == (8, 4, 2)
    assert halving_epochs(8, 3) == 3 * (8 + 4 + 2)
    assert FamilyPlan("x", Kind.CNN, 1, 0, 20, 0, 0.0, 0.0).rungs == ()


def test_plan_fits_the_budget_and_grows_with_it() -> None:
    previous = None
    for budget in (60, 120, 600):
        plan = make_plan(budget, 0.05 * budget, [HEAD, CNN, SEP])
        assert plan.seconds <= budget * (1 - RESERVE)
        assert {f.name for f in plan.families} == {"mobilenet_v2", "small-cnn", "separable-cnn"}
        if previous:
            for before, after in zip(previous.families, plan.families, strict=True):
                assert after.configs >= before.configs
                assert after.final_epochs >= before.final_epochs
        previous = plan
    head = next(f for f in previous.families if f.kind is Kind.TRANSFER)
    assert head.fine_tune_epochs > 0 and head.configs == 16


def test_unaffordable_extraction_is_skipped_with_the_budget_it_needs() -> None:
    slow = replace(HEAD, prepare_seconds=200.0)
    plan = make_plan(120, 6, [slow, CNN])
    assert [f.name for f in plan.families] == ["small-cnn"]
    ((skip),) = plan.skipped
    assert (skip.family, skip.kind, skip.cause) == (
        "mobilenet_v2",
        Kind.TRANSFER,
        SkipCause.UNAFFORDABLE,
    )
    assert "embedding the images would take about 200s" in skip.detail
    assert "raise --time-budget to about" in skip.detail


def test_when_nothing_fits_its_share_the_budget_goes_to_one_candidate() -> None:
    big_head = replace(HEAD, prepare_seconds=14.0)
    big_cnn = replace(CNN, epoch_seconds=9.0)
    plan = make_plan(30, 1.5, [big_head, big_cnn])
    assert [(f.name, f.configs) for f in plan.families] == [("mobilenet_v2", 1)]
    assert plan.families[0].final_epochs >= 5
    only_cnn = make_plan(30, 1.5, [big_cnn])
    assert [(f.name, f.final_epochs) for f in only_cnn.families] == [("small-cnn", 2)]
    hopeless = make_plan(30, 1.5, [replace(CNN, epoch_seconds=60.0)])
    assert hopeless.families == () and hopeless.skipped


def test_the_share_of_an_unaffordable_family_goes_to_the_others() -> None:
    dear = replace(SEP, epoch_seconds=30.0)
    slow = replace(HEAD, name="resnet50_v2", prepare_seconds=500.0)
    plan = make_plan(120, 6, [HEAD, slow, CNN, dear])
    assert [s.family for s in plan.skipped] == ["resnet50_v2", "separable-cnn"]
    alone = make_plan(120, 6, [HEAD, CNN])
    assert plan.families == alone.families
    assert plan.seconds > make_plan(120, 6, [HEAD, CNN, SEP]).families[0].seconds


def test_a_recorded_plan_reads_back_and_bad_ones_name_the_problem() -> None:
    import pytest

    from generator.train.plan import Plan

    plan = make_plan(120, 6, [HEAD, CNN, SEP])
    assert Plan.from_dict(plan.to_dict()).to_dict() == plan.to_dict()
    family = plan.to_dict()["families"][0]
    for broken, message in (
        ({"families": []}, "non-empty families"),
        ({"families": [family | {"kind": "magic"}]}, "family 1: needs a name and a kind"),
        ({"families": [family | {"final_epochs": "5"}]}, "final_epochs must be a whole"),
        ({"families": [family | {"extra": 1}]}, "unknown keys extra"),
    ):
        with pytest.raises(ValueError, match=message):
            Plan.from_dict(broken)
