"""Scores and statistics of the ablation: volume Dice, bootstrap confidence intervals.

Pure NumPy; randomness only through an `rng` argument.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ..errors import AblationError

BOOTSTRAP_RESAMPLES = 10_000
CONFIDENCE = 0.95


def volume_dice(prediction: np.ndarray, truth: np.ndarray) -> float:
    """Dice of one case over all its slices together (the volume Dice ISLES reports).

    Parameters
    ----------
    prediction, truth : ndarray of bool, same shape
        E.g. ``(slices, rows, cols)``.

    Returns
    -------
    float
        ``2 |P ∩ T| / (|P| + |T|)``; 1.0 when both are empty.
    """
    p, t = np.asarray(prediction, bool), np.asarray(truth, bool)
    if p.shape != t.shape:
        raise AblationError(f"prediction shape {p.shape} differs from truth shape {t.shape}")
    total = int(p.sum()) + int(t.sum())
    return 1.0 if total == 0 else 2.0 * int(np.logical_and(p, t).sum()) / total


def bootstrap_ci(values, *, rng: np.random.Generator | int, resamples: int = BOOTSTRAP_RESAMPLES,
                 confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the mean of `values` (resampling cases).

    Parameters
    ----------
    values : (n,) array_like of float
        One value per case (n >= 1).
    rng : numpy.random.Generator or int
    resamples : int
    confidence : float
        E.g. 0.95 for the 2.5th and 97.5th percentiles.

    Returns
    -------
    (float, float)
        Lower and upper bound.
    """
    v = np.asarray(values, np.float64)
    if v.ndim != 1 or not len(v):
        raise AblationError("a confidence interval needs at least one value")
    if not 0 < confidence < 1:
        raise AblationError(f"confidence {confidence!r} must be in (0, 1)")
    draws = np.random.default_rng(rng).integers(len(v), size=(resamples, len(v)))
    means = v[draws].mean(axis=1)
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(means, [alpha, 1 - alpha])
    return float(lo), float(hi)


def arm_summary(per_case: Mapping[str, float], *, rng: np.random.Generator | int) -> dict:
    """``{"mean_dice", "ci95"}`` of one arm's per-case Dice."""
    values = [per_case[c] for c in sorted(per_case)]
    return {"mean_dice": float(np.mean(values)), "ci95": list(bootstrap_ci(values, rng=rng))}


def paired_difference(arm: Mapping[str, float], base: Mapping[str, float], *,
                      rng: np.random.Generator | int) -> dict:
    """Mean of the per-case differences ``arm − base`` with its bootstrap CI.

    Returns
    -------
    dict
        ``mean_difference``, ``ci95`` [lo, hi], ``cases`` (n), ``better`` / ``worse``
        (cases where the arm scored higher / lower) and ``ci_includes_zero``.
    """
    if set(arm) != set(base):
        raise AblationError("a paired difference needs the same cases in both arms")
    cases = sorted(arm)
    diff = np.array([arm[c] - base[c] for c in cases])
    lo, hi = bootstrap_ci(diff, rng=rng)
    return {"mean_difference": float(diff.mean()), "ci95": [lo, hi], "cases": len(cases),
            "better": int((diff > 0).sum()), "worse": int((diff < 0).sum()),
            "ci_includes_zero": bool(lo <= 0 <= hi)}
