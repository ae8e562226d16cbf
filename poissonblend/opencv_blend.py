"""The seed script's blend: OpenCV's ``seamlessClone`` on the lesion's tight bbox.

poissonblend began as a short script: one contour of the source mask → its
tight bounding box → ``cv2.seamlessClone(patch_bgr, target_bgr, patch_mask,
centre, cv2.NORMAL_CLONE)`` on 3-channel copies → target mask OR the moved
lesion. This module is that script, applied to a :class:`~poissonblend.recipe.Recipe`
(the same lesion component, transform and spot as the ``"poissonblend"``
method), so the two can be compared sample for sample. Its flaws are kept on
purpose: OpenCV zeroes the mask's border and erodes it before solving, so a
small lesion's contrast mostly does not arrive while the mask still claims
it, and OpenCV raises on tiny lesions (:class:`SeamlessCloneError`).
"""

from __future__ import annotations

import cv2
import numpy as np

from .blend import Blend, assemble, check_mode_and_margin, locate
from .errors import SeamlessCloneError
from .lesions import LesionPatch

CLONE_FLAGS = {"normal": cv2.NORMAL_CLONE, "mixed": cv2.MIXED_CLONE}
"""``seamlessClone`` flag of each blend mode."""


def seamless_clone(crop: np.ndarray, crop_mask: np.ndarray, target: np.ndarray, *,
                   center_xy: tuple[int, int], mode: str = "normal") -> np.ndarray:
    """The script's call: ``cv2.seamlessClone`` on 3-channel copies, back to grey.

    Parameters
    ----------
    crop : (h, w) ndarray of uint8
        The source image over the lesion's tight bounding box.
    crop_mask : (h, w) ndarray of uint8
        The lesion over the same box, 0/255.
    target : (M, N) ndarray of uint8
        The target slice. Not modified.
    center_xy : (int, int)
        Target (x, y) = (column, row) receiving the centre of the box, as OpenCV takes it.
    mode : {"normal", "mixed"}
        ``NORMAL_CLONE`` or ``MIXED_CLONE``.

    Returns
    -------
    (M, N) ndarray of uint8

    Raises
    ------
    SeamlessCloneError
        Where OpenCV raises (lesions a few px across, or boxes reaching the border).
    """
    try:
        out = cv2.seamlessClone(cv2.cvtColor(crop, cv2.COLOR_GRAY2BGR),
                                cv2.cvtColor(target, cv2.COLOR_GRAY2BGR), crop_mask,
                                tuple(int(v) for v in center_xy), CLONE_FLAGS[mode])
    except cv2.error as exc:
        lines = [ln for ln in str(exc).strip().splitlines() if ln.strip()]
        detail = lines[-1].strip() if lines else type(exc).__name__
        h, w = crop.shape
        raise SeamlessCloneError(
            f"OpenCV's seamlessClone fails on this {w}x{h} px lesion box ({detail})") from None
    return cv2.cvtColor(out, cv2.COLOR_BGR2GRAY)


def opencv_blend(patch: LesionPatch, target: np.ndarray, target_mask: np.ndarray, *,
                 center_xy: tuple[int, int], mode: str = "normal", margin: int = 6,
                 brain: np.ndarray | None = None,
                 levels: tuple[float, float] | None = None) -> Blend:
    """Blend a lesion patch into a target slice as the seed script did.

    Same arguments, placement and :class:`~poissonblend.blend.Quality` as
    :func:`~poissonblend.blend.blend`; only the pixels differ. The patch is
    cropped to the lesion's tight bounding box (its texture rounded to uint8),
    masked by this one lesion, and handed to :func:`seamless_clone` with
    `center_xy` as the centre. `margin` only sets the window the quality report
    looks at; OpenCV decides itself which pixels change, and may change pixels
    far from the lesion.

    Returns
    -------
    Blend
        ``mask`` is target mask ∪ placed lesion, whether or not the lesion's
        contrast arrived (the script's flaw, kept).

    Raises
    ------
    PlacementError
        If the lesion would not lie wholly inside the target image.
    RecipeError
        If `mode` or `margin` is invalid.
    SeamlessCloneError
        Where OpenCV raises (tiny lesions).
    """
    check_mode_and_margin(mode, margin)
    site = locate(patch, target, center_xy=center_xy, margin=margin)
    r0, c0, r1, c1 = patch.bbox_rc
    crop = np.clip(np.rint(patch.image[r0:r1, c0:c1]), 0, 255).astype(np.uint8)
    crop_mask = site.lesion_crop.astype(np.uint8) * np.uint8(255)
    image = seamless_clone(crop, crop_mask, target, center_xy=center_xy, mode=mode)
    return assemble(site, image, target_mask, brain=brain, levels=levels)


__all__ = ["CLONE_FLAGS", "SeamlessCloneError", "opencv_blend", "seamless_clone"]
