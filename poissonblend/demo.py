"""A small, deterministic, realistic-looking demo training set.

:func:`make_demo` writes ``cases × slices`` synthetic axial DWI-like slices
(b≈1000 look: dark CSF, grey matter slightly brighter than white matter,
skull-stripped black background, Rician noise) with irregular hyperintense
stroke lesions and their 0/255 masks, in the training-set format
(``input/`` and ``mask/``, ``slice_{case_id}_{slice:04d}.png``). It is the
app's built-in dataset and a fixture for tests and benchmarks.

What the default set (seed 0, 8 cases × 12 slices of 128 px) contains:

- the brain is an irregular egg whose size follows the slice axis (largest a
  little below the middle, smaller at the bottom, small at the top);
- cases ``0001`` and ``0005`` end in an all-black slice (no brain: valid, never
  a blend target), cases ``0003`` and ``0007`` in a near-empty vertex slice;
- every case has 1–3 lesion *foci* that appear on consecutive slices, each one
  an irregular blob of 10–400 px per slice, 40–120 grey levels brighter than
  the tissue, with its own texture; slices outside the foci have no lesion;
- every case has a 1-px and a 2-px (domino) lesion speck, and sometimes a
  3–4 px one, each isolated from the other lesions.

Everything is drawn from ``numpy.random.default_rng`` seeded from `seed`, the
case number and the slice number (no global random state), so the same
arguments always give byte-identical PNGs, and a case does not change when
`cases` changes.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from scipy import ndimage

from .errors import OutputError
from .io import encode_png, resolve_path, same_pixels, slice_name, write_pair
from .output import prepare_output_dirs

DEFAULT_SEED = 0
DEFAULT_CASES = 8
DEFAULT_SLICES = 12
DEFAULT_SIZE = 128
MIN_SIZE = 48
MAX_SIZE = 1024

NOISE_SIGMA = 4.0          # Rician noise, grey levels
LESION_AREA = (10, 400)    # px per slice, per lesion blob (specks are 1–4 px)
LESION_BOOST = (40, 120)   # grey levels above the tissue
SPECK_BOOST = (60, 110)
MIN_LESION_SCALE = 0.3     # no lesions on slices whose brain is smaller than this


# ---------------------------------------------------------------------------
# Plans: every random draw of a case, made once per case.


@dataclass(frozen=True)
class _Focus:
    """One lesion focus of a case: a blob that persists over a few slices."""

    z_centre: float      # slice index of its largest cross-section
    z_half: float        # slices from the centre to where it vanishes
    area_max: float      # px at z_centre (at full brain size)
    rho: float           # distance from the brain centre, fraction of the radius
    angle: float         # radians, 0 = right of the image, counter-clockwise
    boost: float         # grey levels above tissue


@dataclass(frozen=True)
class _CasePlan:
    """Everything drawn once per case (slices draw their own details)."""

    case_index: int
    case_id: str
    slices: int
    size: int
    centre_rc: tuple[float, float]
    top_scale: float               # brain scale at the last slice (0: all black)
    harmonics: tuple[tuple[float, float], ...]  # (amplitude, phase) for k = 2, 3, ...
    wm: float                      # white-matter grey level
    gm: float                      # grey-matter grey level
    csf: float                     # CSF grey level
    bias: tuple[float, float]      # linear bias field: (strength, direction in radians)
    foci: tuple[_Focus, ...]
    specks: dict[int, int]         # slice index -> speck size in px (1–4)
    edge_scale: float | None = None  # brain scale of the first and last slice (None: the egg's)


def _case_seed(seed: int, case_index: int, *key: int) -> np.random.SeedSequence:
    return np.random.SeedSequence(seed, spawn_key=(case_index, *key))


def _brain_scale(plan: _CasePlan, z: int) -> float:
    """Brain size on slice `z` relative to the largest slice (0: no brain)."""
    s = plan.slices
    if s == 1:
        return 1.0
    if plan.edge_scale is not None and z in (0, s - 1):
        return plan.edge_scale
    u = z / (s - 1)
    if u == 1.0 and plan.top_scale == 0.0:
        return 0.0
    top = max(plan.top_scale, 0.15)
    half = 0.6 / math.sqrt(1.0 - top * top)   # scale(u=1) == top
    return math.sqrt(max(0.0, 1.0 - ((u - 0.4) / half) ** 2))


def _plan_case(seed: int, case_index: int, *, slices: int, size: int) -> _CasePlan:
    rng = np.random.default_rng(_case_seed(seed, case_index, 0))
    kind = case_index % 4
    top_scale = 0.0 if kind == 0 else 0.17 if kind == 2 else float(rng.uniform(0.38, 0.55))
    harmonics = tuple((float(rng.uniform(0.0, 0.035)), float(rng.uniform(0, 2 * math.pi)))
                      for _ in range(4))
    wm = float(rng.uniform(78, 90))
    gm = wm + float(rng.uniform(12, 20))
    csf = float(rng.uniform(26, 36))
    bias = (float(rng.uniform(0.03, 0.08)), float(rng.uniform(0, 2 * math.pi)))
    jitter = 0.02 * size
    centre_rc = (size / 2 + float(rng.uniform(-jitter, jitter)),
                 size / 2 + float(rng.uniform(-jitter, jitter)))

    foci = []
    for k in range(int(rng.integers(1, 4))):
        main = k == 0
        foci.append(_Focus(
            z_centre=float(rng.uniform(0.35, 0.6) if main else rng.uniform(0.15, 0.85)) * (slices - 1),
            z_half=float(rng.uniform(0.25, 0.45) if main else rng.uniform(0.1, 0.3)) * slices + 0.6,
            area_max=float(rng.uniform(90, 420) if main else rng.uniform(20, 220)),
            rho=float(rng.uniform(0.3, 0.7)),
            angle=float(rng.uniform(0, 2 * math.pi)),
            boost=float(rng.uniform(*LESION_BOOST)),
        ))

    # Specks: a 1-px and a 2-px one in every case, sometimes a 3–4 px one, each
    # on its own slice with room for lesions.
    plan_wo_specks = _CasePlan(case_index, f"{case_index + 1:04d}", slices, size, centre_rc,
                               top_scale, harmonics, wm, gm, csf, bias, tuple(foci), {})
    roomy = [z for z in range(slices) if _brain_scale(plan_wo_specks, z) >= MIN_LESION_SCALE]
    sizes = [1, 2] + ([int(rng.integers(3, 5))] if rng.random() < 0.5 else [])
    chosen = rng.permutation(roomy)[:len(sizes)]
    specks = {int(z): n for z, n in zip(chosen, sizes)}
    return dataclasses.replace(plan_wo_specks, specks=specks)


# ---------------------------------------------------------------------------
# Rendering one slice.


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Gaussian-smoothed white noise, rescaled to zero mean and unit std.

    Wide kernels are made on a coarser grid and upsampled (linear), which is
    much faster and looks the same.
    """
    step = max(1, int(sigma // 2.5))
    if step > 1:
        coarse = (-(-shape[0] // step) + 1, -(-shape[1] // step) + 1)
        small = ndimage.gaussian_filter(rng.standard_normal(coarse), sigma / step, mode="reflect")
        rows = np.arange(shape[0]) / step
        cols = np.arange(shape[1]) / step
        r0, c0 = rows.astype(int), cols.astype(int)
        fr, fc = (rows - r0)[:, None], (cols - c0)[None, :]
        field = ((1 - fr) * ((1 - fc) * small[np.ix_(r0, c0)] + fc * small[np.ix_(r0, c0 + 1)])
                 + fr * ((1 - fc) * small[np.ix_(r0 + 1, c0)] + fc * small[np.ix_(r0 + 1, c0 + 1)]))
    else:
        field = ndimage.gaussian_filter(rng.standard_normal(shape), sigma, mode="reflect")
    field -= field.mean()
    std = field.std()
    return field / std if std > 0 else field


def _ellipse(rr: np.ndarray, cc: np.ndarray, centre_rc: tuple[float, float],
             axes_rc: tuple[float, float], angle: float = 0.0) -> np.ndarray:
    """Boolean ellipse; `angle` in radians rotates it (positive: counter-clockwise)."""
    dr, dc = rr - centre_rc[0], cc - centre_rc[1]
    ca, sa = math.cos(angle), math.sin(angle)
    u = dc * ca - dr * sa
    v = dc * sa + dr * ca
    return (v / max(axes_rc[0], 1e-6)) ** 2 + (u / max(axes_rc[1], 1e-6)) ** 2 <= 1.0


def _ventricles(rr: np.ndarray, cc: np.ndarray, centre_rc: tuple[float, float],
                axes_rc: tuple[float, float], extent: float, px: float) -> np.ndarray:
    """Lateral ventricles (a curved tube per side) plus the third ventricle.

    `extent` (0–1) shrinks them away from the middle slices.
    """
    cy, cx = centre_rc
    ar, ac = axes_rc
    out = np.zeros(rr.shape, bool)
    t_lo, t_hi = 0.5 - 0.5 * extent, 0.5 + 0.5 * extent
    for side in (-1, 1):
        for t in np.linspace(t_lo, t_hi, 12):
            row = cy + (-0.36 + 0.66 * t) * ar
            col = cx + side * (0.06 + 0.07 * math.sin(math.pi * t) + 0.24 * t ** 3) * ac
            width = (0.03 + 0.06 * (1 - t) ** 3 + 0.06 * t ** 4) * ac * extent + 0.7 * px
            out |= (rr - row) ** 2 + (cc - col) ** 2 <= width * width
    out[np.abs(cc - cx) < 0.8 * px] = False          # septum pellucidum
    if extent < 0.9:                                  # third ventricle, lower slices
        out |= _ellipse(rr, cc, (cy + 0.05 * ar, cx), (0.14 * ar * extent, 0.6 * px))
    return out


def _render_slice(plan: _CasePlan, z: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Image and 0/255 mask of slice `z` of a planned case, both (size, size) uint8."""
    size = plan.size
    shape = (size, size)
    image = np.zeros(shape, np.uint8)
    mask = np.zeros(shape, np.uint8)
    scale = _brain_scale(plan, z)
    if scale <= 0.0:
        return image, mask
    rng = np.random.default_rng(_case_seed(seed, plan.case_index, 1, z))
    px = size / 128.0                      # lengths below are for 128 px slices
    u = z / (plan.slices - 1) if plan.slices > 1 else 0.45
    rr, cc = np.mgrid[:size, :size].astype(np.float64)
    cy, cx = plan.centre_rc
    ar, ac = 0.40 * size * scale, 0.32 * size * scale   # semi-axes: rows (AP), cols (LR)

    # Brain outline: an egg (wider at the back), low harmonics and gyral bumps.
    yn = (rr - cy) / ar
    xn = (cc - cx) / (ac * (1.0 + 0.07 * np.clip(yn, -1.5, 1.5)))
    theta = np.arctan2(yn, xn)
    radius = 1.0 + sum(a * np.cos((k + 2) * theta + ph) for k, (a, ph) in enumerate(plan.harmonics))
    radius = radius + 0.012 * _smooth_noise(rng, shape, 3.0 * px)
    rho = np.hypot(yn, xn) / radius
    brain = rho <= 1.0
    if not brain.any():
        return image, mask
    edge = ndimage.distance_transform_edt(brain)       # px to the background

    # Tissue classes (as grey levels, before partial volume, texture, noise).
    # CSF: an outer rim, sulci (zero crossings of a smooth field, near the
    # surface), the interhemispheric fissure and, on middle slices, the ventricles.
    csf = edge < 1.3 * px
    gyri = _smooth_noise(rng, shape, 2.2 * px)
    csf |= (np.abs(gyri) < 0.15) & (edge < (5.0 + 5.0 * scale) * px)
    wobble = 1.0 * px * np.sin(rr / (9.0 * px) + plan.harmonics[0][1])
    fissure = np.abs(cc - cx - wobble) < 0.8 * px
    if u < 0.72:   # below the vertex the corpus callosum interrupts the fissure
        fissure &= (np.abs(yn) > 0.42) | (edge < 7 * px)
    csf |= fissure
    # Grey matter: a ribbon of varying thickness along every CSF surface.
    surface_dist = ndimage.distance_transform_edt(brain & ~csf)
    cortex = surface_dist < (2.6 + 0.8 * _smooth_noise(rng, shape, 4.0 * px)) * px
    tissue = np.where(cortex, plan.gm, plan.wm)
    vent = math.exp(-(((u - 0.45) / 0.16) ** 2))       # ventricles: middle slices only
    if vent > 0.2:
        ventricles = _ventricles(rr, cc, (cy, cx), (ar, ac), vent, px)
        for side in (-1, 1):                           # thalami and basal ganglia
            deep = _ellipse(rr, cc, (cy + 0.12 * ar, cx + side * 0.2 * ac),
                            (0.16 * ar * vent, 0.1 * ac * vent), side * 0.3)
            tissue[deep & ~ventricles] = 0.5 * (plan.wm + plan.gm)
        csf |= ventricles
    tissue[csf] = plan.csf
    # Partial volume, slow texture, bias field.
    tissue = ndimage.gaussian_filter(tissue, 0.7 * px, mode="nearest")
    tissue *= 1.0 + 0.045 * _smooth_noise(rng, shape, 6.0 * px)
    strength, direction = plan.bias
    tissue *= 1.0 + strength * ((cc - cx) * math.cos(direction) + (rr - cy) * math.sin(direction)) / (0.4 * size)

    # Lesions: allowed in parenchyma away from the edge, CSF and each other.
    parenchyma = brain & (edge >= 4.0 * px) & ~ndimage.binary_dilation(csf, iterations=1)
    boost = np.zeros(shape)
    if scale >= MIN_LESION_SCALE:
        for focus in plan.foci:
            _add_focus(boost, mask, focus, z, parenchyma, rng, (cy, cx), (ar, ac), scale, px)
        n = plan.specks.get(z)
        if n:
            _add_speck(boost, mask, n, parenchyma, rng)
    lesion = mask > 0
    if lesion.any():
        tissue[lesion] = np.maximum(tissue[lesion], plan.wm) + boost[lesion]

    # Rician noise: magnitude of a complex signal with Gaussian noise per channel.
    noisy = np.hypot(tissue + rng.normal(0.0, NOISE_SIGMA, shape), rng.normal(0.0, NOISE_SIGMA, shape))
    image = np.where(brain, np.clip(np.rint(noisy), 1, 255), 0).astype(np.uint8)
    return image, mask


def _add_focus(boost: np.ndarray, mask: np.ndarray, focus: _Focus, z: int, allowed: np.ndarray,
               rng: np.random.Generator, centre_rc: tuple[float, float],
               axes_rc: tuple[float, float], scale: float, px: float) -> None:
    """Draw one irregular lesion blob of `focus` on slice `z` (in place)."""
    profile = 1.0 - ((z - focus.z_centre) / focus.z_half) ** 2
    area = int(round(focus.area_max * profile * scale * scale * px * px))
    if area < LESION_AREA[0] * px * px:
        return
    area = min(area, int(LESION_AREA[1] * px * px))
    r0 = centre_rc[0] - focus.rho * axes_rc[0] * math.sin(focus.angle)
    c0 = centre_rc[1] + focus.rho * axes_rc[1] * math.cos(focus.angle)
    radius = math.sqrt(area / math.pi)
    # Work in a window around the focus; keep two pixels clear of other lesions
    # (so every lesion is its own 8-connected component).
    half = int(2.5 * radius + 4 * px + 3)
    rows, cols = mask.shape
    ra, rb = max(0, int(r0) - half), min(rows, int(r0) + half + 1)
    ca, cb = max(0, int(c0) - half), min(cols, int(c0) + half + 1)
    if rb - ra < 3 or cb - ca < 3:
        return
    win = (slice(ra, rb), slice(ca, cb))
    shape = (rb - ra, cb - ca)
    free = allowed[win] & ~ndimage.binary_dilation(mask[win] > 0, iterations=3)
    rr, cc = np.ogrid[ra:rb, ca:cb]
    dist2 = ((rr - r0) ** 2 + (cc - c0) ** 2) / (radius * radius)
    field = -dist2 + 1.3 * _smooth_noise(rng, shape, max(1.0, radius / 3.0))
    field = np.where(free, field, -np.inf)
    order = np.argsort(field, axis=None, kind="stable")[::-1][:area]
    order = order[np.isfinite(field.flat[order])]
    if order.size < LESION_AREA[0]:
        return
    blob = np.zeros(shape, np.uint8)
    blob.flat[order] = 1
    _, labels = cv2.connectedComponents(blob, connectivity=8)
    blob = labels == labels.flat[order[0]]
    if int(blob.sum()) < LESION_AREA[0]:
        return
    # Brighter inside than at the rim (at least 70% of the boost there), with
    # its own blotchy texture.
    depth = np.clip(ndimage.distance_transform_edt(blob) / (2.5 * px), 0.0, 1.0)
    texture = np.clip(1.0 + 0.2 * _smooth_noise(rng, shape, 1.3 * px), 0.8, 1.3)
    boost[win][blob] = (focus.boost * (0.7 + 0.3 * depth) * texture)[blob]
    mask[win][blob] = 255


_SPECK_SHAPES = {
    1: [[(0, 0)]],
    2: [[(0, 0), (0, 1)], [(0, 0), (1, 0)]],
    3: [[(0, 0), (0, 1), (1, 0)], [(0, 0), (0, 1), (0, 2)], [(0, 0), (1, 0), (1, 1)]],
    4: [[(0, 0), (0, 1), (1, 0), (1, 1)], [(0, 0), (1, 0), (2, 0), (2, 1)]],
}


def _add_speck(boost: np.ndarray, mask: np.ndarray, n: int, allowed: np.ndarray,
               rng: np.random.Generator) -> None:
    """Draw one isolated `n`-pixel lesion speck (1 ≤ n ≤ 4) in place."""
    shapes = _SPECK_SHAPES[n]
    offsets = shapes[int(rng.integers(len(shapes)))]
    free = allowed & ~ndimage.binary_dilation(mask > 0, iterations=4)
    free = ndimage.binary_erosion(free, iterations=2)
    spots = np.flatnonzero(free)
    if spots.size == 0:
        return
    r, c = divmod(int(spots[rng.integers(spots.size)]), mask.shape[1])
    value = float(rng.uniform(*SPECK_BOOST))
    for dr, dc in offsets:
        mask[r + dr, c + dc] = 255
        boost[r + dr, c + dc] = value


# ---------------------------------------------------------------------------
# Public API.


def _validate(seed: int, cases: int, slices: int, size: int) -> None:
    for name, value, low, high in (("seed", seed, 0, 2**63 - 1), ("cases", cases, 1, 9999),
                                   ("slices", slices, 1, 9999), ("size", size, MIN_SIZE, MAX_SIZE)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise ValueError(f"`{name}` must be an integer, got {value!r}")
        if not low <= value <= high:
            raise ValueError(f"`{name}` must be between {low} and {high}, got {value}")


def demo_names(*, cases: int = DEFAULT_CASES, slices: int = DEFAULT_SLICES) -> list[str]:
    """File names of the demo set, sorted: ``slice_0001_0000.png``, …"""
    return [slice_name(f"{k + 1:04d}", z) for k in range(cases) for z in range(slices)]


def demo_slices(*, seed: int = DEFAULT_SEED, cases: int = DEFAULT_CASES,
                slices: int = DEFAULT_SLICES, size: int = DEFAULT_SIZE,
                ) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """Generate the demo slices in memory, in file-name order.

    Parameters
    ----------
    seed : int
        Non-negative; the same arguments always give the same pixels.
    cases : int
        Number of cases (1–9999), case ids ``0001``, ``0002``, …
    slices : int
        Axial slices per case (1–9999), bottom (``0000``) to top.
    size : int
        Slice width and height in pixels (48–1024).

    Yields
    ------
    name : str
        ``slice_{case_id}_{slice:04d}.png``.
    image : (size, size) ndarray of uint8
        DWI-like slice, indexed (row, col); background exactly 0.
    mask : (size, size) ndarray of uint8
        Lesion mask, 0 or 255.

    Raises
    ------
    ValueError
        If an argument is not an integer in its range (the message names it).
    """
    _validate(seed, cases, slices, size)
    for case_index in range(cases):
        plan = _plan_case(int(seed), case_index, slices=slices, size=size)
        for z in range(slices):
            image, mask = _render_slice(plan, z, int(seed))
            yield slice_name(plan.case_id, z), image, mask


SCANNER_NOISE_SIGMA = 8.0  # background noise of scanner_slices, grey levels
SCANNER_EDGE_AREA = 20.0   # px of tissue on the first and last slice of a scanner_slices case


def scanner_slices(*, seed: int = DEFAULT_SEED, cases: int = 12, slices: int = 67,
                   sizes: tuple[int, ...] = (112, 160), noise_sigma: float = SCANNER_NOISE_SIGMA,
                   ) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """Demo-like slices as a scanner exports them, not skull-stripped to a black background.

    Case ``k`` is case ``k`` of :func:`demo_slices` (same seed) at size
    ``sizes[k % len(sizes)]``, but with Rician background noise (the magnitude
    of complex Gaussian noise of standard deviation `noise_sigma` on a zero
    signal: Rayleigh-distributed, mode `noise_sigma`) wherever the demo has
    black background, and with only a speck of tissue (~20 px) on its first and
    last slice, as on the edge slices of real volumes. The set a test or a
    benchmark uses to check that lesions land in tissue, never in noise.

    Parameters
    ----------
    seed, cases, slices : int
        As for :func:`demo_slices` (defaults: 12 cases × 67 slices, 804 slices).
    sizes : tuple of int
        Slice sizes in px (each 48–1024), taken in turn by the cases.
    noise_sigma : float
        Background noise level, grey levels (>= 0).

    Yields
    ------
    name, image, mask
        As :func:`demo_slices`; the image's background is noise, not 0.
    """
    for size in sizes:
        _validate(seed, cases, slices, size)
    if not (math.isfinite(noise_sigma) and noise_sigma >= 0):
        raise ValueError(f"`noise_sigma` must be a number >= 0, got {noise_sigma!r}")
    for case_index in range(cases):
        size = sizes[case_index % len(sizes)]
        plan = _plan_case(int(seed), case_index, slices=slices, size=size)
        edge = math.sqrt(SCANNER_EDGE_AREA / (math.pi * 0.40 * 0.32)) / size
        plan = dataclasses.replace(plan, edge_scale=edge)
        for z in range(slices):
            image, mask = _render_slice(plan, z, int(seed))
            rng = np.random.default_rng(_case_seed(seed, case_index, 2, z))
            noise = np.hypot(*rng.normal(0.0, noise_sigma, (2, size, size)))
            background = image == 0  # the demo's tissue is never 0
            image[background] = np.clip(np.rint(noise[background]), 0, 255).astype(np.uint8)
            yield slice_name(plan.case_id, z), image, mask


def make_demo(out_dir: str | os.PathLike, *, seed: int = DEFAULT_SEED, cases: int = DEFAULT_CASES,
              slices: int = DEFAULT_SLICES, size: int = DEFAULT_SIZE) -> tuple[Path, Path]:
    """Write the demo training set to ``out_dir/input`` and ``out_dir/mask``.

    Each image/mask pair is written atomically (mask first). Files that already
    hold exactly these pixels are left alone, so a re-run is a no-op and an
    interrupted run can be completed; a file holding anything else is never
    overwritten. All existing files are checked before anything is written.

    Parameters
    ----------
    out_dir : path
        Folder to create (or reuse); it must not be a file.
    seed, cases, slices, size : int
        See :func:`demo_slices`. Defaults: 8 cases × 12 slices of 128×128 px.

    Returns
    -------
    input_dir, mask_dir : Path
        ``out_dir/input`` and ``out_dir/mask``, absolute.

    Raises
    ------
    OutputError
        If `out_dir` (or a folder in it) is a file or cannot be created, if a
        file of a demo slice exists with different pixels (the message names
        it), or if writing fails.
    ValueError
        If an argument is out of range.

    Examples
    --------
    >>> input_dir, mask_dir = make_demo(tmp_path / "demo")  # doctest: +SKIP
    >>> len(list(input_dir.glob("*.png")))                   # doctest: +SKIP
    96
    """
    _validate(seed, cases, slices, size)
    return write_slices(out_dir, demo_slices(seed=seed, cases=cases, slices=slices, size=size))


def write_slices(out_dir: str | os.PathLike,
                 slices: Iterator[tuple[str, np.ndarray, np.ndarray]]) -> tuple[Path, Path]:
    """Write ``(name, image, mask)`` triples to ``out_dir/input`` and ``out_dir/mask``.

    As :func:`make_demo` writes (its Returns and Raises); for
    :func:`demo_slices` and :func:`scanner_slices`.
    """
    out_dir = resolve_path(out_dir)
    input_dir, mask_dir = prepare_output_dirs(out_dir / "input", out_dir / "mask")

    todo: list[tuple[str, np.ndarray, np.ndarray]] = []
    for name, image, mask in slices:
        status = _existing(input_dir / name, image, mask_dir / name, mask)
        if status != "same":
            todo.append((name, image, mask))
    for name, image, mask in todo:
        try:
            write_pair(input_dir / name, mask_dir / name, encode_png(image), encode_png(mask))
        except OSError as exc:
            raise OutputError(f"cannot write demo slice {input_dir / name} "
                              f"({exc.strerror or exc})") from None
    return input_dir, mask_dir


def _existing(image_path: Path, image: np.ndarray, mask_path: Path, mask: np.ndarray) -> str:
    """``"same"`` if both files hold these pixels, ``"missing"`` if either is absent.

    Raises :class:`OutputError` naming the first file that holds other pixels.
    """
    have = []
    for path, pixels in ((image_path, image), (mask_path, mask)):
        if path.is_dir():
            raise OutputError(f"{path} is a folder where a demo slice belongs")
        exists = path.exists()
        if exists and not same_pixels(path, pixels):
            raise OutputError(f"{path} already exists with different content; refusing to "
                              "overwrite it (move it away or choose another folder)")
        have.append(exists)
    return "same" if all(have) else "missing"


def demo_dir(data_dir: str | os.PathLike, *, seed: int = DEFAULT_SEED) -> Path:
    """Folder of the demo set inside `data_dir`: ``demo`` (seed 0) or ``demo-seed{seed}``."""
    return Path(data_dir) / ("demo" if seed == DEFAULT_SEED else f"demo-seed{seed}")


def ensure_demo(data_dir: str | os.PathLike, *, seed: int = DEFAULT_SEED) -> tuple[Path, Path]:
    """Return the default demo set's folders under `data_dir`, writing it if needed.

    Cheap when the set is already complete (it only lists the folders); otherwise
    it calls :func:`make_demo`, which writes the missing slices and refuses to
    overwrite different files.

    Parameters
    ----------
    data_dir : path
        The app's data folder; the set goes to :func:`demo_dir` inside it.
    seed : int
        Non-negative.

    Returns
    -------
    input_dir, mask_dir : Path
        ``…/input`` and ``…/mask`` of the demo set, absolute.

    Raises
    ------
    OutputError
        As for :func:`make_demo`.
    """
    _validate(seed, DEFAULT_CASES, DEFAULT_SLICES, DEFAULT_SIZE)
    root = resolve_path(demo_dir(data_dir, seed=seed))
    input_dir, mask_dir = root / "input", root / "mask"
    expected = set(demo_names())
    if input_dir.is_dir() and mask_dir.is_dir():
        try:
            complete = (expected <= set(os.listdir(input_dir))
                        and expected <= set(os.listdir(mask_dir)))
        except OSError:
            complete = False
        if complete:
            return input_dir, mask_dir
    return make_demo(root, seed=seed)
