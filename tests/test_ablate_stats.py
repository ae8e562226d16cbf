"""Volume Dice and bootstrap statistics of the ablation, on known numbers."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import TEST_SEEDS
from poissonblend.ablate.stats import arm_summary, bootstrap_ci, paired_difference, volume_dice
from poissonblend.errors import AblationError


def test_volume_dice_known_numbers():
    truth = np.zeros((2, 4, 4), bool)
    truth[0, 0, :2] = True  # 2 px on slice 0
    truth[1, 3, 3] = True  # 1 px on slice 1
    pred = np.zeros_like(truth)
    pred[0, 0, 1:3] = True  # 1 px right, 1 wrong
    assert volume_dice(pred, truth) == pytest.approx(2 * 1 / (2 + 3))
    assert volume_dice(truth, truth) == 1.0
    assert volume_dice(np.zeros_like(truth), truth) == 0.0
    assert volume_dice(np.zeros_like(truth), np.zeros_like(truth)) == 1.0  # nothing there, nothing found
    with pytest.raises(AblationError, match="prediction shape"):
        volume_dice(pred[0], truth)


@pytest.mark.parametrize("seed", TEST_SEEDS)
def test_bootstrap_ci_of_constant_values_is_the_value(seed):
    assert bootstrap_ci([0.7] * 9, rng=seed) == pytest.approx((0.7, 0.7))


@pytest.mark.parametrize("seed", TEST_SEEDS)
def test_bootstrap_ci_matches_the_normal_interval_for_many_cases(seed):
    values = np.random.default_rng(seed).normal(0.5, 0.2, 400)
    lo, hi = bootstrap_ci(values, rng=seed)
    half = 1.96 * values.std(ddof=1) / np.sqrt(len(values))
    assert lo == pytest.approx(values.mean() - half, abs=0.2 * half)
    assert hi == pytest.approx(values.mean() + half, abs=0.2 * half)
    assert bootstrap_ci(values, rng=seed) == (lo, hi)  # the same rng, the same interval


def test_bootstrap_ci_invalid_input():
    with pytest.raises(AblationError, match="at least one value"):
        bootstrap_ci([], rng=0)
    with pytest.raises(AblationError, match="confidence 1.5"):
        bootstrap_ci([1.0], rng=0, confidence=1.5)


def test_arm_summary_and_paired_difference_known_numbers():
    base = {"a": 0.2, "b": 0.4, "c": 0.6, "d": 0.8}
    summary = arm_summary(base, rng=0)
    assert summary["mean_dice"] == pytest.approx(0.5)
    assert 0.2 <= summary["ci95"][0] < 0.5 < summary["ci95"][1] <= 0.8
    up = {c: d + 0.1 for c, d in base.items()}  # every case exactly 0.1 better
    diff = paired_difference(up, base, rng=0)
    assert diff["mean_difference"] == pytest.approx(0.1)
    assert diff["ci95"] == pytest.approx([0.1, 0.1])
    assert (diff["better"], diff["worse"], diff["cases"], diff["ci_includes_zero"]) == (4, 0, 4, False)
    mixed = {"a": 0.3, "b": 0.3, "c": 0.7, "d": 0.7}  # +0.1, -0.1, +0.1, -0.1
    diff = paired_difference(mixed, base, rng=0)
    assert diff["mean_difference"] == pytest.approx(0.0, abs=1e-12)
    assert diff["ci_includes_zero"] and (diff["better"], diff["worse"]) == (2, 2)
    with pytest.raises(AblationError, match="same cases"):
        paired_difference({"a": 1.0}, base, rng=0)
