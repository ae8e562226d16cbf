"""Generate random PoissonBlend samples straight into training-set folders.

Each sample becomes a single-slice case slice_<case_id>_0000.png in both output
folders; case ids are 'pb' + a hash of the sample's recipe (no underscore, never
an input case id), so re-running with the same seed writes the same names and
skips identical files. A manifest CSV records every sample's recipe, seed and
quality. Existing different files are never overwritten.
"""

from __future__ import annotations

import argparse

from ..dataset import open_dataset
from ..generate import generate
from ..machine import usable_cpus
from ._args import int_in
from ._progress import progress_bar
from ..holdout import warn_unknown_cases
from ._sampling import add_sampling_arguments, sampling_options


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--input-dir", required=True, help="folder of input slices (8-bit grey PNG)")
    p.add_argument("--mask-dir", required=True, help="folder of masks with the same file names")
    p.add_argument("--out-input-dir", required=True, help="output folder for blended images")
    p.add_argument("--out-mask-dir", required=True, help="output folder for their masks (0/255)")
    p.add_argument("--count", type=int_in(0), required=True, help="number of samples to draw (0: nothing)")
    p.add_argument("--seed", type=int_in(0), default=0, help="batch seed, >= 0 (default 0)")
    add_sampling_arguments(p)
    p.add_argument("--workers", type=int_in(1), default=None,
                   help=f"worker processes (default: the CPUs this process may use, {usable_cpus()} "
                        "here); the output is the same for any number")
    p.add_argument("--manifest", help="manifest CSV path (default OUT_INPUT_DIR/../poissonblend_manifest.csv)")


def run(args: argparse.Namespace) -> int:
    options = sampling_options(args)
    dataset = open_dataset(args.input_dir, args.mask_dir, workers=args.workers)
    warn_unknown_cases(dataset, options.holdout)
    with progress_bar("generate", "sample") as progress:
        summary = generate(dataset, args.out_input_dir, args.out_mask_dir, count=args.count,
                           seed=args.seed, options=options, workers=args.workers,
                           manifest=args.manifest,
                           progress=progress)
    print(summary)
    return 0
