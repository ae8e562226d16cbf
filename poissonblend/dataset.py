"""The training-set format: paired ``input/`` and ``mask/`` folders of 8-bit PNGs.

Files are paired by name (never by position). Opening a dataset validates every
pair and builds a *lesion index* (per slice: shape, lesions, the tissue threshold of
its case, brain area and bounding box, content digests) that is cached on disk, keyed by each file's size and mtime, so that
re-opening a large dataset only stats the files. The cache is a NumPy ``.npz``
of columns (one row per slice, one per lesion), and a slice's lesions become
:class:`LesionInfo` objects only when they are read, so re-opening 18,000
slices with 100,000 lesions takes a fraction of a second.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import mmap
import multiprocessing
import os
import threading
import warnings
import zipfile
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import DatasetError, OutputError, PoissonBlendWarning
from .io import (atomic_write_bytes, decode_gray_png, disk_error_message, parse_slice_name,
                 read_file_bytes, read_gray_png, resolve_path)
from .lesions import LesionInfo, label_lesions
from .machine import end_with_parent, memory_bytes, usable_cpus
from .placement import bbox_rc, brain_mask, histogram, tissue_threshold

INDEX_VERSION = 3
"""Version 3: brain masks cut at a per-case tissue threshold (stored per slice)."""
MIN_TARGET_TISSUE = 0.2
"""Default least brain area of a target, as a fraction of the largest in its case."""
PARALLEL_MIN_SLICES = 400
CACHE_BYTES = 512 * 2**20
"""Decoded slices each :class:`Dataset` keeps in memory (least recently used dropped first)."""


SHARED_BYTES = max(CACHE_BYTES, min(4 * 2**30, (memory_bytes() or 0) // 4))
"""Largest :class:`SharedSlices` block: a quarter of the usable RAM, at most 4 GiB (one copy
for all workers), at least :data:`CACHE_BYTES`."""


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/poissonblend`` (default ``~/.cache/poissonblend``)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "poissonblend"


@dataclass(frozen=True, eq=False)
class LesionTable:
    """Every lesion of a dataset, one row each, ordered by slice name, then lesion index.

    Attributes
    ----------
    slice_row : (L,) ndarray of int64
        Row of the lesion's slice in :attr:`Dataset.slices`.
    index : (L,) ndarray of int64
        The lesion's index within its slice (:attr:`LesionInfo.index`).
    area : (L,) ndarray of int64
        Pixel count.
    bbox_rc : (L, 4) ndarray of int64
        ``(row0, col0, row1, col1)``, ends exclusive.
    centroid_rc : (L, 2) ndarray of float64
        Mean (row, col) of its pixels.
    """

    slice_row: np.ndarray
    index: np.ndarray
    area: np.ndarray
    bbox_rc: np.ndarray
    centroid_rc: np.ndarray

    @classmethod
    def from_counts(cls, counts: np.ndarray, area: np.ndarray, bbox_rc: np.ndarray,
                    centroid_rc: np.ndarray) -> "LesionTable":
        """The table of slices holding ``counts[k]`` lesions each, given their columns in order."""
        counts = np.asarray(counts, np.int64)
        slice_row = np.repeat(np.arange(len(counts)), counts)
        starts = np.cumsum(counts) - counts
        return cls(slice_row, np.arange(len(slice_row)) - starts[slice_row],
                   np.asarray(area, np.int64), np.asarray(bbox_rc, np.int64).reshape(-1, 4),
                   np.asarray(centroid_rc, np.float64).reshape(-1, 2))

    def __len__(self) -> int:
        return len(self.area)

    def infos(self, start: int, stop: int) -> tuple[LesionInfo, ...]:
        """Rows ``start:stop`` as :class:`LesionInfo` objects."""
        rows = zip(self.index[start:stop].tolist(), self.area[start:stop].tolist(),
                   self.bbox_rc[start:stop].tolist(), self.centroid_rc[start:stop].tolist())
        return tuple(LesionInfo(i, a, tuple(b), tuple(c)) for i, a, b, c in rows)


class SliceLesions(Sequence):
    """The lesions of one slice, a read-only sequence of :class:`LesionInfo`.

    Rows ``start:stop`` of the dataset's :class:`LesionTable`; the objects are
    made the first time the sequence is read (its length needs none).
    """

    __slots__ = ("_table", "_start", "_stop", "_items")

    def __init__(self, table: LesionTable, start: int, stop: int):
        self._table, self._start, self._stop = table, start, stop
        self._items: tuple[LesionInfo, ...] | None = None

    def _all(self) -> tuple[LesionInfo, ...]:
        if self._items is None:
            self._items = self._table.infos(self._start, self._stop)
        return self._items

    def __len__(self) -> int:
        return self._stop - self._start

    def __getitem__(self, k):
        return self._all()[k]

    def __eq__(self, other) -> bool:
        return isinstance(other, Sequence) and self._all() == tuple(other)

    def __hash__(self) -> int:
        return hash(self._all())

    def __repr__(self) -> str:
        return repr(self._all())


@dataclass(frozen=True)
class SliceInfo:
    """One image/mask pair of the dataset, as recorded in the lesion index.

    Attributes
    ----------
    name : str
        File name, identical in both folders.
    case_id, slice_index : str, int
        Parsed from the name.
    shape : tuple of int
        (rows, cols).
    lesions : sequence of LesionInfo
        Its lesion components (a :class:`SliceLesions`).
    brain_area : int
        Pixels in its brain (tissue) mask (0: no tissue, never a target).
    digest : str
        Hash of the image and mask file contents.
    level : float
        Position in its case: 0 = first slice, 1 = last (by ``slice_index`` among
        the case's slices); 0.5 for the only slice of a case.
    threshold : int
        Grey level from which its pixels may be tissue: its case's
        :func:`~poissonblend.placement.tissue_threshold` (the slice's own for
        the only slice of a case).
    brain_bbox_rc : tuple of int
        ``(row0, col0, row1, col1)`` of its brain mask, ends exclusive.
    """

    name: str
    case_id: str
    slice_index: int
    shape: tuple[int, int]
    lesions: Sequence[LesionInfo]
    brain_area: int
    digest: str
    level: float
    threshold: int
    brain_bbox_rc: tuple[int, int, int, int]


def _list_pngs(folder: Path, role: str) -> dict[str, os.stat_result]:
    if not folder.exists():
        raise DatasetError(f"{role} folder {folder} does not exist")
    if not folder.is_dir():
        raise DatasetError(f"{role} folder {folder} is not a folder")
    found: dict[str, os.stat_result] = {}
    junk: list[str] = []
    try:
        with os.scandir(folder) as it:
            for entry in it:
                try:
                    if not entry.is_file():
                        continue
                    if entry.name.lower().endswith(".png") and not entry.name.startswith("."):
                        found[entry.name] = entry.stat()
                    else:
                        junk.append(entry.name)
                except OSError as exc:  # a symbolic link loop, a file that vanished, …
                    raise DatasetError(f"{Path(entry.path)}: cannot read it "
                                       f"({disk_error_message(exc)})") from None
    except OSError as exc:  # the folder itself: no permission to list it
        raise DatasetError(f"{role} folder {folder}: cannot list it ({disk_error_message(exc)})") from None
    if junk:
        shown = ", ".join(sorted(junk)[:3]) + (" …" if len(junk) > 3 else "")
        warnings.warn(f"{folder}: ignored {len(junk)} non-PNG file(s): {shown}",
                      PoissonBlendWarning, stacklevel=3)
    if not found:
        raise DatasetError(f"{role} folder {folder} holds no PNG slices")
    return found


def _index_entry(image_path: Path, mask_path: Path) -> tuple[dict, np.ndarray]:
    """Validate one pair and describe it but for its brain; return the entry and the image."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        image_bytes, mask_bytes = (read_file_bytes(p) for p in (image_path, mask_path))
        image = decode_gray_png(image_bytes, image_path)
        mask = decode_gray_png(mask_bytes, mask_path)
    if image.shape != mask.shape:
        raise DatasetError(
            f"{image_path.name}: image is {image.shape[1]}x{image.shape[0]} px but its "
            f"mask is {mask.shape[1]}x{mask.shape[0]} px")
    _, lesions = label_lesions(mask)
    digest = hashlib.blake2b(image_bytes.tobytes(), digest_size=12)
    digest.update(mask_bytes.tobytes())
    values = np.flatnonzero(np.bincount(mask.ravel(), minlength=256))  # grey levels present
    return {
        "shape": list(image.shape),
        "lesions": [les.to_dict() for les in lesions],
        "digest": digest.hexdigest(),
        "odd_mask_values": [int(v) for v in values if v not in (0, 1, 255)][:5],
        "warnings": [str(w.message) for w in caught],
    }, image


def _index_case(pairs: Sequence[tuple[Path, Path]]) -> list[dict]:
    """Validate and describe the pairs of one case (runs in worker processes).

    The case's tissue threshold comes from the histogram of all its slices
    (a one-slice case: from its own); each slice's brain is cut at it.
    """
    described = [_index_entry(*paths) for paths in pairs]
    threshold = tissue_threshold(sum(histogram(image) for _, image in described))
    for entry, image in described:
        brain = brain_mask(image, threshold=threshold)
        entry.update(threshold=threshold, brain_area=int(np.count_nonzero(brain)),
                     brain_bbox=list(bbox_rc(brain)))
    return [entry for entry, _ in described]


def _index_case_safe(pairs: Sequence[tuple[Path, Path]]) -> list[dict] | str:
    try:
        return _index_case(pairs)
    except DatasetError as exc:
        return str(exc)


PIXELS, BRAIN = 0, 1
"""The two parts of a loaded slice: its pixels (image and lesion mask) and its brain mask."""


class Dataset:
    """A paired training set, opened and indexed.

    Use :func:`open_dataset` to make one. Arrays returned by :meth:`load` and
    :meth:`brain` are cached and read-only.

    Attributes
    ----------
    input_dir, mask_dir : Path
        Absolute folders.
    slices : tuple of SliceInfo
        Sorted by name.
    lesion_table : LesionTable
        Every slice's lesions in one table (for drawing among all of them).
    """

    def __init__(self, input_dir: Path, mask_dir: Path, slices: tuple[SliceInfo, ...],
                 lesion_table: LesionTable):
        self.input_dir = input_dir
        self.mask_dir = mask_dir
        self.slices = slices
        self.lesion_table = lesion_table
        self._row = {s.name: k for k, s in enumerate(slices)}
        self._cache: OrderedDict[tuple[str, int], tuple] = OrderedDict()
        self._cache_bytes = 0
        self._shared: SharedSlices | None = None  # see shared_decoding
        self._lock = threading.Lock()
        self.case_ids = frozenset(s.case_id for s in slices)
        self._case_brain: dict[str, int] = {}
        for s in slices:
            self._case_brain[s.case_id] = max(self._case_brain.get(s.case_id, 0), s.brain_area)
        self.target_names = self.targets(MIN_TARGET_TISSUE)
        self.identity = hashlib.blake2b(
            "\n".join(f"{s.name} {s.digest}" for s in slices).encode(), digest_size=12
        ).hexdigest()

    def __len__(self) -> int:
        return len(self.slices)

    def __repr__(self) -> str:
        return (f"Dataset({str(self.input_dir)!r}, {str(self.mask_dir)!r}: "
                f"{len(self.slices)} slices, {len(self.lesion_table)} lesions)")

    def row(self, name: str) -> int:
        """Position of slice `name` in :attr:`slices`; :class:`DatasetError` if there is none."""
        try:
            return self._row[name]
        except KeyError:
            raise DatasetError(f"{name}: no such slice in {self.input_dir}") from None

    def info(self, name: str) -> SliceInfo:
        """The index entry of slice `name`; :class:`DatasetError` if there is none."""
        return self.slices[self.row(name)]

    def case_brain_area(self, case_id: str) -> int:
        """The largest brain area (px) among the slices of case `case_id` (0 if unknown)."""
        return self._case_brain.get(case_id, 0)

    def targets(self, min_target_tissue: float = MIN_TARGET_TISSUE) -> tuple[str, ...]:
        """Names of the slices a lesion may be placed on, in name order.

        A target has tissue, at least `min_target_tissue` × the largest brain
        area of its case: the near-empty first and last slices of a volume are
        never targets.
        """
        return tuple(s.name for s in self.slices if s.brain_area > 0
                     and s.brain_area >= min_target_tissue * self._case_brain[s.case_id])

    def load(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Decode slice `name` once and keep it in memory.

        Returns
        -------
        image : (M, N) ndarray of uint8
        lesion_mask : (M, N) ndarray of bool
            True where the mask is > 0 (its lesions are ``self.info(name).lesions``;
            :func:`~poissonblend.lesions.lesion_component` cuts out one of them).
        """
        return self._part(name, PIXELS)

    def brain(self, name: str) -> np.ndarray:
        """The brain mask of slice `name` that placement uses, (M, N) bool, made once.

        Only targets need one, so it is made apart from :meth:`load`.
        """
        return self._part(name, BRAIN)[0]

    def decode(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Read slice `name` from disk, uncached: the arrays :meth:`load` returns, writeable."""
        info = self.info(name)
        image = read_gray_png(self.input_dir / name)
        if image.shape != tuple(info.shape):
            raise DatasetError(f"{name}: the image changed shape since the dataset was opened")
        if info.lesions:
            mask = read_gray_png(self.mask_dir / name)
            if mask.shape != image.shape:
                raise DatasetError(f"{name}: the mask changed shape since the dataset was opened")
            lesion_mask = mask > 0
        else:  # the index says the mask is empty: no need to decode it
            lesion_mask = np.zeros(image.shape, bool)
        return image, lesion_mask

    def _make_part(self, name: str, part: int) -> tuple[np.ndarray, ...]:
        """Part `part` (:data:`PIXELS` or :data:`BRAIN`) of slice `name`, made afresh."""
        if part == PIXELS:
            return self.decode(name)
        return (brain_mask(self.load(name)[0], threshold=self.info(name).threshold),)

    def _part(self, name: str, part: int) -> tuple[np.ndarray, ...]:
        if self._shared is not None:
            return self._shared.get(self, name, part)
        with self._lock:
            hit = self._cache.get((name, part))
            if hit is not None:
                self._cache.move_to_end((name, part))
                return hit
        return self._remember(name, part, self._make_part(name, part))

    def _remember(self, name: str, part: int, arrays: tuple) -> tuple:
        """Keep `arrays` (read-only from now on) as part `part` of slice `name`; return the kept ones."""
        for a in arrays:
            a.flags.writeable = False
        key = (name, part)
        with self._lock:  # the app shares one Dataset between sessions' threads
            if key not in self._cache:
                self._cache[key] = arrays
                self._cache_bytes += sum(a.nbytes for a in arrays)
            while self._cache_bytes > CACHE_BYTES and len(self._cache) > 1:
                _, old = self._cache.popitem(last=False)
                self._cache_bytes -= sum(a.nbytes for a in old)
            return self._cache[key]

    @contextlib.contextmanager
    def shared_decoding(self) -> Iterator[bool]:
        """Inside this context, :meth:`load` and :meth:`brain` fill a :class:`SharedSlices` block.

        Processes forked inside the context share the block: each slice is
        decoded once for all of them. Yields False (and changes nothing) if the
        block would be larger than :data:`SHARED_BYTES`.
        """
        if SharedSlices.nbytes(self) > SHARED_BYTES:
            yield False
            return
        previous, self._shared = self._shared, SharedSlices(self)
        try:
            yield True
        finally:
            self._shared = previous

    def preload(self) -> None:
        """Decode every slice and make its brain mask now."""
        for s in self.slices:
            self.load(s.name)
            self.brain(s.name)


class SharedSlices:
    """Decoded slices in one block of memory that forked processes share.

    Made by :meth:`Dataset.shared_decoding` before forking workers. From then
    on, :meth:`Dataset.load` and :meth:`Dataset.brain` in any of the processes
    make a slice's part (pixels, or brain mask) into the block the first time
    one of them needs it; every process then reads it from there (read-only
    views, outside the dataset's own size-limited cache). Each part is made
    once for all processes instead of once per process, held once in memory,
    and only parts someone asks for are made.

    A part's state (empty, being made, ready) is read and set under one lock,
    which also orders the bytes before the "ready" mark on every platform. A
    process that needs a part another one is still making makes its own copy
    rather than wait.

    Parameters
    ----------
    dataset : Dataset
        Every slice gets a place; pages of slices never asked for stay unused.
    """

    #: Bytes per pixel: image (uint8) and lesion mask (bool), then brain (bool).
    BYTES_PER_PX = 3
    EMPTY, BUSY, READY = 0, 1, 2

    def __init__(self, dataset: Dataset):
        self._offsets, size = self._layout(dataset)
        self._block = mmap.mmap(-1, max(size, 1))  # anonymous, MAP_SHARED: survives fork
        self._state = np.frombuffer(self._block, np.uint8, 2 * len(dataset.slices)).reshape(-1, 2)
        self._lock = multiprocessing.Lock()  # a semaphore: shared by forked processes
        self._views: dict[tuple[int, int], tuple] = {}  # this process's views of ready parts

    @classmethod
    def _layout(cls, dataset: Dataset) -> tuple[np.ndarray, int]:
        """Byte offset of each slice, and the block's size in bytes."""
        sizes = np.array([cls.BYTES_PER_PX * rows * cols for rows, cols in
                          (s.shape for s in dataset.slices)], np.int64)
        sizes = -(-sizes // 8) * 8  # each slice 8-byte aligned
        first = -(-2 * len(sizes) // 8) * 8  # two state bytes per slice, then the slices
        ends = first + np.cumsum(sizes)
        return ends - sizes, int(ends[-1]) if len(ends) else first

    @classmethod
    def nbytes(cls, dataset: Dataset) -> int:
        """Size of the block for `dataset`, in bytes (its address space; memory as used)."""
        return cls._layout(dataset)[1]

    def _arrays(self, k: int, part: int, shape: tuple[int, int]) -> tuple[np.ndarray, ...]:
        px = shape[0] * shape[1]
        offset = int(self._offsets[k])
        kinds = ((0, np.uint8), (1, np.bool_)) if part == PIXELS else ((2, np.bool_),)
        return tuple(np.frombuffer(self._block, dtype, px, offset + j * px).reshape(shape)
                     for j, dtype in kinds)

    def _claim(self, k: int, part: int) -> int:
        """The part's state; EMPTY means it is now ours (BUSY) to make."""
        with self._lock:
            state = int(self._state[k, part])
            if state == self.EMPTY:
                self._state[k, part] = self.BUSY
            return state

    def _mark(self, k: int, part: int, state: int) -> None:
        with self._lock:
            self._state[k, part] = state

    def get(self, dataset: Dataset, name: str, part: int) -> tuple[np.ndarray, ...]:
        """Part `part` of slice `name`, made into the block if need be."""
        k = dataset.row(name)
        views = self._views.get((k, part))
        if views is not None:
            return views
        state = self._claim(k, part)
        if state == self.BUSY:  # another process is making it right now
            return dataset._remember(name, part, dataset._make_part(name, part))
        views = self._arrays(k, part, dataset.slices[k].shape)
        if state == self.EMPTY:
            try:
                for view, array in zip(views, dataset._make_part(name, part)):
                    view[...] = array
            except BaseException:
                self._mark(k, part, self.EMPTY)
                raise
            self._mark(k, part, self.READY)
        for a in views:
            a.flags.writeable = False
        self._views[(k, part)] = views
        return views


def _stat_key(st: os.stat_result) -> list[int]:
    return [st.st_size, st.st_mtime_ns]


def open_dataset(input_dir: str | os.PathLike, mask_dir: str | os.PathLike, *,
                 cache_dir: str | os.PathLike | None = None, workers: int | None = None,
                 require_lesions: bool = True) -> Dataset:
    """Open a training set: pair, validate and index its slices.

    Parameters
    ----------
    input_dir, mask_dir : path
        Folders of 8-bit greyscale PNGs with identical names
        ``slice_{case_id}_{slice:04d}.png``; masks are lesion where > 0.
    cache_dir : path, optional
        Where the lesion index is cached (default :func:`default_cache_dir`);
        if it cannot be written, the index is simply not cached.
    workers : int, optional
        Processes used to index new files (default: :func:`usable_cpus`, for large sets).
    require_lesions : bool
        Raise if no slice has a lesion (augmentation needs at least one).

    Raises
    ------
    DatasetError
        Missing or empty folder, unpaired file, name not in the slice format,
        unreadable/corrupt/16-bit/colour PNG, image and mask of different shapes,
        or no lesion anywhere.

    Warns
    -----
    PoissonBlendWarning
        Junk files ignored, colour PNGs read as grey, mask values other than 0/1/255.
    """
    input_dir = resolve_path(input_dir, DatasetError)
    mask_dir = resolve_path(mask_dir, DatasetError)
    if input_dir == mask_dir:
        raise DatasetError(f"input and mask folder are the same folder ({input_dir})")
    images = _list_pngs(input_dir, "input")
    masks = _list_pngs(mask_dir, "mask")
    _check_pairing(images, masks, input_dir, mask_dir)
    names = sorted(images)
    check_images_are_not_masks(input_dir, mask_dir, names)
    parsed = [parse_slice_name(name) for name in names]
    stats = np.array([_stat_key(images[name]) + _stat_key(masks[name]) for name in names], np.int64)

    cache_path = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    key = hashlib.blake2b(f"{input_dir}\n{mask_dir}".encode(), digest_size=10).hexdigest()
    cache_file = cache_path / f"index-{key}.npz"
    index = _read_index(cache_file)
    if index is None or index["names"].tolist() != names or not np.array_equal(index["stat"], stats):
        index = _update_index(index, names, stats, input_dir, mask_dir, workers)
        _write_index(cache_file, index)
    _emit_warnings(json.loads(str(index["notes"])))

    counts = index["lesion_count"]
    table = LesionTable.from_counts(counts, index["lesion_area"], index["lesion_bbox"],
                                    index["lesion_centroid"])
    stops = np.cumsum(counts).tolist()
    slices = tuple(
        SliceInfo(name, case_id, slice_index, (rows, cols), SliceLesions(table, stop - n, stop),
                  brain_area, digest, level, threshold, tuple(bbox))
        for name, (case_id, slice_index), (rows, cols), n, stop, brain_area, digest, level,
        threshold, bbox in zip(
            names, parsed, index["shape"].tolist(), counts.tolist(), stops,
            index["brain_area"].tolist(), index["digest"].tolist(), slice_levels(parsed),
            index["threshold"].tolist(), index["brain_bbox"].tolist()))
    dataset = Dataset(input_dir, mask_dir, slices, table)
    if require_lesions and not len(table):
        raise DatasetError(f"no lesion in any mask of {mask_dir}: nothing to blend")
    return dataset


def slice_levels(parsed: Sequence[tuple[str, int]]) -> list[float]:
    """Level of each slice in its case: rank by slice index / (slices in the case − 1).

    Parameters
    ----------
    parsed : sequence of (case_id, slice_index)

    Returns
    -------
    list of float
        0 for a case's first slice, 1 for its last, 0.5 for the only slice of a case.
    """
    by_case: dict[str, list[int]] = {}
    for case_id, slice_index in parsed:
        by_case.setdefault(case_id, []).append(slice_index)
    rank = {case_id: {z: k for k, z in enumerate(sorted(set(zs)))} for case_id, zs in by_case.items()}
    levels = []
    for case_id, slice_index in parsed:
        n = len(rank[case_id])
        levels.append(rank[case_id][slice_index] / (n - 1) if n > 1 else 0.5)
    return levels


MASK_LIKE_VALUES = 3
"""An input folder whose sampled slices hold at most this many grey values in all, each one a mask
value (:data:`MASK_VALUES`), looks like masks."""
MASK_VALUES = frozenset({0, 1, 255})


def check_images_are_not_masks(input_dir: Path, mask_dir: Path, names: Sequence[str], *,
                               sample: int = 16) -> None:
    """Raise if the input folder holds masks instead of images (folders swapped or mixed up).

    Reads up to `sample` pairs spread over `names`. The input folder looks like masks when
    its sampled slices hold at most :data:`MASK_LIKE_VALUES` distinct grey values in all, each
    one of :data:`MASK_VALUES` (masks are 0/255 or 0/1; a brain image has dozens), or when
    every sampled image equals its mask pixel for pixel.

    Raises
    ------
    DatasetError
        Naming the folder and what was found. Unreadable files are left to the index.
    """
    picked = list(names[::max(1, len(names) // sample)])[:sample]
    values: set[int] = set()
    identical = True
    for name in picked:
        try:
            with warnings.catch_warnings():  # the index warns about odd files, once
                warnings.simplefilter("ignore")
                image, mask = read_gray_png(input_dir / name), read_gray_png(mask_dir / name)
        except (DatasetError, OSError):
            return  # the index reports unreadable files, with their names
        values.update(np.unique(image).tolist())
        identical &= image.shape == mask.shape and np.array_equal(image, mask)
        if len(values) > MASK_LIKE_VALUES and not identical:
            return
    if identical and picked:
        raise DatasetError(f"the input folder {input_dir} and the mask folder {mask_dir} hold the "
                           f"same pictures ({len(picked)} of {len(names)} checked): give the "
                           "images as the input folder and the lesion masks as the mask folder")
    if picked and len(values) <= MASK_LIKE_VALUES and values <= MASK_VALUES:
        shown = ", ".join(map(str, sorted(values)))
        raise DatasetError(f"the input folder {input_dir} looks like masks: its slices hold only "
                           f"the grey values {shown} ({len(picked)} of {len(names)} checked); "
                           "give the images as the input folder")


def _check_pairing(images: dict, masks: dict, input_dir: Path, mask_dir: Path) -> None:
    for missing, have, folder in ((set(images) - set(masks), "image", mask_dir),
                                  (set(masks) - set(images), "mask", input_dir)):
        if missing:
            first = sorted(missing)
            more = f" (and {len(first) - 1} more)" if len(first) > 1 else ""
            other = "mask" if have == "image" else "image"
            raise DatasetError(f"{first[0]}: {have} has no {other} in {folder}{more}")


def _build_entries(names: list[str], input_dir: Path, mask_dir: Path,
                   workers: int | None) -> dict[str, dict]:
    """Index the pairs `names` afresh, a whole case at a time (in worker processes for many).

    `names` must hold every slice of each case it touches (a case's tissue
    threshold comes from all its slices).
    """
    cases: dict[str, list[str]] = {}
    for name in names:
        cases.setdefault(parse_slice_name(name)[0], []).append(name)
    groups = list(cases.values())
    jobs = [[(input_dir / name, mask_dir / name) for name in group] for group in groups]
    n_workers = workers if workers is not None else usable_cpus()
    if n_workers > 1 and len(names) >= PARALLEL_MIN_SLICES:
        from concurrent.futures import ProcessPoolExecutor  # only index builds need it

        chunk = max(1, min(64, len(jobs) // (8 * n_workers)))
        with ProcessPoolExecutor(n_workers, initializer=end_with_parent,
                                 initargs=(os.getpid(),)) as pool:
            results = list(pool.map(_index_case_safe, jobs, chunksize=chunk))
    else:
        results = [_index_case_safe(j) for j in jobs]
    entries: dict[str, dict] = {}
    for group, result in zip(groups, results):
        if isinstance(result, str):
            raise DatasetError(result)
        entries.update(zip(group, result))
    return entries


_INDEX_COLUMNS = ("names", "stat", "shape", "threshold", "brain_area", "brain_bbox", "digest",
                  "lesion_count", "lesion_area", "lesion_bbox", "lesion_centroid", "notes")


def _update_index(old: dict | None, names: list[str], stats: np.ndarray, input_dir: Path,
                  mask_dir: Path, workers: int | None) -> dict:
    """The index of `names`: rows of `old` whose case kept all its files (same names, sizes and
    mtimes), the rest built."""
    entries: dict[str, dict] = {}
    if old is not None:
        lookup = {name: k for k, name in enumerate(old["names"].tolist())}
        rows = np.array([lookup.get(name, -1) for name in names], np.int64)
        kept = (rows >= 0) & (old["stat"][rows] == stats).all(axis=1)
        kept &= _whole_cases(names, kept, old["names"].tolist())
        starts = np.cumsum(old["lesion_count"]) - old["lesion_count"]
        notes = json.loads(str(old["notes"]))
        for name, k in zip(np.array(names)[kept].tolist(), rows[kept].tolist()):
            entries[name] = _entry_of_row(old, k, int(starts[k]), notes.get(name, {}))
    todo = [name for name in names if name not in entries]
    entries.update(_build_entries(todo, input_dir, mask_dir, workers))
    ordered = [entries[name] for name in names]
    lesions = [les for e in ordered for les in e["lesions"]]
    notes = {name: {k: e[k] for k in ("warnings", "odd_mask_values") if e[k]}
             for name, e in zip(names, ordered) if e["warnings"] or e["odd_mask_values"]}
    return {
        "names": np.array(names, dtype=str),
        "stat": stats,
        "shape": np.array([e["shape"] for e in ordered], np.int64).reshape(-1, 2),
        "threshold": np.array([e["threshold"] for e in ordered], np.int64),
        "brain_area": np.array([e["brain_area"] for e in ordered], np.int64),
        "brain_bbox": np.array([e["brain_bbox"] for e in ordered], np.int64).reshape(-1, 4),
        "digest": np.array([e["digest"] for e in ordered], dtype=str),
        "lesion_count": np.array([len(e["lesions"]) for e in ordered], np.int64),
        "lesion_area": np.array([les["area"] for les in lesions], np.int64),
        "lesion_bbox": np.array([les["bbox_rc"] for les in lesions], np.int64).reshape(-1, 4),
        "lesion_centroid": np.array([les["centroid_rc"] for les in lesions],
                                    np.float64).reshape(-1, 2),
        "notes": np.array(json.dumps(notes)),
    }


def _whole_cases(names: list[str], kept: np.ndarray, old_names: list[str]) -> np.ndarray:
    """`kept` (one bool per name) narrowed to the cases whose slices are all kept and all there."""
    case_of = [parse_slice_name(name)[0] for name in names]
    count: dict[str, int] = {}
    for name in old_names:
        case_id = parse_slice_name(name)[0]
        count[case_id] = count.get(case_id, 0) + 1
    for case_id in case_of:
        count[case_id] = count.get(case_id, 0) - 1
    changed = {c for c, ok in zip(case_of, kept.tolist()) if not ok}
    changed |= {c for c, n in count.items() if n}  # slices added or gone
    return np.array([c not in changed for c in case_of], bool)


def _entry_of_row(index: dict, k: int, start: int, notes: dict) -> dict:
    """Row `k` of a cached index as the entry :func:`_index_entry` made for it."""
    stop = start + int(index["lesion_count"][k])
    lesions = [{"index": i, "area": a, "bbox_rc": b, "centroid_rc": c} for i, (a, b, c) in enumerate(zip(
        index["lesion_area"][start:stop].tolist(), index["lesion_bbox"][start:stop].tolist(),
        index["lesion_centroid"][start:stop].tolist()))]
    return {"shape": index["shape"][k].tolist(), "lesions": lesions,
            "threshold": int(index["threshold"][k]), "brain_area": int(index["brain_area"][k]),
            "brain_bbox": index["brain_bbox"][k].tolist(), "digest": str(index["digest"][k]),
            "warnings": notes.get("warnings", []), "odd_mask_values": notes.get("odd_mask_values", [])}


def _read_index(path: Path) -> dict | None:
    """The cached index columns, or None if there is no usable cache."""
    try:
        with np.load(path, allow_pickle=False) as data:
            if int(data["version"]) != INDEX_VERSION:
                return None
            return {name: data[name] for name in _INDEX_COLUMNS}
    except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile):  # damaged: build again
        return None


def _write_index(path: Path, index: dict) -> None:
    """Cache the index at `path`; if that folder cannot be written, warn once and go on uncached."""
    buf = io.BytesIO()
    np.savez(buf, version=np.array(INDEX_VERSION), **index)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, buf.getvalue())
        path.with_suffix(".json").unlink(missing_ok=True)  # the index as version 1 stored it
    except (OSError, OutputError) as exc:  # a read-only cache only costs speed
        reason = disk_error_message(exc) if isinstance(exc, OSError) else str(exc)
        warnings.warn(f"the lesion index is not cached: {path.parent} cannot be written ({reason}); "
                      "set XDG_CACHE_HOME to a writable folder to open the dataset faster next time",
                      PoissonBlendWarning, stacklevel=3)


def _emit_warnings(notes: dict) -> None:
    """Warn once for what indexing noticed (`notes`: per slice, its warnings and odd mask values)."""
    messages = [m for e in notes.values() for m in e.get("warnings", [])]
    if messages:
        extra = f" (and {len(messages) - 1} more like it)" if len(messages) > 1 else ""
        warnings.warn(messages[0] + extra, PoissonBlendWarning, stacklevel=3)
    odd = sorted({v for e in notes.values() for v in e.get("odd_mask_values", [])})
    if odd:
        warnings.warn(f"masks contain values other than 0/1/255 ({odd[:5]}); "
                      "every value > 0 is taken as lesion", PoissonBlendWarning, stacklevel=3)
