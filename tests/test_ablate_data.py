"""Folds, normalisation, fold views and batches of the ablation (no Keras)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import TEST_SEEDS
from poissonblend.ablate.data import (batch_order, case_folds, normalise, padded_shape, to_arrays,
                                      training_names)
from poissonblend.dataset import open_dataset
from poissonblend.errors import AblationError


@settings(max_examples=60, deadline=None)
@given(n_cases=st.integers(2, 40), data=st.data(), seed=st.integers(0, 2**32 - 1))
def test_folds_are_disjoint_and_test_every_case_once(n_cases, data, seed):
    k = data.draw(st.integers(2, min(n_cases, 10)))
    cases = [f"c{i:03d}" for i in range(n_cases)]
    folds = case_folds(cases, folds=k, rng=seed)
    assert len(folds) == k
    tested = [c for f in folds for c in f.test]
    assert sorted(tested) == cases  # every case tested exactly once
    for f in folds:
        assert not set(f.train) & set(f.test)
        assert sorted(f.train + f.test) == cases
        assert f.test and list(f.test) == sorted(f.test)
    sizes = [len(f.test) for f in folds]
    assert max(sizes) - min(sizes) <= 1
    assert case_folds(reversed(cases), folds=k, rng=seed) == folds  # input order is irrelevant


@pytest.mark.parametrize("folds, cases, message", [
    (1, ["a", "b"], "folds 1 must be an integer >= 2"),
    (3, ["a", "b"], "2 case(s) cannot make 3 folds"),
])
def test_folds_invalid_input(folds, cases, message):
    with pytest.raises(AblationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        case_folds(cases, folds=folds, rng=0)


@pytest.mark.parametrize("seed", TEST_SEEDS)
def test_normalise_maps_each_image_min_max_to_minus_one_one(seed):
    rng = np.random.default_rng(seed)
    image = rng.integers(rng.integers(0, 100), rng.integers(101, 256), (20, 30)).astype(np.uint8)
    x = normalise(image)
    assert x.dtype == np.float32 and x.shape == image.shape
    assert x.min() == -1.0 and x.max() == 1.0
    order = np.argsort(image, axis=None, kind="stable")
    assert np.all(np.diff(x.ravel()[order]) >= 0)  # monotone: the same ranking of pixels
    assert np.all(normalise(np.full((4, 5), 37, np.uint8)) == -1.0)  # constant: all -1


def test_to_arrays_pads_bottom_right_and_binarises_masks():
    image = np.arange(12, dtype=np.uint8).reshape(3, 4)
    mask = np.array([[0, 1, 255, 0]] * 3, np.uint8)
    x, y = to_arrays([(image, mask)], (8, 8))
    assert x.shape == y.shape == (1, 8, 8, 1)
    assert np.array_equal(x[0, :3, :4, 0], normalise(image))
    assert np.all(x[0, 3:, :, 0] == -1) and np.all(x[0, :, 4:, 0] == -1)
    assert np.array_equal(y[0, :3, :4, 0], (mask > 0).astype(np.float32))
    assert y[0, 3:].sum() == 0 and y[0, :, 4:].sum() == 0
    assert padded_shape([(3, 4), (10, 2)], 8) == (16, 8)


@pytest.mark.parametrize("fraction", [0.0, 0.5, 1.0])
def test_training_names_keep_every_lesion_slice_and_a_share_of_the_others(training_set, fraction):
    dataset = open_dataset(*training_set)
    cases = sorted(dataset.case_ids)
    names = training_names(dataset, cases, empty_fraction=fraction, rng=0)
    lesion = [s.name for s in dataset.slices if len(s.lesions)]
    empty = [s.name for s in dataset.slices if not len(s.lesions)]
    assert set(lesion) <= set(names) and names == sorted(names)
    assert len(set(names) & set(empty)) == round(fraction * len(empty))
    with pytest.raises(AblationError, match="empty fraction 2"):
        training_names(dataset, cases, empty_fraction=2, rng=0)


@pytest.mark.parametrize("n, steps, batch", [(5, 7, 3), (48, 48, 16), (1, 2, 4)])
def test_batch_order_is_shuffled_passes(n, steps, batch):
    batches = batch_order(n, steps=steps, batch_size=batch, rng=3)
    assert len(batches) == steps and all(len(b) == batch for b in batches)
    flat = np.concatenate(batches)
    for start in range(0, len(flat) - n + 1, n):  # every full pass is a permutation
        assert sorted(flat[start:start + n]) == list(range(n))
    again = batch_order(n, steps=steps, batch_size=batch, rng=3)
    assert all(np.array_equal(a, b) for a, b in zip(batches, again))
    with pytest.raises(AblationError, match="no training slices"):
        batch_order(0, steps=1, batch_size=1, rng=0)
