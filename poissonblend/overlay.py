"""Pictures for the app: mask overlays, numbered lesion outlines, difference heat-maps.

Pure numpy/OpenCV drawing on ``(H, W)`` uint8 slices; every function returns a
new ``(H * zoom, W * zoom, 3)`` uint8 RGB array and never modifies its inputs.
``zoom`` is an integer nearest-neighbour upscale applied *before* drawing, so
outlines and numbers stay crisp on small slices and every slice pixel becomes a
``zoom x zoom`` block (image pixel ``(x, y)`` covers display pixels
``x*zoom … x*zoom+zoom-1``). :func:`png_bytes` encodes the result losslessly.

Colours follow the Okabe-Ito palette (readable for colour-blind viewers):
sky blue for lesions already in a slice, orange for the lesion being added.
"""

from __future__ import annotations

import cv2
import numpy as np

ORIGINAL_RGB = (86, 180, 233)
"""Sky blue: lesions already present in the slice."""
NEW_RGB = (230, 159, 0)
"""Orange: the placed (new) lesion, or the chosen lesion of a source slice."""
MARKER_RGB = (240, 60, 60)
"""Red: the placement spot."""
VALID_RGB = (0, 158, 115)
"""Bluish green: where a lesion's centre may go."""
TEXT_OUTLINE_RGB = (0, 0, 0)


def fit_zoom(shape: tuple[int, ...], target: int = 512, *, max_zoom: int = 8) -> int:
    """Largest integer upscale keeping the slice's long side within `target` px (at least 1)."""
    long_side = max(int(shape[0]), int(shape[1]), 1)
    return int(min(max_zoom, max(1, target // long_side)))


def upscale(image: np.ndarray, zoom: int) -> np.ndarray:
    """Nearest-neighbour integer upscale of a 2-D or RGB array (a copy when zoom is 1)."""
    if zoom < 1 or int(zoom) != zoom:
        raise ValueError(f"zoom must be a positive integer, not {zoom!r}")
    zoom = int(zoom)
    if zoom == 1:
        return image.copy()
    return np.repeat(np.repeat(image, zoom, axis=0), zoom, axis=1)


def to_rgb(image: np.ndarray, zoom: int = 1) -> np.ndarray:
    """A greyscale uint8 slice as an RGB array, upscaled by `zoom`."""
    if image.ndim != 2:
        raise ValueError(f"expected a 2-D greyscale slice, got shape {image.shape}")
    grey = upscale(np.asarray(image, dtype=np.uint8), zoom)
    return np.ascontiguousarray(np.repeat(grey[:, :, None], 3, axis=2))


def _contours(mask: np.ndarray, zoom: int) -> list[np.ndarray]:
    """Outer and hole contours of a boolean mask, in zoomed display coordinates."""
    big = upscale(np.asarray(mask, dtype=bool).astype(np.uint8), zoom)
    contours, _ = cv2.findContours(big, cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    return list(contours)


def _tint(rgb: np.ndarray, mask: np.ndarray, colour: tuple[int, int, int], opacity: float) -> None:
    if opacity <= 0 or not mask.any():
        return
    pixels = rgb[mask].astype(np.float32)
    rgb[mask] = np.clip(np.rint((1 - opacity) * pixels + opacity * np.asarray(colour, np.float32)),
                        0, 255).astype(np.uint8)


def mask_overlay(image: np.ndarray, original: np.ndarray | None, new: np.ndarray | None, *,
                 opacity: float = 0.35, zoom: int = 1, outline: bool = True) -> np.ndarray:
    """The slice with two masks tinted and outlined in two colours.

    Parameters
    ----------
    image : (H, W) uint8
        The slice (e.g. the blended result).
    original, new : (H, W) bool or None
        The slice's own lesions (:data:`ORIGINAL_RGB`) and the placed lesion
        (:data:`NEW_RGB`); where both are set the new colour wins.
    opacity : float
        Fill opacity in [0, 1]; 0 draws outlines only.
    zoom : int
        Integer upscale before drawing.
    outline : bool
        Draw each mask's 1 px outline in full colour.
    """
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity must be between 0 and 1, not {opacity}")
    rgb = to_rgb(image, zoom)
    layers = [(m, c) for m, c in ((original, ORIGINAL_RGB), (new, NEW_RGB)) if m is not None]
    for mask, colour in layers:
        _check_shape(mask, image)
        _tint(rgb, upscale(np.asarray(mask, dtype=bool), zoom), colour, opacity)
    if outline:
        for mask, colour in layers:
            cv2.drawContours(rgb, _contours(mask, zoom), -1, colour, 1)
    return rgb


def _check_shape(mask: np.ndarray, image: np.ndarray) -> None:
    if mask.shape != image.shape:
        raise ValueError(f"mask shape {mask.shape} differs from image shape {image.shape}")


def _put_label(rgb: np.ndarray, text: str, cx: int, bottom: int, colour: tuple[int, int, int],
               scale: float) -> None:
    """Text with a dark outline, centred on column `cx`, its baseline at row `bottom`.

    Moved inside the image where it would stick out.
    """
    font = cv2.FONT_HERSHEY_DUPLEX
    thickness = max(1, int(round(scale * 1.5)))
    (tw, th), base = cv2.getTextSize(text, font, scale, thickness)
    h, w = rgb.shape[:2]
    x = int(min(max(cx - tw // 2, 2), max(2, w - tw - 2)))
    y = int(min(max(bottom, th + 2), max(th + 2, h - base - 2)))
    cv2.putText(rgb, text, (x, y), font, scale, TEXT_OUTLINE_RGB, thickness + 3, cv2.LINE_AA)
    cv2.putText(rgb, text, (x, y), font, scale, colour, thickness, cv2.LINE_AA)


def lesion_outlines(image: np.ndarray, labels: np.ndarray, *, highlight: int | None = None,
                    zoom: int = 1, numbers: bool = True) -> np.ndarray:
    """The slice with every lesion outlined and numbered; one lesion highlighted.

    Parameters
    ----------
    image : (H, W) uint8
    labels : (H, W) int
        Lesion ``k`` is ``k + 1`` (as :func:`poissonblend.lesions.label_lesions`).
    highlight : int or None
        Lesion index drawn in :data:`NEW_RGB` with a thicker outline; the others
        are :data:`ORIGINAL_RGB`.
    zoom : int
        Integer upscale before drawing (numbers need ``zoom * H`` of about 300+ px).
    numbers : bool
        Write each lesion's index next to it.
    """
    _check_shape(labels, image)
    rgb = to_rgb(image, zoom)
    count = int(labels.max()) if labels.size else 0
    scale = max(0.4, 0.2 * zoom + 0.1)
    order = [k for k in range(count) if k != highlight] + ([highlight] if highlight is not None
                                                           and 0 <= highlight < count else [])
    for k in order:
        mask = labels == k + 1
        if not mask.any():
            continue
        chosen = k == highlight
        colour = NEW_RGB if chosen else ORIGINAL_RGB
        cv2.drawContours(rgb, _contours(mask, zoom), -1, colour, 2 if chosen and zoom > 1 else 1)
        if numbers:  # just above the lesion's topmost pixels
            top = int(np.flatnonzero(mask.any(axis=1))[0])
            cx = int(round((np.flatnonzero(mask[top]).mean() + 0.5) * zoom))
            _put_label(rgb, str(k), cx, top * zoom - 4, colour, scale)
    return rgb


def diff_heatmap(before: np.ndarray, after: np.ndarray, *, zoom: int = 1, floor: float = 16.0,
                 context: float = 0.35) -> np.ndarray:
    """|after - before| as an inferno heat-map over a dimmed copy of `before`.

    Parameters
    ----------
    before, after : (H, W) uint8
    floor : float
        Grey-level difference mapped to full colour at least (so tiny changes
        are not stretched to look large); the scale is ``max(floor, max diff)``.
    context : float
        Brightness of `before` shown where nothing changed (0: black).
    """
    _check_shape(after, before)
    diff = np.abs(after.astype(np.int16) - before.astype(np.int16)).astype(np.float32)
    top = max(float(floor), float(diff.max()))
    level = np.clip(np.rint(255.0 * diff / top), 0, 255).astype(np.uint8)
    heat = cv2.cvtColor(cv2.applyColorMap(level, cv2.COLORMAP_INFERNO), cv2.COLOR_BGR2RGB)
    unchanged = diff == 0
    grey = np.clip(np.rint(before.astype(np.float32) * context), 0, 255).astype(np.uint8)
    heat[unchanged] = grey[unchanged][:, None]
    return upscale(heat, zoom)


def draw_marker(rgb: np.ndarray, x: int, y: int, *, zoom: int = 1,
                colour: tuple[int, int, int] = MARKER_RGB, gap: int | None = None) -> np.ndarray:
    """A copy of `rgb` (already upscaled by `zoom`) with a cross-hair on slice pixel (x, y).

    `gap` (display px) keeps the arms that far from the centre, so what lies under the
    spot stays visible; by default ``max(2, zoom)``.
    """
    out = rgb.copy()
    cx, cy = int(x) * zoom + zoom // 2, int(y) * zoom + zoom // 2
    gap = max(2, zoom) if gap is None else int(gap)
    arm = max(5, 3 * zoom, gap + 2 * zoom)
    thickness = 1 if zoom < 3 else 2
    for (x0, y0, x1, y1) in ((cx - arm, cy, cx - gap, cy), (cx + gap, cy, cx + arm, cy),
                             (cx, cy - arm, cx, cy - gap), (cx, cy + gap, cx, cy + arm)):
        cv2.line(out, (x0, y0), (x1, y1), TEXT_OUTLINE_RGB, thickness + 2)
        cv2.line(out, (x0, y0), (x1, y1), colour, thickness)
    cv2.circle(out, (cx, cy), arm, colour, thickness, cv2.LINE_AA)
    return out


def shade_region(rgb: np.ndarray, region: np.ndarray, *, zoom: int = 1,
                 colour: tuple[int, int, int] = VALID_RGB, opacity: float = 0.22) -> np.ndarray:
    """A copy of `rgb` (already upscaled by `zoom`) with `region` ((H, W) bool) tinted and outlined."""
    if region.shape != tuple(s // zoom for s in rgb.shape[:2]):
        raise ValueError(f"region shape {region.shape} does not match the picture "
                         f"{rgb.shape[:2]} at zoom {zoom}")
    out = rgb.copy()
    _tint(out, upscale(np.asarray(region, dtype=bool), zoom), colour, opacity)
    cv2.drawContours(out, _contours(region, zoom), -1, colour, 1)
    return out


def neighbourhood(bbox_rc: tuple[int, int, int, int], shape: tuple[int, int], *, pad: int = 12,
                  min_size: int = 32, max_size: int | None = None) -> tuple[slice, slice]:
    """Row and column slices of a window around a bbox, at least `min_size` px, inside `shape`.

    With `max_size`, a side that would be longer is cut to `max_size` px centred on the
    bbox's centre (so a close-up of a large lesion keeps its zoom). Returns ``(rows, cols)``,
    usable as ``image[rows, cols]``.
    """
    r0, c0, r1, c1 = (int(v) for v in bbox_rc)
    rows, cols = int(shape[0]), int(shape[1])
    out = []
    for lo, hi, n in ((r0, r1, rows), (c0, c1, cols)):
        centre = (lo + hi) // 2
        lo, hi = lo - pad, hi + pad
        short = min_size - (hi - lo)
        if short > 0:
            lo -= short // 2
            hi += short - short // 2
        if max_size is not None and hi - lo > max_size:
            lo, hi = centre - max_size // 2, centre - max_size // 2 + max_size
        size = min(hi - lo, n)
        lo = min(max(lo, 0), n - size)
        out.append(slice(lo, lo + size))
    return out[0], out[1]


def mask_bbox(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """``(row0, col0, row1, col1)`` (ends exclusive) of the True pixels, None if there are none."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1


def zoom_overlay(image: np.ndarray, original: np.ndarray | None, new: np.ndarray, *,
                 opacity: float = 0.0, pad: int = 12, min_size: int = 32,
                 display: int = 256) -> np.ndarray:
    """A close-up of the new lesion's neighbourhood with outlines (fill `opacity`)."""
    box = mask_bbox(new)
    if box is None:
        rows, cols = slice(0, image.shape[0]), slice(0, image.shape[1])
    else:
        rows, cols = neighbourhood(box, image.shape, pad=pad, min_size=min_size)
    crop = image[rows, cols]
    zoom = fit_zoom(crop.shape, display, max_zoom=12)
    return mask_overlay(crop, None if original is None else original[rows, cols], new[rows, cols],
                        opacity=opacity, zoom=zoom)


def density_map(points_xy: np.ndarray | list, shape: tuple[int, int], *,
                background: np.ndarray | None = None, sigma: float = 4.0, zoom: int = 1,
                opacity: float = 0.7) -> np.ndarray:
    """Where points fall on a slice: a blurred count map as a heat-map.

    Parameters
    ----------
    points_xy : (n, 2) array-like of (x, y)
        Points outside `shape` are ignored.
    background : (H, W) uint8, optional
        A slice to draw under the heat (dimmed); black if None.
    sigma : float
        Gaussian blur in px.
    opacity : float
        Heat opacity where the density is highest (fades to 0 where there are no points).
    """
    rows, cols = int(shape[0]), int(shape[1])
    counts = np.zeros((rows, cols), np.float32)
    pts = np.asarray(points_xy, dtype=np.int64).reshape(-1, 2)
    keep = (pts[:, 0] >= 0) & (pts[:, 0] < cols) & (pts[:, 1] >= 0) & (pts[:, 1] < rows)
    pts = pts[keep]
    np.add.at(counts, (pts[:, 1], pts[:, 0]), 1.0)
    if sigma > 0 and pts.size:
        counts = cv2.GaussianBlur(counts, (0, 0), sigma)
    level = counts / counts.max() if counts.max() > 0 else counts
    heat = cv2.cvtColor(cv2.applyColorMap(np.rint(255 * level).astype(np.uint8),
                                          cv2.COLORMAP_INFERNO), cv2.COLOR_BGR2RGB)
    base = (np.zeros((rows, cols), np.uint8) if background is None
            else np.clip(background.astype(np.float32) * 0.6, 0, 255).astype(np.uint8))
    base_rgb = np.repeat(base[:, :, None], 3, axis=2).astype(np.float32)
    alpha = (opacity * np.sqrt(level))[:, :, None]
    out = np.clip(np.rint((1 - alpha) * base_rgb + alpha * heat), 0, 255).astype(np.uint8)
    return upscale(out, zoom)


def png_bytes(image: np.ndarray) -> bytes:
    """Lossless PNG bytes of a greyscale ``(H, W)`` or RGB ``(H, W, 3)`` uint8 array."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"expected uint8 pixels, got {image.dtype}")
    if image.ndim == 3 and image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    elif image.ndim != 2:
        raise ValueError(f"expected (H, W) or (H, W, 3), got shape {image.shape}")
    ok, buf = cv2.imencode(".png", image)  # OpenCV's default settings are the fastest here
    if not ok:  # pragma: no cover - only unsupported dtypes fail
        raise ValueError("could not encode PNG")
    return buf.tobytes()


__all__ = ["MARKER_RGB", "NEW_RGB", "ORIGINAL_RGB", "VALID_RGB", "density_map", "diff_heatmap",
           "draw_marker", "fit_zoom", "lesion_outlines", "mask_bbox", "mask_overlay", "neighbourhood",
           "png_bytes", "shade_region", "to_rgb", "upscale", "zoom_overlay"]
