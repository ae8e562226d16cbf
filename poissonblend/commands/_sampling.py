"""Command-line options shared by the commands that draw recipes (generate, queue)."""

from __future__ import annotations

import argparse

from ..dataset import MIN_TARGET_TISSUE
from ..holdout import read_holdout
from ..poisson import MODES
from ..recipe import MAX_LESION_FRACTION, MAX_LEVEL_SHIFT, METHODS, SamplingOptions
from ._args import finite_float, int_in


def _level_shift(text: str) -> float | None:
    """``--max-level-shift`` value: a number, or ``none`` (no limit)."""
    if text.strip().lower() == "none":
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither a number nor 'none'") from None


def add_sampling_arguments(p: argparse.ArgumentParser) -> None:
    """Add --mode, --scale, --rotation, --flip, --margin, --min-area, --allow-overlap,
    --method, --holdout and the plausibility limits (--max-level-shift,
    --max-lesion-fraction, --min-target-tissue)."""
    p.add_argument("--mode", choices=MODES, default="normal",
                   help="guidance: source gradients (normal) or the stronger of source/target (mixed)")
    p.add_argument("--scale", type=finite_float, nargs=2, default=(1.0, 1.0), metavar=("LOW", "HIGH"),
                   help="lesion scale drawn uniformly from [LOW, HIGH] (default 1 1)")
    p.add_argument("--rotation", type=finite_float, nargs=2, default=(0.0, 0.0), metavar=("LOW", "HIGH"),
                   help="lesion rotation in degrees drawn from [LOW, HIGH] (default 0 0)")
    p.add_argument("--flip", action="store_true", help="flip lesions left-right / top-bottom at random")
    p.add_argument("--margin", type=int_in(0), default=6,
                   help="px the Poisson region extends around the lesion (4-32, default 6)")
    p.add_argument("--min-area", type=int_in(1), default=1, metavar="PX",
                   help="draw only source lesions of at least PX pixels (default 1: all)")
    p.add_argument("--allow-overlap", action="store_true",
                   help="allow placing over the target's own lesions")
    p.add_argument("--method", choices=METHODS, default=METHODS[0],
                   help="blend by poissonblend's own Poisson solve (default), or as the seed "
                        "script did with OpenCV's seamlessClone (opencv; recipes it fails on "
                        "are drawn again and counted)")
    p.add_argument("--holdout", metavar="FILE",
                   help="held-out case ids, one per line (blank lines and # comments ignored): "
                        "never used as a source or a target")
    p.add_argument("--max-level-shift", type=_level_shift, default=MAX_LEVEL_SHIFT, metavar="X|none",
                   help="largest |target level - source level|, levels 0 (first slice of a case) "
                        f"to 1 (last); 'none' for any level (default {MAX_LEVEL_SHIFT})")
    p.add_argument("--max-lesion-fraction", type=float, default=MAX_LESION_FRACTION, metavar="F",
                   help="largest placed lesion as a fraction of the target's tissue area "
                        f"(default {MAX_LESION_FRACTION})")
    p.add_argument("--min-target-tissue", type=float, default=MIN_TARGET_TISSUE, metavar="F",
                   help="least tissue area of a target as a fraction of the largest in its case "
                        f"(default {MIN_TARGET_TISSUE}: near-empty edge slices are never targets)")


def sampling_options(args: argparse.Namespace) -> SamplingOptions:
    """The :class:`SamplingOptions` the parsed arguments ask for (reads the --holdout file)."""
    return SamplingOptions(mode=args.mode, scale_range=tuple(args.scale),
                           rotation_range=tuple(args.rotation), flip=args.flip,
                           margin=args.margin, min_area=args.min_area,
                           avoid_lesions=not args.allow_overlap, method=args.method,
                           holdout=read_holdout(args.holdout) if args.holdout else frozenset(),
                           max_level_shift=args.max_level_shift,
                           max_lesion_fraction=args.max_lesion_fraction,
                           min_target_tissue=args.min_target_tissue)
