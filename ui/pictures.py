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
from dataclasses import dataclass
from pathlib import Path

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


def compute_target_click(dataset: Dataset, recipe: Recipe | None, target: str,
                         display: int = CLICK_PX) -> bytes:
    """The target with its lesions (blue), the lesion's footprint (orange) and the spot marker."""
    image, lesions = dataset.load(target)
    zoom = overlay.fit_zoom(image.shape, display)
    ghost = None
    if recipe is not None:
        try:
            ghost = placed_ghost(dataset, recipe)
        except PoissonBlendError:
            ghost = None
    rgb = overlay.mask_overlay(image, lesions, ghost, opacity=0.25, zoom=zoom)
    if recipe is not None:
        rgb = overlay.draw_marker(rgb, recipe.x, recipe.y, zoom=zoom)
    return overlay.png_bytes(rgb)


def compute_candidate(dataset: Dataset, recipe: Recipe, *, opacity: float = 0.35,
                      display: int = PREVIEW_PX) -> dict:
    """Source (its lesion highlighted), target, result with overlay, close-up, as PNG bytes."""
    sample = render(dataset, recipe)
    target, target_lesions = dataset.load(recipe.target)
    zoom = overlay.fit_zoom(target.shape, display)
    return {
        "source": compute_source(dataset, recipe.source, recipe.lesion, display),
        "target": overlay.png_bytes(overlay.mask_overlay(target, target_lesions, None,
                                                         opacity=0.0, zoom=zoom)),
        "overlay": overlay.png_bytes(overlay.mask_overlay(sample.image, target_lesions,
                                                          sample.lesion_mask, opacity=opacity,
                                                          zoom=zoom)),
        "blended": overlay.png_bytes(overlay.upscale(sample.image, zoom)),
        "zoom": overlay.png_bytes(overlay.zoom_overlay(sample.image, target_lesions,
                                                       sample.lesion_mask, display=display // 2)),
    }


def compute_thumbnail(dataset: Dataset, recipe: Recipe, display: int = THUMB_PX) -> bytes:
    sample = render(dataset, recipe)
    _, target_lesions = dataset.load(recipe.target)
    zoom = overlay.fit_zoom(sample.image.shape, display)
    return overlay.png_bytes(overlay.mask_overlay(sample.image, target_lesions, sample.lesion_mask,
                                                  opacity=0.4, zoom=zoom))


def random_spot(dataset: Dataset, recipe: Recipe, draw: int) -> tuple[int, int]:
    """A valid (x, y) for the recipe's lesion on its target; PlacementError if none."""
    valid = valid_spots_for(dataset, recipe)
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


@st.cache_data(max_entries=256, show_spinner=False)
def target_click_png(key: str, recipe_json: str | None, target: str, _dataset: Dataset) -> bytes:
    recipe = Recipe.from_dict(json.loads(recipe_json)) if recipe_json else None
    return compute_target_click(_dataset, recipe, target)


@st.cache_data(max_entries=512, show_spinner=False)
def candidate_pngs(key: str, recipe_json: str, opacity: float, _dataset: Dataset) -> dict:
    return compute_candidate(_dataset, Recipe.from_dict(json.loads(recipe_json)), opacity=opacity)


@st.cache_data(max_entries=2048, show_spinner=False)
def thumbnail_png(key: str, recipe_json: str, _dataset: Dataset) -> bytes:
    return compute_thumbnail(_dataset, Recipe.from_dict(json.loads(recipe_json)))


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
