"""Measure what augmentation does to segmentation Dice on your own slices.

A case-level K-fold ablation: in each fold, every arm trains the same small 2-D
U-Net (Keras 3; JAX backend on CPU unless KERAS_BACKEND names another) from the
same initial weights for the same number of optimiser steps, on the fold's
training cases only -- 'none' on the original slices; 'poissonblend' and
'opencv' plus N samples per training case drawn from the training cases alone
by the sampler of generate, blended by that method; 'accepted' plus the review
database's accepted candidates whose source and target are both training
cases -- and is scored by the volume Dice of each test case. The
report (report.json, report.md, dice.png in --out) gives each arm's mean Dice
with a 95 % bootstrap CI over cases and its paired difference to 'none'.

Ctrl-C stops cleanly; running the same command again resumes, keeping every
finished fold/arm result. The same --seed gives the same report.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..ablate.config import ARMS, AblationConfig, ModelOptions
from ..dataset import open_dataset
from ..holdout import read_holdout, warn_unknown_cases

DEFAULTS = AblationConfig()


def _arms(text: str) -> tuple[str, ...]:
    return tuple(a.strip() for a in text.split(",") if a.strip())


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--input-dir", required=True, help="folder of input slices (8-bit grey PNG)")
    p.add_argument("--mask-dir", required=True, help="folder of masks with the same file names")
    p.add_argument("--out", required=True, help="run folder (new or empty; or an earlier run's, to resume)")
    p.add_argument("--folds", type=int, default=DEFAULTS.folds,
                   help=f"case-level folds (default {DEFAULTS.folds})")
    p.add_argument("--epochs", type=int, default=DEFAULTS.epochs,
                   help="passes over each fold's original training slices; every arm takes the same "
                        f"number of optimiser steps (default {DEFAULTS.epochs})")
    p.add_argument("--arms", type=_arms, default=None,
                   help=f"comma-separated, from {','.join(ARMS)} (default: all; accepted only "
                        "with --db)")
    p.add_argument("--db", help="review database of the 'accepted' arm")
    p.add_argument("--samples-per-case", type=int, default=DEFAULTS.samples_per_case,
                   help=f"augmented samples per training case (default {DEFAULTS.samples_per_case})")
    p.add_argument("--holdout", metavar="FILE",
                   help="held-out case ids, one per line (blank lines and # comments ignored): "
                        "kept out of the ablation entirely (in no fold, never a source or a target)")
    p.add_argument("--seed", type=int, default=DEFAULTS.seed,
                   help=f"seed of folds, weights, data order, samples and bootstrap (default {DEFAULTS.seed})")
    p.add_argument("--batch-size", type=int, default=DEFAULTS.batch_size,
                   help=f"slices per optimiser step (default {DEFAULTS.batch_size})")
    p.add_argument("--empty-fraction", type=float, default=DEFAULTS.empty_fraction,
                   help="share of the lesion-free training slices kept; every lesion slice is "
                        f"(default {DEFAULTS.empty_fraction})")
    p.add_argument("--base-filters", type=int, default=DEFAULTS.model.base_filters,
                   help=f"U-Net filters of the first level (default {DEFAULTS.model.base_filters})")
    p.add_argument("--levels", type=int, default=DEFAULTS.model.levels,
                   help=f"U-Net poolings (default {DEFAULTS.model.levels})")
    p.add_argument("--learning-rate", type=float, default=DEFAULTS.model.learning_rate,
                   help=f"Adam step size (default {DEFAULTS.model.learning_rate})")


class _Bars:
    """One tqdm bar (with ETA) per fold and arm on a terminal; a line per finished arm otherwise."""

    def __init__(self):
        self.label, self.bar = None, None
        self.on_terminal = sys.stderr.isatty()

    def __call__(self, label: str, done: int, total: int) -> None:
        if label != self.label:
            self.close()
            self.label = label
            if self.on_terminal:
                from tqdm import tqdm

                self.bar = tqdm(total=total, desc=label, unit="step")
        if self.bar is not None:
            self.bar.update(done - self.bar.n)
        elif done == total:
            print(f"{label}: {total} steps trained", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def run(args: argparse.Namespace) -> int:
    arms = args.arms if args.arms is not None else tuple(a for a in ARMS if a != "accepted" or args.db)
    config = AblationConfig(
        arms=arms, folds=args.folds, epochs=args.epochs, batch_size=args.batch_size,
        samples_per_case=args.samples_per_case, empty_fraction=args.empty_fraction, seed=args.seed,
        model=ModelOptions(base_filters=args.base_filters, levels=args.levels,
                           learning_rate=args.learning_rate))
    holdout = read_holdout(args.holdout) if args.holdout else frozenset()
    dataset = open_dataset(args.input_dir, args.mask_dir)
    warn_unknown_cases(dataset, holdout)
    from ..ablate.run import run_ablation  # Keras is imported only once training starts

    bars = _Bars()
    try:
        report = run_ablation(dataset, args.out, config, store_path=args.db, holdout=holdout, progress=bars)
    except KeyboardInterrupt:
        bars.close()
        print(f"stopped: finished fold/arm results are kept in {args.out}; run the same command "
              "again to resume", file=sys.stderr)
        raise
    finally:
        bars.close()
    for arm, a in report["arms"].items():
        lo, hi = a["ci95"]
        line = f"{arm}: mean case Dice {a['mean_dice']:.3f} (95 % CI {lo:.3f}–{hi:.3f})"
        if a["vs_none"] is not None:
            d = a["vs_none"]
            line += (f"; vs none {d['mean_difference']:+.3f} ({d['ci95'][0]:+.3f} to {d['ci95'][1]:+.3f}"
                     f"{', CI includes 0' if d['ci_includes_zero'] else ''})")
        print(line)
    print(f"report: {Path(args.out) / 'report.md'}")
    return 0
