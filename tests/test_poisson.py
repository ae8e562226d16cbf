"""The single-channel Poisson solver."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from poissonblend.poisson import MATMUL_MAX, poisson_solve


def laplacian(a: np.ndarray) -> np.ndarray:
    a = a.astype(np.float64)
    return a[1:-1, 2:] + a[1:-1, :-2] + a[2:, 1:-1] + a[:-2, 1:-1] - 4 * a[1:-1, 1:-1]


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), rows=st.integers(3, 90), cols=st.integers(3, 90))
def test_normal_mode_solves_the_discrete_poisson_equation(seed, rows, cols):
    """On the region Δf = Δsource; the outer ring stays the target."""
    rng = np.random.default_rng(seed)
    source = rng.normal(120, 20, (rows, cols)).astype(np.float32)
    target = rng.normal(60, 20, (rows, cols)).astype(np.float32)
    region = np.zeros((rows, cols), bool)
    region[1:-1, 1:-1] = True  # both the dense (<= MATMUL_MAX) and the FFT path are drawn
    f = poisson_solve(source, target, region)
    assert f.dtype == np.float32 and f.shape == target.shape
    ring = np.ones((rows, cols), bool)
    ring[1:-1, 1:-1] = False
    assert np.array_equal(f[ring], target[ring])
    # every interior pixel is in the region, so all its edges carry the source gradient
    assert np.abs(laplacian(f) - laplacian(source)).max() < 1e-2


@pytest.mark.parametrize("size", [12, MATMUL_MAX + 20])
def test_constant_offset_is_absorbed_and_empty_region_changes_nothing(size):
    rng = np.random.default_rng(0)
    target = rng.normal(80, 5, (size, size)).astype(np.float32)
    region = np.zeros((size, size), bool)
    region[3:-3, 3:-3] = True
    # source = target + constant: same gradients, so the result is the target itself
    assert np.abs(poisson_solve(target + 40, target, region) - target).max() < 1e-3
    assert np.abs(poisson_solve(target + 40, target, np.zeros_like(region)) - target).max() < 1e-3


def test_mixed_mode_keeps_the_stronger_gradient():
    target = np.zeros((20, 20), np.float32)
    target[:, 10:] = 100          # a strong edge in the target
    source = np.full((20, 20), 50, np.float32)
    source[8:12, 4:8] = 60        # a weak bump in the source
    region = np.zeros((20, 20), bool)
    region[2:-2, 2:-2] = True
    mixed = poisson_solve(source, target, region, mode="mixed")
    normal = poisson_solve(source, target, region, mode="normal")
    edge = lambda f: float(np.abs(f[5:15, 10] - f[5:15, 9]).mean())  # noqa: E731
    assert edge(mixed) > 90 > edge(normal)       # mixed keeps the target's edge
    assert mixed[9, 5] - mixed[9, 2] > 5         # and still carries the source's bump


@pytest.mark.parametrize("kwargs, match", [
    ({"region": np.zeros((5, 6), bool)}, "same shape"),
    ({"source": np.zeros((2, 2), np.float32), "target": np.zeros((2, 2), np.float32),
      "region": np.zeros((2, 2), bool)}, "at least 3x3"),
    ({"mode": "sideways"}, "mode"),
])
def test_invalid_input(kwargs, match):
    args = {"source": np.zeros((5, 5), np.float32), "target": np.zeros((5, 5), np.float32),
            "region": np.zeros((5, 5), bool)}
    args.update(kwargs)
    mode = args.pop("mode", "normal")
    with pytest.raises(ValueError, match=match):
        poisson_solve(args["source"], args["target"], args["region"], mode=mode)
