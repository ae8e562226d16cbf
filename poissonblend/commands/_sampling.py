"""Command-line options shared by the commands that draw recipes (generate, queue)."""

from __future__ import annotations

import argparse

from ..poisson import MODES
from ..recipe import SamplingOptions
from ._args import finite_float, int_in


def add_sampling_arguments(p: argparse.ArgumentParser) -> None:
    """Add --mode, --scale, --rotation, --flip, --margin, --min-area and --allow-overlap."""
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


def sampling_options(args: argparse.Namespace) -> SamplingOptions:
    """The :class:`SamplingOptions` the parsed arguments ask for."""
    return SamplingOptions(mode=args.mode, scale_range=tuple(args.scale),
                           rotation_range=tuple(args.rotation), flip=args.flip,
                           margin=args.margin, min_area=args.min_area,
                           avoid_lesions=not args.allow_overlap)
