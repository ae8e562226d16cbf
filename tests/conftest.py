"""Shared fixtures: small synthetic training sets written as real PNGs on disk."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

TEST_SEEDS = (0, 1, 42, 111, 9999)


def brain_slice(rng: np.random.Generator, size: int = 112) -> np.ndarray:
    """A float image of an elliptic 'brain' (≈90 grey, noise σ=4) on black."""
    yy, xx = np.mgrid[:size, :size]
    c = size / 2
    brain = ((yy - c) / (0.4 * size)) ** 2 + ((xx - c) / (0.34 * size)) ** 2 < 1
    return np.where(brain, 90 + rng.normal(0, 4, (size, size)), 0.0)


def write_slice(input_dir: Path, mask_dir: Path, name: str, image: np.ndarray,
                mask: np.ndarray) -> None:
    input_dir.mkdir(parents=True, exist_ok=True)
    mask_dir.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(input_dir / name), np.clip(np.rint(image), 0, 255).astype(np.uint8))
    cv2.imwrite(str(mask_dir / name), mask.astype(np.uint8))


def _write_set(root: Path, *, cases: int, slices: int, size: int, seed: int,
               add_lesions: Callable) -> tuple[Path, Path]:
    """Write ``root/input`` and ``root/mask``: brain slices; ``add_lesions(rng, image, mask, z)``."""
    rng = np.random.default_rng(seed)
    input_dir, mask_dir = root / "input", root / "mask"
    for case in range(cases):
        for z in range(slices):
            image = brain_slice(rng, size)
            mask = np.zeros((size, size), np.uint8)
            add_lesions(rng, image, mask, z)
            write_slice(input_dir, mask_dir, f"slice_{case:04d}_{z:04d}.png", image, mask)
    return input_dir, mask_dir


def _disc(size: int, cy: float, cx: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    return (yy - cy) ** 2 + (xx - cx) ** 2 < r * r


def make_training_set(root: Path, *, cases: int = 3, slices: int = 4, size: int = 112,
                      seed: int = 0) -> tuple[Path, Path]:
    """Write ``root/input`` and ``root/mask``: even slices get one round hyperintense lesion."""
    def one_round_lesion(rng, image, mask, z):
        if z % 2 == 0:
            cy, cx = rng.integers(int(0.35 * size), int(0.65 * size), 2)
            lesion = _disc(size, cy, cx, rng.integers(2, 7))
            image[lesion] += 80
            mask[lesion] = 255

    return _write_set(root, cases=cases, slices=slices, size=size, seed=seed,
                      add_lesions=one_round_lesion)


@pytest.fixture
def training_set(tmp_path: Path) -> tuple[Path, Path]:
    """(input_dir, mask_dir) of a 12-slice synthetic set, 6 slices with a lesion."""
    return make_training_set(tmp_path / "set")


@pytest.fixture(autouse=True)
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keep lesion-index caches (and anything else under XDG_CACHE_HOME) in tmp."""
    path = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(path))
    return path / "poissonblend"


def make_faint_set(root: Path, *, cases: int = 2, slices: int = 6, size: int = 112,
                   seed: int = 0) -> tuple[Path, Path]:
    """Like :func:`make_training_set`, but every slice has 3 lesions of 1–30 px, most of them faint.

    A lesion is 2–12 grey levels brighter than the tissue (noise σ=4) three times in four, so
    many of them do not visibly arrive when blended; the others are 40 brighter.
    """
    def faint_lesions(rng, image, mask, z):
        for k in range(3):
            cy, cx = int(0.3 * size) + 20 * k, int(0.3 * size) + int(rng.integers(0, 0.4 * size))
            lesion = _disc(size, cy, cx, np.sqrt(rng.integers(1, 31) / np.pi) + 1e-9)
            lesion[cy, cx] = True
            image[lesion] += rng.uniform(2, 12) if rng.random() < 0.75 else 40
            mask[lesion] = 255

    return _write_set(root, cases=cases, slices=slices, size=size, seed=seed,
                      add_lesions=faint_lesions)


SCANNER_SET = {"seed": 0, "cases": 4, "slices": 12, "sizes": (112, 160)}
"""The realistic test set: :func:`poissonblend.demo.scanner_slices` with these arguments."""


@pytest.fixture(scope="session")
def scanner_set(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(input_dir, mask_dir) of 4 cases × 12 slices (112 and 160 px) with Rician background
    noise and near-empty first and last slices, written once per test session."""
    from poissonblend.demo import scanner_slices, write_slices

    return write_slices(tmp_path_factory.mktemp("scanner"), scanner_slices(**SCANNER_SET))


@pytest.fixture(scope="session")
def scanner_tissue() -> dict[str, np.ndarray]:
    """The true tissue of every slice of :func:`scanner_set`: the same slices without noise, > 0."""
    from poissonblend.demo import scanner_slices

    return {name: image > 0 for name, image, _ in scanner_slices(**SCANNER_SET, noise_sigma=0.0)}
