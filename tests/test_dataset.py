"""Opening training sets: pairing, validation errors, awkward-but-valid inputs, the index cache."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import warnings

import cv2
import numpy as np
import pytest

from conftest import brain_slice, make_training_set, write_slice
from poissonblend import dataset as dataset_module
from poissonblend.dataset import BRAIN, PIXELS, SharedSlices, open_dataset
from poissonblend.errors import DatasetError, PoissonBlendWarning
from poissonblend.lesions import label_lesions
from poissonblend.placement import brain_mask, histogram, tissue_threshold


def test_pairs_by_name_and_parses_case_ids(training_set):
    ds = open_dataset(*training_set)
    assert len(ds) == 12
    assert ds.case_ids == {"0000", "0001", "0002"}
    assert [s.name for s in ds.slices] == sorted(s.name for s in ds.slices)
    assert len(ds.lesion_table) == 6
    info = ds.info("slice_0001_0002.png")
    assert (info.case_id, info.slice_index, info.shape) == ("0001", 2, (112, 112))
    image, lesion_mask = ds.load(info.name)
    brain = ds.brain(info.name)
    assert lesion_mask.sum() == info.lesions[0].area
    assert np.array_equal(brain, brain_mask(image, threshold=info.threshold))
    assert brain.sum() == info.brain_area
    assert not any(a.flags.writeable for a in (image, lesion_mask, brain))


def test_junk_files_are_ignored_with_a_warning(training_set):
    input_dir, mask_dir = training_set
    for junk in (".DS_Store", "Thumbs.db", "notes.txt"):
        (input_dir / junk).write_bytes(b"junk")
    with pytest.warns(PoissonBlendWarning, match="ignored 3 non-PNG"):
        ds = open_dataset(input_dir, mask_dir)
    assert len(ds) == 12


@pytest.mark.parametrize("breakage, message", [
    ("missing_mask", "has no mask"),
    ("missing_image", "has no image"),
    ("bad_name", "not in the slice format"),
    ("corrupt", "not a readable PNG"),
    ("sixteen_bit", "16-bit PNG"),
    ("colour", "colour PNG"),
    ("shape", "but its mask is"),
])
def test_bad_files_are_typed_errors_naming_the_file(training_set, breakage, message):
    input_dir, mask_dir = training_set
    name = "slice_0001_0002.png"
    if breakage == "missing_mask":
        (mask_dir / name).unlink()
    elif breakage == "missing_image":
        (input_dir / name).unlink()
    elif breakage == "bad_name":
        for d in training_set:
            shutil.copy(d / name, d / "scan_01.png")
        name = "scan_01.png"
    elif breakage == "corrupt":
        data = (input_dir / name).read_bytes()
        (input_dir / name).write_bytes(data[:40])
    elif breakage == "sixteen_bit":
        cv2.imwrite(str(input_dir / name), np.full((112, 112), 1000, np.uint16))
    elif breakage == "colour":
        rgb = np.zeros((112, 112, 3), np.uint8)
        rgb[..., 2] = 200
        cv2.imwrite(str(input_dir / name), rgb)
    elif breakage == "shape":
        cv2.imwrite(str(mask_dir / name), np.zeros((100, 112), np.uint8))
    with pytest.raises(DatasetError, match=message) as err:
        open_dataset(input_dir, mask_dir)
    assert name in str(err.value)


def test_grey_colour_png_is_converted_with_a_warning(training_set):
    input_dir, mask_dir = training_set
    name = "slice_0001_0001.png"
    grey = cv2.imread(str(input_dir / name), cv2.IMREAD_GRAYSCALE)
    cv2.imwrite(str(input_dir / name), cv2.merge([grey, grey, grey]))
    with pytest.warns(PoissonBlendWarning, match="colour PNG with equal channels"):
        ds = open_dataset(input_dir, mask_dir)
    with pytest.warns(PoissonBlendWarning, match="colour PNG with equal channels"):
        assert np.array_equal(ds.load(name)[0], grey)


@pytest.mark.parametrize("problem, message", [
    ("no_folder", "does not exist"), ("empty", "holds no PNG"), ("no_lesion", "no lesion in any mask"),
    ("same", "same folder"), ("file", "is not a folder"),
])
def test_folder_errors(tmp_path, problem, message):
    input_dir, mask_dir = tmp_path / "input", tmp_path / "mask"
    if problem == "empty":
        input_dir.mkdir(); mask_dir.mkdir()
    if problem == "no_lesion":
        rng = np.random.default_rng(0)
        write_slice(input_dir, mask_dir, "slice_0001_0000.png", brain_slice(rng), np.zeros((112, 112)))
    if problem == "same":
        input_dir.mkdir(); mask_dir = input_dir
    if problem == "file":
        input_dir.write_bytes(b"")
        mask_dir.mkdir()
    with pytest.raises(DatasetError, match=message):
        open_dataset(input_dir, mask_dir)


def test_masks_given_as_the_input_folder_are_an_error(tmp_path):
    input_dir, mask_dir = make_training_set(tmp_path / "set")
    with pytest.raises(DatasetError, match=r"input folder .*mask.* looks like masks: its slices "
                                           r"hold only the grey values 0, 255"):
        open_dataset(mask_dir, input_dir)  # swapped: the masks are the "images"
    copy = tmp_path / "copy"
    shutil.copytree(mask_dir, copy)
    with pytest.raises(DatasetError, match="hold the same pictures"):
        open_dataset(copy, mask_dir)  # the masks twice
    images_again = tmp_path / "images-again"
    shutil.copytree(input_dir, images_again)
    with pytest.raises(DatasetError, match=r"hold the same pictures \(12 of 12 checked\)"):
        open_dataset(input_dir, images_again)


def test_awkward_but_valid_inputs(tmp_path):
    """0/1 masks, mixed 112/160 px, all-black slice, 1-px and 2-px lesions, border lesion."""
    rng = np.random.default_rng(3)
    inp, msk = tmp_path / "input", tmp_path / "mask"
    m = np.zeros((112, 112), np.uint8)
    m[50, 50] = 1            # 1 px
    m[60, 60:62] = 1         # 2-px domino
    m[70, 70] = m[71, 71] = 1  # diagonal neighbours: one 8-connected lesion
    m[0:3, 40:45] = 1         # touches the border
    write_slice(inp, msk, "slice_0001_0000.png", brain_slice(rng), m)
    write_slice(inp, msk, "slice_0002_0000.png", brain_slice(rng, 160), np.zeros((160, 160)))
    write_slice(inp, msk, "slice_0003_0000.png", np.zeros((112, 112)), np.zeros((112, 112)))
    ds = open_dataset(inp, msk)
    areas = sorted(les.area for les in ds.info("slice_0001_0000.png").lesions)
    assert areas == [1, 2, 2, 15]
    assert ds.info("slice_0002_0000.png").shape == (160, 160)
    assert "slice_0003_0000.png" not in ds.target_names  # all black: never a target
    assert set(ds.target_names) == {"slice_0001_0000.png", "slice_0002_0000.png"}


def test_odd_mask_values_warn_once(training_set):
    input_dir, mask_dir = training_set
    m = np.zeros((112, 112), np.uint8)
    m[40:44, 40:44] = 128
    cv2.imwrite(str(mask_dir / "slice_0000_0001.png"), m)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = open_dataset(input_dir, mask_dir)
    odd = [w for w in caught if "other than 0/1/255" in str(w.message)]
    assert len(odd) == 1
    assert ds.info("slice_0000_0001.png").lesions[0].area == 16


def test_index_cache_is_used_until_a_file_changes(training_set, cache_dir):
    input_dir, mask_dir = training_set
    first = open_dataset(input_dir, mask_dir)
    assert list(cache_dir.glob("index-*.npz"))
    # Same size and mtime, different bytes: the cached index is trusted (no re-decode).
    name = "slice_0002_0003.png"
    path = input_dir / name
    st = path.stat()
    data = bytearray(path.read_bytes())
    data[-20] ^= 0xFF  # corrupt the IEND region without changing the size
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert open_dataset(input_dir, mask_dir).identity == first.identity
    # A new mtime invalidates that entry, and the damage is found.
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    with pytest.raises(DatasetError, match=name):
        open_dataset(input_dir, mask_dir)


def test_a_cached_index_gives_what_a_fresh_build_gives(training_set, cache_dir, tmp_path):
    input_dir, mask_dir = training_set
    m = np.zeros((112, 112), np.uint8)
    m[40:44, 40:44] = 128  # an odd mask value: its warning must come back from the cache too
    m[70:72, 20:23] = 255
    cv2.imwrite(str(mask_dir / "slice_0000_0001.png"), m)
    with pytest.warns(PoissonBlendWarning, match="other than 0/1/255"):
        built = open_dataset(input_dir, mask_dir)
    with pytest.warns(PoissonBlendWarning, match="other than 0/1/255"):
        cached = open_dataset(input_dir, mask_dir)  # every row from the cache
    # One file changes: its row is built again, the others come from the cache.
    name = "slice_0002_0003.png"
    os.utime(input_dir / name, ns=(0, (input_dir / name).stat().st_mtime_ns + 10**9))
    with pytest.warns(PoissonBlendWarning, match="other than 0/1/255"):
        partly = open_dataset(input_dir, mask_dir)
    with pytest.warns(PoissonBlendWarning, match="other than 0/1/255"):
        fresh = open_dataset(input_dir, mask_dir, cache_dir=tmp_path / "elsewhere")
    for ds in (built, cached, partly):
        assert ds.slices == fresh.slices
        assert ds.identity == fresh.identity
        assert np.array_equal(ds.lesion_table.area, fresh.lesion_table.area)
    lesions = cached.info("slice_0000_0001.png").lesions
    assert [(les.index, les.area, les.bbox_rc) for les in lesions] == [
        (0, 16, (40, 40, 44, 44)), (1, 6, (70, 20, 72, 23))]
    assert lesions == tuple(lesions) and len(lesions) == 2


@pytest.mark.parametrize("damage", [b"", b"PK\x03\x04 not really a zip", "half", "json"])
def test_a_damaged_index_cache_is_built_again(training_set, cache_dir, damage):
    first = open_dataset(*training_set)
    (cache_file,) = cache_dir.glob("index-*.npz")
    if damage == "half":
        damage = cache_file.read_bytes()[: cache_file.stat().st_size // 2]
    elif damage == "json":  # what version 1 stored, under the new name
        damage = b'{"version": 1, "slices": {}}'
    cache_file.write_bytes(damage)
    again = open_dataset(*training_set)
    assert again.slices == first.slices and again.identity == first.identity
    assert np.load(cache_file)["names"].tolist() == [s.name for s in first.slices]  # rewritten


def test_parallel_index_build_matches_serial(tmp_path, cache_dir):
    input_dir, mask_dir = make_training_set(tmp_path / "big", cases=50, slices=9, size=64)
    parallel = open_dataset(input_dir, mask_dir, workers=2, cache_dir=tmp_path / "c1")
    serial = open_dataset(input_dir, mask_dir, workers=1, cache_dir=tmp_path / "c2")
    assert parallel.slices == serial.slices
    assert parallel.identity == serial.identity


def _load_all(dataset, names) -> None:
    for name in names:
        dataset.load(name)
        dataset.brain(name)


def test_slices_one_process_decoded_are_read_by_another_from_shared_memory(tmp_path, monkeypatch):
    input_dir, mask_dir = make_training_set(tmp_path / "set", cases=2, slices=5)
    image = brain_slice(np.random.default_rng(3), 112)
    mask = np.zeros_like(image)
    for r, c in ((60, 70), (30, 40), (60, 20)):  # three lesions: labels need renumbering
        mask[r:r + 4, c:c + 5] = 255
    write_slice(input_dir, mask_dir, "slice_0009_0000.png", image, mask)
    dataset = open_dataset(input_dir, mask_dir)
    names = [s.name for s in dataset.slices]
    real_decode = dataset.decode
    with dataset.shared_decoding() as shared:
        assert shared
        child = multiprocessing.get_context("fork").Process(target=_load_all,
                                                            args=(dataset, names[::2]))
        child.start()
        child.join()
        assert child.exitcode == 0
        # The child decoded every other slice into the block and made its brain mask; here
        # they are never made again.
        decoded, brains = [], []
        monkeypatch.setattr(dataset, "decode", lambda name: decoded.append(name) or real_decode(name))
        monkeypatch.setattr(dataset_module, "brain_mask",
                            lambda image, **kw: brains.append(image.shape) or brain_mask(image, **kw))
        monkeypatch.setattr(dataset_module, "CACHE_BYTES", 1)  # the block is not the dataset's cache
        for name in names:
            image = cv2.imread(str(input_dir / name), cv2.IMREAD_GRAYSCALE)
            mask = cv2.imread(str(mask_dir / name), cv2.IMREAD_GRAYSCALE)
            expected = (image, mask > 0, brain_mask(image, threshold=dataset.info(name).threshold))
            got = (*dataset.load(name), dataset.brain(name))
            for a, b in zip(got, expected):
                assert a.dtype == b.dtype and np.array_equal(a, b), name
                assert not a.flags.writeable
            again = (*dataset.load(name), dataset.brain(name))
            assert all(x is y for x, y in zip(again, got))  # served from the block from now on
        assert decoded == names[1::2]
        assert len(brains) == len(names[1::2])
        assert len(label_lesions(dataset.load("slice_0009_0000.png")[1])[1]) == 3
        with pytest.raises(DatasetError, match="no such slice"):
            dataset.load("slice_9999_0000.png")
    assert dataset._shared is None  # outside the block, loads use the dataset's own cache again


def test_a_slice_another_process_is_decoding_is_decoded_here_too(training_set, monkeypatch):
    dataset = open_dataset(*training_set)
    name = dataset.slices[0].name
    expected = dataset.decode(name)
    with dataset.shared_decoding():
        block = dataset._shared
        block._state[dataset.row(name), PIXELS] = block.BUSY  # as while another process decodes it
        block._state[dataset.row(name), BRAIN] = block.BUSY
        got = dataset.load(name)
        assert all(np.array_equal(a, b) for a, b in zip(got, expected))
        assert np.array_equal(dataset.brain(name),
                              brain_mask(expected[0], threshold=dataset.info(name).threshold))
        assert block._state[dataset.row(name), BRAIN] == block.BUSY  # not taken from the other
        # A decode that fails leaves the slice free for the next try.
        other = dataset.slices[1].name
        monkeypatch.setattr(dataset, "decode", lambda name: 1 / 0)
        with pytest.raises(ZeroDivisionError):
            dataset.load(other)
        assert block._state[dataset.row(other), PIXELS] == block.EMPTY
    assert SharedSlices.nbytes(dataset) >= 3 * 112 * 112 * len(dataset.slices)


def test_an_index_of_an_older_version_is_built_again(training_set, cache_dir):
    """Version 2 indexes hold brain areas from a per-slice threshold: never trusted now."""
    first = open_dataset(*training_set)
    (cache_file,) = cache_dir.glob("index-*.npz")
    with np.load(cache_file) as data:
        columns = {k: data[k] for k in data.files}
    old = {k: v for k, v in columns.items() if k not in ("threshold", "brain_bbox")}
    old["version"] = np.array(2)
    old["brain_area"] = np.full_like(columns["brain_area"], 7)  # what v2 might have said
    np.savez(cache_file, **old)
    again = open_dataset(*training_set)
    assert again.slices == first.slices and all(s.brain_area != 7 for s in again.slices)
    with np.load(cache_file) as data:
        assert int(data["version"]) == dataset_module.INDEX_VERSION == 3
        assert data["threshold"].tolist() == [s.threshold for s in first.slices]


def test_a_changed_slice_rebuilds_its_whole_case(tmp_path, cache_dir, monkeypatch):
    input_dir, mask_dir = make_training_set(tmp_path / "set", cases=3, slices=4)
    first = open_dataset(input_dir, mask_dir)
    # Case 0001 gets a much brighter slice: the case's threshold (and so every slice of it) moves.
    name = "slice_0001_0002.png"
    image = cv2.imread(str(input_dir / name), cv2.IMREAD_GRAYSCALE)
    cv2.imwrite(str(input_dir / name), np.clip(image.astype(int) * 2.5, 0, 255).astype(np.uint8))
    built = []
    real = dataset_module._index_case
    monkeypatch.setattr(dataset_module, "_index_case",
                        lambda pairs: built.extend(p[0].name for p in pairs) or real(pairs))
    again = open_dataset(input_dir, mask_dir, workers=1)
    assert sorted(built) == [f"slice_0001_{z:04d}.png" for z in range(4)]
    assert again.info("slice_0001_0000.png").threshold > first.info("slice_0001_0000.png").threshold
    assert again.info("slice_0000_0000.png") == first.info("slice_0000_0000.png")
    assert again.slices == open_dataset(input_dir, mask_dir, cache_dir=tmp_path / "fresh").slices


def test_levels_follow_the_slice_index_within_each_case(tmp_path):
    rng = np.random.default_rng(0)
    inp, msk = tmp_path / "input", tmp_path / "mask"
    lesion = np.zeros((112, 112), np.uint8)
    lesion[50:54, 50:54] = 255
    for name in ("slice_0001_0003.png", "slice_0001_0010.png", "slice_0001_0120.png",
                 "slice_0002_0000.png", "slice_0002_0001.png", "slice_0003_0005.png"):
        write_slice(inp, msk, name, brain_slice(rng), lesion)
    ds = open_dataset(inp, msk)
    levels = {s.name: s.level for s in ds.slices}
    assert levels == {"slice_0001_0003.png": 0.0, "slice_0001_0010.png": 0.5,
                      "slice_0001_0120.png": 1.0, "slice_0002_0000.png": 0.0,
                      "slice_0002_0001.png": 1.0, "slice_0003_0005.png": 0.5}
    # One-slice case: its threshold is its own (the per-slice fallback).
    image, _ = ds.load("slice_0003_0005.png")
    assert ds.info("slice_0003_0005.png").threshold == tissue_threshold(histogram(image))
    assert np.array_equal(ds.brain("slice_0003_0005.png"), brain_mask(image))
    assert ds.case_brain_area("0001") == max(ds.info(n).brain_area for n in levels if "_0001_" in n)


def test_targets_leave_out_near_empty_slices_of_a_case(tmp_path):
    rng = np.random.default_rng(1)
    inp, msk = tmp_path / "input", tmp_path / "mask"
    lesion = np.zeros((112, 112), np.uint8)
    lesion[50:54, 50:54] = 255
    speck = np.zeros((112, 112))
    speck[55:59, 55:60] = 90  # 20 px of tissue
    for z in range(5):
        image = brain_slice(rng) if 0 < z < 4 else speck + rng.normal(0, 1, speck.shape)
        write_slice(inp, msk, f"slice_0001_{z:04d}.png", image, lesion if z == 2 else lesion * 0)
    ds = open_dataset(inp, msk)
    assert ds.targets() == ds.target_names == tuple(f"slice_0001_{z:04d}.png" for z in (1, 2, 3))
    assert len(ds.targets(0.0)) == 5
    assert ds.targets(1.0) == tuple(n for n in ds.target_names
                                    if ds.info(n).brain_area == ds.case_brain_area("0001"))
