"""Batch generation: draw N recipes from a seed, render them, write them as cases.

Sample ``i`` of a batch with seed ``s`` is ``draw_sample(dataset,
sample_rng(s, i), options)`` (``sample_recipe`` then ``render``, drawing again
where the lesion did not visibly arrive or the "opencv" method fails), so the
output is the same with 1 or K worker
processes. The calling process is the first worker; it forks the others, and
each takes the next chunk of samples to draw, render and write in one pass.
Each slice is decoded once for all of them, by whichever needs it first, into
memory they share (:class:`~poissonblend.dataset.SharedSlices`), instead of
once per process (or again each time a process's cache dropped it). A name
that already exists in the output folders is skipped when its files hold the
same pixels; when they differ it is never overwritten, and the run ends with an
:class:`OutputError` naming the file once every other sample is complete.

Stopping: Ctrl-C or SIGTERM (and a full disk) stop every process after the
sample it is writing; the manifest then lists every pair on disk and the run
ends with KeyboardInterrupt (or :class:`DiskFullError`). Workers end within
moments of the parent's death, even by ``kill -9``
(:func:`~poissonblend.machine.end_with_parent`), leaving only temp files a
re-run removes.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2

from .dataset import Dataset
from .errors import DiskFullError, OutputError, PoissonBlendWarning
from .io import encode_png, remove_stale_temp_files, slice_name, write_pair
from .machine import end_with_parent, usable_cpus
from .output import (HOLDOUT_COLUMN, MANIFEST_COLUMNS, MANIFEST_NAME, check_manifest, folder_lock,
                     holdout_cases, manifest_row, prepare_output_dirs, sample_paths, write_manifest,
                     write_sample)
from .recipe import SamplingOptions, draw_sample, sample_rng

CHUNK = 32
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class GenerateSummary:
    """What a :func:`generate` run did.

    Attributes
    ----------
    written, skipped : int
        Cases written, and cases already present with identical pixels.
    duplicates : int
        Draws that repeated an earlier recipe of the batch (written once).
    manifest : Path
    redrawn : int
        Recipes drawn again because OpenCV's seamlessClone failed on them
        (method "opencv"; see :func:`~poissonblend.recipe.draw_sample`).
    invisible : int
        Recipes drawn again because their lesion did not visibly arrive.
    """

    written: int
    skipped: int
    duplicates: int
    manifest: Path
    redrawn: int = 0
    invisible: int = 0

    def __str__(self) -> str:
        dup = f", {self.duplicates} duplicate draw(s)" if self.duplicates else ""
        redrawn = (f", {self.redrawn} redrawn (OpenCV's seamlessClone failed on them)"
                   if self.redrawn else "")
        if self.invisible:
            redrawn += f", {self.invisible} invisible lesion(s) redrawn"
        manifest = f"; manifest {self.manifest}" if self.written or self.skipped else ""
        return f"{self.written} written, {self.skipped} already present{dup}{redrawn}{manifest}"


# The run's state, set in the parent before it forks workers (who inherit it).
_JOB: dict = {}


def _make(indices: Sequence[int], results: list) -> None:
    """Draw, render and write samples `indices` of the batch, appending to `results`.

    Appends ``(index, recipe, case_id, status, quality, (redrawn, invisible))`` per sample,
    status "written", "skipped" (identical files present) or the
    :class:`OutputError` message of a name taken by different files (nothing
    written for it); the last two count the recipes dropped before it (never the
    sample's pixels: results are kept for the whole batch, and a worker's are
    pickled back to the parent). Stops early,
    after a whole sample, once the run is asked to stop; a full disk asks it
    to stop.
    """
    ds, seed, options = _JOB["dataset"], _JOB["seed"], _JOB["options"]
    out_i, out_m, present = _JOB["out_input_dir"], _JOB["out_mask_dir"], _JOB["present"]
    queue: _Queue = _JOB["queue"]
    for i in indices:
        if queue.stopping():
            return
        draw = draw_sample(ds, sample_rng(seed, i), options)
        sample = draw.sample
        recipe = sample.recipe
        case_id = recipe.case_id(ds.case_ids)
        try:
            if slice_name(case_id, 0) in present:  # skip if identical, complete half a pair
                status = write_sample(sample, case_id, out_i, out_m)
            else:  # a fresh name: no need to look at the folders again
                write_pair(*sample_paths(case_id, out_i, out_m), encode_png(sample.image),
                           encode_png(sample.mask))
                status = "written"
        except DiskFullError:
            queue.stop(_DISK_FULL)
            return
        except OutputError as exc:
            status = str(exc)
        results.append((i, recipe, case_id, status, sample.quality.to_dict(),
                        (draw.redrawn, draw.invisible)))


_INTERRUPTED, _DISK_FULL = 1, 2
"""Why a run stops early (the value of :attr:`_Queue.stop_reason`)."""


class _Queue:
    """Chunks of work handed out to whichever process (parent or worker) asks next.

    Counters in shared memory: made before the fork, they serve every process,
    and so does the stop flag (set by Ctrl-C or SIGTERM in the parent, or by a
    full disk anywhere).
    """

    def __init__(self, ctx, count: int, size: int = CHUNK):
        self._count, self._size = count, size  # chunk k: samples k * size … (k + 1) * size - 1
        self._next = ctx.Value("q", 0)
        self.done = ctx.Value("q", 0)  # items finished, for the progress bar
        self._stop = ctx.Value("b", 0, lock=False)  # one byte: written whole, read whole

    def stop(self, reason: int) -> None:
        """Ask every process to stop after the sample it is making."""
        if not self._stop.value:
            self._stop.value = reason

    def stopping(self) -> bool:
        return bool(self._stop.value)

    @property
    def stop_reason(self) -> int:
        return int(self._stop.value)

    def drain(self, fn: Callable[[Sequence, list], None], results: list,
              report: Callable[[], None] | None = None) -> list:
        """Run ``fn(chunk, results)`` on chunks until none is left or the run stops."""
        while not self.stopping():
            with self._next.get_lock():
                k = self._next.value
                self._next.value += 1
            chunk = range(k * self._size, min(self._count, (k + 1) * self._size))
            if not chunk:
                break
            fn(chunk, results)
            with self.done.get_lock():
                self.done.value += len(chunk)
            if report is not None:
                report()
        return results


def _start_worker(parent_pid: int) -> None:
    """Leave Ctrl-C and SIGTERM to the parent (it stops the workers), and die with it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # what pool.terminate() sends
    end_with_parent(parent_pid)


def _drain_in_worker(_: int) -> list:
    return _JOB["queue"].drain(_make, [])


@contextlib.contextmanager
def _stop_on_signals(queue: _Queue) -> Iterator[None]:
    """While running, Ctrl-C and SIGTERM ask every process to stop after its current sample.

    (Only in the main thread, where Python runs signal handlers; elsewhere, e.g.
    in the app, nothing changes.)
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, lambda *_: queue.stop(_INTERRUPTED))
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _make_everywhere(pool, n_children: int, report: Callable[[], None]) -> list:
    """Drain the queue in the parent and in `n_children` forked workers at once."""
    pending = pool.map_async(_drain_in_worker, range(n_children)) if pool is not None else None
    results = _JOB["queue"].drain(_make, [], report)
    if pending is not None:
        while not pending.ready():
            pending.wait(0.05)
            report()
        for part in pending.get():
            results.extend(part)
        report()
    return results


def generate(dataset: Dataset, out_input_dir: str | os.PathLike, out_mask_dir: str | os.PathLike,
             *, count: int, seed: int = 0, options: SamplingOptions = SamplingOptions(),
             workers: int | None = 1, manifest: str | os.PathLike | None = None,
             progress: Progress | None = None) -> GenerateSummary:
    """Write `count` random samples as single-slice cases ``slice_<case_id>_0000.png``.

    Parameters
    ----------
    dataset : Dataset
        Source of lesions and targets.
    out_input_dir, out_mask_dir : path
        Output folders (created; must not be the dataset's folders).
    count : int
        Number of samples to draw (0 writes nothing but the manifest check).
    seed : int
        Batch seed; the same seed gives the same recipes, names and bytes.
    options : SamplingOptions
        Mode, transforms, margin, placement rules.
    workers : int or None
        Processes rendering and writing in parallel; the output is the same for
        any number. None: every CPU this process may use
        (:func:`~poissonblend.machine.usable_cpus`), or one where processes
        cannot be forked (Windows).
    manifest : path, optional
        CSV of provenance and quality (default ``out_input_dir/../poissonblend_manifest.csv``);
        rows for cases already listed there are kept.
    progress : callable(done, total), optional
        Called as samples are done.

    Raises
    ------
    OutputError
        Unusable output folders or another export or generate writing into
        them (before anything is written), or an existing file of a drawn
        name with different content (after the other samples are written and
        listed in the manifest; that file is left untouched).
    PlacementError
        If the dataset offers no valid placement.
    """
    for name, value, low in (("count", count, 0), ("seed", seed, 0), ("workers", workers, 1)):
        if not (value is None and name == "workers") and (
                not isinstance(value, int) or isinstance(value, bool) or value < low):
            raise OutputError(f"{name} {value!r} must be an integer >= {low}")
    out_i, out_m = prepare_output_dirs(out_input_dir, out_mask_dir, create=False,
                                       forbidden=(dataset.input_dir, dataset.mask_dir))
    manifest = check_manifest(manifest if manifest is not None else out_i.parent / MANIFEST_NAME,
                              outputs=(out_i, out_m))
    if count == 0:
        return GenerateSummary(0, 0, 0, manifest)
    prepare_output_dirs(out_i, out_m)
    with folder_lock(out_i):  # one export or generate at a time writes into these folders
        for folder in (out_i, out_m, manifest.parent):
            remove_stale_temp_files(folder)  # left by a killed run; live writers' are kept
        results, stopped = _make_all(dataset, out_i, out_m, count=count, seed=seed,
                                     options=options, workers=workers, progress=progress)
        summary = _finish(results, manifest, count=count, seed=seed, holdout=options.holdout)
        if stopped == _INTERRUPTED:
            raise KeyboardInterrupt
        if stopped == _DISK_FULL:
            raise DiskFullError(f"the disk holding {out_i} or {out_m} is full: {summary.written} "
                                "written and listed in the manifest; free some space and run "
                                "the same command again to complete the batch")
        return summary


def _make_all(dataset: Dataset, out_i: Path, out_m: Path, *, count: int, seed: int,
              options: SamplingOptions, workers: int | None,
              progress: Progress | None) -> tuple[list[tuple], int]:
    """Make samples 0 .. count - 1 in this process and ``workers - 1`` forked ones (see _make).

    Returns the results of the samples made and why the run stopped early (0: it did not).
    """
    present = set(os.listdir(out_i)) | set(os.listdir(out_m))
    can_fork = "fork" in multiprocessing.get_all_start_methods()
    if workers is None:
        workers = usable_cpus() if can_fork else 1
    n_workers = min(workers, max(1, count // CHUNK))
    if n_workers > 1 and not can_fork:
        warnings.warn(f"{n_workers} workers need the 'fork' start method, which this system "
                      "lacks (Windows); generating in one process", PoissonBlendWarning, stacklevel=3)
        n_workers = 1
    ctx = multiprocessing.get_context("fork" if n_workers > 1 else None)
    queue = _Queue(ctx, count)

    def report() -> None:
        if progress is not None:
            progress(queue.done.value, count)

    _JOB.update(dataset=dataset, seed=seed, options=options, out_input_dir=out_i,
                out_mask_dir=out_m, present=present, queue=queue)
    # Parallelism comes from processes; OpenCV's own threads only add overhead on small ROIs.
    cv_threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        # Each slice is decoded once, by whichever process needs it first, for all of them
        # (one process alone keeps its slices in its own cache: the shared block costs ~5 %).
        with dataset.shared_decoding() if n_workers > 1 else contextlib.nullcontext():
            # The parent is one of the workers: it forks the others and works alongside them.
            pool = (ctx.Pool(n_workers - 1, initializer=_start_worker, initargs=(os.getpid(),))
                    if n_workers > 1 else None)
            try:
                with _stop_on_signals(queue):
                    results = _make_everywhere(pool, n_workers - 1, report)
                return sorted(results), queue.stop_reason
            finally:
                if pool is not None:
                    pool.terminate()
    finally:
        _JOB.clear()
        cv2.setNumThreads(cv_threads)


def _finish(results: list, manifest: Path, *, count: int, seed: int,
            holdout: frozenset[str]) -> GenerateSummary:
    """List the written and skipped samples in the manifest; raise on name conflicts.

    Each row's ``holdout_cases`` names the held-out cases its run kept out.
    """
    split = holdout_cases(holdout)
    rows: dict[str, dict] = {}
    statuses: dict[str, str] = {}
    for i, recipe, case_id, status, quality, _ in results:
        if case_id not in rows:  # a repeated draw is one case, listed once
            rows[case_id] = {**manifest_row(case_id, recipe, quality, seed=seed, sample_index=i),
                             HOLDOUT_COLUMN: split}
            statuses[case_id] = status
    conflicts = [s for s in statuses.values() if s not in ("written", "skipped")]
    done_rows = [row for cid, row in rows.items() if statuses[cid] in ("written", "skipped")]
    if done_rows:
        write_manifest(manifest, done_rows, columns=MANIFEST_COLUMNS + (HOLDOUT_COLUMN,))
    if conflicts:
        more = f" (and {len(conflicts) - 1} more)" if len(conflicts) > 1 else ""
        raise OutputError(conflicts[0] + more)
    written = sum(s == "written" for s in statuses.values())
    dropped = [result[-1] for result in results]
    return GenerateSummary(written, len(rows) - written, count - len(rows), manifest,
                           sum(redrawn for redrawn, _ in dropped),
                           sum(invisible for _, invisible in dropped))
