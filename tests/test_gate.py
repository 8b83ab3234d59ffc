"""The regression gate's rule (generator.gate) on predicted labels: noise is not a
regression, a clear loss is, new classes are reported apart."""

from __future__ import annotations

import math

import pytest

from generator.gate import (
    ACCEPTED,
    NO_BASELINE,
    PASSED,
    REFUSED,
    compare,
    markdown,
    p_at_least,
)


def test_exact_mcnemar_tail() -> None:
    assert p_at_least(0, 0) == 1.0
    assert p_at_least(1, 0) == pytest.approx(0.5)
    assert p_at_least(5, 0) == pytest.approx(1 / 32)
    assert p_at_least(3, 1) == pytest.approx(5 / 16)
    assert p_at_least(7, 3) == pytest.approx(sum(math.comb(10, k) for k in (7, 8, 9, 10)) / 1024)


def test_one_image_worse_on_thirty_is_noise() -> None:
    truth = ["a"] * 15 + ["b"] * 15
    incumbent = list(truth)
    candidate = list(truth)
    candidate[0] = "b"
    verdict = compare(truth, candidate, incumbent, ["a", "b"])
    assert verdict.status == PASSED and verdict.worse == 1 and verdict.better == 0
    assert verdict.shared == 30 and verdict.candidate.accuracy == pytest.approx(29 / 30)


def test_a_clear_loss_is_refused_and_can_be_accepted_with_a_reason() -> None:
    truth = ["a"] * 15 + ["b"] * 15
    candidate = ["b"] * 6 + truth[6:]
    verdict = compare(truth, candidate, truth, ["a", "b"])
    assert verdict.status == REFUSED and verdict.blocks
    assert verdict.p_worse == pytest.approx(1 / 64, abs=1e-6)
    assert any("class 'a' recall fell by 40%" in r for r in verdict.reasons)
    accepted = verdict.accept("relabelling in progress")
    assert accepted.status == ACCEPTED and not accepted.blocks
    assert "relabelling in progress" in markdown(accepted)


def test_a_class_that_collapses_is_refused_even_when_the_total_is_flat() -> None:
    truth = ["a"] * 10 + ["b"] * 30
    incumbent = ["a"] * 10 + ["a"] * 8 + ["b"] * 22  # 8 of b wrong
    candidate = ["b"] * 10 + ["b"] * 30  # a lost entirely, b all right
    verdict = compare(truth, candidate, incumbent, ["a", "b"])
    assert verdict.worse == 10 and verdict.better == 8  # overall: noise
    assert verdict.status == REFUSED
    assert [r for r in verdict.reasons if "class 'a'" in r]


def test_new_classes_are_reported_apart_and_no_baseline_is_said() -> None:
    truth = ["a", "a", "b", "b", "new", "new"]
    candidate = ["a", "a", "b", "b", "new", "a"]
    verdict = compare(truth, candidate, ["a", "a", "b", "a", "a", "a"], ["a", "b"])
    assert verdict.shared == 4 and verdict.status == PASSED
    assert verdict.new_classes == {"new": {"images": 2, "candidate_recall": 0.5}}
    first = compare(truth, candidate, None, [], why_none="the project's first model")
    assert first.status == NO_BASELINE and first.reasons == ("the project's first model",)
    unknown = compare(["new"], ["new"], ["a"], ["a", "b"])
    assert unknown.status == NO_BASELINE


def test_markdown_escapes_labels_in_table_cells() -> None:
    truth = ["a|b"] * 3 + ["c"] * 3
    text = markdown(compare(truth, truth, truth, ["a|b", "c"]))
    assert "| recall: a\\|b (3) | 1.0000 | 1.0000 | +0.0000 |" in text


def test_a_small_class_lost_whole_is_refused_one_image_is_not() -> None:
    truth = ["a"] * 26 + ["b"] * 4
    candidate = ["a"] * 26 + ["a"] * 4  # class b: 4 of 4 lost, p = 1/16 > 0.05
    verdict = compare(truth, candidate, truth, ["a", "b"])
    assert verdict.status == REFUSED and any("class 'b'" in r for r in verdict.reasons)
    small = ["a"] * 27 + ["b"] * 3
    one = ["a"] * 27 + ["a", "b", "b"]  # one of 3 lost: a 33% drop, and noise
    assert compare(small, one, small, ["a", "b"]).status == PASSED
