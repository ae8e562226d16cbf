"""The app's pictures: Streamlit-free picture making and its ``st.cache_data`` wrappers.

The ``compute_*`` functions render recipes and draw their views as encoded PNG bytes
(used by the cached wrappers and by ``benchmarks/bench_preview.py``); the cached
wrappers are keyed by the dataset's identity and the recipe's JSON, so a rerun never
re-reads PNGs from disk nor re-renders a sample it has shown before. Also here: the
placement helpers of the clickable target (display pixels -> slice (x, y)) and the
data of the Stats page's pictures.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np
import streamlit as st

from poissonblend import overlay
from poissonblend.dataset import Dataset
from poissonblend.errors import PoissonBlendError
from poissonblend.io import read_gray_png
from poissonblend.lesions import label_lesions
from poissonblend.output import sample_paths
from poissonblend.placement import explain_spot, sample_spot, top_left_rc
from poissonblend.recipe import Recipe, lesion_patch, placed_lesion_mask, render, valid_spots_for

PREVIEW_PX = 384
"""Display size (long side, px) the slice pictures are upscaled to (integer zoom)."""
CLICK_PX = 512
"""Display size of the clickable target image on the Compose page."""
THUMB_PX = 256


@dataclass(frozen=True)
class Preview:
    """Encoded pictures of one recipe (PNG bytes) and its quality report."""

    target: bytes
    blended: bytes
    overlay: bytes
    diff: bytes
    zoom: bytes
    quality: dict


def compute_preview(dataset: Dataset, recipe: Recipe, *, opacity: float = 0.35,
                    display: int = PREVIEW_PX) -> Preview:
    """Render a recipe and draw its four views and close-up, PNG-encoded.

    Raises the engine's errors (PlacementError, LesionError, DatasetError).
    """
    sample = render(dataset, recipe)
    target, target_lesions = dataset.load(recipe.target)
    zoom = overlay.fit_zoom(target.shape, display)
    return Preview(
        target=overlay.png_bytes(overlay.mask_overlay(target, target_lesions, None, opacity=0.0,
                                                      zoom=zoom)),
        blended=overlay.png_bytes(overlay.upscale(sample.image, zoom)),
        overlay=overlay.png_bytes(overlay.mask_overlay(sample.image, target_lesions,
                                                       sample.lesion_mask, opacity=opacity,
                                                       zoom=zoom)),
        diff=overlay.png_bytes(overlay.diff_heatmap(target, sample.image, zoom=zoom)),
        zoom=overlay.png_bytes(overlay.zoom_overlay(sample.image, target_lesions,
                                                    sample.lesion_mask, display=display // 2 + 64)),
        quality=sample.quality.to_dict(),
    )


def compute_source(dataset: Dataset, name: str, highlight: int | None,
                   display: int = PREVIEW_PX) -> bytes:
    image, lesion_mask = dataset.load(name)
    return overlay.png_bytes(overlay.lesion_outlines(
        image, label_lesions(lesion_mask)[0], highlight=highlight, zoom=overlay.fit_zoom(image.shape, display)))


def placed_ghost(dataset: Dataset, recipe: Recipe) -> np.ndarray:
    """Boolean target-sized mask of where the recipe's lesion would land (clipped)."""
    target = dataset.load(recipe.target)[0]
    lesion = placed_lesion_mask(lesion_patch(dataset, recipe))
    r, c = top_left_rc(lesion, recipe.x, recipe.y)
    ghost = np.zeros(target.shape, bool)
    h, w = lesion.shape
    rows, cols = target.shape
    r0, c0, r1, c1 = max(r, 0), max(c, 0), min(r + h, rows), min(c + w, cols)
    if r1 > r0 and c1 > c0:
        ghost[r0:r1, c0:c1] = lesion[r0 - r:r1 - r, c0 - c:c1 - c]
    return ghost


TINY_AREA = 30
"""A placed lesion of at most this many px gets a ring around it on the clickable target."""


def compute_target_click(dataset: Dataset, recipe: Recipe, spot_xy: tuple[int, int] | None, *,
                         valid: np.ndarray | None = None, display: int = CLICK_PX) -> bytes:
    """The clickable target: where the recipe's lesion's centre may go (green, for its current
    transform: `valid`, by default ``valid_spots_for``), the target's lesions (blue), and at
    `spot_xy` the lesion's footprint (orange, ringed when tiny) and the spot marker. The recipe's
    own (x, y) is ignored."""
    image, lesions = dataset.load(recipe.target)
    zoom = overlay.fit_zoom(image.shape, display)
    ghost = None
    if spot_xy is not None:
        try:
            ghost = placed_ghost(dataset, replace(recipe, x=int(spot_xy[0]), y=int(spot_xy[1])))
        except PoissonBlendError:
            ghost = None
    rgb = overlay.mask_overlay(image, lesions, ghost, opacity=0.25, zoom=zoom)
    try:
        valid = valid_spots_for(dataset, recipe) if valid is None else valid
    except PoissonBlendError:
        valid = None  # no lesion to place: nothing to shade
    if valid is not None:
        rgb = overlay.shade_region(rgb, valid, zoom=zoom)
    if spot_xy is None:
        return overlay.png_bytes(rgb)
    gap = None
    box = overlay.mask_bbox(ghost) if ghost is not None else None
    if box is not None and int(ghost.sum()) <= TINY_AREA:
        r0, c0, r1, c1 = box
        radius = int((max(r1 - r0, c1 - c0) / 2 + 3) * zoom)
        centre = (int((c0 + c1) * zoom / 2), int((r0 + r1) * zoom / 2))
        cv2.circle(rgb, centre, radius, overlay.NEW_RGB, 2, cv2.LINE_AA)
        gap = radius + 3
    return overlay.png_bytes(overlay.draw_marker(rgb, spot_xy[0], spot_xy[1], zoom=zoom, gap=gap))


VIEWS = ("result", "target", "difference")
"""What the big picture of a candidate shows: the blended result, the target before the blend
(same place, same scale), or |result − target| as a heat-map."""
BIG_PX = 512
"""Long side (px) of a candidate's big picture (integer zoom; the browser fits it to its column)."""
CLOSE_UP_PX = 192
"""Side (px) of a candidate's close-up (at most; shown at its own size)."""
CLOSE_UP_ZOOM = 4
"""The close-up's least nearest-neighbour zoom: its window is at most CLOSE_UP_PX / 4 slice px."""
OVERLAY_OPACITY = 0.35


def compute_candidate_picture(dataset: Dataset, recipe: Recipe, *, view: str = "result",
                              overlay_masks: bool = False, outline: bool = False,
                              close_up: bool = False, display: int | None = None) -> bytes:
    """One picture for judging a candidate, PNG-encoded.

    Parameters
    ----------
    view : {"result", "target", "difference"}
        See :data:`VIEWS`. The target shows where the new lesion will be when its masks are drawn.
    overlay_masks, outline : bool
        Tint (:data:`OVERLAY_OPACITY`) and/or outline the target's own lesions (blue) and the
        new lesion (orange); both off: the picture as it is (greyscale). Not on the difference map.
    close_up : bool
        The placed lesion's surroundings at >= :data:`CLOSE_UP_ZOOM` x nearest neighbour
        (:data:`CLOSE_UP_PX` px) instead of the whole slice (:data:`BIG_PX` px).
    display : int, optional
        Another long side (px) for the whole slice (thumbnails).
    """
    if view not in VIEWS:
        raise ValueError(f"view must be one of {VIEWS}, not {view!r}")
    sample = render(dataset, recipe)
    target, target_lesions = dataset.load(recipe.target)
    new = sample.lesion_mask
    rows, cols = slice(None), slice(None)
    if close_up:
        box = overlay.mask_bbox(new)
        if box is not None:
            rows, cols = overlay.neighbourhood(box, target.shape, pad=8, min_size=32,
                                               max_size=CLOSE_UP_PX // CLOSE_UP_ZOOM)
    before, after = target[rows, cols], sample.image[rows, cols]
    zoom = overlay.fit_zoom(before.shape, CLOSE_UP_PX if close_up else display or BIG_PX, max_zoom=12)
    if view == "difference":
        return overlay.png_bytes(overlay.diff_heatmap(before, after, zoom=zoom))
    base = after if view == "result" else before
    if not (overlay_masks or outline):
        return overlay.png_bytes(overlay.upscale(base, zoom))
    return overlay.png_bytes(overlay.mask_overlay(
        base, target_lesions[rows, cols], new[rows, cols], zoom=zoom, outline=outline,
        opacity=OVERLAY_OPACITY if overlay_masks else 0.0))


def compute_thumbnail(dataset: Dataset, recipe: Recipe, *, outline: bool = False,
                      display: int = THUMB_PX) -> bytes:
    """The blended result as it is (greyscale), or with the masks outlined."""
    return compute_candidate_picture(dataset, recipe, outline=outline, display=display)


def random_spot(valid: np.ndarray, draw: int) -> tuple[int, int]:
    """A random (x, y) among `valid` (``valid_spots_for``); PlacementError if there is none."""
    return sample_spot(valid, np.random.default_rng([draw, 7]))


def check_spot(dataset: Dataset, recipe: Recipe) -> None:
    """Raise PlacementError explaining why the recipe's spot is invalid (None if valid)."""
    _, target_lesions = dataset.load(recipe.target)
    explain_spot(placed_lesion_mask(lesion_patch(dataset, recipe)), dataset.brain(recipe.target),
                 target_lesions, recipe.x, recipe.y)


def display_to_image(click: dict, shape: tuple[int, int]) -> tuple[int, int] | None:
    """Map a streamlit-image-coordinates click (display px) to slice (x, y)."""
    try:
        x, y, w, h = (float(click[k]) for k in ("x", "y", "width", "height"))
    except (KeyError, TypeError, ValueError):
        return None
    if w <= 0 or h <= 0:
        return None
    rows, cols = shape
    ix = int(min(max(x * cols / w, 0), cols - 1))
    iy = int(min(max(y * rows / h, 0), rows - 1))
    return ix, iy


def size_histogram(original: Sequence[int], accepted: Sequence[int], bins: int = 12) -> dict:
    """Share of lesions per log-spaced area bin: {"area (px)": labels, "originals": …, "accepted": …}."""
    both = np.concatenate([np.asarray(original, float), np.asarray(accepted, float)])
    top = int(both.max()) if both.size else 1
    edges = np.unique(np.round(np.geomspace(1, max(top, 2) + 1, bins + 1)).astype(int))
    labels = [f"{lo}–{hi - 1}" if hi - 1 > lo else f"{lo}" for lo, hi in zip(edges[:-1], edges[1:])]

    def share(values):
        counts, _ = np.histogram(np.asarray(values, float), bins=edges)
        return (counts / max(1, counts.sum())).round(4).tolist()

    return {"area (px)": labels, "originals": share(original), "accepted": share(accepted)}


def placement_picture(dataset: Dataset, recipes: Sequence[Recipe], display: int = PREVIEW_PX
                      ) -> tuple[bytes, int, tuple[int, int]] | None:
    """Heat-map of placements over the most common slice shape, on the mean of such slices."""
    if not dataset.target_names:
        return None
    shapes: dict[tuple[int, int], int] = {}
    for s in dataset.slices:
        shapes[s.shape] = shapes.get(s.shape, 0) + 1
    shape = max(shapes, key=shapes.get)
    points = [(r.x, r.y) for r in recipes if dataset.info(r.target).shape == shape]
    names = [s.name for s in dataset.slices if s.shape == shape and s.brain_area > 0]
    picked = names[::max(1, len(names) // 64)]  # the mean of <= ~64 slices is plenty
    mean = np.mean([dataset.load(n)[0] for n in picked], axis=0)
    background = np.clip(np.rint(mean * (255.0 / max(1.0, float(mean.max())))), 0, 255).astype(np.uint8)
    picture = overlay.density_map(points, shape, background=background,
                                  sigma=max(2.0, shape[0] / 40), zoom=overlay.fit_zoom(shape, display))
    return overlay.png_bytes(picture), len(points), shape


@st.cache_data(max_entries=16, show_spinner=False)
def placement_png(key: str, recipes_json: tuple[str, ...], _dataset: Dataset
                  ) -> tuple[bytes, int, tuple[int, int]] | None:
    return placement_picture(_dataset, [Recipe.from_dict(json.loads(r)) for r in recipes_json])


# --------------------------------------------------------------------------- cached pictures

@st.cache_data(max_entries=512, show_spinner=False)
def preview(key: str, recipe_json: str, opacity: float, _dataset: Dataset) -> Preview:
    return compute_preview(_dataset, Recipe.from_dict(json.loads(recipe_json)), opacity=opacity)


@st.cache_data(max_entries=256, show_spinner=False)
def source_png(key: str, name: str, highlight: int | None, _dataset: Dataset) -> bytes:
    return compute_source(_dataset, name, highlight)


@st.cache_data(max_entries=64, show_spinner=False)
def valid_spots(key: str, recipe_json: str, _dataset: Dataset) -> np.ndarray:
    """Where the recipe's lesion's centre may go on its target ((row, col) bool; x, y ignored)."""
    recipe = Recipe.from_dict(json.loads(recipe_json))
    return valid_spots_for(_dataset, replace(recipe, x=0, y=0))


@st.cache_data(max_entries=256, show_spinner=False)
def target_click_png(key: str, recipe_json: str, spot_xy: tuple[int, int] | None,
                     _dataset: Dataset) -> bytes:
    recipe = Recipe.from_dict(json.loads(recipe_json))
    try:
        valid = valid_spots(key, replace(recipe, x=0, y=0).to_json(), _dataset)
    except PoissonBlendError:
        valid = None
    return compute_target_click(_dataset, recipe, spot_xy, valid=valid)


@st.cache_data(max_entries=1024, show_spinner=False)
def candidate_picture(key: str, recipe_json: str, view: str, overlay_masks: bool, outline: bool,
                      close_up: bool, _dataset: Dataset) -> bytes:
    return compute_candidate_picture(_dataset, Recipe.from_dict(json.loads(recipe_json)), view=view,
                                     overlay_masks=overlay_masks, outline=outline, close_up=close_up)


@st.cache_data(max_entries=2048, show_spinner=False)
def thumbnail_png(key: str, recipe_json: str, outline: bool, _dataset: Dataset) -> bytes:
    return compute_thumbnail(_dataset, Recipe.from_dict(json.loads(recipe_json)), outline=outline)


@st.cache_data(max_entries=64, show_spinner=False)
def _file_png(path: str, mtime_ns: int) -> bytes:
    pixels = read_gray_png(Path(path))
    return overlay.png_bytes(overlay.upscale(pixels, overlay.fit_zoom(pixels.shape, THUMB_PX)))


def exported_pairs(input_dir: str, mask_dir: str, case_ids: Sequence[str]
                   ) -> list[tuple[str, bytes, bytes]]:
    """(file name, image PNG, mask PNG) of exported cases as they are on disk (cached by mtime)."""
    out = []
    for case_id in case_ids:
        image_path, mask_path = sample_paths(case_id, Path(input_dir), Path(mask_dir))
        try:
            out.append((image_path.name, _file_png(str(image_path), image_path.stat().st_mtime_ns),
                        _file_png(str(mask_path), mask_path.stat().st_mtime_ns)))
        except (OSError, PoissonBlendError):
            continue
    return out
