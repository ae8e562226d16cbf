"""Batch generation: draw N recipes from a seed, render them, write them as cases.

Sample ``i`` of a batch with seed ``s`` is ``sample_recipe(dataset,
sample_rng(s, i), options)``, so the output is the same with 1 or K worker
processes. Nothing is written until every name that already exists in the
output folders has been checked: an identical file is skipped, a different one
stops the run (:class:`OutputError`) before any write.
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
from .output import (MANIFEST_NAME, existing_status, manifest_row, prepare_output_dirs, sample_paths,
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


def _draw(indices: Sequence[int]) -> list[tuple[int, Recipe]]:
    ds, seed, options = _JOB["dataset"], _JOB["seed"], _JOB["options"]
    return [(i, sample_recipe(ds, sample_rng(seed, i), options)) for i in indices]


def _check(jobs: Sequence[tuple[Recipe, str]]) -> list[tuple[str | None, dict]]:
    """Render recipes whose files exist: ("skipped" or None if half exists, quality)."""
    ds, out_i, out_m = _JOB["dataset"], _JOB["out_input_dir"], _JOB["out_mask_dir"]
    results = []
    for recipe, case_id in jobs:
        sample = render(ds, recipe)
        status = existing_status(sample, *sample_paths(case_id, out_i, out_m))
        results.append((status, sample.quality.to_dict()))
    return results


def _write(jobs: Sequence[tuple[Recipe, str]]) -> list[dict]:
    ds, out_i, out_m = _JOB["dataset"], _JOB["out_input_dir"], _JOB["out_mask_dir"]
    qualities = []
    for recipe, case_id in jobs:
        sample = render(ds, recipe)
        write_sample(sample, case_id, out_i, out_m)
        qualities.append(sample.quality.to_dict())
    return qualities


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
        Called as samples are drawn and as they are written.

    Raises
    ------
    OutputError
        Unusable output folders, or an existing file of a drawn name with
        different content (raised before anything is written).
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
    total, finished = 2 * count, 0

    def done(n: int) -> None:
        nonlocal finished
        finished += n
        if progress is not None:
            progress(finished, total)

    _JOB.update(dataset=dataset, seed=seed, options=options, out_input_dir=out_i, out_mask_dir=out_m)
    n_workers = min(workers, max(1, count // CHUNK))
    if n_workers > 1 and len(dataset) * 4 < 2**22:
        dataset.preload()  # decode every slice once, shared with the forked workers
    # Parallelism comes from processes; OpenCV's own threads only add overhead on small ROIs.
    cv_threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    pool = multiprocessing.get_context("fork").Pool(n_workers) if n_workers > 1 else None
    try:
        drawn = dict(_run(_draw, _chunks(range(count)), pool, done))
        plan: dict[str, tuple[int, Recipe]] = {}
        for i in range(count):
            plan.setdefault(drawn[i].case_id(dataset.case_ids), (i, drawn[i]))
        existing = [(r, cid) for cid, (_, r) in plan.items()
                    if any(p.exists() for p in sample_paths(cid, out_i, out_m))]
        checked = dict(zip((cid for _, cid in existing),
                           _run(_check, _chunks(existing), pool, lambda n: None)))
        qualities = {cid: q for cid, (status, q) in checked.items() if status == "skipped"}
        skipped = len(qualities)
        todo = [(r, cid) for cid, (_, r) in plan.items() if cid not in qualities]
        done(count - len(todo))
        qualities.update(zip((cid for _, cid in todo), _run(_write, _chunks(todo), pool, done)))
    finally:
        if pool is not None:
            pool.terminate()
        _JOB.clear()
        cv2.setNumThreads(cv_threads)
    rows = [manifest_row(cid, recipe, qualities[cid], seed=seed, sample_index=i)
            for cid, (i, recipe) in plan.items()]
    if rows:
        write_manifest(manifest, rows)
    return GenerateSummary(len(todo), skipped, count - len(plan), manifest)
