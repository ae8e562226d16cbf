"""Writing samples into the training-set format, and their manifest.

Shared by ``generate`` (straight to folders) and ``export`` (accepted
candidates): the same file names, the same conflict rules, the same manifest
columns.
"""

from __future__ import annotations

import contextlib
import csv
import io as _io
import os
import time
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Iterable, Literal

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

from .errors import OutputError
from .io import (atomic_write_bytes, disk_error_message, encode_png, resolve_path, same_pixels,
                 slice_name, write_pair)
from .recipe import Recipe, Sample

WriteStatus = Literal["written", "skipped"]

MANIFEST_NAME = "poissonblend_manifest.csv"
"""Default manifest file name, next to the output image folder."""

RECIPE_COLUMNS = ("case_id", "source_file", "lesion_index", "target_file", "x", "y", "mode",
                  "scale", "rotation", "flips", "margin", "seed", "sample_index")
QUALITY_COLUMNS = ("lesion_area", "contrast_source", "contrast_result", "contrast_transferred",
                   "seam_gradient", "brain_fraction", "changed_fraction", "score")
SOURCE_COLUMNS = ("method", "source_case", "target_case")
"""How the sample was blended, and the cases its lesion and its target came from."""
PLAUSIBILITY_COLUMNS = ("source_level", "target_level", "level_shift", "tissue_ratio")
"""Quality fields added later: empty for a candidate queued before they existed."""
MANIFEST_COLUMNS = RECIPE_COLUMNS + QUALITY_COLUMNS + SOURCE_COLUMNS + PLAUSIBILITY_COLUMNS
HOLDOUT_COLUMN = "holdout_cases"
"""The held-out case ids the samples' run kept out (:func:`holdout_cases`), in ``generate``'s
and ``export``'s manifests."""
MANIFEST_SIGNATURE = ("case_id", "source_file", "lesion_index", "target_file", "x", "y", "mode",
                      "scale", "rotation", "flips", "margin", "seed", "sample_index", "lesion_area",
                      "contrast_source", "contrast_result", "contrast_transferred",
                      "seam_gradient", "brain_fraction", "changed_fraction", "score")
"""The first columns of every manifest poissonblend ever wrote, in this order (never change it;
new columns are appended after them). A CSV whose header does not start with exactly these is
not ours, and is never merged into or replaced."""
MANIFEST_LOCK_SECONDS = 60
"""How long a manifest merge waits for another run's merge into the same folder."""


def prepare_output_dirs(out_input_dir: Path, out_mask_dir: Path, *,
                        forbidden: Iterable[Path] = (), create: bool = True) -> tuple[Path, Path]:
    """Check (and with `create`, make) the two output folders; return them resolved.

    Raises
    ------
    OutputError
        If they are the same folder, either is an existing file, or either is
        one of `forbidden` (the dataset's own folders).
    """
    out_input_dir, out_mask_dir = resolve_path(out_input_dir), resolve_path(out_mask_dir)
    if out_input_dir == out_mask_dir:
        raise OutputError(f"output image and mask folders are the same folder ({out_input_dir})")
    bad = {resolve_path(p) for p in forbidden}
    for role, folder in (("image", out_input_dir), ("mask", out_mask_dir)):
        if folder in bad:
            raise OutputError(f"output {role} folder {folder} is an input folder; "
                              "augmented data must go to other folders")
        existing = next(p for p in (folder, *folder.parents) if p.exists())
        if not existing.is_dir():
            raise OutputError(f"output {role} folder {folder}: {existing} is a file, not a folder")
    for folder in (out_input_dir, out_mask_dir) if create else ():
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create output folder {folder} ({exc.strerror})") from None
    return out_input_dir, out_mask_dir


@contextlib.contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on an output folder while an export or generate writes into it.

    A lock on the folder itself (flock), so no lock file is left in it; the
    kernel releases it when the process dies, even by SIGKILL. Without it, two
    runs could each merge the manifest and one would drop the other's rows.

    Raises
    ------
    OutputError
        If another run holds the lock.
    """
    if fcntl is None:  # pragma: no cover - Windows: no cross-process lock
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OutputError(f"another export or generate is writing to {folder} right now; "
                              "wait for it to finish") from None
        yield
    finally:
        os.close(fd)


def sample_paths(case_id: str, out_input_dir: Path, out_mask_dir: Path) -> tuple[Path, Path]:
    """Image and mask path of a single-slice output case ``slice_<case_id>_0000.png``."""
    name = slice_name(case_id, 0)
    return Path(out_input_dir) / name, Path(out_mask_dir) / name


def existing_status(sample: Sample, image_path: Path, mask_path: Path) -> WriteStatus | None:
    """``"skipped"`` if both files hold this sample, None if neither exists.

    Raises
    ------
    OutputError
        If either file exists with different pixels (never overwritten).
    """
    have = [p.exists() for p in (image_path, mask_path)]
    if not any(have):
        return None
    for path, pixels, exists in ((image_path, sample.image, have[0]), (mask_path, sample.mask, have[1])):
        if exists and not same_pixels(path, pixels):
            raise OutputError(f"{path} already exists with different content; "
                              "refusing to overwrite it (move it away or choose another folder)")
    return "skipped" if all(have) else None


def write_sample(sample: Sample, case_id: str, out_input_dir: Path, out_mask_dir: Path, *,
                 durable: bool = False) -> WriteStatus:
    """Write one sample as ``slice_<case_id>_0000.png`` in both folders, atomically.

    The folders are created if missing. An identical existing pair is skipped;
    a half-written pair (mask without image, after a crash) is completed.
    `durable`: see :func:`io.write_pair`.

    Raises
    ------
    OutputError
        If a file of that name exists with different pixels, or the folders
        cannot be written.
    """
    image_path, mask_path = sample_paths(case_id, out_input_dir, out_mask_dir)
    for folder in (image_path.parent, mask_path.parent):
        if not folder.is_dir():
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise OutputError(f"cannot make output folder {folder} ({exc.strerror or exc})") from None
    if existing_status(sample, image_path, mask_path) == "skipped":
        return "skipped"
    write_pair(image_path, mask_path, encode_png(sample.image), encode_png(sample.mask),
               durable=durable)
    return "written"


def holdout_cases(holdout: Collection[str]) -> str:
    """The :data:`HOLDOUT_COLUMN` value: the held-out case ids, sorted, space-separated."""
    return " ".join(sorted(holdout))


def manifest_row(case_id: str, recipe: Recipe, quality: dict, *, seed: int | None = None,
                 sample_index: int | None = None) -> dict:
    """One manifest row (provenance of one output case) with :data:`MANIFEST_COLUMNS`."""
    row = {"case_id": case_id, "source_file": recipe.source, "lesion_index": recipe.lesion,
           "target_file": recipe.target, "x": recipe.x, "y": recipe.y, "mode": recipe.mode,
           "scale": recipe.scale, "rotation": recipe.rotation, "flips": recipe.flips,
           "margin": recipe.margin, "seed": "" if seed is None else seed,
           "sample_index": "" if sample_index is None else sample_index}
    row.update({k: quality[k] for k in QUALITY_COLUMNS})
    row.update(method=recipe.method, source_case=recipe.source_case, target_case=recipe.target_case)
    row.update({k: "" if quality.get(k) is None else quality[k] for k in PLAUSIBILITY_COLUMNS})
    return row


def _manifest_header(path: Path) -> list[str] | None:
    """The header of the manifest at `path` (None if there is no file).

    Raises
    ------
    OutputError
        If `path` is a folder, unreadable, or a file that is not a poissonblend
        manifest (its header does not start with :data:`MANIFEST_SIGNATURE`).
    """
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            header = next(csv.reader(fh), [])
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise OutputError(f"manifest path {path} is a folder") from None
    except OSError as exc:
        raise OutputError(f"cannot read manifest {path} ({disk_error_message(exc)})") from None
    except (UnicodeDecodeError, csv.Error):
        header = []
    if tuple(header[:len(MANIFEST_SIGNATURE)]) != MANIFEST_SIGNATURE or len(set(header)) != len(header):
        raise OutputError(f"{path} exists and is not a poissonblend manifest (its first line is not "
                          "the manifest's columns); refusing to change it: choose another --manifest")
    return header


def check_manifest(path: str | os.PathLike, *, outputs: Iterable[Path] = ()) -> Path:
    """Check that a manifest may be written at `path` before a run writes anything; return it.

    Raises
    ------
    OutputError
        If `path` is a folder, inside one of the output folders `outputs` (the
        training code would read it as data), or an existing file that is not
        a poissonblend manifest.
    """
    path = resolve_path(path)
    if path.parent in {resolve_path(p) for p in outputs}:
        raise OutputError(f"manifest {path} must not be inside an output folder "
                          "(the training code would read it as data)")
    _manifest_header(path)
    return path


def read_manifest(path: Path) -> list[dict]:
    """Rows of an existing manifest CSV ([] if there is none).

    Raises
    ------
    OutputError
        If the file is not a poissonblend manifest (see :data:`MANIFEST_SIGNATURE`).
    """
    return _read_manifest(path)[1]


def _read_manifest(path: Path) -> tuple[list[str], list[dict]]:
    """Header and rows of the manifest at `path` (([], []) if there is none); checked as above."""
    header = _manifest_header(path)
    if header is None:
        return [], []
    with open(path, newline="", encoding="utf-8") as fh:
        return header, list(csv.DictReader(fh))


@contextlib.contextmanager
def manifest_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on the manifest's folder while a run merges into the manifest.

    Two runs (e.g. ``generate`` into sibling folders) sharing one manifest then
    merge one after the other instead of each dropping the other's rows. The
    lock is on the folder (flock), so no lock file is left; the kernel releases
    it when the process dies.

    Raises
    ------
    OutputError
        If another run holds it for longer than :data:`MANIFEST_LOCK_SECONDS`.
    """
    if fcntl is None:  # pragma: no cover - Windows: no cross-process lock
        yield
        return
    try:
        fd = os.open(path.parent, os.O_RDONLY)
    except OSError as exc:
        raise OutputError(f"cannot open the folder of manifest {path} ({disk_error_message(exc)})") from None
    try:
        deadline = time.monotonic() + MANIFEST_LOCK_SECONDS
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise OutputError(f"another run has been writing manifest {path} for "
                                      f"{MANIFEST_LOCK_SECONDS} s; try again later") from None
                time.sleep(0.005)
        yield
    finally:
        os.close(fd)


def write_manifest(path: Path, rows: list[dict], *, columns: tuple[str, ...] = MANIFEST_COLUMNS,
                   merge: bool = True, drop: Collection[str] = ()) -> Path:
    """Write the manifest CSV atomically, one row per case id, sorted by case id.

    With `merge`, rows already in the file for other case ids are kept (and so
    are its extra columns, e.g. an export's decision columns), except those of
    the case ids in `drop`, so the manifest describes every case poissonblend
    wrote into the folders. Reading, merging and writing happen under
    :func:`manifest_lock`, so concurrent runs lose no rows. Only a poissonblend
    manifest is ever merged into or replaced.

    Raises
    ------
    OutputError
        If `path` is a folder, an existing file that is not a poissonblend
        manifest, or cannot be written (its folder is created if missing).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the folder of manifest {path} ({disk_error_message(exc)})") from None
    with manifest_lock(path):
        header, existing = _read_manifest(path)
        merged = {r["case_id"]: r for r in existing if r["case_id"] not in drop} if merge else {}
        if merge:
            columns = tuple(columns) + tuple(c for c in header if c not in columns)
        for row in rows:
            merged[row["case_id"]] = {**merged.get(row["case_id"], {}), **row}
        buf = _io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore",
                                lineterminator="\n")
        writer.writeheader()
        for case_id in sorted(merged):
            writer.writerow(merged[case_id])
        atomic_write_bytes(path, buf.getvalue().encode())
    return path
