"""PNG reading/writing, atomic file writes and training-set file naming.

File names follow ``slice_{case_id}_{slice:04d}.png``; the case id never
contains an underscore, so ``name.split('_')[1]`` recovers it.
"""

from __future__ import annotations

import itertools
import os
import re
import threading
import warnings
from pathlib import Path

import cv2
import numpy as np

from .errors import DatasetError, OutputError, PoissonBlendWarning

SLICE_NAME_RE = re.compile(r"^slice_([^_]+)_(\d{4,})\.png$")


def slice_name(case_id: str, slice_index: int) -> str:
    """Return the training-set file name of one slice.

    Raises
    ------
    ValueError
        If `case_id` is empty or contains ``_`` (the loader splits on it).
    """
    if not case_id or "_" in case_id or "/" in case_id:
        raise ValueError(f"case id {case_id!r} must be non-empty and contain no '_' or '/'")
    return f"slice_{case_id}_{slice_index:04d}.png"


def parse_slice_name(name: str) -> tuple[str, int]:
    """Split ``slice_{case_id}_{slice:04d}.png`` into ``(case_id, slice_index)``.

    Raises
    ------
    DatasetError
        If `name` is not in that format.
    """
    m = SLICE_NAME_RE.match(name)
    if m is None:
        raise DatasetError(
            f"{name}: file name is not in the slice format slice_<case_id>_<NNNN>.png"
        )
    return m.group(1), int(m.group(2))


def read_gray_png(path: Path) -> np.ndarray:
    """Read an 8-bit greyscale PNG as a ``(H, W)`` uint8 array (row, col).

    A colour PNG whose channels are all equal is converted with a warning.

    Raises
    ------
    DatasetError
        If the file is unreadable or corrupt, 16-bit, or colour with unequal channels.
    """
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read file ({exc.strerror or exc})") from None
    return decode_gray_png(data, path)


def decode_gray_png(data: np.ndarray | bytes, path: Path | str) -> np.ndarray:
    """Decode PNG bytes (see :func:`read_gray_png`); `path` is only used in messages."""
    buf = np.frombuffer(data, dtype=np.uint8) if isinstance(data, bytes) else data
    image = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if buf.size else None
    if image is None:
        raise DatasetError(f"{path}: not a readable PNG file (corrupt or wrong format)")
    if image.dtype != np.uint8:
        raise DatasetError(
            f"{path}: {image.dtype.itemsize * 8}-bit PNG; expected 8-bit greyscale"
        )
    if image.ndim == 3:
        colour = image[:, :, :3]
        if not (np.array_equal(colour[:, :, 0], colour[:, :, 1])
                and np.array_equal(colour[:, :, 0], colour[:, :, 2])):
            raise DatasetError(f"{path}: colour PNG; expected 8-bit greyscale")
        warnings.warn(
            f"{path}: colour PNG with equal channels, read as greyscale",
            PoissonBlendWarning,
            stacklevel=2,
        )
        image = np.ascontiguousarray(colour[:, :, 0])
    return image


def encode_png(image: np.ndarray) -> bytes:
    """Encode a ``(H, W)`` uint8 array as PNG bytes (lossless, never JPEG)."""
    ok, buf = cv2.imencode(".png", image)  # OpenCV's default is both fast and small
    if not ok:  # pragma: no cover - cv2 only fails on unsupported dtypes
        raise OutputError("could not encode PNG")
    return buf.tobytes()


_temp_counter = itertools.count()
_TEMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)


def _write_temp(path: Path, data: bytes, *, durable: bool = False) -> Path:
    """Write `data` to a new hidden temp file next to `path`; return the temp path.

    Names are ``.<name>.<pid>-<thread>-<n>.tmp``, cheaper to make than
    :func:`tempfile.mkstemp`'s random names; a name left behind by a killed
    process (same pid after a restart) is simply skipped.
    """
    for _ in range(1000):
        tmp = path.with_name(
            f".{path.name}.{os.getpid()}-{threading.get_ident()}-{next(_temp_counter)}.tmp")
        try:
            fd = os.open(tmp, _TEMP_FLAGS, 0o644)
            break
        except FileExistsError:
            continue
        except OSError as exc:  # no such folder, no permission, read-only file system
            raise OutputError(f"cannot write {path} ({exc.strerror or exc})") from None
    else:  # pragma: no cover - a thousand stale temp files of this very process id
        raise OutputError(f"cannot create a temp file next to {path}")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
    except OSError as exc:  # e.g. the disk is full
        tmp.unlink(missing_ok=True)
        raise OutputError(f"cannot write {path} ({exc.strerror or exc})") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def _sync_folder(folder: Path) -> None:
    """fsync a folder, so the renames in it survive a power loss."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically: a temp file in the same folder, then rename.

    A crash leaves either the old file or the new one, never a half-written file
    (plus, at worst, a hidden ``.*.tmp`` file that :func:`remove_stale_temp_files`
    cleans up). The temp file is removed if anything fails.
    """
    path = Path(path)
    tmp = _write_temp(path, data)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_pair(image_path: Path, mask_path: Path, image_png: bytes, mask_png: bytes, *,
               durable: bool = False) -> None:
    """Write an image and its mask so that a crash never leaves an image without its mask.

    Both are written to temp files first; the mask is renamed into place before
    the image, so any visible image always has its mask. With `durable`, the
    data and the renames are also fsync'ed (they then survive a power loss too;
    slower, so kept for curated exports).
    """
    tmps: list[Path] = []
    try:
        tmps.append(_write_temp(Path(mask_path), mask_png, durable=durable))
        tmps.append(_write_temp(Path(image_path), image_png, durable=durable))
        os.replace(tmps[0], mask_path)
        if durable:
            _sync_folder(Path(mask_path).parent)
        os.replace(tmps[1], image_path)
        if durable:
            _sync_folder(Path(image_path).parent)
    except BaseException:
        for tmp in tmps:
            tmp.unlink(missing_ok=True)
        raise


def same_pixels(path: Path, image: np.ndarray) -> bool:
    """True if the PNG at `path` decodes to exactly `image` (False if unreadable)."""
    try:
        existing = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    except OSError:
        return False
    return existing is not None and existing.shape == image.shape and np.array_equal(existing, image)


_TEMP_OWNER_RE = re.compile(r"\.(\d+)-\d+-\d+\.tmp$")


def _writer_alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # ours, from before this call: nothing of ours is being written now
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temp_files(folder: Path) -> list[Path]:
    """Delete temp files (``.*.tmp``) left in `folder` by killed writers; return them.

    A temp file whose name carries the pid of a process that is still running
    (another writer at work in the same folder) is left alone.
    """
    removed = []
    for tmp in Path(folder).glob(".*.tmp"):
        owner = _TEMP_OWNER_RE.search(tmp.name)
        if owner and _writer_alive(int(owner.group(1))):
            continue
        tmp.unlink(missing_ok=True)
        removed.append(tmp)
    return removed
