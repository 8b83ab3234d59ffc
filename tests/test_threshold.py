"""The "not sure" threshold and the Wilson interval (generator.threshold)."""

from __future__ import annotations

import numpy as np
import pytest

from generator.threshold import abstention, choose_threshold, wilson


def probabilities(top: list[float]) -> np.ndarray:
    """Two-class rows whose top score (class 0) is each value."""
    return np.array([[p, 1 - p] for p in top])


def test_the_lowest_score_that_keeps_the_target_precision() -> None:
    top = [0.99] * 50 + [0.9] * 49 + [0.6] * 10 + [0.55] * 10
    truth = np.array([0] * 50 + [0] * 48 + [1] + [1] * 5 + [0] * 5 + [1] * 10)
    threshold = choose_threshold(probabilities(top), truth, target=0.98)
    assert threshold == pytest.approx(0.9)  # 98 of 99 right at >= 0.9; all at 0.6 drops below
    report = abstention(probabilities(top), truth, threshold)
    assert report["answered"] == 99 and report["abstain_rate"] == pytest.approx(20 / 119, abs=1e-4)
    assert report["answered_accuracy"] == pytest.approx(98 / 99, abs=1e-4)


def test_all_right_answers_everything_and_unreachable_sets_none() -> None:
    top = list(np.linspace(0.5, 1.0, 30))
    assert choose_threshold(probabilities(top), np.zeros(30, dtype=int)) == 0.0
    assert choose_threshold(probabilities(top), np.ones(30, dtype=int)) is None
    assert choose_threshold(probabilities(top[:5]), np.zeros(5, dtype=int)) is None  # too few


def test_ties_are_answered_alike() -> None:
    top = [0.9] * 20
    truth = np.array([0] * 19 + [1])  # 95% right at the one score there is
    assert choose_threshold(probabilities(top), truth, target=0.99) is None


def test_wilson_interval() -> None:
    low, high = wilson(10, 10)
    assert high == pytest.approx(1.0) and low == pytest.approx(0.7225, abs=1e-3)
    low, high = wilson(0, 10)
    assert low == 0.0 and high == pytest.approx(0.2775, abs=1e-3)
    low, high = wilson(50, 100)
    assert (low, high) == pytest.approx((0.4038, 0.5962), abs=1e-3)
    assert wilson(0, 0) == (0.0, 1.0)
