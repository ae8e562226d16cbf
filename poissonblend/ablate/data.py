"""Data of the ablation: case-level folds, per-image normalisation, arrays for training.

No Keras here: arrays are NumPy, images ``(n, rows, cols, 1)`` float32.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..dataset import Dataset
from ..errors import AblationError
from ..io import read_gray_png


@dataclass(frozen=True)
class Fold:
    """One fold of a case-level K-fold split.

    Attributes
    ----------
    train, test : tuple of str
        Case ids, sorted; disjoint.
    """

    train: tuple[str, ...]
    test: tuple[str, ...]

    def to_dict(self) -> dict:
        return {"train": list(self.train), "test": list(self.test)}


def case_folds(case_ids: Iterable[str], *, folds: int, rng: np.random.Generator | int) -> tuple[Fold, ...]:
    """Split cases into `folds` folds: each case is a test case of exactly one fold.

    The cases are shuffled by `rng`, then cut into `folds` parts whose sizes
    differ by at most one; fold k tests part k and trains on the others.

    Raises
    ------
    AblationError
        If `folds` < 2 or there are fewer cases than folds.
    """
    cases = sorted(set(case_ids))
    if not (isinstance(folds, int) and folds >= 2):
        raise AblationError(f"folds {folds!r} must be an integer >= 2")
    if len(cases) < folds:
        raise AblationError(f"{len(cases)} case(s) cannot make {folds} folds: each fold needs "
                            "a test case (use fewer folds)")
    order = np.random.default_rng(rng).permutation(len(cases))
    parts = [sorted(cases[k] for k in part) for part in np.array_split(order, folds)]
    return tuple(Fold(tuple(sorted(c for p in parts[:k] + parts[k + 1:] for c in p)), tuple(parts[k]))
                 for k in range(folds))


def normalise(image: np.ndarray) -> np.ndarray:
    """Per image min–max to [−1, 1], as the user's loader does.

    Parameters
    ----------
    image : (M, N) ndarray
        Any real dtype.

    Returns
    -------
    (M, N) ndarray of float32
        ``2 (x − min) / (max − min) − 1``; a constant image becomes all −1.
    """
    x = np.asarray(image, np.float32)
    lo, hi = float(x.min()), float(x.max())
    if hi == lo:
        return np.full(x.shape, -1.0, np.float32)
    return (2.0 * (x - lo) / (hi - lo) - 1.0).astype(np.float32)


def padded_shape(shapes: Iterable[tuple[int, int]], multiple: int) -> tuple[int, int]:
    """The smallest (rows, cols) holding every shape, rounded up to a multiple of `multiple` px."""
    rows, cols = np.max(np.asarray(list(shapes), np.int64).reshape(-1, 2), axis=0)
    return (int(-(-rows // multiple) * multiple), int(-(-cols // multiple) * multiple))


def to_arrays(pairs: Iterable[tuple[np.ndarray, np.ndarray]], shape_rc: tuple[int, int]
              ) -> tuple[np.ndarray, np.ndarray]:
    """Stack (image, mask) pairs as network input and target, padded at the bottom and right.

    Parameters
    ----------
    pairs : iterable of ((M, N) uint8, (M, N) array)
        Image and mask; the mask is lesion where > 0.
    shape_rc : (int, int)
        Padded (rows, cols); at least each pair's shape.

    Returns
    -------
    x : (n, rows, cols, 1) ndarray of float32
        :func:`normalise`\\ d images, padding −1.
    y : (n, rows, cols, 1) ndarray of float32
        1 where the mask is > 0, else 0.
    """
    xs, ys = [], []
    for image, mask in pairs:
        x = np.full(shape_rc, -1.0, np.float32)
        y = np.zeros(shape_rc, np.float32)
        m, n = image.shape
        x[:m, :n] = normalise(image)
        y[:m, :n] = np.asarray(mask) > 0
        xs.append(x)
        ys.append(y)
    if not xs:
        empty = np.zeros((0, *shape_rc, 1), np.float32)
        return empty, empty.copy()
    return np.stack(xs)[..., None], np.stack(ys)[..., None]


def case_slices(dataset: Dataset, cases: Iterable[str]) -> dict[str, list[str]]:
    """Slice names of each case, in slice order."""
    wanted = set(cases)
    out: dict[str, list[str]] = {c: [] for c in sorted(wanted)}
    for s in dataset.slices:  # sorted by name: slice order within a case
        if s.case_id in wanted:
            out[s.case_id].append(s.name)
    return out


def training_names(dataset: Dataset, cases: Iterable[str], *, empty_fraction: float,
                   rng: np.random.Generator | int) -> list[str]:
    """Training slices of `cases`: every slice with a lesion plus a share of the others.

    Parameters
    ----------
    empty_fraction : float
        Fraction (0–1) of the lesion-free slices kept, drawn by `rng` (1: all).
    """
    if not 0 <= empty_fraction <= 1:
        raise AblationError(f"empty fraction {empty_fraction!r} must be between 0 and 1")
    names = [n for names in case_slices(dataset, cases).values() for n in names]
    lesion = [n for n in names if len(dataset.info(n).lesions)]
    empty = [n for n in names if not len(dataset.info(n).lesions)]
    keep = np.random.default_rng(rng).permutation(len(empty))[:round(empty_fraction * len(empty))]
    return sorted(lesion + [empty[k] for k in keep])


def read_samples(input_dir: Path, mask_dir: Path,
                 names: Sequence[str]) -> list[tuple[np.ndarray, np.ndarray]]:
    """(image, mask) pairs of written samples `names` (file names in both folders)."""
    return [(read_gray_png(Path(input_dir) / n), read_gray_png(Path(mask_dir) / n)) for n in names]


def batch_order(n: int, *, steps: int, batch_size: int, rng: np.random.Generator | int) -> list[np.ndarray]:
    """Indices of `steps` batches into a pool of `n` slices: shuffled passes, one after another.

    Each pass is a fresh permutation drawn by `rng`; a batch may straddle two passes.
    """
    if n < 1:
        raise AblationError("no training slices: every training case is empty")
    rng = np.random.default_rng(rng)
    need = steps * batch_size
    order = np.concatenate([rng.permutation(n) for _ in range(-(-need // n))])[:need]
    return [order[k * batch_size:(k + 1) * batch_size] for k in range(steps)]
