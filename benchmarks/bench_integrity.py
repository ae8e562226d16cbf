"""Benchmark: the integrity check every opening of a review database runs (``PRAGMA quick_check``).

Queues N candidates (default 5,000) of the demo set into a fresh database, then
times, over repeats, the check against the query ``status`` runs anyway (counts by
state) on the same file, each on a fresh connection.
Usage: ``python benchmarks/bench_integrity.py [--candidates N] [--repeats R]``.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from poissonblend.dataset import open_dataset
from poissonblend.demo import make_demo
from poissonblend.store import Store, check_integrity


def timed(path: Path, fn, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        conn = sqlite3.connect(path)
        start = time.perf_counter()
        fn(conn)
        times.append(time.perf_counter() - start)
        conn.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--candidates", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        input_dir, mask_dir = make_demo(Path(tmp) / "demo")
        db = Path(tmp) / "review.db"
        Store.open(db, open_dataset(input_dir, mask_dir)).queue(args.candidates, seed=1)
        counts = timed(db, lambda c: c.execute(
            "SELECT state, count(*) FROM candidate_state GROUP BY state").fetchall(), args.repeats)
        checks = timed(db, check_integrity, args.repeats)
        size = db.stat().st_size / 1e6
    for name, times in (("counts by state (status)", counts), ("PRAGMA quick_check", checks)):
        print(f"{name}: median {statistics.median(times) * 1e3:.1f} ms, "
              f"min {min(times) * 1e3:.1f} ms")
    print(f"{args.candidates} candidates, {size:.1f} MB: the check costs "
          f"{statistics.median(checks) / statistics.median(counts):.1f}x the counts")


if __name__ == "__main__":
    main()
