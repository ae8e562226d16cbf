"""Lesion components, patches and transforms."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from poissonblend.errors import LesionError
from poissonblend.lesions import (cut_lesion, extract_lesion, label_lesions, lesion_component,
                                  transform_lesion)


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), rows=st.integers(1, 40), cols=st.integers(1, 40),
       density=st.floats(0.0, 1.0))
def test_components_are_8_connected_in_raster_order(seed, rows, cols, density):
    mask = (np.random.default_rng(seed).random((rows, cols)) < density).astype(np.uint8)
    labels, lesions = label_lesions(mask)
    expected, n = ndimage.label(mask, structure=np.ones((3, 3)))  # raster order of first pixel
    assert len(lesions) == n
    assert np.array_equal(labels, expected)
    for les in lesions:
        assert les.area == int((labels == les.index + 1).sum())


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), rows=st.integers(1, 30), cols=st.integers(1, 30),
       density=st.floats(0.05, 0.95))
def test_labelling_the_bbox_alone_finds_the_same_component(seed, rows, cols, density):
    mask = (np.random.default_rng(seed).random((rows, cols)) < density).astype(np.uint8) * 255
    labels, lesions = label_lesions(mask)
    for les in lesions:
        r0, c0, r1, c1 = les.bbox_rc
        own = labels[r0:r1, c0:c1] == les.index + 1
        assert np.array_equal(lesion_component(mask, les), own)
        assert np.array_equal(lesion_component(mask > 0, les), own)  # a bool mask does too
    if lesions:  # the two ways to cut a lesion out give the same patch
        image = np.random.default_rng(seed + 1).integers(0, 256, (rows, cols), np.uint8)
        les = max(lesions, key=lambda les: les.area)
        cut = cut_lesion(image, lesion_component(mask, les), les, pad=3)
        extracted = extract_lesion(image, labels, les, pad=3)
        assert np.array_equal(cut.image, extracted.image) and np.array_equal(cut.mask, extracted.mask)
        assert cut.bbox_rc == extracted.bbox_rc


def test_a_lesion_no_longer_in_the_mask_is_an_error():
    mask = np.zeros((20, 20), np.uint8)
    mask[5:9, 5:9] = 255
    (lesion,) = label_lesions(mask)[1]
    mask[5, 5] = 0  # the mask changed after it was labelled
    with pytest.raises(LesionError, match="no lesion of 16 px"):
        lesion_component(mask, lesion)


def test_patch_holds_only_its_own_component():
    image = np.arange(30 * 30, dtype=np.uint8).reshape(30, 30)
    mask = np.zeros((30, 30), np.uint8)
    mask[10:15, 10:15] = 255
    mask[15, 16] = 255   # a neighbour inside the bbox-with-margin, not 8-connected to it
    mask[9, 9] = 255     # diagonal: part of the same lesion
    labels, lesions = label_lesions(mask)
    big = max(lesions, key=lambda les: les.area)
    patch = extract_lesion(image, labels, big, pad=5)
    assert patch.area == 26
    r0, c0, r1, c1 = patch.bbox_rc
    assert (r1 - r0, c1 - c0) == (6, 6)
    assert not patch.mask[r0 + 6, c0 + 7]  # the neighbour at (15, 16) is not pasted
    assert np.array_equal(patch.image[r0:r1, c0:c1], image[9:15, 9:15])


def test_patch_at_the_border_is_reflected_not_clipped():
    image = np.tile(np.arange(8, dtype=np.uint8), (8, 1))
    mask = np.zeros((8, 8), np.uint8)
    mask[0, 0] = 1
    labels, lesions = label_lesions(mask)
    patch = extract_lesion(image, labels, lesions[0], pad=7)
    assert patch.image.shape == (15, 15)
    assert patch.mask.sum() == 1 and patch.mask[7, 7]


@pytest.mark.parametrize("rotation", [0, 90, 180, 270])
def test_right_angle_rotations_and_flips_keep_the_area(rotation):
    mask = np.zeros((40, 40), np.uint8)
    mask[10:14, 12:21] = 1
    mask[14, 12] = 1
    image = (mask * 100 + 50).astype(np.uint8)
    labels, lesions = label_lesions(mask)
    patch = extract_lesion(image, labels, lesions[0], pad=8)
    out = transform_lesion(patch, rotation=rotation, flip_h=True, pad=7)
    assert out.area == patch.area
    r0, c0, r1, c1 = out.bbox_rc
    # texture stays aligned with the mask: the lesion is bright exactly where the mask is
    assert out.image[out.mask].min() > 120 and out.image[r0:r1, c0:c1][~out.mask[r0:r1, c0:c1]].max() < 90


def test_vanishing_and_invalid_scales():
    mask = np.zeros((20, 20), np.uint8)
    mask[10, 10] = 1
    labels, lesions = label_lesions(mask)
    patch = extract_lesion(mask, labels, lesions[0], pad=8)
    with pytest.raises(LesionError, match="scale"):
        transform_lesion(patch, scale=-1, pad=7)
    shrunk = transform_lesion(patch, scale=0.3, pad=7)  # nearest keeps the centre pixel or raises
    assert shrunk.area >= 1
