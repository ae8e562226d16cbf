"""Benchmark: opening a large training set, first (index build) and again (cached index).

Writes N slices (default 18,000 of 112 px: 40 % with 1-12 lesions) and times, in
separate processes, ``open_dataset`` with an empty cache using 1 and 2 workers,
then re-opening with the cache warm. Target: re-open well under a second.
Usage: ``python benchmarks/bench_index.py [--slices N]``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

OPEN = ("import sys; from poissonblend.dataset import open_dataset; "
        "open_dataset(sys.argv[1], sys.argv[2], workers=int(sys.argv[3]))")


def write_slices(root: Path, n: int) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    inp, msk = root / "input", root / "mask"
    inp.mkdir()
    msk.mkdir()
    yy, xx = np.mgrid[:112, :112]
    brain = ((yy - 56) / 45) ** 2 + ((xx - 56) / 38) ** 2 < 1
    base = np.where(brain, 90, 0).astype(np.uint8)
    for i in range(n):
        image = np.clip(base + rng.normal(0, 4, base.shape) * brain, 0, 255).astype(np.uint8)
        mask = np.zeros_like(base)
        if i % 5 < 2:  # multi-focal, as in ISLES: 1-12 small lesions
            for _ in range(rng.integers(1, 13)):
                cy, cx = rng.integers(35, 77, 2)
                mask[(yy - cy) ** 2 + (xx - cx) ** 2 < rng.integers(1, 40)] = 255
        name = f"slice_{i // 73:04d}_{i % 73:04d}.png"
        cv2.imwrite(str(inp / name), image)
        cv2.imwrite(str(msk / name), mask)
    return inp, msk


def timed_open(inp: Path, msk: Path, cache: Path, workers: int) -> float:
    repo = Path(__file__).resolve().parents[1]
    t0 = time.perf_counter()
    subprocess.run(["env", f"XDG_CACHE_HOME={cache}", sys.executable, "-c", OPEN, str(inp), str(msk),
                    str(workers)], check=True, cwd=repo)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=18000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        inp, msk = write_slices(root, args.slices)
        startup = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import poissonblend.dataset"], check=True,
                       cwd=Path(__file__).resolve().parents[1])
        startup = time.perf_counter() - startup
        build1 = timed_open(inp, msk, root / "c1", 1)
        build2 = timed_open(inp, msk, root / "c2", 2)
        reopen = min(timed_open(inp, msk, root / "c2", 2) for _ in range(3))
    print(f"| open {args.slices} slices | seconds (whole process) |")
    print("|---|---|")
    print(f"| Python + import only (baseline) | {startup:.2f} |")
    print(f"| first open, 1 worker (index build) | {build1:.2f} |")
    print(f"| first open, 2 workers (index build) | {build2:.2f} ({build1 / build2:.2f}x) |")
    print(f"| re-open, cached index | {reopen:.2f} ({reopen - startup:.2f} beyond import) |")


if __name__ == "__main__":
    main()
