"""Batch generation: draw N recipes from a seed, render them, write them as cases.

Sample ``i`` of a batch with seed ``s`` is ``sample_recipe(dataset,
sample_rng(s, i), options)``, so the output is the same with 1 or K worker
processes, each drawing, rendering and writing its share in one pass. A name
that already exists in the output folders is skipped when its files hold the
same pixels; when they differ it is never overwritten, and the run ends with an
:class:`OutputError` naming the file once every other sample is complete.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2

from .dataset import Dataset
from .errors import OutputError
from .io import encode_png, remove_stale_temp_files, slice_name, write_pair
from .output import (MANIFEST_NAME, manifest_row, prepare_output_dirs, sample_paths,
                     write_manifest, write_sample)
from .recipe import Recipe, SamplingOptions, render, sample_recipe, sample_rng

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
    """

    written: int
    skipped: int
    duplicates: int
    manifest: Path

    def __str__(self) -> str:
        dup = f", {self.duplicates} duplicate draw(s)" if self.duplicates else ""
        manifest = f"; manifest {self.manifest}" if self.written or self.skipped else ""
        return f"{self.written} written, {self.skipped} already present{dup}{manifest}"


# Worker state, set once per process (inherited on fork).
_JOB: dict = {}


def _make(indices: Sequence[int]) -> list[tuple[int, Recipe, str, str, dict]]:
    """Draw, render and write samples `indices` of the batch.

    Returns ``(index, recipe, case_id, status, quality)`` per sample, status
    "written", "skipped" (identical files present) or the :class:`OutputError`
    message of a name taken by different files (nothing written for it).
    """
    ds, seed, options = _JOB["dataset"], _JOB["seed"], _JOB["options"]
    out_i, out_m, present = _JOB["out_input_dir"], _JOB["out_mask_dir"], _JOB["present"]
    results = []
    for i in indices:
        recipe = sample_recipe(ds, sample_rng(seed, i), options)
        case_id = recipe.case_id(ds.case_ids)
        sample = render(ds, recipe)
        try:
            if slice_name(case_id, 0) in present:  # skip if identical, complete half a pair
                status = write_sample(sample, case_id, out_i, out_m)
            else:  # a fresh name: no need to look at the folders again
                write_pair(*sample_paths(case_id, out_i, out_m), encode_png(sample.image),
                           encode_png(sample.mask))
                status = "written"
        except OutputError as exc:
            status = str(exc)
        results.append((i, recipe, case_id, status, sample.quality.to_dict()))
    return results


def _chunks(items: Sequence, size: int = CHUNK) -> list[Sequence]:
    return [items[k:k + size] for k in range(0, len(items), size)]


def _run(fn, chunks: list[Sequence], pool, done: Callable[[int], None]) -> Iterator:
    mapper = pool.imap if pool is not None else map
    for chunk, result in zip(chunks, mapper(fn, chunks)):
        done(len(chunk))
        yield from result


def generate(dataset: Dataset, out_input_dir: str | os.PathLike, out_mask_dir: str | os.PathLike,
             *, count: int, seed: int = 0, options: SamplingOptions = SamplingOptions(),
             workers: int = 1, manifest: str | os.PathLike | None = None,
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
    workers : int
        Processes rendering and writing in parallel.
    manifest : path, optional
        CSV of provenance and quality (default ``out_input_dir/../poissonblend_manifest.csv``);
        rows for cases already listed there are kept.
    progress : callable(done, total), optional
        Called as samples are done.

    Raises
    ------
    OutputError
        Unusable output folders (before anything is written), or an existing
        file of a drawn name with different content (after the other samples
        are written and listed in the manifest; that file is left untouched).
    PlacementError
        If the dataset offers no valid placement.
    """
    if count < 0:
        raise OutputError(f"count {count} must be >= 0")
    if workers < 1:
        raise OutputError(f"workers {workers} must be >= 1")
    out_i, out_m = prepare_output_dirs(out_input_dir, out_mask_dir, create=count > 0,
                                       forbidden=(dataset.input_dir, dataset.mask_dir))
    manifest = Path(manifest) if manifest is not None else out_i.parent / MANIFEST_NAME
    if manifest.is_dir():
        raise OutputError(f"manifest path {manifest} is a folder")
    total, finished = count, 0

    def done(n: int) -> None:
        nonlocal finished
        finished += n
        if progress is not None:
            progress(finished, total)

    if count:
        for folder in (out_i, out_m):
            remove_stale_temp_files(folder)  # left by a killed run; live writers' are kept
    present = set(os.listdir(out_i)) | set(os.listdir(out_m)) if count else set()
    _JOB.update(dataset=dataset, seed=seed, options=options, out_input_dir=out_i,
                out_mask_dir=out_m, present=present)
    # Each process decodes a slice the first time it needs it (once per process).
    n_workers = min(workers, max(1, count // CHUNK))
    # Parallelism comes from processes; OpenCV's own threads only add overhead on small ROIs.
    cv_threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    pool = multiprocessing.get_context("fork").Pool(n_workers) if n_workers > 1 else None
    try:
        results = list(_run(_make, _chunks(range(count)), pool, done))
    finally:
        if pool is not None:
            pool.terminate()
        _JOB.clear()
        cv2.setNumThreads(cv_threads)
    rows: dict[str, dict] = {}
    statuses: dict[str, str] = {}
    for i, recipe, case_id, status, quality in results:
        if case_id not in rows:  # a repeated draw is one case, listed once
            rows[case_id] = manifest_row(case_id, recipe, quality, seed=seed, sample_index=i)
            statuses[case_id] = status
    conflicts = [s for s in statuses.values() if s not in ("written", "skipped")]
    done_rows = [row for cid, row in rows.items() if statuses[cid] in ("written", "skipped")]
    if done_rows:
        write_manifest(manifest, done_rows)
    if conflicts:
        more = f" (and {len(conflicts) - 1} more)" if len(conflicts) > 1 else ""
        raise OutputError(conflicts[0] + more)
    written = sum(s == "written" for s in statuses.values())
    return GenerateSummary(written, len(rows) - written, count - len(rows), manifest)
