"""Decide candidates in bulk, for scripted curation.

Pick candidates by id (--ids 3,4,9 or --ids 3-9), every undecided one (--all-undecided), or
every undecided one whose quality score is at least X (--min-quality X), and
accept, reject or skip them. Decisions are appended to the history, never
overwritten; candidates someone else decided meanwhile are left alone by
--all-undecided and --min-quality. Example: accept everything scoring 0.9 or
more, then review the rest in the app.
"""

from __future__ import annotations

import argparse

from ..errors import StoreError
from ..store import Store
from ._args import finite_float
from .status import format_counts


def _ids(text: str) -> list[range]:
    """Ids from one argument: ``3``, ``3,4,9``, ``3-9`` or a mix such as ``1-4,7``, as ranges.

    Ranges stay ranges (``1-999999999999`` costs nothing until checked against
    the database).
    """
    ranges: list[range] = []
    try:
        for part in filter(None, (p.strip() for p in text.split(","))):
            first, dash, last = part.partition("-")
            first_id, last_id = int(first), int(last) if dash else int(first)
            if last_id < first_id:
                raise ValueError
            ranges.append(range(first_id, last_id + 1))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a list of ids such as 3,4,9 or 3-9") from None
    if not ranges:
        raise argparse.ArgumentTypeError(f"{text!r} holds no id")
    return ranges


def _chosen_ids(store: Store, ranges: list[range]) -> list[int]:
    """The ids of `ranges`, once each the database is known to hold them all.

    Raises
    ------
    StoreError
        For an id below 1 or above the last candidate's, before any list of
        ids is made (so a range of a trillion ids costs nothing).
    """
    low, high = min(r.start for r in ranges), max(r.stop - 1 for r in ranges)
    if low < 1:
        raise StoreError(f"candidate id {low} must be >= 1")
    last = store.last_id()
    if high > last:
        raise StoreError(f"no candidate with id {high} in {store.path} (the last id is {last})")
    return [i for r in ranges for i in r]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", required=True, help="review database file (must exist)")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--accept", dest="decision", action="store_const", const="accepted")
    what.add_argument("--reject", dest="decision", action="store_const", const="rejected")
    what.add_argument("--skip", dest="decision", action="store_const", const="skipped")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--ids", type=_ids, nargs="+", metavar="IDS",
                       help="these candidates (any state): 3 4 9, 3,4,9, 3-9 or 1-4,7")
    which.add_argument("--all-undecided", action="store_true", help="every undecided candidate")
    which.add_argument("--min-quality", type=finite_float, metavar="X",
                       help='every undecided candidate with quality["score"] >= X')
    p.add_argument("--reason", help='reason, e.g. "seam artifact" (free text)')
    p.add_argument("--reviewer", help="reviewer name recorded with the decisions")


def run(args: argparse.Namespace) -> int:
    store = Store.open(args.db)
    if args.ids is not None:
        ids, only_undecided = _chosen_ids(store, [r for group in args.ids for r in group]), False
    else:
        undecided = store.candidates(state="undecided")
        if args.min_quality is not None:
            undecided = [c for c in undecided if c.score is not None and c.score >= args.min_quality]
        ids, only_undecided = [c.id for c in undecided], True
    done = store.decide_many(ids, args.decision, reason=args.reason, reviewer=args.reviewer,
                             only_undecided=only_undecided)
    print(f"{args.decision} {len(done)} candidate(s)")
    print(format_counts(store.counts()))
    return 0
