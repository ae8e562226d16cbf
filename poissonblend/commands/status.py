"""Show how far the review of a database has got: candidates per state and batches.

States: undecided (no decision, or its decision was undone), accepted, rejected,
skipped. Only the database is read; the dataset's images are not needed.
"""

from __future__ import annotations

import argparse

from ..store import STATES, Store


def format_counts(counts: dict[str, int]) -> str:
    """``undecided 3 · accepted 2 · … · total 7`` (every state, always)."""
    return " · ".join(f"{key} {counts[key]}" for key in (*STATES, "total"))


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", required=True, help="review database file (must exist)")


def run(args: argparse.Namespace) -> int:
    store = Store.open(args.db)
    counts = store.counts()
    print(f"{store.path}")
    width = max(len(k) for k in counts)
    for key in (*STATES, "total"):
        print(f"  {key:<{width}}  {counts[key]:>6}")
    batches = store.batches()
    if batches:
        print(f"batches: {', '.join(batches)}")
    return 0
