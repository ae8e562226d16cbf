"""Lesions: 8-connected components of a mask, cut out as patches and transformed.

Coordinates: arrays are indexed (row, col); a bounding box ``bbox_rc`` is
``(row0, col0, row1, col1)`` with exclusive ends; ``centroid_rc`` is (row, col).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from .errors import LesionError


@dataclass(frozen=True)
class LesionInfo:
    """One lesion of a slice: an 8-connected component of its mask.

    Attributes
    ----------
    index : int
        Position in raster order of the component's first pixel (0-based).
    area : int
        Pixel count.
    bbox_rc : tuple of int
        ``(row0, col0, row1, col1)``, ends exclusive.
    centroid_rc : tuple of float
        Mean (row, col) of its pixels.
    """

    index: int
    area: int
    bbox_rc: tuple[int, int, int, int]
    centroid_rc: tuple[float, float]

    def to_dict(self) -> dict:
        return {"index": self.index, "area": self.area, "bbox_rc": list(self.bbox_rc),
                "centroid_rc": list(self.centroid_rc)}

    @classmethod
    def from_dict(cls, d: dict) -> "LesionInfo":
        return cls(int(d["index"]), int(d["area"]), tuple(d["bbox_rc"]), tuple(d["centroid_rc"]))


def label_lesions(mask: np.ndarray) -> tuple[np.ndarray, list[LesionInfo]]:
    """Label the 8-connected lesion components of a mask.

    Parameters
    ----------
    mask : (M, N) ndarray
        Lesion where the value is > 0.

    Returns
    -------
    labels : (M, N) ndarray of int32
        0 for background, ``k + 1`` for lesion ``k``.
    lesions : list of LesionInfo
        In raster order of each component's first pixel.
    """
    binary = (mask > 0).view(np.uint8)
    if not binary.any():  # most slices of a real set: nothing to label
        return np.zeros(mask.shape, np.int32), []
    n, labels, stats, centroids = cv2.connectedComponentsWithStats(
        binary, connectivity=8, ltype=cv2.CV_32S)
    # OpenCV's numbering depends on its algorithm; renumber by the raster position
    # of each component's first pixel (which lies on its bbox's top row).
    rows = stats.tolist()
    first = sorted((y, x + int(np.argmax(labels[y, x:x + w] == k)), k)
                   for k, (x, y, w, _, _) in enumerate(rows) if k)
    lut = np.zeros(n, np.int32)
    lesions = []
    for new, (_, _, k) in enumerate(first):
        lut[k] = new + 1
        x, y, w, h, area = rows[k]
        cx, cy = centroids[k].tolist()
        lesions.append(LesionInfo(new, area, (y, x, y + h, x + w), (cy, cx)))
    if any(lut[k] != k for k in range(1, n)):
        labels = lut[labels]
    return labels, lesions


@dataclass(frozen=True, eq=False)
class LesionPatch:
    """A lesion cut out of its slice with texture around it.

    Attributes
    ----------
    image : (M, N) ndarray of float32
        Source grey levels around the lesion (reflected where the slice ended).
    mask : (M, N) ndarray of bool
        This lesion only (never its neighbours).
    bbox_rc : tuple of int
        The lesion's bounding box inside the patch, ``(row0, col0, row1, col1)``.
    """

    image: np.ndarray
    mask: np.ndarray
    bbox_rc: tuple[int, int, int, int]

    @property
    def area(self) -> int:
        return int(np.count_nonzero(self.mask))


def _crop_reflect(image: np.ndarray, r0: int, c0: int, r1: int, c1: int) -> np.ndarray:
    """Crop rows r0:r1, cols c0:c1, reflecting (without edge repeat) past the borders."""
    h, w = image.shape
    pads = (max(0, -r0), max(0, r1 - h), max(0, -c0), max(0, c1 - w))
    crop = image[max(0, r0):min(h, r1), max(0, c0):min(w, c1)]
    if any(pads):
        crop = np.pad(crop, (pads[:2], pads[2:]), mode="reflect")
    return crop


def lesion_component(mask: np.ndarray, lesion: LesionInfo) -> np.ndarray:
    """One lesion's own pixels within its bounding box, labelling only that box.

    Parameters
    ----------
    mask : (M, N) ndarray
        The mask the lesion was found in (lesion where > 0).
    lesion : LesionInfo
        From :func:`label_lesions` on that mask, or from a dataset's index of it.

    Returns
    -------
    (h, w) ndarray of bool
        The rows and columns of ``lesion.bbox_rc``: True on the lesion; False on
        background and on any other lesion that reaches into the box.

    Raises
    ------
    LesionError
        If no such lesion is in `mask` (say, the mask changed since it was indexed).

    Notes
    -----
    The lesion lies whole inside its box. If the box holds no other lesion
    pixel, that is all; otherwise the lesion is the only component there that
    touches all four sides: two 8-connected components cannot both do so, as a
    top-to-bottom path of one would cross or touch a left-to-right path of the
    other. So labelling the box alone finds it.
    """
    r0, c0, r1, c1 = lesion.bbox_rc
    box = mask[r0:r1, c0:c1] > 0
    if np.count_nonzero(box) == lesion.area:  # no other lesion reaches into the box
        return box
    n, labels, stats, _ = cv2.connectedComponentsWithStats(box.view(np.uint8), connectivity=8,
                                                           ltype=cv2.CV_32S)
    spans = np.flatnonzero((stats[1:] == (0, 0, c1 - c0, r1 - r0, lesion.area)).all(axis=1))
    if len(spans) != 1:
        raise LesionError(f"the mask holds no lesion of {lesion.area} px filling the box "
                          f"{lesion.bbox_rc} (row0, col0, row1, col1)")
    return labels == spans[0] + 1


def extract_lesion(image: np.ndarray, labels: np.ndarray, lesion: LesionInfo,
                   *, pad: int) -> LesionPatch:
    """Cut one lesion out of a slice with `pad` pixels of texture on every side.

    Parameters
    ----------
    image : (M, N) ndarray of uint8
        The source slice.
    labels : (M, N) ndarray of int32
        From :func:`label_lesions` on the source mask.
    lesion : LesionInfo
        Which component to cut (only its pixels, never a neighbour's).
    pad : int
        Pixels of surrounding texture to keep around the bounding box.
    """
    r0, c0, r1, c1 = lesion.bbox_rc
    return cut_lesion(image, labels[r0:r1, c0:c1] == lesion.index + 1, lesion, pad=pad)


def cut_lesion(image: np.ndarray, component: np.ndarray, lesion: LesionInfo,
               *, pad: int) -> LesionPatch:
    """:func:`extract_lesion` given the lesion's own pixels instead of a label image.

    Parameters
    ----------
    image : (M, N) ndarray of uint8
        The source slice.
    component : (h, w) ndarray of bool
        The lesion's pixels within ``lesion.bbox_rc``, as :func:`lesion_component` gives.
    lesion : LesionInfo
        The lesion (its bounding box places `component`).
    pad : int
        Pixels of surrounding texture to keep around the bounding box.
    """
    r0, c0, r1, c1 = lesion.bbox_rc
    img = _crop_reflect(image, r0 - pad, c0 - pad, r1 + pad, c1 + pad).astype(np.float32)
    mask = np.zeros(img.shape, dtype=bool)
    mask[pad:pad + r1 - r0, pad:pad + c1 - c0] = component
    return LesionPatch(img, mask, (pad, pad, pad + r1 - r0, pad + c1 - c0))


def _mask_bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1


def transform_lesion(patch: LesionPatch, *, scale: float = 1.0, rotation: float = 0.0,
                     flip_h: bool = False, flip_v: bool = False, pad: int) -> LesionPatch:
    """Scale, rotate and flip a lesion patch; return it cropped to bbox ± `pad`.

    The image is resampled bilinearly, the mask by nearest neighbour, both with
    the same matrix so the lesion's texture and mask stay aligned.

    Parameters
    ----------
    patch : LesionPatch
        From :func:`extract_lesion`, with at least `pad` pixels around the lesion.
    scale : float
        Size factor (> 0).
    rotation : float
        Degrees, counter-clockwise as displayed (image rows grow downwards).
    flip_h, flip_v : bool
        Mirror left-right / top-bottom (applied before scaling and rotation).
    pad : int
        Pixels of texture kept around the transformed lesion's bounding box.

    Raises
    ------
    LesionError
        If `scale` is not positive or the lesion vanishes at this scale.
    """
    if not (scale > 0 and math.isfinite(scale)):
        raise LesionError(f"scale {scale} must be a positive number")
    image, mask = patch.image, patch.mask
    if flip_h:
        image, mask = image[:, ::-1], mask[:, ::-1]
    if flip_v:
        image, mask = image[::-1, :], mask[::-1, :]
    if scale != 1.0 or rotation % 360 != 0:
        r0, c0, r1, c1 = patch.bbox_rc
        if flip_h:
            c0, c1 = image.shape[1] - c1, image.shape[1] - c0
        if flip_v:
            r0, r1 = image.shape[0] - r1, image.shape[0] - r0
        centre_xy = ((c0 + c1 - 1) / 2.0, (r0 + r1 - 1) / 2.0)
        m = cv2.getRotationMatrix2D(centre_xy, rotation, scale)
        # Output canvas: the transformed lesion bbox plus `pad`, around the same centre.
        half = 0.5 * scale * math.hypot(r1 - r0, c1 - c0) + pad + 2
        size = int(2 * math.ceil(half) + 1)
        m[0, 2] += size // 2 - centre_xy[0]
        m[1, 2] += size // 2 - centre_xy[1]
        src = np.ascontiguousarray(image)
        image = cv2.warpAffine(src, m, (size, size), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REFLECT_101)
        mask = cv2.warpAffine(np.ascontiguousarray(mask, dtype=np.uint8), m, (size, size),
                              flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT) > 0
        if not mask.any():
            raise LesionError(f"the lesion vanishes at scale {scale}")
    r0, c0, r1, c1 = _mask_bbox(mask)
    image = _crop_reflect(np.ascontiguousarray(image), r0 - pad, c0 - pad, r1 + pad, c1 + pad)
    keep = np.zeros(image.shape, dtype=bool)
    keep[pad:pad + r1 - r0, pad:pad + c1 - c0] = mask[r0:r1, c0:c1]
    return LesionPatch(image, keep, (pad, pad, pad + r1 - r0, pad + c1 - c0))
