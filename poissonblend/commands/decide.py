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
import math

from ..errors import StoreError
from ..store import Store
from .status import format_counts


def _ids(text: str) -> list[int]:
    """Ids from one argument: ``3``, ``3,4,9``, ``3-9`` or a mix such as ``1-4,7``."""
    ids: list[int] = []
    try:
        for part in filter(None, (p.strip() for p in text.split(","))):
            first, dash, last = part.partition("-")
            if dash and int(last) < int(first):
                raise ValueError
            ids.extend(range(int(first), int(last) + 1) if dash else [int(part)])
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a list of ids such as 3,4,9 or 3-9") from None
    if not ids:
        raise argparse.ArgumentTypeError(f"{text!r} holds no id")
    return ids


def _score(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


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
    which.add_argument("--min-quality", type=_score, metavar="X",
                       help='every undecided candidate with quality["score"] >= X')
    p.add_argument("--reason", help='reason, e.g. "seam artifact" (free text)')
    p.add_argument("--reviewer", help="reviewer name recorded with the decisions")


def run(args: argparse.Namespace) -> int:
    store = Store.open(args.db)
    if args.ids is not None:
        ids, only_undecided = [i for group in args.ids for i in group], False
    else:
        undecided = store.candidates(state="undecided")
        if args.min_quality is not None:
            undecided = [c for c in undecided if c.score is not None and c.score >= args.min_quality]
        ids, only_undecided = [c.id for c in undecided], True
    if any(i < 1 for i in ids):
        raise StoreError(f"candidate id {min(ids)} must be >= 1")
    done = store.decide_many(ids, args.decision, reason=args.reason, reviewer=args.reviewer,
                             only_undecided=only_undecided)
    print(f"{args.decision} {len(done)} candidate(s)")
    print(format_counts(store.counts()))
    return 0
