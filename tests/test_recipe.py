"""Recipes: JSON round trip, deterministic draws and renders, placement rules, transforms."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import TEST_SEEDS, brain_slice, write_slice
from poissonblend.dataset import open_dataset
from poissonblend.errors import DatasetError, LesionError, PlacementError, RecipeError
from poissonblend.placement import explain_spot
from poissonblend.recipe import (Recipe, SamplingOptions, lesion_patch, placed_lesion_mask,
                                 render, sample_recipe, sample_rng)


@pytest.fixture
def dataset(training_set):
    return open_dataset(*training_set)


@pytest.mark.parametrize("seed", TEST_SEEDS)
@pytest.mark.parametrize("options", [SamplingOptions(),
                                     SamplingOptions(mode="mixed", scale_range=(0.6, 1.6),
                                                     rotation_range=(-45, 45), flip=True)])
def test_round_trip_renders_the_same_bytes(dataset, seed, options):
    recipe = sample_recipe(dataset, sample_rng(seed, 0), options)
    again = Recipe.from_dict(json.loads(json.dumps(recipe.to_dict())))
    assert again == recipe and again.to_json() == recipe.to_json()
    a, b = render(dataset, recipe), render(dataset, again)
    assert a.image.tobytes() == b.image.tobytes() and a.mask.tobytes() == b.mask.tobytes()
    assert a.quality == b.quality


@pytest.mark.parametrize("seed", TEST_SEEDS)
def test_same_seed_same_recipe_and_valid_placement(dataset, seed):
    first = sample_recipe(dataset, sample_rng(seed, 3))
    assert first == sample_recipe(dataset, sample_rng(seed, 3))
    _, target_lesions = dataset.load(first.target)
    brain = dataset.brain(first.target)
    lesion = placed_lesion_mask(lesion_patch(dataset, first))
    explain_spot(lesion, brain, target_lesions, first.x, first.y)  # raises if invalid
    sample = render(dataset, first)
    assert sample.quality.brain_fraction >= 0.95
    assert not (sample.lesion_mask & target_lesions).any()


def test_case_ids_are_stable_distinct_and_underscore_free(dataset):
    recipes = {sample_recipe(dataset, sample_rng(0, i)) for i in range(200)}
    ids = {r.case_id(dataset.case_ids) for r in recipes}
    assert len(ids) == len(recipes)
    assert all("_" not in i and i.startswith("pb") and i not in dataset.case_ids for i in ids)
    r = next(iter(recipes))
    assert r.case_id() == Recipe.from_dict(r.to_dict()).case_id()
    assert r.case_id({r.case_id()}) != r.case_id()  # lengthened on collision


@pytest.mark.parametrize("scale, flip_h, flip_v", [(1.0, True, False), (1.0, False, True),
                                                   (2.0, False, False), (0.5, True, True)])
def test_transforms_report_their_area(dataset, scale, flip_h, flip_v):
    base = sample_recipe(dataset, sample_rng(1, 0))
    r = Recipe(**{**base.to_dict(), "scale": scale, "flip_h": flip_h, "flip_v": flip_v,
                  "x": 56, "y": 56})
    patch = lesion_patch(dataset, r)
    sample = render(dataset, r)
    assert sample.quality.lesion_area == patch.area == int(sample.lesion_mask.sum())
    original = dataset.info(r.source).lesions[r.lesion].area
    if scale == 1.0:
        assert patch.area == original
    else:
        assert abs(patch.area / original - scale**2) < 0.5 * scale**2


@pytest.mark.parametrize("change, error, match", [
    ({"mode": "fancy"}, RecipeError, "mode"),
    ({"margin": 1}, RecipeError, "margin"),
    ({"scale": 0.0}, RecipeError, "scale"),
    ({"x": 1.5}, RecipeError, "wrong type"),
    ({"lesion": 7}, LesionError, "no lesion 7"),
    ({"target": "slice_9999_0000.png"}, DatasetError, "no such slice"),
    ({"x": 0, "y": 0}, PlacementError, "outside"),
])
def test_invalid_recipes_are_clear_errors(dataset, change, error, match):
    base = sample_recipe(dataset, sample_rng(0, 0)).to_dict()
    with pytest.raises(error, match=match):
        render(dataset, Recipe.from_dict({**base, **change}))


def test_from_dict_rejects_unknown_and_missing_fields():
    with pytest.raises(RecipeError, match="unknown"):
        Recipe.from_dict({"source": "a", "lesion": 0, "target": "b", "x": 1, "y": 1, "colour": 2})
    with pytest.raises(RecipeError, match="incomplete"):
        Recipe.from_dict({"source": "a"})


def test_single_slice_is_source_and_target(tmp_path):
    rng = np.random.default_rng(0)
    image = brain_slice(rng)
    mask = np.zeros((112, 112), np.uint8)
    mask[50:53, 40:43] = 255
    image[mask > 0] += 70
    write_slice(tmp_path / "i", tmp_path / "m", "slice_0001_0000.png", image, mask)
    ds = open_dataset(tmp_path / "i", tmp_path / "m")
    recipe = sample_recipe(ds, 0)
    assert recipe.source == recipe.target == "slice_0001_0000.png"
    sample = render(ds, recipe)
    assert int((sample.mask > 0).sum()) == 2 * 9


def test_lesion_too_large_to_fit_is_a_clear_error(tmp_path):
    rng = np.random.default_rng(0)
    image = brain_slice(rng, 64)
    mask = np.zeros((64, 64), np.uint8)
    mask[4:60, 4:60] = 255  # larger than half the slice, and than the brain
    write_slice(tmp_path / "i", tmp_path / "m", "slice_0001_0000.png", image, mask)
    ds = open_dataset(tmp_path / "i", tmp_path / "m")
    with pytest.raises(PlacementError, match="no valid placement"):
        sample_recipe(ds, 0, SamplingOptions(max_tries=5))


def test_invalid_sampling_options():
    with pytest.raises(RecipeError):
        SamplingOptions(scale_range=(2.0, 1.0))
    with pytest.raises(RecipeError):
        SamplingOptions(mode="other")


def test_min_area_leaves_out_small_lesions(tmp_path):
    rng = np.random.default_rng(0)
    image = brain_slice(rng)
    mask = np.zeros((112, 112), np.uint8)
    mask[40, 40] = 255          # a 1-px speck
    mask[60:64, 50:54] = 255    # a 16-px lesion
    image[mask > 0] += 70
    write_slice(tmp_path / "i", tmp_path / "m", "slice_0001_0000.png", image, mask)
    ds = open_dataset(tmp_path / "i", tmp_path / "m")
    drawn = {sample_recipe(ds, sample_rng(0, i), SamplingOptions(min_area=9)).lesion for i in range(30)}
    big = next(les.index for les in ds.info("slice_0001_0000.png").lesions if les.area == 16)
    assert drawn == {big}
    with pytest.raises(PlacementError, match="at least 100 px"):
        sample_recipe(ds, 0, SamplingOptions(min_area=100))
    with pytest.raises(RecipeError, match="minimum lesion area"):
        SamplingOptions(min_area=0)
