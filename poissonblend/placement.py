"""Where a lesion may go: the target's brain mask and the valid-spot test.

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


def brain_mask(image: np.ndarray) -> np.ndarray:
    """Foreground (brain) of a skull-stripped slice.

    Threshold at 10% of the 99th percentile of non-zero pixels (at least grey
    level 1), keep the largest 8-connected component, fill its holes.

    Parameters
    ----------
    image : (M, N) ndarray of uint8

    Returns
    -------
    (M, N) ndarray of bool
        All False for an all-black slice (it is never a target).
    """
    counts = cv2.calcHist([image], [0], None, [256], [0, 256]).ravel()[1:].astype(np.int64)
    total = int(counts.sum())
    if total == 0:
        return np.zeros(image.shape, dtype=bool)
    p99 = 1 + int(np.searchsorted(np.cumsum(counts), 0.99 * total))  # grey level, 1..255
    threshold = max(1, int(np.ceil(0.1 * p99)))
    fg = (image >= threshold).view(np.uint8)
    # 8-connected components are at most one per 2x2 block: 16-bit labels do when they fit.
    blocks = ((image.shape[0] + 1) // 2) * ((image.shape[1] + 1) // 2)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(
        fg, connectivity=8, ltype=cv2.CV_16U if blocks < 2**16 else cv2.CV_32S)
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return fill_holes(labels == largest)


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
