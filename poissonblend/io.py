"""PNG reading/writing, atomic file writes and training-set file naming.

File names follow ``slice_{case_id}_{slice:04d}.png``; the case id never
contains an underscore, so ``name.split('_')[1]`` recovers it.
"""

from __future__ import annotations

import errno
import itertools
import os
import re
import warnings
from pathlib import Path

import cv2
import numpy as np

from .errors import DatasetError, DiskFullError, OutputError, OutsideRootError, PoissonBlendWarning

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
    return decode_gray_png(read_file_bytes(path), path)


def read_file_bytes(path: Path) -> np.ndarray:
    """The bytes of the file at `path` as a uint8 array.

    Raises
    ------
    DatasetError
        If it cannot be read (no permission, a symbolic link loop, a folder, …).
    """
    try:
        return np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read file ({disk_error_message(exc)})") from None


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
"""The eight bytes every PNG file starts with."""
_OTHER_FORMATS = ((b"\xff\xd8\xff", "JPEG"), (b"GIF8", "GIF"), (b"BM", "BMP"), (b"II*\x00", "TIFF"),
                  (b"MM\x00*", "TIFF"), (b"RIFF", "WebP"), (b"\x00\x00\x00\x0cjP", "JPEG 2000"))


def _not_png(head: bytes, path: Path | str) -> str | None:
    """Why bytes starting with `head` are not a PNG file (None: they are)."""
    if head[:8] == PNG_SIGNATURE:
        return None
    kind = next((name for magic, name in _OTHER_FORMATS if head.startswith(magic)), None)
    if kind is not None:
        return (f"{path}: a {kind} file named like a PNG, not a PNG (lossy or another format); "
                "convert it to an 8-bit greyscale PNG")
    return f"{path}: not a readable PNG file (empty, or no PNG signature: wrong format or corrupt)"


def decode_gray_png(data: np.ndarray | bytes, path: Path | str) -> np.ndarray:
    """Decode PNG bytes (see :func:`read_gray_png`); `path` is only used in messages."""
    buf = np.frombuffer(data, dtype=np.uint8) if isinstance(data, bytes) else data
    problem = _not_png(buf[:8].tobytes(), path)
    if problem is not None:
        raise DatasetError(problem)
    image = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise DatasetError(f"{path}: not a readable PNG file (corrupt or wrong format)")
    if image.dtype != np.uint8:
        raise DatasetError(
            f"{path}: {image.dtype.itemsize * 8}-bit PNG; expected 8-bit greyscale"
        )
    if image.ndim == 3:
        if image.shape[2] == 4 and not (image[:, :, 3] == image[0, 0, 3]).all():
            raise DatasetError(
                f"{path}: RGBA PNG whose alpha (transparency) channel varies; poissonblend reads "
                "grey levels only and would lose what the alpha channel holds (e.g. a lesion drawn "
                "there): save it as 8-bit greyscale")
        colour = image[:, :, :3]
        if not (np.array_equal(colour[:, :, 0], colour[:, :, 1])
                and np.array_equal(colour[:, :, 0], colour[:, :, 2])):
            raise DatasetError(f"{path}: colour PNG; expected 8-bit greyscale")
        warnings.warn(
            f"{path}: colour PNG with equal channels"
            + (" and an opaque alpha channel" if image.shape[2] == 4 else "") + ", read as greyscale",
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
_TEMP_RE = re.compile(r"^\..+\.poissonblend-(\d+)-\d+\.tmp$")
"""Our temp files: ``.<name>.poissonblend-<writer pid>-<n>.tmp``; nothing else is ours."""


def disk_full(exc: BaseException) -> bool:
    """True if an OS or SQLite error says the disk (or the user's quota) is full."""
    return (getattr(exc, "errno", None) in (errno.ENOSPC, errno.EDQUOT)
            or getattr(exc, "sqlite_errorcode", None) == 13)  # SQLITE_FULL


def disk_error_message(exc: BaseException) -> str:
    """The reason an OS or SQLite error gives, saying plainly when the disk is full."""
    if disk_full(exc):
        return "the disk is full: free some space and run it again"
    return getattr(exc, "strerror", None) or str(exc)


def write_error(path: Path, exc: OSError) -> OutputError:
    """The error to raise when writing `path` failed with `exc` (:class:`DiskFullError` if full)."""
    kind = DiskFullError if disk_full(exc) else OutputError
    return kind(f"cannot write {path} ({disk_error_message(exc)})")


def temp_path(path: Path, *, pid: int | None = None) -> Path:
    """A name for a temp file next to `path` that is unmistakably ours and names its writer.

    ``.<name>.poissonblend-<pid>-<n>.tmp``: :func:`remove_stale_temp_files`
    removes only names of this form whose writer process is gone.
    """
    pid = os.getpid() if pid is None else pid
    return path.with_name(f".{path.name}.poissonblend-{pid}-{next(_temp_counter)}.tmp")


def _write_temp(path: Path, data: bytes, *, durable: bool = False) -> Path:
    """Write `data` to a new hidden temp file next to `path` (:func:`temp_path`); return it.

    Cheaper to make than :func:`tempfile.mkstemp`'s random names; a name left
    behind by a killed process (same pid after a restart) is simply skipped.
    Written with ``os.write`` on the descriptor (no file object: ``generate``
    writes two of these per sample).
    """
    for _ in range(1000):
        tmp = temp_path(path)
        try:
            fd = os.open(tmp, _TEMP_FLAGS, 0o644)
            break
        except FileExistsError:
            continue
        except OSError as exc:  # no such folder, no permission, read-only file system, full
            raise write_error(path, exc) from None
    else:  # pragma: no cover - a thousand stale temp files of this very process id
        raise OutputError(f"cannot create a temp file next to {path}")
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:  # e.g. the disk is full
        tmp.unlink(missing_ok=True)
        raise write_error(path, exc) from None
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
    (plus, at worst, a temp file of ours that :func:`remove_stale_temp_files`
    cleans up). The temp file is removed if anything fails.

    Raises
    ------
    OutputError
        If the file cannot be written (no permission, the disk is full, …).
    """
    path = Path(path)
    tmp = _write_temp(path, data)
    try:
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise write_error(path, exc) from None
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
    except OSError as exc:
        for tmp in tmps:
            tmp.unlink(missing_ok=True)
        raise write_error(image_path, exc) from None
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


def _writer_alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # ours, from before this call: nothing of ours is being written now
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:  # a killed writer nobody has reaped yet (a zombie) writes nothing any more
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in "ZX"
    except (OSError, IndexError):  # no /proc (not Linux): it exists, so count it as alive
        return True


def stale_temp_files(folder: Path) -> list[Path]:
    """Our temp files in `folder` whose writer process is gone (sorted).

    Only names made by :func:`temp_path` are ours; any other file, hidden or
    ``.tmp`` or not, belongs to someone else and is never listed.
    """
    try:
        names = os.listdir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as exc:
        raise OutputError(f"cannot list {folder} ({disk_error_message(exc)})") from None
    stale = []
    for name in sorted(names):
        owner = _TEMP_RE.match(name)
        if owner and not _writer_alive(int(owner.group(1))):
            stale.append(Path(folder) / name)
    return stale


def remove_stale_temp_files(folder: Path) -> list[Path]:
    """Delete :func:`stale_temp_files` of `folder` (left by killed writers); return them."""
    removed = stale_temp_files(folder)
    for tmp in removed:
        tmp.unlink(missing_ok=True)
    return removed


def resolve_path(path: str | os.PathLike, error: type[Exception] = OutputError) -> Path:
    """`path` made absolute, with ``~``, ``..`` and symbolic links resolved.

    Raises
    ------
    error
        (a :class:`PoissonBlendError` type) if it cannot be resolved: a symbolic
        link loop, a folder on the way that may not be entered.
    """
    try:
        return Path(path).expanduser().resolve()
    except RuntimeError:  # Python's word for a symbolic link loop
        raise error(f"{path}: a symbolic link loop; cannot use this path") from None
    except OSError as exc:
        raise error(f"{path}: cannot use this path ({disk_error_message(exc)})") from None


def within_root(path: str | os.PathLike, root: str | os.PathLike | None) -> Path:
    """`path`, absolute with symbolic links resolved, checked to lie inside the folder `root`.

    For serving the app to a team: every path a user types goes through this
    before anything is read or written. A relative `path` is taken relative to
    the current folder, as everywhere else; ``..`` and symbolic links leading
    out of `root` are caught because both are resolved first. `root` None
    confines nothing.

    Raises
    ------
    OutsideRootError
        If `path` resolves to somewhere outside `root` (or cannot be resolved),
        or `root` is not a folder.
    """
    resolved = resolve_path(path, OutsideRootError)
    if root is None:
        return resolved
    base = resolve_path(root, OutsideRootError)
    if not base.is_dir():
        raise OutsideRootError(f"the root folder {base} is not a folder; {path} cannot be used")
    if resolved != base and base not in resolved.parents:
        raise OutsideRootError(f"{path} is outside the root folder {base}; "
                               "only paths inside it may be used")
    return resolved
