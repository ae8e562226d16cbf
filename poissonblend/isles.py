"""Import ISLES 2022 NIfTI volumes into the training-set format.

The ISLES 2022 download (BIDS, native space) becomes the ``input/`` + ``mask/``
folders of 8-bit PNG slices that the rest of poissonblend uses
(``slice_{NNNN}_{z:04d}.png``, ``NNNN`` = the case number of
``sub-strokecaseNNNN``, ``z`` = axial slice index).

Finding the files
-----------------
Files are found by name anywhere under the root, letter case ignored:
``sub-strokecaseNNNN[_key-value…]_{dwi|adc|flair|msk}.nii[.gz]``. This covers the
release layout (``sub-strokecaseNNNN/ses-0001/dwi/…_dwi.nii.gz``,
``…/anat/…_FLAIR.nii.gz``, masks in ``derivatives/sub-strokecaseNNNN/ses-0001/
…_msk.nii.gz``) and the organisers' flat sample layout
(``rawdata/sub-strokecaseNNNN/ses-0001/…_dwi.nii.gz`` with JSON sidecars). Pass
the folder that holds both the images and ``derivatives/``.

Geometry
--------
The lesion mask defines the grid: DWI and ADC must be on exactly the mask's grid
(same shape, affines equal within ``AFFINE_ATOL_MM``); FLAIR, acquired on its own
grid, is resampled onto the mask grid (trilinear, using the voxel-to-voxel affine
``inv(A_flair) @ A_mask``; 0 outside the FLAIR field of view). The mask is never
resampled, so mask and image stay aligned voxel for voxel.

Both volumes are then reoriented to the closest canonical orientation, RAS+
(``nibabel.as_closest_canonical``: voxel axes only permuted/flipped, never
resampled; an oblique volume is sliced along the voxel axis closest to
inferior→superior). Slices are the third (I→S) axis: ``z = 0`` is the most
inferior slice.

Orientation of every PNG (radiological convention)
--------------------------------------------------
* row 0 is the most **anterior** row: anterior is UP, posterior down;
* column 0 is the patient's **right**: the patient's LEFT is on the image's RIGHT,
  as on a radiology viewer (looking at the patient from the feet).

In canonical RAS voxel indices ``(i, j, k)`` of an ``(X, Y, Z)`` volume, slice
``z = k`` is an ``(Y, X)`` image with ``pixel[row, col] = volume[X-1-col, Y-1-row, z]``.

Intensities
-----------
Per volume (never per slice): the brain is the finite voxels > 0 (the data are
skull-stripped; background is 0 or slightly below). The 0.5 and 99.5 percentiles
of the brain voxels are mapped linearly to grey levels 1 and 255 (clipped), so
background is exactly 0 and every brain voxel is at least 1. Masks: voxel > 0 →
255, else 0.

Output
------
Each slice is written atomically with its mask (:func:`poissonblend.io.write_pair`).
Re-running is idempotent: a file that already holds the same pixels is left
alone. An existing file with different pixels, or an existing slice file of an
imported case that this import would not write (e.g. an earlier run without
``skip_empty``), raises :class:`~poissonblend.errors.OutputError` naming it; nothing
is ever overwritten. Cases are checked and written one at a time, so cases
imported before such an error stay written (correctly; a re-run skips them).
"""

from __future__ import annotations

import os
import re
import warnings
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel.filebasedimages import ImageFileError
from scipy import ndimage

from .errors import ImportError_, OutputError, PoissonBlendWarning
from .io import encode_png, remove_stale_temp_files, same_pixels, slice_name, write_pair
from .machine import end_with_parent
from .output import prepare_output_dirs

__all__ = [
    "AFFINE_ATOL_MM",
    "MODALITIES",
    "WINDOW_PERCENTILES",
    "CaseSummary",
    "ImportSummary",
    "IslesCase",
    "SkippedCase",
    "axial_slice",
    "case_slices",
    "find_cases",
    "import_case",
    "import_isles",
    "load_case",
    "resample_to_grid",
    "to_canonical",
    "window_volume",
]

MODALITIES = ("dwi", "adc", "flair")
WINDOW_PERCENTILES = (0.5, 99.5)
AFFINE_ATOL_MM = 0.01
_FILE_RE = re.compile(
    r"^sub-strokecase(\d+)(?:_[a-z0-9]+-[a-z0-9]+)*_(dwi|adc|flair|msk)\.nii(?:\.gz)?$",
    re.IGNORECASE,
)
_CASE_ARG_RE = re.compile(r"^(?:sub-strokecase)?(\d+)$", re.IGNORECASE)
_NIFTI_ERRORS = (ImageFileError, OSError, EOFError, ValueError, zlib.error)

ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class IslesCase:
    """One ISLES case as found on disk.

    Attributes
    ----------
    case_id : str
        The case number as written in ``sub-strokecaseNNNN`` (e.g. ``"0001"``).
    modality : str
        ``"dwi"``, ``"adc"`` or ``"flair"``.
    image : Path or None
        The NIfTI file of that modality, None if the case has none.
    mask : Path or None
        The lesion mask (``…_msk.nii[.gz]``), None if the case has none.
    """

    case_id: str
    modality: str
    image: Path | None
    mask: Path | None


@dataclass(frozen=True)
class CaseSummary:
    """What :func:`import_case` did for one case.

    Attributes
    ----------
    case_id : str
    slices : int
        Slices in the output (written now or already there, identical).
    written, unchanged : int
        Of those, slice pairs written now / left alone because identical.
    dropped_empty : int
        Slices left out by ``skip_empty`` (no brain and no lesion).
    lesion_slices : int
        Output slices with at least one lesion pixel.
    lesion_voxels : int
        Lesion voxels in the output slices (= lesion pixels; mask-grid voxels).
    """

    case_id: str
    slices: int
    written: int
    unchanged: int
    dropped_empty: int
    lesion_slices: int
    lesion_voxels: int


@dataclass(frozen=True)
class SkippedCase:
    """A case left out of the import and why (one line)."""

    case_id: str
    reason: str


@dataclass(frozen=True)
class ImportSummary:
    """What :func:`import_isles` did.

    Attributes
    ----------
    out_dir : Path
        The output folder; the training set is ``input_dir`` + ``mask_dir``.
    cases : tuple of CaseSummary
        Imported cases, sorted by case id.
    skipped : tuple of SkippedCase
        Cases skipped for a missing image or mask (only when not ``strict``).
    """

    out_dir: Path
    cases: tuple[CaseSummary, ...]
    skipped: tuple[SkippedCase, ...]

    @property
    def input_dir(self) -> Path:
        return self.out_dir / "input"

    @property
    def mask_dir(self) -> Path:
        return self.out_dir / "mask"

    @property
    def slices(self) -> int:
        return sum(c.slices for c in self.cases)

    @property
    def written(self) -> int:
        return sum(c.written for c in self.cases)

    @property
    def unchanged(self) -> int:
        return sum(c.unchanged for c in self.cases)

    @property
    def lesion_slices(self) -> int:
        return sum(c.lesion_slices for c in self.cases)

    @property
    def lesion_voxels(self) -> int:
        return sum(c.lesion_voxels for c in self.cases)

    def summary_line(self) -> str:
        """One line: cases, slices, lesion slices, lesion voxels, skipped cases."""
        skipped = f" ({len(self.skipped)} skipped)" if self.skipped else ""
        return (
            f"imported {len(self.cases)} case(s){skipped}: {self.slices} slices "
            f"({self.written} written, {self.unchanged} unchanged), "
            f"{self.lesion_slices} lesion slices, {self.lesion_voxels} lesion voxels "
            f"-> {self.input_dir}, {self.mask_dir}"
        )


# --------------------------------------------------------------------------- finding


def _check_modality(modality: str) -> str:
    key = str(modality).lower()
    if key not in MODALITIES:
        raise ImportError_(f"modality {modality!r} is not one of {', '.join(MODALITIES)}")
    return key


def find_cases(root: str | os.PathLike, modality: str = "dwi") -> list[IslesCase]:
    """Find the ISLES cases under `root` by file name (any layout, any letter case).

    Parameters
    ----------
    root : path
        Folder searched recursively for
        ``sub-strokecaseNNNN[_key-value…]_{dwi|adc|flair|msk}.nii[.gz]``.
    modality : {"dwi", "adc", "flair"}
        Which image each case should use.

    Returns
    -------
    list of IslesCase
        Every case with at least one matching file, sorted by case id; `image`
        or `mask` is None where the case lacks it.

    Raises
    ------
    ImportError_
        `root` missing or not a folder, unknown `modality`, no matching file at
        all, or two files for the same case and role (e.g. ``.nii`` and ``.nii.gz``).
    """
    modality = _check_modality(modality)
    root = Path(root)
    if not root.exists():
        raise ImportError_(f"ISLES root {root} does not exist")
    if not root.is_dir():
        raise ImportError_(f"ISLES root {root} is not a folder")
    found: dict[str, dict[str, Path]] = {}
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            m = _FILE_RE.match(name)
            if m is None:
                continue
            case_id, role = m.group(1), m.group(2).lower()
            roles = found.setdefault(case_id, {})
            path = Path(folder) / name
            if role in roles:
                raise ImportError_(
                    f"case {case_id}: two {role} files, {roles[role]} and {path}; "
                    "remove one")
            roles[role] = path
    if not found:
        raise ImportError_(
            f"no ISLES case found under {root} (looked for "
            "sub-strokecaseNNNN_…_dwi/adc/flair/msk.nii[.gz] files)")
    return [IslesCase(cid, modality, roles.get(modality), roles.get("msk"))
            for cid, roles in sorted(found.items())]


def _select(cases: list[IslesCase], wanted: str | Sequence[str], root: Path) -> list[IslesCase]:
    if isinstance(wanted, str):
        if wanted.strip().lower() == "all":
            return cases
        wanted = [w for w in wanted.split(",") if w.strip()]
    if not wanted:
        raise ImportError_("cases: empty selection (give case numbers such as 0001,0002 or 'all')")
    by_number = {int(c.case_id): c for c in cases}
    chosen = []
    for item in wanted:
        m = _CASE_ARG_RE.match(str(item).strip())
        if m is None:
            raise ImportError_(
                f"cases: {item!r} is not a case number (such as 0001 or sub-strokecase0001)")
        case = by_number.get(int(m.group(1)))
        if case is None:
            raise ImportError_(f"cases: case {str(item).strip()} not found under {root}")
        if case not in chosen:
            chosen.append(case)
    return chosen


# --------------------------------------------------------------------------- reading


def _one_line(exc: BaseException, path: Path) -> str:
    text = " ".join(str(exc).replace(str(path), "file").split())
    return text or type(exc).__name__


def _load_header(path: Path) -> nib.Nifti1Image:
    """Open a NIfTI file (header only) and check it holds one 3-D volume."""
    try:
        img = nib.load(path)
    except _NIFTI_ERRORS as exc:
        raise ImportError_(f"{path}: unreadable NIfTI file ({_one_line(exc, path)})") from None
    shape = img.shape
    if len(shape) == 4 and shape[3] == 1:
        shape = shape[:3]
    if len(shape) != 3:
        raise ImportError_(
            f"{path}: expected one 3-D volume, found shape {tuple(img.shape)}")
    return img


def _load_data(img: nib.Nifti1Image, path: Path) -> np.ndarray:
    """The voxel values as a float64 ``(X, Y, Z)`` array, non-finite values set to 0."""
    try:
        data = np.asarray(img.get_fdata(dtype=np.float64))
    except _NIFTI_ERRORS as exc:
        raise ImportError_(f"{path}: unreadable NIfTI file ({_one_line(exc, path)})") from None
    data = data.reshape(data.shape[:3])
    return np.where(np.isfinite(data), data, 0.0)


def _check_headers(case: IslesCase) -> tuple[nib.Nifti1Image, nib.Nifti1Image]:
    """Open image and mask headers; DWI/ADC must share the mask's grid."""
    if case.image is None or case.mask is None:
        raise ImportError_(f"case {case.case_id}: {_missing(case)}")
    image = _load_header(case.image)
    mask = _load_header(case.mask)
    if case.modality != "flair":
        if image.shape[:3] != mask.shape[:3]:
            raise ImportError_(
                f"{case.image}: image grid {image.shape[:3]} does not match its mask "
                f"{case.mask.name} grid {mask.shape[:3]}")
        diff = float(np.abs(image.affine - mask.affine).max())
        if diff > AFFINE_ATOL_MM:
            raise ImportError_(
                f"{case.image}: image affine differs from its mask {case.mask.name} "
                f"by up to {diff:.3g} mm (same shape, different position/orientation)")
    return image, mask


def _missing(case: IslesCase) -> str:
    what = []
    if case.image is None:
        what.append(f"no {case.modality} image (sub-strokecase{case.case_id}_…_"
                    f"{case.modality}.nii[.gz])")
    if case.mask is None:
        what.append(f"no lesion mask (sub-strokecase{case.case_id}_…_msk.nii[.gz], "
                    "normally under derivatives/)")
    return " and ".join(what)


# --------------------------------------------------------------------------- geometry


def resample_to_grid(data: np.ndarray, affine: np.ndarray, ref_shape: tuple[int, int, int],
                     ref_affine: np.ndarray, *, order: int = 1) -> np.ndarray:
    """Resample a volume onto another voxel grid of the same scanner space.

    Parameters
    ----------
    data : (X, Y, Z) ndarray of float
        Voxel values, indexed along the voxel axes of `affine`.
    affine : (4, 4) ndarray
        Voxel index → scanner mm of `data`.
    ref_shape : tuple of 3 int
        Shape of the target grid.
    ref_affine : (4, 4) ndarray
        Voxel index → scanner mm of the target grid.
    order : int
        Spline order (1 = trilinear, 0 = nearest).

    Returns
    -------
    ref_shape ndarray of float64
        Values at the target voxel centres; 0 outside `data`'s field of view.
    """
    vox = np.linalg.inv(affine) @ ref_affine
    out = ndimage.affine_transform(
        np.asarray(data, dtype=np.float64), vox[:3, :3], offset=vox[:3, 3],
        output_shape=tuple(ref_shape), order=order, mode="constant", cval=0.0)
    return out


def to_canonical(data: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Permute/flip voxel axes to the closest canonical RAS+ orientation.

    The same operation as ``nibabel.as_closest_canonical``, on a bare array.

    Parameters
    ----------
    data : (X, Y, Z) ndarray
    affine : (4, 4) ndarray
        Voxel index → scanner mm (RAS+ world, as in NIfTI).

    Returns
    -------
    data : (X', Y', Z') ndarray
        Axis 0 points to the patient's right, 1 anterior, 2 superior.
    affine : (4, 4) ndarray
        Its voxel → mm affine.
    """
    ornt = nib.orientations.io_orientation(affine)
    out = nib.orientations.apply_orientation(data, ornt)
    return out, affine @ nib.orientations.inv_ornt_aff(ornt, data.shape)


def axial_slice(volume: np.ndarray, z: int) -> np.ndarray:
    """Axial slice `z` of a canonical RAS volume in the documented display orientation.

    Parameters
    ----------
    volume : (X, Y, Z) ndarray
        Canonical RAS+ voxel order (see :func:`to_canonical`).
    z : int
        Slice index along the inferior→superior axis.

    Returns
    -------
    (Y, X) ndarray
        (row, col) image with anterior at row 0 and the patient's left on the
        right (radiological): ``out[row, col] = volume[X-1-col, Y-1-row, z]``.
    """
    return np.ascontiguousarray(volume[::-1, ::-1, z].T)


def window_volume(volume: np.ndarray, *,
                  percentiles: tuple[float, float] = WINDOW_PERCENTILES) -> np.ndarray:
    """Map a volume to 8-bit grey levels with one window for the whole volume.

    Parameters
    ----------
    volume : (X, Y, Z) ndarray of float
    percentiles : (float, float)
        Lower/upper percentile of the brain voxels (finite and > 0) mapped to
        grey levels 1 and 255.

    Returns
    -------
    (X, Y, Z) ndarray of uint8
        0 outside the brain; brain voxels linearly scaled and clipped to 1..255
        (all 255 if the brain is constant).
    """
    out = np.zeros(volume.shape, dtype=np.uint8)
    brain = np.isfinite(volume) & (volume > 0)
    if not brain.any():
        return out
    values = volume[brain].astype(np.float64)
    lo, hi = np.percentile(values, percentiles)
    if hi > lo:
        scaled = np.clip((values - lo) / (hi - lo), 0.0, 1.0)
    else:
        scaled = np.ones_like(values)
    out[brain] = (1 + np.rint(scaled * 254)).astype(np.uint8)
    return out


def load_case(case: IslesCase) -> tuple[np.ndarray, np.ndarray]:
    """Read one case on the mask grid, in canonical RAS voxel order.

    Returns
    -------
    image : (X, Y, Z) ndarray of float64
        The modality's intensities (FLAIR resampled onto the mask grid).
    lesion : (X, Y, Z) ndarray of bool
        Mask voxels > 0, aligned voxel for voxel with `image`.

    Raises
    ------
    ImportError_
        Missing image or mask, unreadable NIfTI, not 3-D, or (DWI/ADC) image
        and mask on different grids.
    """
    image_img, mask_img = _check_headers(case)
    image = _load_data(image_img, case.image)
    lesion = _load_data(mask_img, case.mask) > 0
    if case.modality == "flair":
        image = resample_to_grid(image, image_img.affine, lesion.shape, mask_img.affine, order=1)
    image, _ = to_canonical(image, mask_img.affine)
    lesion, _ = to_canonical(lesion, mask_img.affine)
    return image, lesion


def case_slices(image: np.ndarray, lesion: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Window a canonical volume and cut it into display-oriented axial slices.

    Parameters
    ----------
    image : (X, Y, Z) ndarray of float
    lesion : (X, Y, Z) ndarray of bool
        Both in canonical RAS voxel order (see :func:`load_case`).

    Returns
    -------
    images : (Z, Y, X) ndarray of uint8
        ``images[z]`` is slice `z` as (row, col), oriented as :func:`axial_slice`.
    masks : (Z, Y, X) ndarray of uint8
        0 or 255, same layout.
    has_brain : (Z,) ndarray of bool
        Whether slice `z` holds any brain voxel (image > 0).
    """
    grey = window_volume(image)
    nz = image.shape[2]
    images = np.stack([axial_slice(grey, z) for z in range(nz)])
    masks = np.stack([axial_slice(lesion, z) for z in range(nz)]).astype(np.uint8) * 255
    has_brain = (grey > 0).any(axis=(0, 1))
    return images, masks, has_brain


# --------------------------------------------------------------------------- writing


def _prepare_out(out_dir: Path) -> tuple[Path, Path]:
    folders = prepare_output_dirs(out_dir / "input", out_dir / "mask")
    for folder in folders:
        remove_stale_temp_files(folder)  # left by a killed import; live writers' are kept
    return folders


def import_case(case: IslesCase, out_dir: str | os.PathLike, *,
                skip_empty: bool = False) -> CaseSummary:
    """Import one case: write its axial slices to ``out_dir/input`` and ``out_dir/mask``.

    Parameters
    ----------
    case : IslesCase
        From :func:`find_cases`; needs both `image` and `mask`.
    out_dir : path
        Output folder (created if needed).
    skip_empty : bool
        Leave out slices with neither brain nor lesion voxels.

    Returns
    -------
    CaseSummary

    Raises
    ------
    ImportError_
        See :func:`load_case`.
    OutputError
        The output folder cannot be created; a file exists with different
        pixels; or a slice file of this case exists that this import would not
        write. Checked for every slice before any file of the case is written.
    """
    out_dir = Path(out_dir)
    image, lesion = load_case(case)
    images, masks, has_brain = case_slices(image, lesion)
    has_lesion = masks.any(axis=(1, 2))
    keep = [z for z in range(len(images)) if not skip_empty or has_brain[z] or has_lesion[z]]
    input_dir, mask_dir = _prepare_out(out_dir)

    planned = {slice_name(case.case_id, z): z for z in keep}
    for folder in (input_dir, mask_dir):
        for path in sorted(folder.glob(f"slice_{case.case_id}_*.png")):
            if path.name not in planned:
                raise OutputError(
                    f"{path}: already exists but is not a slice of this import (left from "
                    "an earlier import with other options?); not touched - remove it or "
                    "choose another output folder")
    todo = []
    for name, z in planned.items():
        pair = ((input_dir / name, images[z]), (mask_dir / name, masks[z]))
        existing = 0
        for path, pixels in pair:
            if path.exists():
                if not same_pixels(path, pixels):
                    raise OutputError(
                        f"{path}: already exists with different pixels; not overwritten - "
                        "remove it or choose another output folder")
                existing += 1
        if existing < 2:
            todo.append((name, z))
    for name, z in todo:
        write_pair(input_dir / name, mask_dir / name, encode_png(images[z]), encode_png(masks[z]))

    return CaseSummary(
        case_id=case.case_id,
        slices=len(keep),
        written=len(todo),
        unchanged=len(keep) - len(todo),
        dropped_empty=len(images) - len(keep),
        lesion_slices=int(sum(bool(has_lesion[z]) for z in keep)),
        lesion_voxels=int(sum(int(np.count_nonzero(masks[z])) for z in keep)),
    )


def import_isles(root: str | os.PathLike, out_dir: str | os.PathLike, *,
                 modality: str = "dwi", cases: str | Sequence[str] = "all",
                 skip_empty: bool = False, strict: bool = False, workers: int = 1,
                 progress: ProgressCallback | None = None) -> ImportSummary:
    """Import ISLES 2022 cases from `root` into the training-set folders under `out_dir`.

    Parameters
    ----------
    root : path
        Folder holding the cases and their ``derivatives/`` masks (any layout,
        see the module docstring).
    out_dir : path
        Output folder; slices go to ``out_dir/input`` and ``out_dir/mask``.
    modality : {"dwi", "adc", "flair"}
        Image used as ``input``; FLAIR is resampled onto the mask grid.
    cases : "all", str or sequence of str
        ``"all"``, a comma-separated string (``"0001,0002"``) or a sequence of
        case numbers (``"0001"``, ``"1"`` or ``"sub-strokecase0001"``).
    skip_empty : bool
        Leave out slices with neither brain nor lesion voxels.
    strict : bool
        Fail on a case without the chosen modality or without a mask, instead of
        skipping it with a :class:`PoissonBlendWarning`.
    workers : int
        Processes importing cases in parallel (1 = in this process).
    progress : callable(done, total), optional
        Called in the calling thread with ``(0, total)`` first and then after
        each imported case, ``total`` being the number of cases to import
        (skipped ones excluded). Suitable for a progress bar.

    Returns
    -------
    ImportSummary
        Open the result with ``open_dataset(summary.input_dir, summary.mask_dir)``.

    Raises
    ------
    ImportError_
        Root missing or without cases; unknown modality, case or bad `workers`;
        a case without image or mask (with `strict`, or when no case is left);
        unreadable NIfTI; DWI/ADC and mask on different grids. Headers of all
        selected cases are checked before anything is written.
    OutputError
        See :func:`import_case`.

    Warns
    -----
    PoissonBlendWarning
        One per skipped case (also listed in ``summary.skipped``).

    Examples
    --------
    From an app, with a progress bar (the callback runs in the calling thread)::

        bar = st.progress(0.0)
        summary = import_isles(root, out, modality="flair",
                               progress=lambda done, total: bar.progress(done / total))
        dataset = open_dataset(summary.input_dir, summary.mask_dir)
    """
    modality = _check_modality(modality)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ImportError_(f"workers must be a whole number >= 1 (got {workers!r})")
    root, out_dir = Path(root), Path(out_dir)
    selected = _select(find_cases(root, modality), cases, root)

    todo: list[IslesCase] = []
    skipped: list[SkippedCase] = []
    for case in selected:
        if case.image is None or case.mask is None:
            reason = _missing(case)
            if strict:
                raise ImportError_(f"case {case.case_id}: {reason}")
            skipped.append(SkippedCase(case.case_id, reason))
        else:
            todo.append(case)
    if not todo:
        first = skipped[0]
        more = f" (and {len(skipped) - 1} more case(s))" if len(skipped) > 1 else ""
        raise ImportError_(
            f"no selected case under {root} has both a {modality} image and a lesion mask: "
            f"case {first.case_id}: {first.reason}{more}")
    for skip in skipped:
        warnings.warn(f"case {skip.case_id}: {skip.reason}; skipped", PoissonBlendWarning,
                      stacklevel=2)
    for case in todo:
        _check_headers(case)
    _prepare_out(out_dir)

    total = len(todo)
    if progress is not None:
        progress(0, total)
    results: list[CaseSummary] = []
    if workers == 1 or total == 1:
        for case in todo:
            results.append(import_case(case, out_dir, skip_empty=skip_empty))
            if progress is not None:
                progress(len(results), total)
    else:
        pool = ProcessPoolExecutor(max_workers=min(workers, total), initializer=end_with_parent,
                                   initargs=(os.getpid(),))
        failed = total  # position of the earliest case known to have failed
        try:
            futures = [pool.submit(import_case, case, out_dir, skip_empty=skip_empty)
                       for case in todo]
            position = {future: k for k, future in enumerate(futures)}
            for future in as_completed(futures):
                if future.cancelled():
                    continue
                if future.exception() is not None:
                    # Cases after it are not started; those before it still run, so the error
                    # reported is always the first case's in order, whatever the timing.
                    failed = min(failed, position[future])
                    for later in futures[failed + 1:]:
                        later.cancel()
                    continue
                results.append(future.result())
                if progress is not None:
                    progress(len(results), total)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        if failed < total:
            raise futures[failed].exception()
    results.sort(key=lambda c: c.case_id)
    return ImportSummary(out_dir, tuple(results), tuple(skipped))
