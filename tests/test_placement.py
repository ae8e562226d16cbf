"""Brain masks and valid spots."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from poissonblend.errors import PlacementError
from poissonblend.placement import (brain_mask, draw_spot, explain_spot, fill_holes, histogram,
                                    sample_spot, tissue_threshold, valid_spots)


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


@pytest.mark.parametrize("sigma", [4.0, 8.0, 15.0])
def test_tissue_threshold_sits_above_rician_background_noise(sigma):
    rng = np.random.default_rng(0)
    image = np.hypot(*rng.normal(0, sigma, (2, 128, 128)))       # noise everywhere…
    yy, xx = np.mgrid[:128, :128]
    disc = (yy - 64) ** 2 + (xx - 64) ** 2 < 40 ** 2
    image[disc] = rng.normal(140, sigma, disc.sum())               # …and tissue on a disc
    image = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    threshold = tissue_threshold(histogram(image))
    assert 3.5 * sigma <= threshold <= 0.5 * 140
    brain = brain_mask(image, threshold=threshold)
    assert np.count_nonzero(brain ^ disc) <= 0.01 * disc.sum()


def test_tissue_threshold_of_a_black_background_is_a_tenth_of_the_bright_tissue():
    image = np.zeros((64, 64), np.uint8)
    image[10:50, 10:50] = 200
    assert tissue_threshold(histogram(image)) == 20
    assert tissue_threshold(np.zeros(256, np.int64)) == 1
    assert not brain_mask(np.zeros((8, 8), np.uint8)).any()


def test_brain_mask_keeps_enclosed_spaces_and_separate_lobes_but_not_open_bays():
    image = np.zeros((80, 80), np.uint8)
    yy, xx = np.mgrid[:80, :80]
    image[(yy - 35) ** 2 + (xx - 40) ** 2 < 25 ** 2] = 100
    image[30:40, 35:45] = 5          # a ventricle: enclosed
    image[5:22, 38:42] = 5           # a fissure open to the outside
    image[66:78, 10:40] = 100        # a lobe of its own (360 px, > 10 % of the largest)
    image[70, 70] = 100              # a speck
    brain = brain_mask(image)
    assert brain[35, 40] and brain[70, 25] and not brain[20, 40] and not brain[70, 70]


def test_draw_spot_is_uniform_over_the_valid_spots():
    """Rejection in the brain's bbox, with the full map as fallback: every valid spot equally likely."""
    brain = np.zeros((30, 30), bool)
    brain[5:25, 8:20] = True
    brain[12:16, 20:27] = True       # a narrow arm: few valid spots there
    lesions = np.zeros((30, 30), bool)
    lesions[10:12, 10:12] = True
    lesion = np.ones((3, 4), bool)
    valid = valid_spots(lesion, brain, lesions)
    rng = np.random.default_rng(5)
    counts = np.zeros(valid.shape, np.int64)
    n = 30 * int(valid.sum())
    for _ in range(n):
        x, y = draw_spot(lesion, brain, lesions, rng)
        counts[y, x] += 1
    assert not counts[~valid].any()
    expected = n / valid.sum()
    chi2 = float((((counts[valid] - expected) ** 2) / expected).sum())
    dof = int(valid.sum()) - 1
    assert chi2 < dof + 5 * np.sqrt(2 * dof)   # far from a bias of the size a flaw would show


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), size=st.integers(4, 24), h=st.integers(1, 6), w=st.integers(1, 6),
       density=st.floats(0.0, 1.0))
def test_draw_spot_finds_a_valid_spot_exactly_when_there_is_one(seed, size, h, w, density):
    rng = np.random.default_rng(seed)
    brain = rng.random((size, size)) < density
    lesion = rng.random((h, w)) < 0.7
    lesion[h // 2, w // 2] = True
    target_lesions = rng.random((size, size)) < 0.05
    valid = valid_spots(lesion, brain, target_lesions)
    spot = draw_spot(lesion, brain, target_lesions, rng)
    if valid.any():
        assert spot is not None and valid[spot[1], spot[0]]
        explain_spot(lesion, brain, target_lesions, *spot)
    else:
        assert spot is None
