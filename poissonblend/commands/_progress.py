"""The commands' progress bar: tqdm on a terminal, and nothing (not even the import) otherwise."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator


@contextlib.contextmanager
def progress_bar(desc: str, unit: str) -> Iterator[Callable[[int, int], None]]:
    """Yield a ``progress(done, total)`` callback drawing a tqdm bar on stderr if it is a terminal.

    The bar appears at the first call, when the total is known, and is closed on exit.
    """
    on_terminal = sys.stderr.isatty()
    bars: list = []

    def progress(done: int, total: int) -> None:
        if not on_terminal:
            return
        if not bars:
            from tqdm import tqdm  # 30 ms of imports, only worth it with a bar to draw

            bars.append(tqdm(total=total, unit=unit, desc=desc))
        bars[0].total = total
        bars[0].update(done - bars[0].n)

    try:
        yield progress
    finally:
        for bar in bars:
            bar.close()
