"""Tests for poissonblend.isles and the ``import-isles`` command.

Small ISLES-like NIfTI volumes are written with nibabel in both layouts (release:
``dwi/`` + ``anat/`` + ``derivatives/``; organisers' sample: flat lower-case files
with JSON sidecars). Expected pixel positions are derived from world (RAS mm)
coordinates, independently of the importer's reorientation code.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import cv2
import nibabel as nib
import numpy as np
import pytest

from poissonblend import isles
from poissonblend.cli import main
from poissonblend.dataset import open_dataset
from poissonblend.errors import ImportError_, PoissonBlendWarning
from poissonblend.io import slice_name

LAYOUTS = ("release", "sample")

# Voxel axes (i, j, k) -> world: i towards patient's LEFT, j POSTERIOR, k superior (LPS-ish).
LPS = np.array([[-2.0, 0, 0, 14], [0, -2.0, 0, 20], [0, 0, 2.0, -6], [0, 0, 0, 1]])
# Permuted and flipped: i posterior, j right, k INFERIOR.
PERMUTED = np.array([[0, 2.0, 0, -12], [-2.0, 0, 0, 16], [0, 0, -2.0, 5], [0, 0, 0, 1]])
RAS = np.diag([2.0, 2.0, 2.0, 1.0])


# --------------------------------------------------------------------------- builders


def _paths(root: Path, layout: str, case_id: str) -> dict[str, Path]:
    sub = f"sub-strokecase{case_id}"
    stem = f"{sub}_ses-0001"
    mask = root / "derivatives" / sub / "ses-0001" / f"{stem}_msk.nii.gz"
    if layout == "release":
        ses = root / sub / "ses-0001"
        return {"dwi": ses / "dwi" / f"{stem}_dwi.nii.gz",
                "adc": ses / "dwi" / f"{stem}_adc.nii.gz",
                "flair": ses / "anat" / f"{stem}_FLAIR.nii.gz",
                "msk": mask}
    ses = root / "rawdata" / sub / "ses-0001"
    return {"dwi": ses / f"{stem}_dwi.nii.gz", "adc": ses / f"{stem}_adc.nii.gz",
            "flair": ses / f"{stem}_flair.nii.gz", "msk": mask}


def save(path: Path, data: np.ndarray, affine: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(data, affine), path)
    if path.name.lower().endswith("_dwi.nii.gz") and "rawdata" in path.parts:
        path.with_name(path.name.replace(".nii.gz", ".json")).write_text(
            json.dumps({"MagneticFieldStrength": 3}))
    return path


def write_case(root: Path, layout: str, case_id: str, *, affine: np.ndarray,
               dwi: np.ndarray | None = None, adc: np.ndarray | None = None,
               mask: np.ndarray | None = None, flair: np.ndarray | None = None,
               flair_affine: np.ndarray | None = None) -> dict[str, Path]:
    """Write the given volumes of one case (float64 images, uint16 mask)."""
    paths = _paths(root, layout, case_id)
    for role, data in (("dwi", dwi), ("adc", adc)):
        if data is not None:
            save(paths[role], data.astype(np.float64), affine)
    if mask is not None:
        save(paths["msk"], mask.astype(np.uint16), affine)
    if flair is not None:
        save(paths["flair"], flair.astype(np.float64), flair_affine)
    return paths


def synthetic_case(shape: tuple[int, int, int], rng: np.random.Generator,
                   n_lesion: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """(dwi, mask): ellipsoid brain 300..900 (first and last k-slice empty), background
    in [-2, 0], `n_lesion` lesion voxels at 1600 with mask 1."""
    idx = np.indices(shape).astype(float)
    centre = [(s - 1) / 2 for s in shape]
    radii = [0.45 * shape[0], 0.45 * shape[1], max(0.5, (shape[2] - 2) / 2)]
    brain = sum(((idx[a] - centre[a]) / radii[a]) ** 2 for a in range(3)) <= 1.0
    brain[:, :, 0] = brain[:, :, -1] = False
    dwi = np.where(brain, rng.uniform(300, 900, shape), rng.uniform(-2, 0, shape))
    dwi[~brain & (rng.random(shape) < 0.5)] = 0.0
    dwi[~brain & (rng.random(shape) < 0.02)] = -2.0
    mask = np.zeros(shape, np.uint16)
    coords = np.argwhere(brain)
    for i, j, k in coords[rng.choice(len(coords), n_lesion, replace=False)]:
        mask[i, j, k] = 1
        dwi[i, j, k] = 1600.0
    return dwi, mask


def expected_zrc(shape: tuple[int, int, int], affine: np.ndarray) -> np.ndarray:
    """(z, row, col) every voxel must land on, from world coordinates (axis-aligned grids).

    Documented orientation: z counts inferior->superior; row 0 = most anterior
    (largest y); col 0 = patient's right (largest x), so the patient's left is on
    the image's right. Returns an ``shape + (3,)`` int array.
    """
    idx = np.indices(shape).reshape(3, -1)
    world = np.round(affine[:3, :3] @ idx + affine[:3, 3:4], 6)
    x, y, z = world
    xs, ys, zs = np.unique(x), np.unique(y), np.unique(z)
    col = len(xs) - 1 - np.searchsorted(xs, x)
    row = len(ys) - 1 - np.searchsorted(ys, y)
    zi = np.searchsorted(zs, z)
    return np.stack([zi, row, col], axis=-1).reshape(*shape, 3)


def read_png(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert image is not None, path
    assert image.dtype == np.uint8 and image.ndim == 2, path
    return image


def read_volume(folder: Path, case_id: str) -> np.ndarray:
    """All slices of a case as a (Z, rows, cols) array."""
    files = sorted(folder.glob(f"slice_{case_id}_*.png"))
    assert files, f"no slices of {case_id} in {folder}"
    return np.stack([read_png(p) for p in files])


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["import-isles", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_error(code: int, err: str, *needles: str) -> None:
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


@pytest.fixture
def two_cases(tmp_path: Path, request) -> tuple[Path, dict]:
    """Root with case 0001 (LPS, 14x18x6) and case 0002 (permuted, 16x12x5)."""
    layout = getattr(request, "param", "release")
    root = tmp_path / "isles"
    rng = np.random.default_rng(42)
    truth = {}
    for case_id, shape, affine in (("0001", (14, 18, 6), LPS), ("0002", (16, 12, 5), PERMUTED)):
        dwi, mask = synthetic_case(shape, rng)
        write_case(root, layout, case_id, affine=affine, dwi=dwi, adc=dwi * 0.8 + 50, mask=mask)
        truth[case_id] = (dwi, mask, affine)
    return root, truth


# --------------------------------------------------------------------------- finding


@pytest.mark.parametrize("layout", LAYOUTS)
def test_find_cases_both_layouts_any_case(tmp_path, layout):
    root = tmp_path / "isles"
    rng = np.random.default_rng(0)
    dwi, mask = synthetic_case((8, 8, 4), rng, n_lesion=1)
    write_case(root, layout, "0003", affine=LPS, dwi=dwi, mask=mask,
               flair=dwi, flair_affine=LPS)
    write_case(root, layout, "0001", affine=LPS, dwi=dwi)  # no mask
    (root / "README.md").write_text("junk")

    found = isles.find_cases(root, "FLAIR")

    assert [c.case_id for c in found] == ["0001", "0003"]
    assert found[0].image is None and found[0].mask is None
    assert found[1].modality == "flair"
    assert found[1].image.name.lower() == "sub-strokecase0003_ses-0001_flair.nii.gz"
    assert found[1].mask.parent.parts[-3] == "derivatives"


def test_find_cases_invalid_input(tmp_path):
    with pytest.raises(ImportError_, match="does not exist"):
        isles.find_cases(tmp_path / "nope", "dwi")
    with pytest.raises(ImportError_, match="not one of"):
        isles.find_cases(tmp_path, "t1")
    with pytest.raises(ImportError_, match="no ISLES case found"):
        isles.find_cases(tmp_path, "dwi")


# --------------------------------------------------------------------------- geometry


@pytest.mark.parametrize("two_cases", LAYOUTS, indirect=True)
def test_lesion_voxels_land_on_mask_pixels(two_cases, tmp_path, capsys):
    root, truth = two_cases
    out = tmp_path / "out"

    code, stdout, err = run_cli(capsys, "--root", root, "--out", out)

    assert code == 0, err
    total_lesion = 0
    for case_id, (dwi, mask, affine) in truth.items():
        masks = read_volume(out / "mask", case_id)
        images = read_volume(out / "input", case_id)
        zrc = expected_zrc(mask.shape, affine)
        n_slices = mask.shape[2]
        assert masks.shape[0] == n_slices
        assert sorted(p.name for p in (out / "input").glob(f"slice_{case_id}_*.png")) == [
            slice_name(case_id, z) for z in range(n_slices)]
        assert set(np.unique(masks)) <= {0, 255}
        lesion = np.argwhere(mask > 0)
        for voxel in lesion:
            z, r, c = zrc[tuple(voxel)]
            assert masks[z, r, c] == 255, (case_id, voxel)
            assert images[z, r, c] == 255, (case_id, voxel)  # 1600: brightest voxels
        assert np.count_nonzero(masks) == len(lesion)
        # every voxel lands exactly where its world position says (image too)
        brain = dwi > 0
        z, r, c = zrc[brain].T
        assert np.all(images[z, r, c] >= 1)
        z, r, c = zrc[~brain].T
        assert np.all(images[z, r, c] == 0)
        total_lesion += len(lesion)
    assert f"{total_lesion} lesion voxels" in stdout
    assert "imported 2 case(s)" in stdout and "11 slices" in stdout


@pytest.mark.parametrize("affine", [LPS, PERMUTED, RAS], ids=["LPS", "permuted", "RAS"])
def test_orientation_anterior_up_patient_left_on_image_right(tmp_path, affine):
    shape = (10, 12, 5)
    # the voxel with the most LEFT (min x), most ANTERIOR (max y) world position, mid z
    idx = np.indices(shape).reshape(3, -1)
    world = affine[:3, :3] @ idx + affine[:3, 3:4]
    mid_z = np.sort(np.unique(world[2]))[2]
    on_mid = world[2] == mid_z
    score = np.where(on_mid, -world[0] * 1000 + world[1], -np.inf)
    marker = np.unravel_index(int(np.argmax(score)), shape)
    # a second marker: most RIGHT (max x), most POSTERIOR (min y), same slice
    score2 = np.where(on_mid, world[0] * 1000 - world[1], -np.inf)
    marker2 = np.unravel_index(int(np.argmax(score2)), shape)
    dwi = np.full(shape, 500.0)
    mask = np.zeros(shape, np.uint16)
    mask[marker] = 1
    dwi[marker2] = 0.0  # a hole in a constant brain
    root = tmp_path / "isles"
    write_case(root, "release", "0001", affine=affine, dwi=dwi, mask=mask)

    summary = isles.import_isles(root, tmp_path / "out")

    assert summary.slices == 5
    masks = read_volume(summary.mask_dir, "0001")
    images = read_volume(summary.input_dir, "0001")
    rows, cols = masks.shape[1:]
    ap, lr = (12, 10) if affine is not PERMUTED else (10, 12)
    assert (rows, cols) == (ap, lr)  # rows run anterior->posterior, cols right->left
    # anterior-left marker: top row, right-most column of slice 2
    assert np.argwhere(masks).tolist() == [[2, 0, cols - 1]]
    # posterior-right marker: bottom row, left-most column
    assert np.argwhere(images == 0).tolist() == [[2, rows - 1, 0]]


def test_flair_is_resampled_onto_mask_grid(tmp_path):
    rng = np.random.default_rng(1)
    shape = (12, 14, 6)
    dwi, mask = synthetic_case(shape, rng, n_lesion=2)
    target = (3, 4, 2)  # a reference voxel, off-centre on every axis
    t_world = (LPS @ np.array([*target, 1.0]))[:3]
    # FLAIR: RAS, 1 mm in-plane, 3 mm slices; voxel centres at t +- 0.5 (+k) and t_z +- 1.5
    # (+3k); covers the whole reference field of view; brain values 100..300 everywhere.
    fshape = (40, 44, 8)
    f_aff = np.diag([1.0, 1.0, 3.0, 1.0])
    f_aff[:3, 3] = t_world - f_aff[:3, :3] @ np.array([20.5, 22.5, 4.5])
    flair = rng.uniform(100, 300, fshape)
    t_vox = np.linalg.solve(f_aff, np.array([*t_world, 1.0]))[:3]
    assert np.allclose(t_vox, [20.5, 22.5, 4.5])
    flair[20:22, 22:24, 4:6] = 0.0  # the 8 FLAIR voxels around the target centre
    root = tmp_path / "isles"
    write_case(root, "sample", "0007", affine=LPS, dwi=dwi, mask=mask,
               flair=flair, flair_affine=f_aff)

    summary = isles.import_isles(root, tmp_path / "out", modality="flair")

    images = read_volume(summary.input_dir, "0007")
    masks = read_volume(summary.mask_dir, "0007")
    assert images.shape == masks.shape == (6, 14, 12)  # the mask grid, not FLAIR's
    z, r, c = expected_zrc(shape, LPS)[target]
    assert images[z, r, c] == 0  # interpolated exactly from the 8 zero voxels
    zeros = np.argwhere(images == 0)
    assert zeros.tolist() == [[z, r, c]]  # everything else in the FOV is brain
    # mask untouched by the FLAIR resampling
    for voxel in np.argwhere(mask > 0):
        assert masks[tuple(expected_zrc(shape, LPS)[tuple(voxel)])] == 255


# --------------------------------------------------------------------------- intensities


def test_windowing_is_per_volume(tmp_path):
    rng = np.random.default_rng(7)
    shape = (10, 10, 5)
    dwi = rng.uniform(500, 1500, shape)
    dwi[:, :, 0] = rng.uniform(100, 110, shape[:2])  # a dim slice
    dwi[0, 0, 2] = 1e6  # one hot outlier voxel
    dwi[:3, :3, 3] = rng.uniform(-2, 0, (3, 3))  # background, slightly below 0
    mask = np.zeros(shape, np.uint16)
    mask[5, 5, 2] = 1
    root = tmp_path / "isles"
    write_case(root, "release", "0001", affine=LPS, dwi=dwi, mask=mask)
    write_case(root, "release", "0002", affine=LPS, dwi=dwi * 3.0, mask=mask)

    summary = isles.import_isles(root, tmp_path / "out")

    a = read_volume(summary.input_dir, "0001")
    b = read_volume(summary.input_dir, "0002")
    assert np.array_equal(a, b)  # each volume gets its own window
    assert a[0].max() <= 3  # dim slice stays dim: not stretched per slice
    assert a[1:].max() == 255 and np.median(a[1:][a[1:] > 0]) > 100  # outlier is clipped
    grey = isles.window_volume(dwi)
    assert grey.dtype == np.uint8 and grey[:3, :3, 3].max() == 0  # background is 0
    assert grey[dwi > 0].min() >= 1  # brain is never 0
    assert isles.window_volume(np.zeros(shape)).max() == 0


# --------------------------------------------------------------------------- output


def test_output_opens_as_dataset_and_rerun_is_idempotent(two_cases, tmp_path, capsys):
    root, truth = two_cases
    out = tmp_path / "out"
    assert run_cli(capsys, "--root", root, "--out", out, "--skip-empty")[0] == 0
    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*.png")}

    code, stdout, err = run_cli(capsys, "--root", root, "--out", out, "--skip-empty")

    assert code == 0, err
    assert "0 written, 7 unchanged" in stdout  # 11 slices minus 4 without brain
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.png")} == mtimes
    dataset = open_dataset(out / "input", out / "mask")
    assert len(dataset) == 7
    lesion_pixels = sum(int(les.area) for s in dataset.slices for les in s.lesions)
    assert lesion_pixels == sum(int(m.sum()) for _, m, _ in truth.values())
    assert all(s.brain_area > 0 for s in dataset.slices)


def test_parallel_import_matches_serial_and_reports_progress(two_cases, tmp_path):
    root, _ = two_cases
    calls = []
    serial = isles.import_isles(root, tmp_path / "serial", modality="adc")
    parallel = isles.import_isles(root, tmp_path / "parallel", modality="adc", workers=2,
                                  progress=lambda done, total: calls.append((done, total)))

    assert calls == [(0, 2), (1, 2), (2, 2)]
    assert serial.cases == parallel.cases
    for sub in ("input", "mask"):
        for p in (tmp_path / "serial" / sub).iterdir():
            assert np.array_equal(read_png(p), read_png(tmp_path / "parallel" / sub / p.name))


def test_existing_different_file_is_never_overwritten(two_cases, tmp_path, capsys):
    root, _ = two_cases
    out = tmp_path / "out"
    assert run_cli(capsys, "--root", root, "--out", out)[0] == 0
    victim = out / "input" / slice_name("0002", 3)
    cv2.imwrite(str(victim), np.full((16, 12), 7, np.uint8))
    before = victim.read_bytes()

    code, _, err = run_cli(capsys, "--root", root, "--out", out)

    assert_one_error(code, err, str(victim), "different pixels")
    assert victim.read_bytes() == before


def test_leftover_slice_of_other_options_is_an_error(two_cases, tmp_path, capsys):
    root, _ = two_cases
    out = tmp_path / "out"
    assert run_cli(capsys, "--root", root, "--out", out)[0] == 0

    code, _, err = run_cli(capsys, "--root", root, "--out", out, "--skip-empty")

    assert_one_error(code, err, slice_name("0001", 0), "not a slice of this import")
    assert (out / "input" / slice_name("0001", 0)).exists()


# --------------------------------------------------------------------------- errors


def test_missing_modality_or_mask_is_skipped_with_warning_or_strict_error(
        two_cases, tmp_path, capsys):
    root, truth = two_cases
    _paths(root, "release", "0002")["dwi"].unlink()
    dwi, mask, _ = truth["0001"]
    write_case(root, "release", "0005", affine=LPS, dwi=dwi)  # no mask

    code, stdout, err = run_cli(capsys, "--root", root, "--out", tmp_path / "out")

    assert code == 0, err
    warns = err.strip().splitlines()
    assert len(warns) == 2 and all(w.startswith("warning: case 000") for w in warns)
    assert "no dwi image" in warns[0] and "no lesion mask" in warns[1]
    assert "imported 1 case(s) (2 skipped)" in stdout
    with pytest.warns(PoissonBlendWarning, match="case 0005: no lesion mask"):
        summary = isles.import_isles(root, tmp_path / "lib", cases="1,5")
    assert [s.case_id for s in summary.skipped] == ["0005"]

    code, _, err = run_cli(capsys, "--root", root, "--out", tmp_path / "o2", "--strict")
    assert_one_error(code, err, "case 0002: no dwi image")
    assert not (tmp_path / "o2").exists()

    code, _, err = run_cli(capsys, "--root", root, "--out", tmp_path / "o3", "--cases", "0002")
    assert_one_error(code, err, "no selected case under", "has both a dwi image and a lesion "
                     "mask: case 0002: no dwi image")


def _mismatch_shape(root):
    dwi, mask = synthetic_case((14, 18, 7), np.random.default_rng(3))
    save(_paths(root, "release", "0002")["dwi"], dwi, PERMUTED)
    return "does not match"


def _mismatch_affine(root):
    p = _paths(root, "release", "0002")["dwi"]
    img = nib.load(p)
    shifted = img.affine.copy()
    shifted[0, 3] += 1.0
    save(p, np.asarray(img.dataobj), shifted)
    return "affine differs"


def _truncated(root):
    p = _paths(root, "release", "0002")["msk"]
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    return "unreadable NIfTI"


def _garbage(root):
    _paths(root, "release", "0001")["dwi"].write_bytes(b"not a nifti file" * 20)
    return "unreadable NIfTI"


def _not_gzip_raw(root):
    p = _paths(root, "release", "0001")["dwi"]
    raw = gzip.decompress(p.read_bytes())
    p.write_bytes(raw[:200])  # a .nii.gz that is not gzip at all
    return "unreadable NIfTI"


@pytest.mark.parametrize("damage", [_mismatch_shape, _mismatch_affine, _truncated, _garbage,
                                    _not_gzip_raw])
def test_broken_case_is_one_error_line(two_cases, tmp_path, capsys, damage):
    root, _ = two_cases
    needle = damage(root)

    code, _, err = run_cli(capsys, "--root", root, "--out", tmp_path / "out")

    assert_one_error(code, err, needle, "sub-strokecase000")


@pytest.mark.parametrize("args, needles", [
    (["--root", "{tmp}/missing"], ["ISLES root", "does not exist"]),
    (["--root", "{tmp}/empty"], ["no ISLES case found under"]),
    (["--cases", "0009"], ["case 0009 not found"]),
    (["--cases", "abc"], ["'abc' is not a case number"]),
    (["--modality", "t1"], ["--modality", "invalid choice"]),
    (["--workers", "0"], ["--workers", ">= 1"]),
    (["--out", "{tmp}/file.txt"], ["file.txt", "is a file, not a folder"]),
])
def test_bad_arguments_are_one_error_line(two_cases, tmp_path, capsys, args, needles):
    root, _ = two_cases
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("x")
    (tmp_path / "file.txt").write_text("x")
    argv = {"--root": str(root), "--out": str(tmp_path / "out")}
    extra = []
    for flag, value in zip(args[::2], args[1::2]):
        value = value.format(tmp=tmp_path)
        if flag in argv:
            argv[flag] = value
        else:
            extra += [flag, value]

    code, _, err = run_cli(capsys, *[x for kv in argv.items() for x in kv], *extra)

    assert_one_error(code, err, *needles)


def test_import_isles_invalid_input(two_cases, tmp_path):
    root, _ = two_cases
    with pytest.raises(ImportError_, match="workers"):
        isles.import_isles(root, tmp_path / "out", workers=0)
    with pytest.raises(ImportError_, match="modality 'pd'"):
        isles.import_isles(root, tmp_path / "out", modality="pd")
    with pytest.raises(ImportError_, match="empty selection"):
        isles.import_isles(root, tmp_path / "out", cases=[])
