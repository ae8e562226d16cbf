"""Properties of the blend, checked with hypothesis over random images, lesions and spots."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from poissonblend.blend import CHANGE_LEVEL, FEATHER, blend
from poissonblend.errors import PlacementError, RecipeError
from poissonblend.lesions import extract_lesion, label_lesions

MARGIN = 6


def chebyshev_distance(mask: np.ndarray) -> np.ndarray:
    """Chebyshev distance of every pixel to the nearest True pixel of `mask`."""
    return cv2.distanceTransform((~mask).view(np.uint8), cv2.DIST_C, 3)


@st.composite
def scenes(draw, *, max_size: int = 64):
    """(source, source_mask, lesion, target, target_mask, x, y) with one hyperintense lesion.

    The source has at least MARGIN + 2 px of normal tissue around the lesion; the
    lesion may be as large as the whole target and touch its borders.
    """
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    h = draw(st.integers(1, max_size))
    w = draw(st.integers(1, max_size))
    shape = draw(st.sampled_from(["full", "blob", "point"]))
    if shape == "point" or h * w == 1:
        blob = np.zeros((h, w), bool)
        blob[h // 2, w // 2] = True
    else:
        noise = cv2.GaussianBlur(rng.normal(size=(h, w)), (0, 0), 1.5)
        blob = noise > np.quantile(noise, 0.4) if shape == "blob" else np.ones((h, w), bool)
        n, labels = cv2.connectedComponents(blob.view(np.uint8), connectivity=8)
        sizes = np.bincount(labels.ravel())[1:]
        blob = labels == 1 + int(np.argmax(sizes))
    border = MARGIN + 2 + draw(st.integers(0, 6))
    sh, sw = h + 2 * border, w + 2 * border
    source = rng.normal(70, 4, (sh, sw))
    source_mask = np.zeros((sh, sw), np.uint8)
    source_mask[border:border + h, border:border + w][blob] = 255
    source[source_mask > 0] += 60 + rng.normal(0, 4, int(blob.sum()))
    # A neighbouring lesion touching the bbox corner region must never be pasted.
    source_mask[0, 0] = 255
    th = draw(st.integers(h, max(h, max_size)))
    tw = draw(st.integers(w, max(w, max_size)))
    target = np.clip(rng.normal(draw(st.integers(30, 200)), 4, (th, tw)), 0, 255)
    target_mask = np.zeros((th, tw), bool)
    if th * tw > 4 and draw(st.booleans()):
        target_mask[rng.integers(th), rng.integers(tw)] = True
    y = draw(st.integers(h // 2, th - (h - h // 2)))
    x = draw(st.integers(w // 2, tw - (w - w // 2)))
    return (np.clip(source, 0, 255).astype(np.uint8), source_mask,
            target.astype(np.uint8), target_mask, x, y)


def _blend_scene(scene, mode="normal"):
    source, source_mask, target, target_mask, x, y = scene
    labels, lesions = label_lesions(source_mask)
    lesion = max(lesions, key=lambda les: les.area)  # not the 1-px decoy at (0, 0)
    patch = extract_lesion(source, labels, lesion, pad=MARGIN + 1)
    return lesion, patch, blend(patch, target, target_mask, center_xy=(x, y), mode=mode, margin=MARGIN)


SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(scene=scenes(), mode=st.sampled_from(["normal", "mixed"]))
def test_placed_mask_is_the_source_component_moved(scene, mode):
    source, source_mask, target, target_mask, x, y = scene
    lesion, patch, out = _blend_scene(scene, mode)
    r0, c0, r1, c1 = lesion.bbox_rc
    h, w = r1 - r0, c1 - c0
    top, left = y - h // 2, x - w // 2
    expected = np.zeros(target.shape, bool)
    labels, _ = label_lesions(source_mask)
    expected[top:top + h, left:left + w] = labels[r0:r1, c0:c1] == lesion.index + 1
    assert np.array_equal(out.lesion_mask, expected)
    assert out.quality.lesion_area == lesion.area == int(out.lesion_mask.sum())
    assert set(np.unique(out.mask)) <= {0, 255}
    assert np.array_equal(out.mask > 0, target_mask | expected)


@SETTINGS
@given(scene=scenes(), mode=st.sampled_from(["normal", "mixed"]))
def test_change_hugs_the_lesion(scene, mode):
    _, _, target, _, _, _ = scene
    _, _, out = _blend_scene(scene, mode)
    dist = chebyshev_distance(out.lesion_mask)
    diff = np.abs(out.image.astype(int) - target.astype(int))
    assert np.array_equal(out.image[dist > FEATHER], target[dist > FEATHER])
    changed = diff > CHANGE_LEVEL
    if changed.any():
        assert (dist[changed] <= 3).mean() >= 0.98
    assert np.array_equal(out.image[dist > 8], target[dist > 8])


@SETTINGS
@given(scene=scenes())
def test_hyperintense_lesion_appears_where_its_mask_is(scene):
    _, _, target, _, _, _ = scene
    lesion, _, out = _blend_scene(scene)
    change = out.image.astype(float) - target.astype(float)
    placed = out.lesion_mask
    if lesion.area >= 9:
        assert (np.abs(change[placed]) > CHANGE_LEVEL).mean() >= 0.75
    # The texture landed exactly under the mask: no 1-px shift of the mask fits the
    # hyperintense pixels better (IoU of "changed by more than half the contrast").
    if lesion.area >= 9 and out.quality.contrast_source > 20:
        hot = change > out.quality.contrast_source / 2
        padded = np.pad(placed, 1)
        def iou(dr, dc):
            shifted = padded[1 + dr:1 + dr + placed.shape[0], 1 + dc:1 + dc + placed.shape[1]]
            return (hot & shifted).sum() / (hot | shifted).sum()
        assert iou(0, 0) > 0.9
        assert all(iou(0, 0) > iou(dr, dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1) if dr or dc)


@SETTINGS
@given(scene=scenes(max_size=40), mode=st.sampled_from(["normal", "mixed"]))
def test_inputs_untouched_and_output_deterministic(scene, mode):
    copies = [np.copy(a) for a in scene[:4]]
    _, patch, first = _blend_scene(scene, mode)
    patch_copy = (patch.image.copy(), patch.mask.copy())
    _, _, second = _blend_scene(scene, mode)
    for before, after in zip(copies, scene[:4]):
        assert np.array_equal(before, after)
    assert np.array_equal(patch.image, patch_copy[0]) and np.array_equal(patch.mask, patch_copy[1])
    assert first.image.tobytes() == second.image.tobytes()
    assert first.mask.tobytes() == second.mask.tobytes()
    assert first.quality == second.quality


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), rows=st.integers(1, 30), cols=st.integers(1, 30),
       data=st.data())
def test_lesions_touching_the_border_never_crash(seed, rows, cols, data):
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (rows, cols)).astype(np.uint8)
    mask = (rng.random((rows, cols)) < data.draw(st.floats(0.01, 1.0))).astype(np.uint8)
    mask[data.draw(st.integers(0, rows - 1)), 0] = 1
    labels, lesions = label_lesions(mask)
    lesion = data.draw(st.sampled_from(lesions))
    margin = data.draw(st.integers(4, 12))
    patch = extract_lesion(image, labels, lesion, pad=margin + 1)
    r0, c0, r1, c1 = lesion.bbox_rc
    h, w = r1 - r0, c1 - c0
    y = data.draw(st.integers(h // 2, rows - (h - h // 2)))
    x = data.draw(st.integers(w // 2, cols - (w - w // 2)))
    out = blend(patch, image, mask > 0, center_xy=(x, y), margin=margin)
    assert out.image.shape == image.shape and out.image.dtype == np.uint8
    assert int(out.lesion_mask.sum()) == lesion.area


def test_contrast_transferred_median_over_a_dataset():
    rng = np.random.default_rng(7)
    ratios = []
    for _ in range(60):
        size = 96
        source = rng.normal(80, 4, (size, size))
        mask = np.zeros((size, size), np.uint8)
        r = int(rng.integers(2, 9))
        cy, cx = rng.integers(20, 76, 2)
        yy, xx = np.mgrid[:size, :size]
        lesion = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
        source[lesion] += rng.uniform(30, 100)
        mask[lesion] = 255
        target = rng.normal(rng.uniform(60, 160), 4, (size, size))
        labels, lesions = label_lesions(mask)
        patch = extract_lesion(np.clip(source, 0, 255).astype(np.uint8), labels, lesions[0], pad=MARGIN + 1)
        out = blend(patch, np.clip(target, 0, 255).astype(np.uint8), np.zeros((size, size), bool),
                    center_xy=tuple(int(v) for v in rng.integers(20, 76, 2)), margin=MARGIN)
        ratios.append(out.quality.contrast_transferred)
    assert np.median(ratios) >= 0.8


@pytest.mark.parametrize("x, y", [(-1, 10), (10, -1), (64, 10), (10, 64), (63, 63)])
def test_spot_outside_the_image_is_a_clear_error(x, y):
    mask = np.zeros((64, 64), np.uint8)
    mask[10:14, 10:14] = 255
    image = np.full((64, 64), 80, np.uint8)
    labels, lesions = label_lesions(mask)
    patch = extract_lesion(image, labels, lesions[0], pad=MARGIN + 1)
    with pytest.raises(PlacementError, match="outside"):
        blend(patch, image, mask > 0, center_xy=(x, y), margin=MARGIN)


@pytest.mark.parametrize("kwargs", [{"mode": "sideways"}, {"margin": 2}, {"margin": 100}])
def test_invalid_options(kwargs):
    mask = np.zeros((32, 32), np.uint8)
    mask[10:12, 10:12] = 255
    image = np.full((32, 32), 80, np.uint8)
    labels, lesions = label_lesions(mask)
    patch = extract_lesion(image, labels, lesions[0], pad=MARGIN + 1)
    with pytest.raises(RecipeError):
        blend(patch, image, mask > 0, center_xy=(16, 16), **{"margin": MARGIN, **kwargs})


def test_quality_is_plain_json():
    import json
    mask = np.zeros((40, 40), np.uint8)
    mask[18:22, 18:22] = 255
    image = (np.full((40, 40), 80) + 60 * (mask > 0)).astype(np.uint8)
    labels, lesions = label_lesions(mask)
    patch = extract_lesion(image, labels, lesions[0], pad=MARGIN + 1)
    out = blend(patch, np.full((40, 40), 100, np.uint8), np.zeros((40, 40), bool),
                center_xy=(20, 20), brain=np.ones((40, 40), bool))
    d = out.quality.to_dict()
    assert all(type(v) in (int, float) or (v is None and k.endswith("_level"))
               for k, v in d.items()), d
    assert json.loads(json.dumps(d)) == d
    assert out.quality.contrast_transferred > 0.9 and out.quality.brain_fraction == 1.0
