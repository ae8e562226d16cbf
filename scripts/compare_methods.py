"""poissonblend vs the seed script's ``cv2.seamlessClone``, on the same recipes.

Draws recipes from a dataset (default: the demo set, made in a temporary folder),
renders each with both methods (:func:`poissonblend.recipe.render_methods`) and

- prints the distribution of ``Quality.contrast_transferred`` (and of
  ``changed_fraction``) for each method over ``--count`` recipes, with how many
  OpenCV raised on, as a Markdown table;
- with ``--picture PATH``, writes a PNG: a few small and large lesions, one row
  each (the first: the first recipe OpenCV raised on, if any), the same recipe
  as target · poissonblend · OpenCV · the new mask (orange outline on the
  OpenCV result, which claims the lesion either way).

Usage::

    python scripts/compare_methods.py [--input-dir I --mask-dir M] [--count 1000] [--seed 0]
                                      [--picture docs/methods.png]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from poissonblend.dataset import Dataset, open_dataset  # noqa: E402
from poissonblend.demo import make_demo  # noqa: E402
from poissonblend.overlay import mask_bbox, mask_overlay, neighbourhood, to_rgb  # noqa: E402
from poissonblend.recipe import (METHODS, SamplingOptions, render_methods, sample_recipe,  # noqa: E402
                                 sample_rng)

PICTURE_AREAS = (20, 45, 120, 300, 700)
"""Lesion areas (px) the picture's rows come closest to, smallest first."""
TILE, ZOOM = 40, 3
"""Close-up side (px of the slice) and its upscale in the picture."""


def recipes(dataset: Dataset, count: int, seed: int) -> list:
    """`count` recipes drawn as ``generate --seed seed`` draws them (default options)."""
    return [sample_recipe(dataset, sample_rng(seed, i), SamplingOptions()) for i in range(count)]


def distribution(dataset: Dataset, drawn: list) -> str:
    """Markdown table: percentiles of contrast transferred per method, and OpenCV's failures."""
    values = {m: [] for m in METHODS}
    changed = {m: [] for m in METHODS}
    failed = 0
    for recipe in drawn:
        both = render_methods(dataset, recipe)
        failed += bool(both.errors)
        for method, sample in both.samples.items():
            values[method].append(sample.quality.contrast_transferred)
            changed[method].append(sample.quality.changed_fraction)
    lines = ["| method | samples | contrast transferred: 5th pct · median · 95th pct | share ≥ 0.5 "
             "| changed fraction under the mask, median |", "|---|---|---|---|---|"]
    for method in METHODS:
        v = np.array(values[method])
        p5, p50, p95 = np.percentile(v, [5, 50, 95])
        raised = f" (+{failed} on which OpenCV raised)" if method == "opencv" and failed else ""
        lines.append(f"| {method} | {len(v)}{raised} | {p5:.2f} · {p50:.2f} · {p95:.2f} "
                     f"| {np.mean(v >= 0.5):.0%} | {np.median(changed[method]):.2f} |")
    return "\n".join(lines)


def _label(rgb: np.ndarray, text: str, *, top: bool) -> np.ndarray:
    """`rgb` with a 16 px strip of white text above (top) or below it."""
    strip = np.zeros((16, rgb.shape[1], 3), np.uint8)
    cv2.putText(strip, text, (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (255, 255, 255), 1, cv2.LINE_AA)
    return np.vstack([strip, rgb] if top else [rgb, strip])


def picture(dataset: Dataset, drawn: list) -> np.ndarray:
    """Rows of close-ups (target · poissonblend · opencv · new mask), one per picked recipe."""
    areas = np.array([dataset.info(r.source).lesions[r.lesion].area for r in drawn])
    picked = [render_methods(dataset, drawn[int(np.argmin(np.abs(areas - a)))])
              for a in PICTURE_AREAS]
    raised = next((both for both in (render_methods(dataset, r) for r in drawn) if both.errors),
                  None)
    rows = []
    for both in ([raised] if raised else []) + picked:
        ours = both.samples["poissonblend"]
        target, target_mask = dataset.load(ours.recipe.target)
        window = neighbourhood(mask_bbox(ours.lesion_mask), target.shape, pad=4, min_size=TILE)
        crop = lambda a: a[window]  # noqa: E731
        tiles = [_label(to_rgb(crop(target), ZOOM), "target", top=False),
                 _label(to_rgb(crop(ours.image), ZOOM),
                        f"contrast {ours.quality.contrast_transferred:.2f}", top=False)]
        theirs = both.samples.get("opencv")
        if theirs is None:
            failed = np.zeros_like(tiles[0][:-16])
            cv2.putText(failed, "OpenCV raised", (6, failed.shape[0] // 2), cv2.FONT_HERSHEY_SIMPLEX,
                        0.4, (255, 255, 255), 1, cv2.LINE_AA)
            tiles += [_label(failed, "(tiny lesion)", top=False), _label(failed, "", top=False)]
        else:
            tiles += [_label(to_rgb(crop(theirs.image), ZOOM),
                             f"contrast {theirs.quality.contrast_transferred:.2f}", top=False),
                      _label(mask_overlay(crop(theirs.image), crop(target_mask),
                                          crop(theirs.lesion_mask), zoom=ZOOM), "mask", top=False)]
        gap = np.full((tiles[0].shape[0], 4, 3), 255, np.uint8)
        row = np.hstack([t for tile in tiles for t in (tile, gap)][:-1])
        rows.append(_label(row, f"{ours.quality.lesion_area} px lesion", top=True))
    header = np.zeros((18, rows[0].shape[1], 3), np.uint8)
    for k, name in enumerate(("target", "poissonblend", "seamlessClone", "new mask")):
        cv2.putText(header, name, (k * (TILE * ZOOM + 4) + 3, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                    (255, 255, 255), 1, cv2.LINE_AA)
    return np.vstack([header, *rows])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input-dir", help="dataset input folder (default: the demo set)")
    parser.add_argument("--mask-dir", help="dataset mask folder")
    parser.add_argument("--count", type=int, default=1000, help="recipes to compare (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="batch seed (default 0)")
    parser.add_argument("--picture", type=Path, help="write the side-by-side PNG here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        if args.input_dir:
            dataset = open_dataset(args.input_dir, args.mask_dir)
        else:
            dataset = open_dataset(*make_demo(Path(tmp) / "demo"))
        drawn = recipes(dataset, args.count, args.seed)
        print(distribution(dataset, drawn))
        if args.picture:
            args.picture.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(args.picture), cv2.cvtColor(picture(dataset, drawn), cv2.COLOR_RGB2BGR),
                        [cv2.IMWRITE_PNG_COMPRESSION, 9])
            print(f"picture: {args.picture} ({args.picture.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
