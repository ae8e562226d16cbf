"""Export the accepted candidates of a review store into training-set folders.

Every accepted candidate is re-rendered from its recipe (and checked against
the pixels stored when it was queued) and written as the single-slice case
``slice_<case_id>_0000.png`` in both folders with :func:`output.write_sample`:
atomic temp-and-rename writes, fsync'ed (so they survive a power loss too),
the mask before its image, identical files skipped, different files never
overwritten.

Crash safety: the folders themselves are the record of what was exported. A
run starts by deleting temp files left by a killed run and finishes by
rebuilding the manifest from what is in the folders, so a run killed at any
point is completed by the next one:

* a temp file of ours (:func:`io.temp_path`) whose writer is gone is deleted;
* a mask without its image (killed between the two renames) is completed if
  its candidate is still accepted, and deleted otherwise;
* the manifest lists exactly the store's cases present in the folders (plus
  rows of cases poissonblend wrote otherwise, e.g. by ``generate``).

A candidate that was exported and is no longer accepted is *stale*: it is
reported, and deleted only with ``prune=True`` (image first, then mask).

Held-out cases: an export refuses (:class:`HoldoutError`, before touching the
folders) when an accepted candidate takes its lesion or its target from one of
the database's held-out cases (:meth:`Store.holdout`), unless
``allow_holdout_leak=True``; the manifest's ``holdout_cases`` column names the
split every exported row respects, and ``holdout_leak`` the rows that do not.
"""

from __future__ import annotations

import contextlib
import io as _io
import os
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from .errors import DiskFullError, HoldoutError, OutputError, PoissonBlendError
from .holdout import held_out_roles
from .io import (SLICE_NAME_RE, atomic_write_bytes, disk_error_message, remove_stale_temp_files,
                 resolve_path, stale_temp_files)
from .output import (HOLDOUT_COLUMN, MANIFEST_COLUMNS, MANIFEST_NAME, check_manifest, existing_status,
                     folder_lock, holdout_cases, manifest_row, prepare_output_dirs, sample_paths,
                     write_manifest, write_sample)
from .store import Candidate, Store

DECISION_COLUMNS = ("decision", "reason", "reviewer", "decided_at")
HOLDOUT_COLUMNS = (HOLDOUT_COLUMN, "holdout_leak")
"""The database's held-out case ids at export (space-separated), and how a row uses
them (e.g. ``target 0007``; only with ``allow_holdout_leak``, else empty)."""
EXPORT_MANIFEST_COLUMNS = MANIFEST_COLUMNS + DECISION_COLUMNS + HOLDOUT_COLUMNS
"""The export manifest: ``generate``'s columns plus the current decision and the split."""
LEAKS_LISTED = 10
"""Candidates named in the one-line refusal of an export that would leak held-out cases."""

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class ExportConflict:
    """An accepted candidate that could not be exported.

    Attributes
    ----------
    candidate_id : int
    case_id : str
    message : str
        Names the file (an existing different file) or the problem (the
        recipe renders differently from when it was reviewed).
    """

    candidate_id: int
    case_id: str
    message: str

    def __str__(self) -> str:
        return f"candidate {self.candidate_id} ({self.case_id}): {self.message}"


@dataclass(frozen=True)
class StaleExport:
    """A case in the folders whose candidate is no longer accepted.

    Attributes
    ----------
    candidate_id : int
    case_id : str
    state : str
        The candidate's current state (rejected, skipped or undecided).
    image_path, mask_path : Path
    """

    candidate_id: int
    case_id: str
    state: str
    image_path: Path
    mask_path: Path

    def __str__(self) -> str:
        return f"{self.image_path.name} (candidate {self.candidate_id}, now {self.state})"


@dataclass(frozen=True)
class ExportSummary:
    """What an :func:`export` run did (or, with `dry_run`, would do).

    Attributes
    ----------
    written : int
        Accepted samples written (completed, for a half-written pair).
    skipped : int
        Accepted samples already present with identical pixels.
    conflicts : list of ExportConflict
        Accepted samples not exported (existing different file, changed render).
    pruned : list of Path
        Files of stale samples deleted (only with ``prune=True``).
    stale : list of StaleExport
        Exported samples whose candidate is no longer accepted.
    manifest : Path
        The manifest CSV (not written in a dry run).
    repaired : list of Path
        Leftovers of a killed run that were deleted: temp files, and masks
        without an image whose candidate is no longer accepted.
    dry_run : bool
    holdout : frozenset of str
        The database's held-out case ids the export checked.
    leaked : int
        Accepted samples using a held-out case, exported with ``allow_holdout_leak``.
    """

    written: int
    skipped: int
    conflicts: list[ExportConflict] = field(default_factory=list)
    pruned: list[Path] = field(default_factory=list)
    stale: list[StaleExport] = field(default_factory=list)
    manifest: Path = Path(MANIFEST_NAME)
    repaired: list[Path] = field(default_factory=list)
    dry_run: bool = False
    holdout: frozenset[str] = frozenset()
    leaked: int = 0

    @property
    def line(self) -> str:
        """The one-line summary (also ``str(summary)``)."""
        verb = "would write" if self.dry_run else "written"
        parts = [f"{self.written} {verb}", f"{self.skipped} skipped",
                 f"{len(self.pruned) // 2} pruned"]
        if self.stale and not self.pruned:
            parts.append(f"{len(self.stale)} stale (no longer accepted; --prune removes them)")
        if self.conflicts:
            parts.append(f"{len(self.conflicts)} conflict(s)")
        if self.leaked:
            parts.append(f"{self.leaked} using held-out cases (allowed)")
        elif self.holdout:
            parts.append(f"none uses the {len(self.holdout)} held-out case(s)")
        prefix = "dry run: " if self.dry_run else "export: "
        return prefix + ", ".join(parts) + f"; manifest {self.manifest}"

    def __str__(self) -> str:
        return self.line


def _case_files(folder: Path) -> dict[str, Path]:
    """Case id -> path of the slice-0 PNGs of `folder` (hidden and other files ignored)."""
    found = {}
    if folder.is_dir():
        with os.scandir(folder) as it:
            for entry in it:
                m = SLICE_NAME_RE.match(entry.name)
                if m and int(m.group(2)) == 0 and entry.is_file():
                    found[m.group(1)] = Path(entry.path)
    return found


def _manifest_row(candidate: Candidate, holdout: frozenset[str]) -> dict:
    row = manifest_row(candidate.case_id, candidate.recipe, candidate.quality,
                       seed=candidate.seed, sample_index=candidate.sample_index)
    row.update(decision=candidate.state, reason=candidate.reason or "",
               reviewer=candidate.reviewer or "", decided_at=candidate.decided_at or "",
               holdout_cases=holdout_cases(holdout),
               holdout_leak="; ".join(held_out_roles(candidate.recipe, holdout)))
    return row


def _refuse_leaks(leaks: list[tuple[Candidate, list[str]]]) -> None:
    """Raise the one-line :class:`HoldoutError` naming the candidates that use held-out cases."""
    named = ", ".join(f"candidate {c.id} ({', '.join(roles)})" for c, roles in leaks[:LEAKS_LISTED])
    more = f" and {len(leaks) - LEAKS_LISTED} more" if len(leaks) > LEAKS_LISTED else ""
    raise HoldoutError(f"{len(leaks)} accepted candidate(s) use held-out cases: {named}{more}; "
                       "reject them, or export anyway with allow_holdout_leak "
                       "(--allow-holdout-leak)")


def export(store: Store, out_input_dir: str | os.PathLike, out_mask_dir: str | os.PathLike, *,
           manifest: str | os.PathLike | None = None, prune: bool = False, dry_run: bool = False,
           progress: Progress | None = None, allow_holdout_leak: bool = False) -> ExportSummary:
    """Write every accepted candidate of `store` into training-set folders.

    Parameters
    ----------
    store : Store
        The review store; its dataset is used to re-render the recipes.
    out_input_dir, out_mask_dir : path
        Output folders (created; must not be the dataset's own folders). Files
        are ``slice_<case_id>_0000.png`` in both; masks are 0/255.
    manifest : path, optional
        Provenance CSV with :data:`EXPORT_MANIFEST_COLUMNS`, one row per case
        in the folders (default ``out_input_dir/../poissonblend_manifest.csv``).
        Rows of other cases already in it (e.g. from ``generate``) are kept.
    prune : bool
        Delete the files of stale samples (exported, then no longer accepted).
    dry_run : bool
        Report what would happen; write, delete and create nothing.
    progress : callable(done, total), optional
        Called after each accepted candidate.
    allow_holdout_leak : bool
        Export accepted candidates that use a held-out case of the database
        too (marked in the manifest's ``holdout_leak`` column).

    Returns
    -------
    ExportSummary
        ``str(summary)`` is a one-line report. Conflicts do not stop the run;
        callers should treat a non-empty ``summary.conflicts`` as a failure.

    Raises
    ------
    OutputError
        Unusable output folders or manifest path, or another export running
        into the same folder.
    StoreError
        If the store's dataset cannot be opened or has changed.
    HoldoutError
        If an accepted candidate uses a held-out case and `allow_holdout_leak`
        is False (nothing is written or deleted).
    """
    if not isinstance(store, Store):
        raise OutputError(f"store must be a Store (see Store.open), not {type(store).__name__}")
    for name, flag in (("prune", prune), ("dry_run", dry_run),
                       ("allow_holdout_leak", allow_holdout_leak)):
        if not isinstance(flag, bool):
            raise OutputError(f"{name} {flag!r} must be True or False")
    holdout = store.holdout()
    leaks = store.holdout_leaks(state="accepted", holdout=holdout)
    if leaks and not allow_holdout_leak:
        _refuse_leaks(leaks)
    dataset = store.dataset
    out_i, out_m = prepare_output_dirs(out_input_dir, out_mask_dir, create=not dry_run,
                                       forbidden=(dataset.input_dir, dataset.mask_dir))
    manifest = check_manifest(manifest if manifest is not None else out_i.parent / MANIFEST_NAME,
                              outputs=(out_i, out_m))
    lock = folder_lock(out_i) if not dry_run else contextlib.nullcontext()
    with lock:
        summary = _export(store, out_i, out_m, manifest, prune, dry_run, progress, holdout)
    return replace(summary, leaked=len(leaks))


def _export(store: Store, out_i: Path, out_m: Path, manifest: Path, prune: bool, dry_run: bool,
            progress: Progress | None, holdout: frozenset[str]) -> ExportSummary:
    repaired: list[Path] = []
    for folder in dict.fromkeys((out_i, out_m, manifest.parent)):
        repaired += stale_temp_files(folder) if dry_run else remove_stale_temp_files(folder)

    everything = store.candidates()
    by_case = {c.case_id: c for c in everything}
    accepted = [c for c in everything if c.state == "accepted"]
    written = skipped = 0
    conflicts: list[ExportConflict] = []
    present: set[str] = set()
    for k, candidate in enumerate(accepted):
        try:
            sample = store.render(candidate)
            if dry_run:
                status = existing_status(sample, *sample_paths(candidate.case_id, out_i, out_m))
                status = status or "written"
            else:
                status = write_sample(sample, candidate.case_id, out_i, out_m, durable=True)
        except DiskFullError:
            raise  # every later write would fail too; a re-run completes the export
        except PoissonBlendError as exc:
            conflicts.append(ExportConflict(candidate.id, candidate.case_id, str(exc)))
        else:
            present.add(candidate.case_id)
            if status == "written":
                written += 1
            else:
                skipped += 1
        if progress is not None:
            progress(k + 1, len(accepted))

    stale: list[StaleExport] = []
    pruned: list[Path] = []
    images, masks = _case_files(out_i), _case_files(out_m)
    for case_id in sorted(set(images) | set(masks)):
        candidate = by_case.get(case_id)
        if candidate is None or candidate.state == "accepted":
            continue  # not ours (e.g. generate), or handled above
        image_path, mask_path = sample_paths(case_id, out_i, out_m)
        if case_id in images and case_id in masks:
            stale.append(StaleExport(candidate.id, case_id, candidate.state, image_path, mask_path))
            if prune:
                pruned += [image_path, mask_path]
                if not dry_run:  # image first: a crash in between leaves a lone mask, repaired later
                    image_path.unlink(missing_ok=True)
                    mask_path.unlink(missing_ok=True)
            else:
                present.add(case_id)
        else:  # half a pair: debris of a killed write or prune
            lone = image_path if case_id in images else mask_path
            repaired.append(lone)
            if not dry_run:
                lone.unlink(missing_ok=True)

    if not dry_run:  # other runs' rows are kept; the store's cases are listed as they are now
        write_manifest(manifest, [_manifest_row(by_case[case_id], holdout) for case_id in present],
                       columns=EXPORT_MANIFEST_COLUMNS, drop=by_case)
    return ExportSummary(written, skipped, conflicts, pruned, stale, manifest, repaired, dry_run,
                         holdout)


def export_zip(out_input_dir: str | os.PathLike, out_mask_dir: str | os.PathLike,
               manifest: str | os.PathLike | None = None, *,
               path: str | os.PathLike | None = None) -> bytes | Path:
    """Zip the two output folders and the manifest, for download.

    The archive holds ``input/<name>.png``, ``mask/<name>.png`` (every visible
    PNG of the folders, sorted) and ``poissonblend_manifest.csv`` if the
    manifest exists.

    Parameters
    ----------
    out_input_dir, out_mask_dir : path
        The folders :func:`export` wrote.
    manifest : path, optional
        Default ``out_input_dir/../poissonblend_manifest.csv``.
    path : path, optional
        Write the zip there (atomically) and return the path; otherwise
        return the zip as bytes.

    Raises
    ------
    OutputError
        If a folder does not exist, or `path` is inside an output folder.
    """
    folders = []
    for role, folder in (("image", out_input_dir), ("mask", out_mask_dir)):
        folder = resolve_path(folder)
        if not folder.is_dir():
            raise OutputError(f"output {role} folder {folder} does not exist")
        folders.append(folder)
    out_i, out_m = folders
    if out_i == out_m:
        raise OutputError(f"output image and mask folders are the same folder ({out_i})")
    manifest = Path(manifest) if manifest is not None else out_i.parent / MANIFEST_NAME
    if path is not None and resolve_path(path).parent in (out_i, out_m):
        raise OutputError(f"zip path {path} must not be inside an output folder")
    buf = _io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for arc_dir, folder in (("input", out_i), ("mask", out_m)):
            for png in sorted(folder.glob("*.png")):
                if not png.name.startswith(".") and png.is_file():
                    zf.write(png, f"{arc_dir}/{png.name}", compress_type=zipfile.ZIP_STORED)
        if manifest.is_file():
            zf.write(manifest, MANIFEST_NAME, compress_type=zipfile.ZIP_DEFLATED)
    data = buf.getvalue()
    if path is None:
        return data
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, data)
    except OSError as exc:
        raise OutputError(f"cannot write zip {path} ({disk_error_message(exc)})") from None
    return path


__all__ = ["DECISION_COLUMNS", "EXPORT_MANIFEST_COLUMNS", "HOLDOUT_COLUMNS", "ExportConflict", "ExportSummary",
           "MANIFEST_NAME", "StaleExport", "export", "export_zip"]
