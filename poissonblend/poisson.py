"""Poisson image editing on one greyscale channel, over one rectangular ROI.

This is the maths behind OpenCV's ``seamlessClone`` (Pérez et al., 2003), written
for a single float channel with the target as Dirichlet boundary on the ROI's
outer ring, solved exactly with a type-I discrete sine transform. There is no
mask erosion and no BGR round trip, so the blend region reaches the solver whole.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

import numpy as np

Mode = Literal["normal", "mixed"]
MODES: tuple[str, ...] = ("normal", "mixed")


@lru_cache(maxsize=256)
def _laplacian_eigenvalues(n_rows: int, n_cols: int) -> np.ndarray:
    """Eigenvalues of the 5-point Laplacian with zero Dirichlet boundary, DST-I basis (float32)."""
    er = 2.0 * np.cos(np.pi * np.arange(1, n_rows + 1) / (n_rows + 1)) - 2.0
    ec = 2.0 * np.cos(np.pi * np.arange(1, n_cols + 1) / (n_cols + 1)) - 2.0
    return (er[:, None] + ec[None, :]).astype(np.float32)


MATMUL_MAX = 64
"""Sides up to this use cached dense DST matrices (faster than an FFT for small ROIs)."""


@lru_cache(maxsize=256)
def _dst_matrix(n: int) -> np.ndarray:
    """Orthonormal DST-I matrix of size n (symmetric, its own inverse)."""
    k = np.arange(1, n + 1)
    return (np.sqrt(2.0 / (n + 1)) * np.sin(np.pi * np.outer(k, k) / (n + 1))).astype(np.float32)


def _dst1(a: np.ndarray, axis: int) -> np.ndarray:
    """Orthonormal DST-I of a 2-D float64 array along `axis`, by a real FFT of its odd extension.

    (numpy's FFT: SciPy's would import in 0.1 s, in every worker process.)
    """
    a = a if axis == 1 else a.T
    rows, n = a.shape
    odd = np.zeros((rows, 2 * (n + 1)))
    odd[:, 1:n + 1] = a
    odd[:, n + 2:] = -a[:, ::-1]
    out = np.fft.rfft(odd, axis=1)[:, 1:n + 1].imag * -np.sqrt(0.5 / (n + 1))
    return out if axis == 1 else out.T


def _solve_dirichlet(rhs: np.ndarray) -> np.ndarray:
    """Solve the 5-point ``Δu = rhs`` with u = 0 outside `rhs`'s (M, N) grid.

    In float32, as OpenCV's solver: its error (~1e-4 grey levels) is far below
    the rounding to whole grey levels that follows.
    """
    n, m = rhs.shape
    if max(n, m) <= MATMUL_MAX:
        sn, sm = _dst_matrix(n), _dst_matrix(m)
        return sn @ ((sn @ rhs @ sm) / _laplacian_eigenvalues(n, m)) @ sm
    coeffs = _dst1(_dst1(rhs.astype(np.float64), 0), 1) / _laplacian_eigenvalues(n, m)
    return _dst1(_dst1(coeffs, 0), 1).astype(np.float32)


def _guidance_differences(source: np.ndarray, target: np.ndarray, region: np.ndarray,
                          mode: str) -> tuple[np.ndarray, np.ndarray]:
    """Guidance minus target gradient on horizontal and vertical edges (forward differences).

    An edge carries the source's gradient if either of its pixels is in `region`
    (``normal``), or the stronger of source and target gradient (``mixed``);
    elsewhere the guidance is the target's own gradient, so the difference is 0.
    Returns ``(wx, wy)`` of shapes ``(M, N - 1)`` and ``(M - 1, N)``.
    """
    on_x = region[:, 1:] | region[:, :-1]
    on_y = region[1:, :] | region[:-1, :]
    if mode == "normal":
        d = source - target
        return (d[:, 1:] - d[:, :-1]) * on_x, (d[1:, :] - d[:-1, :]) * on_y
    sx, sy = source[:, 1:] - source[:, :-1], source[1:, :] - source[:-1, :]
    tx, ty = target[:, 1:] - target[:, :-1], target[1:, :] - target[:-1, :]
    return ((sx - tx) * (on_x & (np.abs(sx) > np.abs(tx))),
            (sy - ty) * (on_y & (np.abs(sy) > np.abs(ty))))


def _check(source: np.ndarray, target: np.ndarray, region: np.ndarray, mode: str) -> None:
    if source.shape != target.shape or region.shape != target.shape:
        raise ValueError(
            f"`source` {source.shape}, `target` {target.shape} and `region` "
            f"{region.shape} must have the same shape"
        )
    if min(target.shape) < 3:
        raise ValueError(f"ROI shape {target.shape} must be at least 3x3")
    if mode not in MODES:
        raise ValueError(f"`mode` {mode!r} must be one of {MODES}")


def poisson_correction(source: np.ndarray, target: np.ndarray, region: np.ndarray,
                       *, mode: Mode = "normal") -> np.ndarray:
    """What the Poisson solve adds to the target on the ROI interior.

    Same problem as :func:`poisson_solve`; returns ``f - target`` on the
    ``(M - 2, N - 2)`` interior (the outer ring's correction is 0), in float32.
    """
    _check(source, target, region, mode)
    wx, wy = _guidance_differences(source, target, region, mode)
    # Divergence of the difference field at interior pixels (backward differences).
    rhs = (wx[1:-1, 1:] - wx[1:-1, :-1]) + (wy[1:, 1:-1] - wy[:-1, 1:-1])
    return _solve_dirichlet(rhs)


def poisson_solve(source: np.ndarray, target: np.ndarray, region: np.ndarray,
                  *, mode: Mode = "normal") -> np.ndarray:
    """Blend `source` into `target` over `region` by Poisson image editing.

    Solves ``Δf = div v`` on the ROI interior with ``f = target`` on the ROI's
    one-pixel outer ring, where the guidance field ``v`` is the source gradient
    on edges touching `region` (``normal``) or the stronger of source and target
    gradients there (``mixed``), and the target gradient elsewhere.

    Parameters
    ----------
    source, target : (M, N) ndarray of float32
        Aligned ROI crops, grey levels. Not modified.
    region : (M, N) ndarray of bool
        The blend region Ω. It should not touch the outer ring (the ring is
        held at the target's values).
    mode : {"normal", "mixed"}
        Guidance field, as OpenCV's ``NORMAL_CLONE`` / ``MIXED_CLONE``.

    Returns
    -------
    (M, N) ndarray of float32
        The blended ROI, unrounded; equal to `target` on the outer ring.

    Raises
    ------
    ValueError
        If shapes differ, the ROI is smaller than 3×3, or `mode` is unknown.
    """
    out = target.astype(np.float32)  # always a copy
    out[1:-1, 1:-1] += poisson_correction(source, target, region, mode=mode)
    return out
