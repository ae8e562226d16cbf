"""Write the demo training set: synthetic axial DWI-like slices with stroke lesions.

Creates OUT/input and OUT/mask in the training-set format (8-bit grey PNGs named
slice_<case_id>_<NNNN>.png, masks 0/255): by default 8 cases (ids 0001-0008) of
12 slices of 128x128 px. Skull-stripped brains (background exactly 0) with dark
CSF and ventricles, grey matter slightly brighter than white matter and Rician
noise; most slices hold 1-3 irregular hyperintense lesions of 10-400 px (sizes
scale with --size), some hold none, a few hold 1-4 px specks, and some cases end
in an all-black slice.

The same arguments always write byte-identical files. Files that already hold
the same pixels are skipped (a re-run is a no-op); a file with different
content is never overwritten (error, exit 2).

example:
  python -m poissonblend demo --out demo_data
  python -m poissonblend generate --input-dir demo_data/input --mask-dir demo_data/mask ...
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..demo import (DEFAULT_CASES, DEFAULT_SEED, DEFAULT_SIZE, DEFAULT_SLICES, MAX_SIZE, MIN_SIZE,
                    demo_names, make_demo)
from ..errors import OutputError
from ..io import read_gray_png
from ..lesions import label_lesions
from ._args import int_in


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, type=Path, metavar="DIR",
                        help="folder to write; the set goes to DIR/input and DIR/mask "
                             "(created if missing; must not be a file)")
    parser.add_argument("--seed", type=int_in(0, 2**63 - 1), default=DEFAULT_SEED, metavar="S",
                        help=f"random seed, >= 0 (default {DEFAULT_SEED})")
    parser.add_argument("--cases", type=int_in(1, 9999), default=DEFAULT_CASES, metavar="N",
                        help=f"number of cases, ids 0001, 0002, ... (default {DEFAULT_CASES})")
    parser.add_argument("--slices", type=int_in(1, 9999), default=DEFAULT_SLICES, metavar="N",
                        help=f"axial slices per case, bottom to top (default {DEFAULT_SLICES})")
    parser.add_argument("--size", type=int_in(MIN_SIZE, MAX_SIZE), default=DEFAULT_SIZE,
                        metavar="PX", help=f"slice width and height in pixels, {MIN_SIZE}-{MAX_SIZE} "
                                           f"(default {DEFAULT_SIZE})")


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise OutputError(f"--out {out} is a file, not a folder")
    input_dir, mask_dir = make_demo(out, seed=args.seed, cases=args.cases,
                                    slices=args.slices, size=args.size)
    names = demo_names(cases=args.cases, slices=args.slices)
    counts = [len(label_lesions(read_gray_png(mask_dir / name))[1]) for name in names]
    print(f"demo set: {input_dir} and {mask_dir}: {len(names)} slices "
          f"({args.cases} cases x {args.slices}), {sum(1 for n in counts if n)} with lesions, "
          f"{sum(counts)} lesions")
    return 0
