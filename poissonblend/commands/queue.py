"""Queue candidates for review: draw N recipes with the engine and store them.

Sample i of a batch with seed S is drawn exactly as generate draws it, rendered
once for its quality report, and stored in the review database DB (created on
first use, bound to the dataset's folders and file contents). The same seed
gives the same candidates; re-running adds nothing twice. Review them in the
app, or decide in bulk with 'decide', then write the accepted ones with 'export'.

--holdout FILE records the file's case ids as the database's held-out cases
(replacing those recorded before); the database's held-out cases are never
drawn, and export refuses accepted candidates that use one.
"""

from __future__ import annotations

import argparse
import warnings

from ..dataset import open_dataset
from ..errors import PoissonBlendWarning
from ..holdout import warn_unknown_cases
from ..store import Store
from .status import format_counts
from ._args import int_in
from ._progress import progress_bar
from ._sampling import add_sampling_arguments, sampling_options


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", required=True, help="review database file (SQLite; created, with its folder, if missing)")
    p.add_argument("--input-dir", required=True, help="folder of input slices (8-bit grey PNG)")
    p.add_argument("--mask-dir", required=True, help="folder of masks with the same file names")
    p.add_argument("--count", type=int_in(0), required=True, help="number of candidates to draw")
    p.add_argument("--seed", type=int_in(0), default=0, help="batch seed, >= 0 (default 0)")
    p.add_argument("--start", type=int_in(0), default=0,
                   help="index of the first sample (queue more of a batch: --start previous count)")
    p.add_argument("--batch", help="batch label (default seed-<SEED>)")
    add_sampling_arguments(p)
    p.add_argument("--allow-other-dataset", action="store_true",
                   help="use DB although it was made for other folders or files")


def _record_holdout(store: Store, holdout: frozenset[str]) -> None:
    """Make `holdout` the database's held-out cases; say what changed and what it affects."""
    before = store.holdout()
    if holdout != before:
        store.set_holdout(holdout)
        print(f"held-out cases of {store.path}: {len(holdout)} (were {len(before)})")
        dropped = sorted(before - holdout)
        if dropped:
            warnings.warn(f"no longer held out: {', '.join(dropped)}", PoissonBlendWarning,
                          stacklevel=2)
    leaks = store.holdout_leaks(holdout=holdout)
    if leaks:
        warnings.warn(f"{len(leaks)} candidate(s) stored earlier use held-out cases; export refuses "
                      "those that are accepted", PoissonBlendWarning, stacklevel=2)


def run(args: argparse.Namespace) -> int:
    options = sampling_options(args)
    dataset = open_dataset(args.input_dir, args.mask_dir)
    warn_unknown_cases(dataset, options.holdout)
    store = Store.open(args.db, dataset, allow_other_dataset=args.allow_other_dataset,
                       create_folders=True)
    if args.holdout:
        _record_holdout(store, options.holdout)
    before = store.counts()["total"]
    with progress_bar("queue", "sample") as progress:
        queued = store.queue(args.count, args.seed, options, batch=args.batch, start=args.start,
                             progress=progress)
    counts = store.counts()
    batch = queued[0].batch if queued else (args.batch or f"seed-{args.seed}")
    redrawn = (f"; {queued.redrawn} redrawn (OpenCV's seamlessClone failed on them)"
               if queued.redrawn else "")
    if queued.invisible:
        redrawn += f"; {queued.invisible} invisible lesion(s) redrawn"
    print(f"queued {len(queued)} candidate(s) in batch {batch} "
          f"({counts['total'] - before} new) into {store.path}{redrawn}")
    print(format_counts(counts))
    return 0
