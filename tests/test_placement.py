"""Brain masks and valid spots."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from poissonblend.errors import PlacementError
from poissonblend.placement import brain_mask, explain_spot, fill_holes, sample_spot, valid_spots


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), rows=st.integers(1, 40), cols=st.integers(1, 40),
       density=st.floats(0.0, 1.0))
def test_fill_holes_matches_scipy(seed, rows, cols, density):
    mask = np.random.default_rng(seed).random((rows, cols)) < density
    assert np.array_equal(fill_holes(mask), ndimage.binary_fill_holes(mask))


def test_brain_mask_fills_ventricles_and_drops_specks():
    image = np.zeros((64, 64), np.uint8)
    yy, xx = np.mgrid[:64, :64]
    image[(yy - 32) ** 2 + (xx - 32) ** 2 < 20 ** 2] = 90
    image[28:36, 28:36] = 0          # a dark hole inside (CSF): still brain
    image[2, 2] = 200                # a bright speck outside: not brain
    brain = brain_mask(image)
    assert brain[30, 30] and not brain[2, 2] and not brain[60, 60]
    assert not brain_mask(np.zeros((16, 16), np.uint8)).any()


def test_valid_spots_respect_brain_lesions_and_bounds():
    brain = np.zeros((40, 40), bool)
    brain[10:30, 10:30] = True
    lesions = np.zeros((40, 40), bool)
    lesions[18:22, 18:22] = True
    lesion = np.ones((3, 3), bool)
    valid = valid_spots(lesion, brain, lesions)
    ys, xs = np.nonzero(valid)
    assert ys.min() == 11 and ys.max() == 28 and xs.min() == 11 and xs.max() == 28
    assert not valid[20, 20]                  # over the target's own lesion
    for y, x in zip(ys, xs):                  # every valid spot passes the explicit check
        explain_spot(lesion, brain, lesions, int(x), int(y))
    with pytest.raises(PlacementError, match="overlaps"):
        explain_spot(lesion, brain, lesions, 20, 20)
    with pytest.raises(PlacementError, match="outside the brain"):
        explain_spot(lesion, brain, lesions, 3, 3)
    with pytest.raises(PlacementError, match="outside the"):
        explain_spot(lesion, brain, lesions, 0, 39)
    x, y = sample_spot(valid, np.random.default_rng(0))
    assert valid[y, x]
    with pytest.raises(PlacementError, match="no valid spot"):
        sample_spot(np.zeros((5, 5), bool), np.random.default_rng(0))
