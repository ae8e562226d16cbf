"""Place one lesion patch on a target slice and blend it in.

The Poisson solve runs on a wide region (the lesion grown by ``margin`` px) so
the lesion's edge reaches the solver whole; the result is then composited back
only near the lesion, with a short feather, so that every changed pixel lies
within ``FEATHER`` px (Chebyshev) of the placed lesion and everything farther
away stays byte-identical to the target.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .errors import PlacementError, RecipeError
from .lesions import LesionPatch
from .placement import top_left_rc
from .poisson import MODES, poisson_correction

FEATHER = 3
"""Pixels (Chebyshev) beyond the lesion over which the blend fades into the target."""
MIN_MARGIN, MAX_MARGIN = FEATHER + 1, 32
CHANGE_LEVEL = 3
"""Grey levels: a pixel counts as changed when it moved by more than this."""
VISIBLE_FRACTION = 0.75
"""A lesion arrived visibly when at least this fraction of its pixels changed."""


@dataclass(frozen=True)
class Quality:
    """How well one blend went; all values are plain floats/ints (JSON-ready).

    Attributes
    ----------
    lesion_area : int
        Pixels of the placed lesion.
    contrast_source, contrast_result : float
        Mean grey level of the lesion minus that of the ring 1–3 px around it,
        in the source patch and in the blended result.
    contrast_transferred : float
        ``contrast_result / contrast_source`` (1.0 when the source lesion has
        less than one grey level of contrast: nothing to transfer).
    seam_gradient : float
        Mean gradient magnitude of the change (result − target) 2–4 px from the
        lesion, grey levels per px (≈ 0: the blend fades in without a step).
    brain_fraction : float
        Fraction of lesion pixels inside the target's brain (tissue) mask.
    changed_fraction : float
        Fraction of lesion pixels that changed by more than :data:`CHANGE_LEVEL`
        (3) grey levels: the lesion arrived visibly when this is at least
        :data:`VISIBLE_FRACTION` (0.75).
    score : float
        One number for sorting, higher is better (1 at best)::

            clip(contrast_transferred, 0, 1)      # the lesion's contrast arrived
            * brain_fraction                      # it lies in tissue
            * min(1, changed_fraction / 0.75)     # it is visible
            * (1 - level_shift ** 2)              # it stays at its level in the head
            * max(0, 1 - tissue_ratio)            # it is small beside the tissue
            - 0.01 * seam_gradient                # no step at its border

        Each factor is 1 for a plausible sample and falls as the sample gets
        less plausible: a lesion half outside tissue, half invisible, moved from
        mid-brain to the top of the head (shift 0.5: × 0.75) or covering half the
        target's tissue (× 0.5) sorts first in "worst score first".
    source_level, target_level : float or None
        Level of the source and the target slice in their case (0 = first
        slice, 1 = last); None when not known (a blend of bare arrays).
    level_shift : float
        ``|target_level - source_level|`` (0 when a level is not known).
    tissue_ratio : float
        Lesion area / the target's tissue (brain) area (0 without a brain mask).
    """

    lesion_area: int
    contrast_source: float
    contrast_result: float
    contrast_transferred: float
    seam_gradient: float
    brain_fraction: float
    changed_fraction: float
    score: float
    source_level: float | None = None
    target_level: float | None = None
    level_shift: float = 0.0
    tissue_ratio: float = 0.0

    def to_dict(self) -> dict:
        return dict(vars(self))


@dataclass(frozen=True, eq=False)
class Blend:
    """The result of :func:`blend`.

    Attributes
    ----------
    image : (M, N) ndarray of uint8
        The target with the lesion blended in.
    mask : (M, N) ndarray of uint8
        Target mask ∪ placed lesion, 0/255.
    lesion_mask : (M, N) ndarray of bool
        The placed lesion alone.
    quality : Quality
    """

    image: np.ndarray
    mask: np.ndarray
    lesion_mask: np.ndarray
    quality: Quality


def check_margin(margin: int) -> None:
    if not (isinstance(margin, int) and MIN_MARGIN <= margin <= MAX_MARGIN):
        raise RecipeError(f"margin {margin!r} must be an integer from {MIN_MARGIN} to {MAX_MARGIN} px")


def _window(image: np.ndarray, r0: int, c0: int, h: int, w: int) -> np.ndarray:
    """Rows r0:r0+h, cols c0:c0+w of `image`, edge-replicated beyond its borders."""
    rows, cols = image.shape
    if r0 >= 0 and c0 >= 0 and r0 + h <= rows and c0 + w <= cols:
        return image[r0:r0 + h, c0:c0 + w]
    pads = ((max(0, -r0), max(0, r0 + h - rows)), (max(0, -c0), max(0, c0 + w - cols)))
    return np.pad(image[max(0, r0):min(rows, r0 + h), max(0, c0):min(cols, c0 + w)], pads,
                  mode="edge")


_FAR = MAX_MARGIN + 1
_ALPHA = np.clip((FEATHER + 1 - np.arange(_FAR + 1)) / FEATHER, 0.0, 1.0).astype(np.float32)
"""Blend weight by Chebyshev distance from the lesion: 1, 1, 2/3, 1/3, 0, 0, … for FEATHER = 3."""


@dataclass(frozen=True, eq=False)
class Site:
    """Where a lesion patch lands on a target, and the window a blend works in.

    Made by :func:`locate`; shared by :func:`blend` and the ``"opencv"`` method
    (:mod:`poissonblend.opencv_blend`) so both are placed and measured alike.

    Attributes
    ----------
    top, left : int
        Target (row, col) of the lesion bbox's top-left pixel.
    lesion_crop : (h, w) ndarray of bool
        The lesion within its bbox.
    window_rc : (int, int)
        Target (row, col) of the window's top-left: the bbox grown by ``margin + 1``
        (may lie partly outside the target).
    src : (H, W) ndarray of float32
        The patch's grey levels over the window.
    lesion : (H, W) ndarray of bool
        The lesion over the window.
    tgt : (H, W) ndarray of float32
        The target over the window (edge-replicated past its border).
    dist : (H, W) ndarray of intp
        Chebyshev distance to the lesion, capped at ``MAX_MARGIN + 1``.
    """

    top: int
    left: int
    lesion_crop: np.ndarray
    window_rc: tuple[int, int]
    src: np.ndarray
    lesion: np.ndarray
    tgt: np.ndarray
    dist: np.ndarray

    def window(self, image: np.ndarray) -> np.ndarray:
        """The window's pixels of an image the size of the target (edge-replicated past it)."""
        return _window(image, *self.window_rc, *self.src.shape)


def locate(patch: LesionPatch, target: np.ndarray, *, center_xy: tuple[int, int],
           margin: int) -> Site:
    """Place `patch` with its bbox centre at `center_xy` = (x, y) on `target` (see :func:`blend`).

    Raises
    ------
    PlacementError
        If the lesion would not lie wholly inside the target image.
    """
    pr0, pc0, pr1, pc1 = patch.bbox_rc
    lesion_crop = patch.mask[pr0:pr1, pc0:pc1]
    x, y = center_xy
    top, left = top_left_rc(lesion_crop, x, y)
    rows, cols = target.shape
    h, w = lesion_crop.shape
    if top < 0 or left < 0 or top + h > rows or left + w > cols:
        raise PlacementError(
            f"spot (x={x}, y={y}) puts the {w}x{h} px lesion outside the {cols}x{rows} target")
    pad = margin + 1
    if min(pr0, pc0, patch.mask.shape[0] - pr1, patch.mask.shape[1] - pc1) < pad:
        raise ValueError(f"`patch` needs {pad} px of texture around the lesion")
    # The window: lesion bbox ± pad, in patch and in target coordinates.
    sr0, sc0 = pr0 - pad, pc0 - pad
    wh, ww = h + 2 * pad, w + 2 * pad
    lesion = patch.mask[sr0:sr0 + wh, sc0:sc0 + ww]
    # Chebyshev distance to the lesion (capped): the Poisson region is the lesion
    # grown by `margin`; the composite weight fades with the same distance.
    dist = np.minimum(cv2.distanceTransform((~lesion).view(np.uint8), cv2.DIST_C, 3),
                      _FAR).astype(np.intp)
    return Site(top, left, lesion_crop, (top - pad, left - pad),
                patch.image[sr0:sr0 + wh, sc0:sc0 + ww], lesion,
                _window(target, top - pad, left - pad, wh, ww).astype(np.float32), dist)


def blend(patch: LesionPatch, target: np.ndarray, target_mask: np.ndarray, *,
          center_xy: tuple[int, int], mode: str = "normal", margin: int = 6,
          brain: np.ndarray | None = None,
          levels: tuple[float, float] | None = None) -> Blend:
    """Blend a lesion patch into a target slice by Poisson image editing.

    Parameters
    ----------
    patch : LesionPatch
        The lesion with at least ``margin + 1`` px of source texture around its bbox.
    target : (M, N) ndarray of uint8
        The target slice. Not modified.
    target_mask : (M, N) ndarray of bool
        The target's own lesions. Not modified.
    center_xy : (int, int)
        Target (x, y) = (column, row) receiving the centre pixel of the lesion's
        bbox; its top-left goes to row ``y - h // 2``, column ``x - w // 2``.
    mode : {"normal", "mixed"}
        Guidance field (source gradients, or the stronger of source and target).
    margin : int
        Px by which the lesion is grown to form the Poisson region (4–32).
    brain : (M, N) ndarray of bool, optional
        The target's brain mask, for ``Quality.brain_fraction`` (1.0 if None)
        and ``Quality.tissue_ratio`` (0.0 if None).
    levels : (float, float), optional
        Level of the source and of the target slice in their cases (0–1), for
        ``Quality.level_shift``.

    Returns
    -------
    Blend

    Raises
    ------
    PlacementError
        If the lesion would not lie wholly inside the target image.
    RecipeError
        If `mode` or `margin` is invalid.
    """
    check_mode_and_margin(mode, margin)
    site = locate(patch, target, center_xy=center_xy, margin=margin)
    tgt, dist = site.tgt, site.dist
    correction = poisson_correction(site.src, tgt, dist <= margin, mode=mode)
    blended = tgt.copy()
    blended[1:-1, 1:-1] += _ALPHA[dist[1:-1, 1:-1]] * correction
    # Round half to even and saturate at 255 (OpenCV's cvRound, as np.rint); where the
    # weight is 0 this is exactly the target's integer value again.
    out = cv2.convertScaleAbs(np.maximum(blended, 0, out=blended))

    # Paste the window back, only the part inside the image.
    rows, cols = target.shape
    (wr0, wc0), (wh, ww) = site.window_rc, out.shape
    ir0, ic0 = max(0, wr0), max(0, wc0)
    ir1, ic1 = min(rows, wr0 + wh), min(cols, wc0 + ww)
    image = target.copy()
    image[ir0:ir1, ic0:ic1] = out[ir0 - wr0:ir1 - wr0, ic0 - wc0:ic1 - wc0]
    return assemble(site, image, target_mask, brain=brain, levels=levels, out=out)


def check_mode_and_margin(mode: str, margin: int) -> None:
    """:class:`RecipeError` unless `mode` is one of :data:`MODES` and `margin` is valid."""
    if mode not in MODES:
        raise RecipeError(f"mode {mode!r} must be one of {', '.join(MODES)}")
    check_margin(margin)


def assemble(site: Site, image: np.ndarray, target_mask: np.ndarray, *,
             brain: np.ndarray | None, levels: tuple[float, float] | None = None,
             out: np.ndarray | None = None) -> Blend:
    """The :class:`Blend` of a blended `image`: its masks and its :class:`Quality`.

    Parameters
    ----------
    site : Site
        Where the lesion was placed (:func:`locate`).
    image : (M, N) ndarray of uint8
        The target with the lesion blended in, by whatever method.
    target_mask : (M, N) ndarray of bool
        The target's own lesions; the new mask is this ∪ the placed lesion.
    brain : (M, N) ndarray of bool or None
        The target's brain mask (``Quality.brain_fraction`` 1.0 if None).
    out : ndarray of uint8, optional
        ``site.window(image)``, if the caller has it.
    """
    top, left, lesion_crop = site.top, site.left, site.lesion_crop
    h, w = lesion_crop.shape
    lesion_mask = np.zeros(image.shape, dtype=bool)
    lesion_mask[top:top + h, left:left + w] = lesion_crop
    mask = target_mask.view(np.uint8) * np.uint8(255)
    mask[top:top + h, left:left + w][lesion_crop] = 255

    (wr0, wc0), (wh, ww) = site.window_rc, site.src.shape
    rows, cols = image.shape
    inside = None
    if wr0 < 0 or wc0 < 0 or wr0 + wh > rows or wc0 + ww > cols:  # the window reaches past the border
        inside = np.zeros((wh, ww), dtype=bool)
        inside[max(0, -wr0):rows - wr0, max(0, -wc0):cols - wc0] = True
    area = np.count_nonzero(lesion_crop)
    if brain is not None:
        brain_fraction = float(np.count_nonzero(brain[top:top + h, left:left + w] & lesion_crop) / area)
        tissue_ratio = float(area / max(1, np.count_nonzero(brain)))
    else:
        brain_fraction, tissue_ratio = 1.0, 0.0
    out = site.window(image) if out is None else out
    quality = _quality(site.src, site.tgt, out, site.lesion, site.dist, inside,
                       brain_fraction=brain_fraction, tissue_ratio=tissue_ratio, levels=levels)
    return Blend(image, mask, lesion_mask, quality)


def plausibility_score(*, contrast_transferred: float, brain_fraction: float,
                       changed_fraction: float, level_shift: float, tissue_ratio: float,
                       seam_gradient: float) -> float:
    """``Quality.score``: the product of the plausibility factors, less the seam (see :class:`Quality`)."""
    return (min(max(contrast_transferred, 0.0), 1.0) * brain_fraction
            * min(1.0, changed_fraction / VISIBLE_FRACTION) * (1.0 - level_shift ** 2)
            * max(0.0, 1.0 - tissue_ratio) - 0.01 * seam_gradient)


_BANDS = FEATHER + 4
"""Quality bands: Chebyshev distance 0 … FEATHER + 1, "farther", and "outside the image"."""
_BAND_OF_DISTANCE = np.minimum(np.arange(_FAR + 1), _BANDS - 2)


def _gradient_magnitude(image: np.ndarray) -> np.ndarray:
    """Central-difference gradient magnitude of a float32 (M, N) image, on its (M - 2, N - 2) interior.

    Every operation is IEEE-rounded, so the result is the same bits on every
    call. (cv2.magnitude approximates the root, differently depending on where
    its output buffer lies in memory: identical runs differed in the 4th decimal
    of ``seam_gradient``.)
    """
    dx = image[1:-1, 2:] - image[1:-1, :-2]
    dy = image[2:, 1:-1] - image[:-2, 1:-1]
    return np.sqrt(dx * dx + dy * dy)


def _quality(src: np.ndarray, tgt: np.ndarray, out: np.ndarray, lesion: np.ndarray,
             dist: np.ndarray, inside: np.ndarray | None, *, brain_fraction: float,
             tissue_ratio: float, levels: tuple[float, float] | None) -> Quality:
    """Quality numbers from per-distance-band sums (band k = Chebyshev distance k)."""
    band = _BAND_OF_DISTANCE[dist]
    if inside is not None:
        band[~inside] = _BANDS - 1
    change = out - tgt
    grad = _gradient_magnitude(change)
    flat = band.ravel()
    # Per-band sums as Python lists: the arithmetic below is on a handful of numbers.
    n = np.bincount(flat, minlength=_BANDS).tolist()
    s_src = np.bincount(flat, src.ravel(), minlength=_BANDS).tolist()
    s_out = np.bincount(flat, out.ravel(), minlength=_BANDS).tolist()
    s_changed = np.bincount(flat, (np.abs(change) > CHANGE_LEVEL).ravel(), minlength=_BANDS).tolist()
    s_grad = np.bincount(band[1:-1, 1:-1].ravel(), grad.ravel(), minlength=_BANDS).tolist()
    ring, seam = slice(1, FEATHER + 1), slice(2, FEATHER + 2)
    n_lesion, n_ring, n_seam = n[0], sum(n[ring]), sum(n[seam])
    c_src = s_src[0] / n_lesion - sum(s_src[ring]) / n_ring if n_ring else 0.0
    c_out = s_out[0] / n_lesion - sum(s_out[ring]) / n_ring if n_ring else 0.0
    transferred = c_out / c_src if abs(c_src) >= 1.0 else 1.0
    seam_grad = 0.5 * sum(s_grad[seam]) / n_seam if n_seam else 0.0
    changed = s_changed[0] / n_lesion
    shift = abs(levels[1] - levels[0]) if levels is not None else 0.0
    score = plausibility_score(contrast_transferred=transferred, brain_fraction=brain_fraction,
                               changed_fraction=changed, level_shift=shift,
                               tissue_ratio=tissue_ratio, seam_gradient=seam_grad)
    source_level, target_level = (round(float(v), 4) for v in levels) if levels else (None, None)
    return Quality(n_lesion, round(c_src, 4), round(c_out, 4), round(transferred, 4),
                   round(seam_grad, 4), round(brain_fraction, 4), round(changed, 4),
                   round(score, 4), source_level, target_level, round(shift, 4),
                   round(tissue_ratio, 4))
