"""scripts/evidence_report.py: the NIfTI it writes import back as the slices it was made from."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

from poissonblend.cli import main
from poissonblend.demo import scanner_slices

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from evidence_report import write_isles_layout  # noqa: E402


def test_the_isles_layout_imports_back_slice_for_slice(tmp_path, capsys):
    assert write_isles_layout(tmp_path / "nifti", cases=2, slices=6, size=64) == 12
    assert main(["import-isles", "--root", str(tmp_path / "nifti"), "--out", str(tmp_path / "set")]) == 0
    made = {name: (image, mask) for name, image, mask in scanner_slices(cases=2, slices=6, sizes=(64,))}
    assert sorted(p.name for p in (tmp_path / "set" / "input").iterdir()) == sorted(made)
    assert sum(mask.any() for _, mask in made.values()) >= 4  # lesions to check orientation by
    for name, (image, mask) in made.items():
        imported = cv2.imread(str(tmp_path / "set" / "input" / name), cv2.IMREAD_GRAYSCALE)
        imported_mask = cv2.imread(str(tmp_path / "set" / "mask" / name), cv2.IMREAD_GRAYSCALE)
        np.testing.assert_array_equal(imported_mask > 0, mask > 0)  # same orientation, every pixel
        if image.std() > 0:  # the import windows intensities: the same picture, other grey levels
            assert np.corrcoef(imported.ravel(), image.ravel())[0, 1] > 0.99, name
