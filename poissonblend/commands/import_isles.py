"""Import ISLES 2022 NIfTI volumes as a training set of PNG slices.

Writes OUT/input/slice_NNNN_ZZZZ.png and OUT/mask/slice_NNNN_ZZZZ.png (NNNN = the
case number of sub-strokecaseNNNN, ZZZZ = axial slice, 0 = most inferior).

Files are found by name under --root in any layout and letter case:
sub-strokecaseNNNN_…_{dwi,adc,flair,msk}.nii[.gz] (release layout with dwi/ and
anat/ folders, or the flat sample layout); lesion masks (…_msk) are usually in
derivatives/, so pass the folder that holds both.

Orientation (radiological): each volume is reoriented to the closest canonical
RAS orientation (nibabel as_closest_canonical) and cut into axial slices;
in every PNG anterior is UP and the patient's LEFT is on the image's RIGHT
(column 0 = patient's right), as on a radiology viewer.

Geometry: the lesion mask defines the grid. DWI/ADC must be on the mask's grid
(else error); FLAIR is resampled onto it (trilinear). Masks are never resampled:
voxel > 0 becomes 255, aligned pixel for pixel with the image.

Intensities: one window per volume: the 0.5-99.5 percentiles of the brain voxels
(> 0) map to grey 1..255 (clipped); background stays 0.

Re-running is idempotent (identical files are left alone). A file that exists
with different pixels, or a leftover slice of an imported case that this run
would not write, is an error; nothing is ever overwritten.

A case without the chosen modality or without a mask is skipped with a warning
(an error with --strict). Unreadable NIfTI files and image/mask grid mismatches
are errors; all headers are checked before anything is written.
"""

from __future__ import annotations

import argparse

from ..isles import MODALITIES, import_isles
from ..machine import usable_cpus
from ._args import int_in
from ._progress import progress_bar


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--root", required=True, metavar="DIR",
                        help="ISLES 2022 folder holding the sub-strokecaseNNNN cases and "
                             "derivatives/ (searched recursively)")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="output folder; slices go to DIR/input and DIR/mask")
    parser.add_argument("--modality", choices=MODALITIES, default="dwi",
                        help="image written to input/ (default: dwi); flair is resampled "
                             "onto the DWI/mask grid")
    parser.add_argument("--cases", default="all", metavar="LIST",
                        help="comma-separated case numbers, e.g. 0001,0002, or 'all' "
                             "(default: all)")
    parser.add_argument("--skip-empty", action="store_true",
                        help="leave out slices with no brain (and no lesion)")
    parser.add_argument("--strict", action="store_true",
                        help="fail on a case without the chosen modality or mask instead "
                             "of skipping it with a warning")
    parser.add_argument("--workers", type=int_in(1), default=None, metavar="K",
                        help="cases imported in parallel processes (default: the CPUs this "
                             f"process may use, {usable_cpus()} here)")


def run(args: argparse.Namespace) -> int:
    with progress_bar("import-isles", "case") as progress:
        summary = import_isles(
            args.root, args.out, modality=args.modality, cases=args.cases,
            skip_empty=args.skip_empty, strict=args.strict,
            workers=usable_cpus() if args.workers is None else args.workers,
            progress=progress)
    print(summary.summary_line())
    return 0
