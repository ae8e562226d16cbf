"""An `ablate` report on an imported ISLES-2022-layout set, end to end, as a user runs it.

No ISLES 2022 data can be fetched here, so the volumes are the scanner-like set
(:func:`poissonblend.demo.scanner_slices`: procedural anatomy, Rician background
noise, near-empty first and last slices; by default 8 cases × 40 slices of
112 px, sized for a CPU run of about half an hour) written as ISLES 2022
NIfTI (release layout, ``sub-strokecaseNNNN/ses-0001/dwi/…_dwi.nii.gz`` and
``derivatives/…_msk.nii.gz``, RAS+ 1 mm voxels). Then, each step a command of
the command line:

1. ``import-isles --modality dwi`` into ``OUT/set``;
2. ``queue`` ``--queue`` candidates into ``OUT/review.db`` and ``decide``: accept
   those scoring at least ``--accept-score``, reject the rest (a scripted
   curation standing in for a reviewer, so that the ``accepted`` arm has data);
3. ``ablate`` with every arm into ``OUT/ablate`` (the Evidence page lists it
   when OUT lies in the app's data folder).

Usage::

    python scripts/evidence_report.py OUT [--cases 8] [--slices 40] [--size 112] [--folds 2]
                                         [--epochs 16] [--queue 300] [--accept-score 0.8]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from itertools import groupby
from pathlib import Path

import nibabel as nib
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from poissonblend.demo import scanner_slices  # noqa: E402


def write_isles_layout(root: Path, cases: int, slices: int, size: int) -> int:
    """Write `cases` scanner-like volumes (`slices` axial slices of `size` px) as ISLES 2022
    DWI + mask NIfTI; return the number of slices.

    Slice ``z`` of a case is the axial plane k = z; the PNG's row 0 (anterior) is
    j = max and its column 0 (the patient's right) is i = max, so that
    ``import-isles`` cuts the same slices back out.
    """
    written = 0
    made = scanner_slices(cases=cases, slices=slices, sizes=(size,))
    for case_id, group in groupby(made, key=lambda s: s[0].split("_")[1]):
        images, masks = zip(*[(image, mask) for _, image, mask in group])
        written += len(images)
        sub = f"sub-strokecase{int(case_id):04d}"
        for volume, path, dtype in (
                (images, root / sub / "ses-0001" / "dwi" / f"{sub}_ses-0001_dwi.nii.gz", np.float32),
                (masks, root / "derivatives" / sub / "ses-0001" / f"{sub}_ses-0001_msk.nii.gz", np.uint8)):
            data = np.stack(volume, axis=-1)[::-1, ::-1].transpose(1, 0, 2)  # (row, col, z) -> (i, j, k)
            if dtype is np.uint8:
                data = data > 0
            path.parent.mkdir(parents=True, exist_ok=True)
            nib.save(nib.Nifti1Image(data.astype(dtype), np.eye(4)), path)
    return written


def run(*args: str) -> None:
    print("$ python -m poissonblend " + " ".join(args), flush=True)
    subprocess.run([sys.executable, "-m", "poissonblend", *args], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="new folder for the NIfTI, the set, the database "
                                               "and the ablation")
    parser.add_argument("--cases", type=int, default=8)
    parser.add_argument("--slices", type=int, default=40, help="axial slices per case")
    parser.add_argument("--size", type=int, default=112, help="slice size, px")
    parser.add_argument("--folds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=16)
    parser.add_argument("--queue", type=int, default=300, help="candidates queued for curation")
    parser.add_argument("--accept-score", type=float, default=0.8,
                        help="the scripted curation accepts candidates scoring at least this")
    args = parser.parse_args()
    out = args.out
    if out.exists() and any(out.iterdir()):
        parser.error(f"{out} exists and is not empty")
    start = time.monotonic()
    slices = write_isles_layout(out / "nifti", args.cases, args.slices, args.size)
    print(f"wrote {args.cases} cases ({slices} slices) as ISLES 2022 NIfTI in {out / 'nifti'}")
    run("import-isles", "--root", str(out / "nifti"), "--out", str(out / "set"), "--modality", "dwi")
    data = ("--input-dir", str(out / "set" / "input"), "--mask-dir", str(out / "set" / "mask"))
    db = str(out / "review.db")
    run("queue", "--db", db, *data, "--count", str(args.queue))
    run("decide", "--db", db, "--accept", "--min-quality", str(args.accept_score))
    run("decide", "--db", db, "--reject", "--all-undecided")
    run("ablate", *data, "--out", str(out / "ablate"), "--db", db, "--folds", str(args.folds),
        "--epochs", str(args.epochs))
    print(f"done in {time.monotonic() - start:.0f} s: {out / 'ablate' / 'report.md'}")


if __name__ == "__main__":
    main()
