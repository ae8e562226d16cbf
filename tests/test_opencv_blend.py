"""The seed script's method ("opencv"): faithful to a direct cv2.seamlessClone call, same Quality,
typed errors and redraws, and recipes of the default method unchanged."""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import ndimage

from conftest import TEST_SEEDS, brain_slice, make_training_set, write_slice
from poissonblend.cli import main
from poissonblend.dataset import open_dataset
from poissonblend.errors import PlacementError, RecipeError, SeamlessCloneError
from poissonblend.export import export
from poissonblend.io import encode_png
from poissonblend.lesions import extract_lesion, label_lesions
from poissonblend.opencv_blend import opencv_blend, seamless_clone
from poissonblend.output import sample_paths
from poissonblend.recipe import (METHODS, Recipe, SamplingOptions, draw_sample, render,
                                 render_methods, sample_recipe, sample_rng)
from poissonblend.store import Store

# Recorded on main before `method` existed (commit c143651): these must never change.
RECORDED = [
    (Recipe("slice_0001_0002.png", 0, "slice_0002_0003.png", 50, 61, "mixed", 1.25, -30.0, True,
            False, 6),
     '{"flip_h":true,"flip_v":false,"lesion":0,"margin":6,"mode":"mixed","rotation":-30.0,'
     '"scale":1.25,"source":"slice_0001_0002.png","target":"slice_0002_0003.png","x":50,"y":61}',
     "pb65e7ba67e8"),
    (Recipe("slice_0001_0002.png", 0, "slice_0002_0003.png", 50, 61),
     '{"flip_h":false,"flip_v":false,"lesion":0,"margin":6,"mode":"normal","rotation":0.0,'
     '"scale":1.0,"source":"slice_0001_0002.png","target":"slice_0002_0003.png","x":50,"y":61}',
     "pb177d233dc3"),
]


@pytest.fixture
def dataset(training_set):
    return open_dataset(*training_set)


@pytest.mark.parametrize("recipe, recorded_json, recorded_id", RECORDED)
def test_default_method_keeps_recipe_json_and_case_id(recipe, recorded_json, recorded_id):
    assert recipe.method == "poissonblend"
    assert recipe.to_json() == recorded_json and recipe.case_id() == recorded_id
    assert Recipe.from_dict(recipe.to_dict()) == recipe
    opencv = replace(recipe, method="opencv")
    assert opencv.to_dict()["method"] == "opencv" and Recipe.from_dict(opencv.to_dict()) == opencv
    assert opencv.case_id() != recipe.case_id()


def test_invalid_method_is_a_recipe_error():
    with pytest.raises(RecipeError, match="method 'gimp' must be one of poissonblend, opencv"):
        Recipe("slice_a_0000.png", 0, "slice_b_0000.png", 1, 1, method="gimp")
    with pytest.raises(RecipeError, match="method"):
        SamplingOptions(method="OpenCV")
    with pytest.raises(RecipeError, match="wrong type"):
        Recipe("slice_a_0000.png", 0, "slice_b_0000.png", 1, 1, method=None)


def script_blend(input_dir: Path, mask_dir: Path, row: dict) -> tuple[np.ndarray, np.ndarray]:
    """The seed script, written out here on the manifest row's inputs, without poissonblend.

    Lesion k is the (k+1)-th 8-connected component in raster order (scipy numbers them so).
    """
    read = lambda folder, name: cv2.imread(str(folder / name), cv2.IMREAD_GRAYSCALE)  # noqa: E731
    src, src_mask = read(input_dir, row["source_file"]), read(mask_dir, row["source_file"])
    dst, dst_mask = read(input_dir, row["target_file"]), read(mask_dir, row["target_file"])
    labels, _ = ndimage.label(src_mask > 0, structure=np.ones((3, 3)))
    one = ((labels == int(row["lesion_index"]) + 1) * 255).astype(np.uint8)
    x, y, w, h = cv2.boundingRect(one)
    flag = cv2.MIXED_CLONE if row["mode"] == "mixed" else cv2.NORMAL_CLONE
    # A copy: OpenCV zeroes the border of the mask it is given, in place.
    out = cv2.seamlessClone(cv2.cvtColor(src[y:y + h, x:x + w], cv2.COLOR_GRAY2BGR),
                            cv2.cvtColor(dst, cv2.COLOR_GRAY2BGR), one[y:y + h, x:x + w].copy(),
                            (int(row["x"]), int(row["y"])), flag)
    mask = dst_mask.copy()
    top, left = int(row["y"]) - h // 2, int(row["x"]) - w // 2
    mask[top:top + h, left:left + w] |= one[y:y + h, x:x + w]
    return cv2.cvtColor(out, cv2.COLOR_BGR2GRAY), np.where(mask > 0, 255, 0).astype(np.uint8)


@pytest.mark.parametrize("mode", ["normal", "mixed"])
def test_generate_opencv_is_the_scripts_seamless_clone_byte_for_byte(tmp_path, mode, capsys):
    input_dir, mask_dir = make_training_set(tmp_path / "set", cases=4, seed=3)
    out_i, out_m = tmp_path / "aug_input", tmp_path / "aug_mask"
    assert main(["generate", "--input-dir", str(input_dir), "--mask-dir", str(mask_dir),
                 "--out-input-dir", str(out_i), "--out-mask-dir", str(out_m), "--count", "40",
                 "--seed", "2", "--mode", mode, "--method", "opencv", "--workers", "2"]) == 0
    assert "40 written" in capsys.readouterr().out
    with open(tmp_path / "poissonblend_manifest.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 40
    for row in rows:
        assert row["method"] == "opencv" and row["mode"] == mode
        assert row["source_case"] == row["source_file"].split("_")[1]
        assert row["target_case"] == row["target_file"].split("_")[1]
        image, mask = script_blend(input_dir, mask_dir, row)
        image_path, mask_path = sample_paths(row["case_id"], out_i, out_m)
        assert image_path.read_bytes() == encode_png(image)
        assert mask_path.read_bytes() == encode_png(mask)


def test_both_methods_give_the_same_mask_and_comparable_quality(dataset):
    compared = 0
    for seed in TEST_SEEDS:
        recipe = sample_recipe(dataset, sample_rng(seed, 0), SamplingOptions(min_area=30))
        both = render_methods(dataset, recipe)
        if both.errors:
            continue
        compared += 1
        ours, theirs = both.samples["poissonblend"], both.samples["opencv"]
        assert theirs.recipe == replace(recipe, method="opencv")
        assert ours.mask.tobytes() == theirs.mask.tobytes()
        assert (ours.lesion_mask == theirs.lesion_mask).all()
        assert ours.quality.lesion_area == theirs.quality.lesion_area
        assert ours.quality.brain_fraction == theirs.quality.brain_fraction
        assert ours.quality.contrast_source == theirs.quality.contrast_source
        # OpenCV erodes the mask: the lesion's contrast mostly does not arrive.
        assert theirs.quality.contrast_transferred < ours.quality.contrast_transferred
        assert theirs.quality.changed_fraction < ours.quality.changed_fraction
    assert compared >= 3


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), mode=st.sampled_from(["normal", "mixed"]),
       flip=st.booleans(), scale=st.floats(0.7, 1.6))
def test_opencv_changes_only_the_lesion_box_and_its_mask_is_target_or_lesion(dataset, seed, mode,
                                                                           flip, scale):
    options = SamplingOptions(method="opencv", mode=mode, flip=flip, scale_range=(scale, scale))
    sample = draw_sample(dataset, seed, options).sample
    target, target_mask = dataset.load(sample.recipe.target)
    rows, cols = np.nonzero(sample.lesion_mask)
    box = np.zeros_like(target_mask)
    box[rows.min():rows.max() + 1, cols.min():cols.max() + 1] = True
    assert (sample.image[~box] == target[~box]).all()  # OpenCV solves inside the bbox only
    assert (sample.mask == np.where(target_mask | sample.lesion_mask, 255, 0)).all()
    assert sample.quality.lesion_area == rows.size


def test_transformed_recipes_render_with_opencv(dataset):
    options = SamplingOptions(method="opencv", scale_range=(1.5, 2.5), rotation_range=(-60, 60),
                              flip=True, mode="mixed")
    sample, _ = draw_sample(dataset, sample_rng(0, 1), options)
    again = render(dataset, Recipe.from_dict(sample.recipe.to_dict()))
    assert sample.recipe.method == "opencv" and sample.recipe.scale >= 1.5
    assert again.image.tobytes() == sample.image.tobytes()
    assert again.quality == sample.quality
    target, target_mask = dataset.load(sample.recipe.target)
    assert (sample.mask > 0).sum() == target_mask.sum() + sample.quality.lesion_area


def tiny_lesion_set(root: Path) -> tuple[Path, Path]:
    """Slices whose only lesion is 3x3 px (OpenCV raises on it) or a 12-px-wide disc."""
    rng = np.random.default_rng(4)
    yy, xx = np.mgrid[:96, :96]
    for k in range(6):
        image, mask = brain_slice(rng, 96), np.zeros((96, 96), np.uint8)
        if k % 2:
            mask[46:49, 46:49] = 255
        else:
            mask[(yy - 48) ** 2 + (xx - 48) ** 2 < 36] = 255
        image[mask > 0] += 70
        write_slice(root / "input", root / "mask", f"slice_{k:04d}_0000.png", image, mask)
    return root / "input", root / "mask"


def test_opencv_failure_is_typed_and_drawn_again(tmp_path):
    dataset = open_dataset(*tiny_lesion_set(tmp_path / "tiny"))
    recipe = Recipe("slice_0001_0000.png", 0, "slice_0000_0000.png", 40, 40, method="opencv")
    with pytest.raises(SeamlessCloneError, match="seamlessClone fails on this 3x3 px lesion box"):
        render(dataset, recipe)
    both = render_methods(dataset, recipe)
    assert set(both.samples) == {"poissonblend"} and "3x3" in both.errors["opencv"]
    assert render(dataset, replace(recipe, method="poissonblend")).quality.lesion_area == 9
    options = SamplingOptions(method="opencv")
    redraws = []
    for i in range(20):
        sample, redrawn = draw_sample(dataset, sample_rng(7, i), options)
        # the same draws by hand: recipes from one stream until OpenCV takes one
        rng = sample_rng(7, i)
        manual = [sample_recipe(dataset, rng, options) for _ in range(redrawn + 1)]
        assert manual[-1] == sample.recipe and sample.quality.lesion_area > 9
        assert all(r.source.startswith("slice_0001") or r.source.startswith("slice_0003")
                   or r.source.startswith("slice_0005") for r in manual[:-1])
        redraws.append(redrawn)
    assert sum(redraws) > 0
    with pytest.raises(PlacementError, match="seamlessClone failed on 3 recipes in a row"):
        only_tiny = SamplingOptions(method="opencv", max_tries=3,
                                    holdout=frozenset({"0000", "0002", "0004"}))
        draw_sample(dataset, 0, only_tiny)


def test_generate_and_queue_count_redraws(tmp_path, capsys):
    input_dir, mask_dir = tiny_lesion_set(tmp_path / "tiny")
    out = tmp_path / "out"
    assert main(["generate", "--input-dir", str(input_dir), "--mask-dir", str(mask_dir),
                 "--out-input-dir", str(out / "i"), "--out-mask-dir", str(out / "m"),
                 "--count", "20", "--method", "opencv"]) == 0
    line = capsys.readouterr().out
    assert "20 written" in line and "redrawn (OpenCV's seamlessClone failed on them)" in line
    db = tmp_path / "review.db"
    assert main(["queue", "--db", str(db), "--input-dir", str(input_dir), "--mask-dir",
                 str(mask_dir), "--count", "20", "--method", "opencv"]) == 0
    assert "redrawn (OpenCV's seamlessClone failed on them)" in capsys.readouterr().out
    store = Store.open(db)
    assert all(c.recipe.method == "opencv" for c in store.candidates())
    assert main(["queue", "--db", str(db), "--input-dir", str(input_dir), "--mask-dir",
                 str(mask_dir), "--count", "1", "--method", "seamless"]) == 2
    assert "invalid choice: 'seamless'" in capsys.readouterr().err


def test_queued_opencv_candidates_export_bit_identically(tmp_path, dataset):
    store = Store.open(tmp_path / "review.db", dataset)
    queued = store.queue(10, 4, SamplingOptions(method="opencv"))
    for c in queued:
        store.decide(c.id, "accepted")
    summary = export(store, tmp_path / "ai", tmp_path / "am")
    assert not summary.conflicts and summary.written == len({c.case_id for c in queued})
    for c in queued:
        sample = render(dataset, c.recipe)
        image_path, mask_path = sample_paths(c.case_id, tmp_path / "ai", tmp_path / "am")
        assert image_path.read_bytes() == encode_png(sample.image)
    with open(summary.manifest) as fh:
        assert {r["method"] for r in csv.DictReader(fh)} == {"opencv"}


def test_opencv_blend_invalid_input(dataset):
    recipe = sample_recipe(dataset, 0, SamplingOptions(min_area=20))
    sample = render(dataset, recipe)
    image, _ = dataset.load(recipe.source)
    labels, lesions = label_lesions((dataset.load(recipe.source)[1]).view(np.uint8))
    patch = extract_lesion(image, labels, lesions[recipe.lesion], pad=7)
    target, target_mask = dataset.load(recipe.target)
    result = opencv_blend(patch, target, target_mask, center_xy=(recipe.x, recipe.y),
                          brain=dataset.brain(recipe.target))
    assert result.image.tobytes() == render(dataset, replace(recipe, method="opencv")).image.tobytes()
    assert result.mask.tobytes() == sample.mask.tobytes()
    with pytest.raises(RecipeError, match="mode"):
        opencv_blend(patch, target, target_mask, center_xy=(recipe.x, recipe.y), mode="poisson")
    with pytest.raises(PlacementError, match="outside"):
        opencv_blend(patch, target, target_mask, center_xy=(0, 0))
    with pytest.raises(SeamlessCloneError, match="1x1 px"):
        seamless_clone(np.full((1, 1), 200, np.uint8), np.full((1, 1), 255, np.uint8), target,
                       center_xy=(50, 50))
    assert METHODS == ("poissonblend", "opencv")
