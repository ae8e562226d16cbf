"""scripts/compare_methods.py, the README's side-by-side picture and contrast table, as a real process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parents[1]


def test_compare_methods_prints_both_distributions_and_writes_the_picture(tmp_path):
    picture = tmp_path / "methods.png"
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "compare_methods.py"), "--count",
                          "120", "--picture", str(picture)], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr
    rows = [line for line in run.stdout.splitlines() if line.startswith("| poissonblend |")
            or line.startswith("| opencv |")]
    assert len(rows) == 2
    ours, theirs = (float(row.split("|")[3].split("·")[1]) for row in rows)  # the medians
    assert ours > 0.8 and theirs < 0.5
    image = cv2.imread(str(picture), cv2.IMREAD_COLOR)
    assert image is not None and image.shape[0] > image.shape[1] > 400
