"""Where a lesion may go: the target's brain (tissue) mask and the valid-spot test.

A placement is the target pixel ``(x, y)`` (column, row) that receives the
centre pixel of the lesion's bounding box: for a lesion whose bbox is ``h`` rows
by ``w`` columns, the bbox's top-left corner lands on row ``y - h // 2``,
column ``x - w // 2``.
"""

from __future__ import annotations

import cv2
import numpy as np

from .errors import PlacementError

MIN_BRAIN_FRACTION = 0.95


NOISE_FACTOR = 4.0
"""Tissue starts this many background-noise levels (the background's histogram mode) up."""
MIN_PIECE_FRACTION = 0.1
"""A separate piece of tissue (e.g. a temporal lobe) is kept if it is at least this fraction
of the slice's largest piece."""
SPOT_TRIES = 24
"""Random spots :func:`draw_spot` tries before it maps every valid spot instead."""


def tissue_threshold(histogram: np.ndarray) -> int:
    """Grey level from which a pixel counts as tissue, from a histogram of the slices it serves.

    Give it the histogram of a whole case (volume), so that every slice of the
    case is cut at the same level: a slice holding only a speck of tissue, or
    none, is then cut where the tissue of the case starts, not inside its
    background noise.

    The level is the larger of

    - 10 % of the 99th percentile of the non-zero pixels (tissue is far brighter
      than the background of a skull-stripped image), and
    - :data:`NOISE_FACTOR` × the background noise level, the histogram's mode
      among the levels below half that percentile (for Rician noise of standard
      deviation σ on a zero signal, the background is Rayleigh-distributed with
      its mode at σ, and only 0.03 % of it lies above 4σ); at most half the
      percentile.

    Parameters
    ----------
    histogram : (256,) array_like of int
        Pixel count per grey level 0..255.

    Returns
    -------
    int
        1..255 (1 for an all-black histogram: nothing is tissue).
    """
    counts = np.asarray(histogram, np.int64)
    nonzero = counts[1:]
    total = int(nonzero.sum())
    if total == 0:
        return 1
    p99 = 1 + int(np.searchsorted(np.cumsum(nonzero), 0.99 * total))  # grey level, 1..255
    threshold = max(1, int(np.ceil(0.1 * p99)))
    low = counts[:max(2, p99 // 2)].astype(np.float64)
    smooth = np.convolve(low, np.ones(3) / 3, mode="same") if len(low) >= 3 else low
    mode = int(np.argmax(smooth))
    return int(max(threshold, min(int(np.ceil(NOISE_FACTOR * mode)), p99 // 2)))


def histogram(image: np.ndarray) -> np.ndarray:
    """Pixel count per grey level of a uint8 image, (256,) int64."""
    return cv2.calcHist([image], [0], None, [256], [0, 256]).ravel().astype(np.int64)


def brain_mask(image: np.ndarray, *, threshold: int | None = None) -> np.ndarray:
    """Tissue (brain) of a slice: what placement calls brain.

    Pixels at or above `threshold`; of their 8-connected pieces the largest and
    every one at least :data:`MIN_PIECE_FRACTION` of it (so noise specks go,
    separate lobes stay); then every space they enclose is filled (ventricles),
    while dark spaces open to the outside of the slice (sulci, a fissure,
    sinuses reaching the edge of the tissue) stay out.

    Parameters
    ----------
    image : (M, N) ndarray of uint8
    threshold : int, optional
        Grey level from which a pixel may be tissue, normally the case's
        :func:`tissue_threshold` (as :meth:`Dataset.brain` passes it); default:
        the slice's own (the per-slice fallback).

    Returns
    -------
    (M, N) ndarray of bool
        All False for an all-black slice (it is never a target).
    """
    if threshold is None:
        threshold = tissue_threshold(histogram(image))
    fg = (image >= threshold).view(np.uint8)
    # 8-connected components are at most one per 2x2 block: 16-bit labels do when they fit.
    blocks = ((image.shape[0] + 1) // 2) * ((image.shape[1] + 1) // 2)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(
        fg, connectivity=8, ltype=cv2.CV_16U if blocks < 2**16 else cv2.CV_32S)
    if n < 2:
        return np.zeros(image.shape, dtype=bool)
    areas = stats[1:, cv2.CC_STAT_AREA]
    kept = areas >= MIN_PIECE_FRACTION * areas.max()
    if kept.sum() == 1:
        pieces = labels == 1 + int(np.argmax(areas))
    else:
        pieces = np.concatenate([[False], kept])[labels]
    return fill_holes(pieces)


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """`mask` plus every background region not 4-connected to the image border."""
    # The background, framed by one more pixel of background; flood it from the frame.
    flood = cv2.copyMakeBorder((~mask).view(np.uint8), 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=1)
    cv2.floodFill(flood, None, (0, 0), 2, flags=4)
    return flood[1:-1, 1:-1] != 2


def top_left_rc(lesion_mask: np.ndarray, x: int, y: int) -> tuple[int, int]:
    """Target (row, col) of the lesion mask's top-left pixel for placement (x, y)."""
    h, w = lesion_mask.shape
    return y - h // 2, x - w // 2


def valid_spots(lesion_mask: np.ndarray, brain: np.ndarray, target_lesions: np.ndarray | None,
                *, min_brain_fraction: float = MIN_BRAIN_FRACTION) -> np.ndarray:
    """Map of valid placements for a lesion on a target.

    Parameters
    ----------
    lesion_mask : (h, w) ndarray of bool
        The lesion cropped to its bounding box (after any transform).
    brain : (M, N) ndarray of bool
        The target's brain mask.
    target_lesions : (M, N) ndarray of bool or None
        The target's own lesions, to avoid; None allows overlap.
    min_brain_fraction : float
        Fraction of lesion pixels that must fall inside the brain.

    Returns
    -------
    (M, N) ndarray of bool
        Indexed (row, col) = (y, x): True where the placement is valid.
    """
    h, w = lesion_mask.shape
    rows, cols = brain.shape
    kernel = lesion_mask.astype(np.float32)
    area = float(kernel.sum())
    anchor = (w // 2, h // 2)
    valid = np.zeros(brain.shape, dtype=bool)
    y0, y1 = h // 2, rows - (h - h // 2) + 1
    x0, x1 = w // 2, cols - (w - w // 2) + 1
    if y1 <= y0 or x1 <= x0:
        return valid
    inside = cv2.filter2D(brain.astype(np.float32), -1, kernel, anchor=anchor,
                          borderType=cv2.BORDER_CONSTANT)
    ok = inside >= min_brain_fraction * area - 0.5
    if target_lesions is not None and target_lesions.any():
        overlap = cv2.filter2D(target_lesions.astype(np.float32), -1, kernel, anchor=anchor,
                               borderType=cv2.BORDER_CONSTANT)
        ok &= overlap < 0.5
    valid[y0:y1, x0:x1] = ok[y0:y1, x0:x1]
    return valid


def explain_spot(lesion_mask: np.ndarray, brain: np.ndarray, target_lesions: np.ndarray | None,
                 x: int, y: int, *, min_brain_fraction: float = MIN_BRAIN_FRACTION) -> None:
    """Check one placement; raise :class:`PlacementError` saying why it is invalid.

    Parameters
    ----------
    x, y : int
        Target column and row of the lesion's bbox centre.
    """
    h, w = lesion_mask.shape
    rows, cols = brain.shape
    r, c = top_left_rc(lesion_mask, x, y)
    if r < 0 or c < 0 or r + h > rows or c + w > cols:
        raise PlacementError(
            f"spot (x={x}, y={y}) puts the {w}x{h} px lesion outside the {cols}x{rows} image")
    area = int(lesion_mask.sum())
    inside = int(np.count_nonzero(brain[r:r + h, c:c + w] & lesion_mask))
    if inside < min_brain_fraction * area - 0.5:
        raise PlacementError(
            f"spot (x={x}, y={y}) is outside the brain: only {inside} of {area} lesion "
            f"pixels would be in brain tissue (need {min_brain_fraction:.0%})")
    if target_lesions is not None:
        overlap = int(np.count_nonzero(target_lesions[r:r + h, c:c + w] & lesion_mask))
        if overlap:
            raise PlacementError(
                f"spot (x={x}, y={y}) overlaps the target's own lesion ({overlap} px)")


def sample_spot(valid: np.ndarray, rng: np.random.Generator) -> tuple[int, int]:
    """Draw one valid placement uniformly; return ``(x, y)``.

    Raises
    ------
    PlacementError
        If there is no valid spot.
    """
    flat = np.flatnonzero(valid)
    if flat.size == 0:
        raise PlacementError("no valid spot for this lesion on this target")
    y, x = divmod(int(flat[rng.integers(flat.size)]), valid.shape[1])
    return x, y


def draw_spot(lesion_mask: np.ndarray, brain: np.ndarray, target_lesions: np.ndarray | None,
              rng: np.random.Generator, *, brain_bbox_rc: tuple[int, int, int, int] | None = None,
              min_brain_fraction: float = MIN_BRAIN_FRACTION) -> tuple[int, int] | None:
    """Draw one valid placement uniformly, without mapping every spot; ``(x, y)`` or None.

    Tries up to :data:`SPOT_TRIES` spots drawn uniformly from the rectangle of
    spots that keep the lesion in the image and overlapping the brain's bounding
    box (a superset of the valid spots), and keeps the first valid one; if none
    is, draws from the full :func:`valid_spots` map. Either way every valid spot
    has the same chance (a valid spot drawn uniformly from a superset is uniform
    over the valid spots, and so is the fallback), but a typical draw costs a few
    small window counts instead of two filters over the whole target.

    Parameters
    ----------
    lesion_mask, brain, target_lesions, min_brain_fraction
        As for :func:`valid_spots`.
    rng : numpy.random.Generator
    brain_bbox_rc : (row0, col0, row1, col1), optional
        The brain's bounding box, ends exclusive (computed if not given).

    Returns
    -------
    (int, int) or None
        ``(x, y)`` = (column, row); None when there is no valid spot.
    """
    h, w = lesion_mask.shape
    rows, cols = brain.shape
    if brain_bbox_rc is None:
        brain_bbox_rc = bbox_rc(brain)
    br0, bc0, br1, bc1 = brain_bbox_rc
    # Top-left corners keeping the lesion in the image and touching the brain's bbox.
    r_lo, r_hi = max(0, br0 - h + 1), min(rows - h, br1 - 1)
    c_lo, c_hi = max(0, bc0 - w + 1), min(cols - w, bc1 - 1)
    if r_hi < r_lo or c_hi < c_lo:
        return None
    area = int(np.count_nonzero(lesion_mask))
    need = min_brain_fraction * area - 0.5
    avoid = target_lesions is not None
    for r, c in zip(rng.integers(r_lo, r_hi + 1, SPOT_TRIES).tolist(),
                    rng.integers(c_lo, c_hi + 1, SPOT_TRIES).tolist()):
        if np.count_nonzero(brain[r:r + h, c:c + w] & lesion_mask) < need:
            continue
        if avoid and (target_lesions[r:r + h, c:c + w] & lesion_mask).any():
            continue
        return c + w // 2, r + h // 2
    valid = valid_spots(lesion_mask, brain, target_lesions, min_brain_fraction=min_brain_fraction)
    return sample_spot(valid, rng) if valid.any() else None


def bbox_rc(mask: np.ndarray) -> tuple[int, int, int, int]:
    """``(row0, col0, row1, col1)`` of the True pixels, ends exclusive; (0, 0, 0, 0) if none."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if not rows.size:
        return 0, 0, 0, 0
    return int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1
