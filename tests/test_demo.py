"""The bundled demo dataset: format, content, determinism, write rules, CLI."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from poissonblend.cli import main
from poissonblend.dataset import open_dataset
from poissonblend.demo import demo_names, demo_slices, ensure_demo, make_demo
from poissonblend.errors import OutputError
from poissonblend.io import encode_png, parse_slice_name, read_gray_png
from poissonblend.placement import brain_mask

EIGHT = np.ones((3, 3), bool)


@pytest.fixture(scope="module")
def demo_set(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The default demo set (seed 0: 8 cases × 12 slices of 128 px), written once."""
    return make_demo(tmp_path_factory.mktemp("demo") / "out")


def _pairs(input_dir: Path, mask_dir: Path):
    for name in sorted(os.listdir(input_dir)):
        yield name, read_gray_png(input_dir / name), read_gray_png(mask_dir / name)


def _tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _mtimes(*folders: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for f in folders for p in f.iterdir()}


# --- format -------------------------------------------------------------------------------


def test_default_set_has_the_documented_layout(demo_set):
    input_dir, mask_dir = demo_set
    assert input_dir.name == "input" and mask_dir.name == "mask"
    assert input_dir.parent == mask_dir.parent
    names = sorted(os.listdir(input_dir))
    assert names == sorted(os.listdir(mask_dir)) == demo_names()
    assert len(names) == 96
    case_ids = {parse_slice_name(n)[0] for n in names}
    assert case_ids == {f"{k:04d}" for k in range(1, 9)}
    for name in names:
        case_id, index = parse_slice_name(name)
        assert name.split("_")[1] == case_id and "_" not in case_id
        assert 0 <= index < 12


def test_files_are_8bit_grey_and_masks_are_0_or_255(demo_set):
    input_dir, mask_dir = demo_set
    for name, image, mask in _pairs(input_dir, mask_dir):
        for path in (input_dir / name, mask_dir / name):
            with Image.open(path) as png:  # the file itself: 8-bit greyscale, 128 x 128
                assert (png.format, png.mode, png.size) == ("PNG", "L", (128, 128)), path
        assert image.dtype == mask.dtype == np.uint8
        assert image.shape == mask.shape == (128, 128)
        assert set(np.unique(mask).tolist()) <= {0, 255}, name


def test_open_dataset_indexes_it_with_lesions_on_most_slices(demo_set):
    dataset = open_dataset(*demo_set)
    assert len(dataset) == 96
    with_lesions = [s for s in dataset.slices if s.lesions]
    without = [s for s in dataset.slices if not s.lesions and s.brain_area > 0]
    assert len(with_lesions) >= 0.6 * len(dataset)
    assert len(without) >= 3            # brain but no lesion: valid targets
    for s in dataset.slices:
        assert len([les for les in s.lesions if les.area >= 10]) <= 3, s.name
    assert len(dataset.lesion_table) > len(with_lesions)   # multi-focal slices exist


def test_brain_size_follows_the_slice_axis_and_some_slices_are_black(demo_set):
    dataset = open_dataset(*demo_set)
    black = [s.name for s in dataset.slices if s.brain_area == 0]
    assert black, "expected at least one all-black slice"
    for name in black:
        assert not read_gray_png(dataset.input_dir / name).any()
        assert not read_gray_png(dataset.mask_dir / name).any()
        assert name not in dataset.target_names
    for case_id in sorted(dataset.case_ids):
        areas = [s.brain_area for s in dataset.slices if s.case_id == case_id]
        biggest = max(areas)
        assert areas[0] < biggest and areas[-1] < 0.5 * biggest, case_id
    tiny_top = [s for s in dataset.slices if 0 < s.brain_area < 0.1 * 128 * 128]
    assert tiny_top, "expected a near-empty slice"


def test_lesion_sizes_include_specks_blobs_and_dominoes(demo_set):
    input_dir, mask_dir = demo_set
    areas = []
    shapes = []
    for _, _, mask in _pairs(input_dir, mask_dir):
        labels, n = ndimage.label(mask > 0, structure=EIGHT)
        for k, sl in enumerate(ndimage.find_objects(labels), start=1):
            area = int((labels[sl] == k).sum())
            areas.append(area)
            shapes.append(labels[sl].shape)
    areas = np.array(areas)
    assert 1 in areas
    assert 2 in areas and any(a == 2 and s in ((1, 2), (2, 1)) for a, s in zip(areas, shapes))
    specks = areas[areas <= 4]
    blobs = areas[areas > 4]
    assert 3 <= len(specks) < 0.3 * len(areas)          # "a few" specks
    assert blobs.min() >= 10 and blobs.max() <= 400
    assert np.median(blobs) >= 30                        # mostly real blobs, not dust


def test_background_is_exactly_zero_and_lesions_lie_inside_the_brain(demo_set):
    input_dir, mask_dir = demo_set
    for name, image, mask in _pairs(input_dir, mask_dir):
        brain = brain_mask(image)
        assert not image[~brain].any(), f"{name}: non-zero pixels outside the brain"
        assert not (mask > 0)[~brain].any(), f"{name}: lesion outside the brain"
        border = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])
        assert not border.any(), name


def test_lesions_are_brighter_than_surrounding_tissue(demo_set):
    input_dir, mask_dir = demo_set
    checked = 0
    for name, image, mask in _pairs(input_dir, mask_dir):
        if not mask.any():
            continue
        lesion = mask > 0
        brain = brain_mask(image)
        labels, n = ndimage.label(lesion, structure=EIGHT)
        for k in range(1, n + 1):
            one = labels == k
            ring = ndimage.binary_dilation(one, EIGHT, iterations=4) & ~ndimage.binary_dilation(
                lesion, EIGHT, iterations=1) & brain
            contrast = float(image[one].mean()) - float(np.median(image[ring]))
            assert contrast >= 25, f"{name}: lesion {k} only {contrast:.1f} brighter"
            checked += 1
        # tissue has texture and noise; lesions carry their own texture too
        big = [k for k in range(1, n + 1) if (labels == k).sum() >= 50]
        for k in big:
            assert image[labels == k].std() > 3, name
    assert checked > 100


def test_tissue_has_dark_csf_and_grey_white_contrast(demo_set):
    input_dir, mask_dir = demo_set
    name = "slice_0002_0005.png"          # a middle slice: ventricles visible
    image = read_gray_png(input_dir / name)
    mask = read_gray_png(mask_dir / name)
    tissue = image[brain_mask(image) & (mask == 0)].astype(float)
    low, mid, high = np.percentile(tissue, [3, 50, 95])
    assert mid - low > 25                 # dark CSF / ventricles
    assert 8 < high - mid < 60            # grey matter a little brighter, no lesion-level peaks
    assert len(np.unique(tissue)) > 40    # noise and texture, not flat classes


# --- determinism --------------------------------------------------------------------------


def test_same_seed_gives_identical_bytes(tmp_path, demo_set):
    again = make_demo(tmp_path / "again")
    assert _tree_bytes(again[0].parent) == _tree_bytes(demo_set[0].parent)


def test_other_seed_gives_other_pixels(tmp_path, demo_set):
    other_input, _ = make_demo(tmp_path / "seed1", seed=1, cases=1, slices=4)
    for name in demo_names(cases=1, slices=4):
        if read_gray_png(demo_set[0] / name).any():
            assert not np.array_equal(read_gray_png(other_input / name),
                                      read_gray_png(demo_set[0] / name)), name


def test_a_case_does_not_depend_on_the_number_of_cases(demo_set):
    input_dir, mask_dir = demo_set
    for name, image, mask in demo_slices(cases=2):
        assert np.array_equal(image, read_gray_png(input_dir / name)), name
        assert np.array_equal(mask, read_gray_png(mask_dir / name)), name


@pytest.mark.parametrize("size", [48, 200])
def test_other_sizes_work(tmp_path, size):
    input_dir, mask_dir = make_demo(tmp_path / "d", cases=2, slices=6, size=size)
    dataset = open_dataset(input_dir, mask_dir)
    assert {s.shape for s in dataset.slices} == {(size, size)}
    assert sum(1 for s in dataset.slices if s.lesions) >= 6


# --- writing rules ------------------------------------------------------------------------


def test_rerun_is_a_no_op(demo_set):
    input_dir, mask_dir = demo_set
    before = _mtimes(input_dir, mask_dir)
    assert make_demo(input_dir.parent) == (input_dir, mask_dir)
    assert _mtimes(input_dir, mask_dir) == before
    assert not list(input_dir.glob(".*")) and not list(mask_dir.glob(".*"))   # no temp files


def test_interrupted_set_is_completed(tmp_path):
    input_dir, mask_dir = make_demo(tmp_path / "d", cases=1, slices=4)
    reference = _tree_bytes(tmp_path / "d")
    (input_dir / "slice_0001_0002.png").unlink()
    (mask_dir / "slice_0001_0003.png").unlink()
    make_demo(tmp_path / "d", cases=1, slices=4)
    assert _tree_bytes(tmp_path / "d") == reference


def test_existing_different_file_is_an_error_and_is_kept(tmp_path, capsys):
    out = tmp_path / "d"
    input_dir, mask_dir = make_demo(out, cases=1, slices=3)
    victim = mask_dir / "slice_0001_0001.png"
    foreign = encode_png(np.full((128, 128), 7, np.uint8))
    victim.write_bytes(foreign)
    assert main(["demo", "--out", str(out), "--cases", "1", "--slices", "3"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and str(victim) in err and "Traceback" not in err
    assert victim.read_bytes() == foreign
    with pytest.raises(OutputError, match="slice_0001_0001.png"):
        make_demo(out, cases=1, slices=3)


def test_conflict_is_detected_before_anything_is_written(tmp_path):
    out = tmp_path / "d"
    (out / "mask").mkdir(parents=True)
    (out / "mask" / "slice_0001_0003.png").write_bytes(encode_png(np.zeros((128, 128), np.uint8) + 1))
    with pytest.raises(OutputError):
        make_demo(out, cases=1, slices=4)
    assert sorted(os.listdir(out / "input")) == []
    assert sorted(os.listdir(out / "mask")) == ["slice_0001_0003.png"]


def test_out_that_is_a_file_is_refused(tmp_path, capsys):
    path = tmp_path / "file.txt"
    path.write_text("not a folder")
    assert main(["demo", "--out", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and str(path) in err
    assert path.read_text() == "not a folder"
    with pytest.raises(OutputError, match="file.txt"):
        make_demo(path)


def test_input_subfolder_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "input").write_text("x")
    with pytest.raises(OutputError, match="input"):
        make_demo(tmp_path / "d", cases=1, slices=2)


@pytest.mark.parametrize("kwargs, word", [({"size": 10}, "size"), ({"cases": 0}, "cases"),
                                          ({"slices": -1}, "slices"), ({"seed": -3}, "seed"),
                                          ({"size": 128.0}, "size")])
def test_invalid_arguments_name_the_argument(tmp_path, kwargs, word):
    with pytest.raises(ValueError, match=word):
        make_demo(tmp_path / "d", **kwargs)
    assert not (tmp_path / "d").exists()


# --- ensure_demo --------------------------------------------------------------------------


def test_ensure_demo_writes_once_then_reuses(tmp_path, demo_set):
    input_dir, mask_dir = ensure_demo(tmp_path / "data")
    assert input_dir == (tmp_path / "data" / "demo" / "input").resolve()
    assert mask_dir == (tmp_path / "data" / "demo" / "mask").resolve()
    assert _tree_bytes(input_dir.parent) == _tree_bytes(demo_set[0].parent)
    before = _mtimes(input_dir, mask_dir)
    assert ensure_demo(tmp_path / "data") == (input_dir, mask_dir)
    assert _mtimes(input_dir, mask_dir) == before


def test_ensure_demo_completes_a_partial_set(tmp_path):
    input_dir, mask_dir = ensure_demo(tmp_path / "data")
    (mask_dir / "slice_0004_0006.png").unlink()
    ensure_demo(tmp_path / "data")
    assert (mask_dir / "slice_0004_0006.png").exists()
    assert len(open_dataset(input_dir, mask_dir)) == 96


def test_ensure_demo_other_seed_uses_another_folder(tmp_path):
    a = ensure_demo(tmp_path / "data")
    b = ensure_demo(tmp_path / "data", seed=5)
    assert a[0] != b[0] and b[0].parent.parent == (tmp_path / "data").resolve()
    assert read_gray_png(a[0] / "slice_0002_0005.png").tobytes() != \
        read_gray_png(b[0] / "slice_0002_0005.png").tobytes()


# --- CLI ----------------------------------------------------------------------------------


def test_cli_writes_the_set_and_prints_one_summary_line(tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["demo", "--out", str(out), "--seed", "3", "--cases", "2", "--slices", "5",
                 "--size", "96"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    assert "10 slices" in lines[0] and str(out / "input") in lines[0]
    assert sorted(os.listdir(out / "input")) == demo_names(cases=2, slices=5)
    lesion_slices = sum(1 for n in demo_names(cases=2, slices=5)
                        if read_gray_png(out / "mask" / n).any())
    assert f"{lesion_slices} with lesions" in lines[0]
    assert read_gray_png(out / "input" / "slice_0002_0004.png").shape == (96, 96)
    # same again: nothing changes, still exit 0
    before = _mtimes(out / "input", out / "mask")
    assert main(["demo", "--out", str(out), "--seed", "3", "--cases", "2", "--slices", "5",
                 "--size", "96"]) == 0
    assert _mtimes(out / "input", out / "mask") == before


@pytest.mark.parametrize("argv", [["--cases", "0"], ["--size", "12"], ["--seed", "-1"],
                                  ["--slices", "x"]])
def test_cli_rejects_bad_numbers(tmp_path, capsys, argv):
    assert main(["demo", "--out", str(tmp_path / "d"), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and argv[0] in err
    assert not (tmp_path / "d").exists()


def test_cli_help_documents_every_option(capsys):
    assert main(["demo", "--help"]) == 0
    out = capsys.readouterr().out
    for option in ("--out", "--seed", "--cases", "--slices", "--size", "DWI", "0/255"):
        assert option in out
    assert main(["--help"]) == 0
    assert "demo" in capsys.readouterr().out
