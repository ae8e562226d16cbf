"""PNG reading/writing, atomic writes and slice naming."""

from __future__ import annotations

import numpy as np
import pytest

from poissonblend.errors import DatasetError, OutputError
from poissonblend.io import (atomic_write_bytes, decode_gray_png, encode_png, parse_slice_name,
                             read_gray_png, same_pixels, slice_name, write_pair)


@pytest.mark.parametrize("case_id, index", [("0001", 0), ("pb3fa9", 12), ("x", 12345)])
def test_slice_names_round_trip(case_id, index):
    name = slice_name(case_id, index)
    assert parse_slice_name(name) == (case_id, index)
    assert name.split("_")[1] == case_id


@pytest.mark.parametrize("bad", ["slice_a_b_0001.png", "slice_0001.png", "img_0001_0001.png",
                                 "slice_0001_001.png", "slice_0001_0001.jpg"])
def test_bad_names_are_errors(bad):
    with pytest.raises(DatasetError, match="slice format"):
        parse_slice_name(bad)


def test_case_id_with_underscore_is_refused():
    with pytest.raises(ValueError):
        slice_name("a_b", 0)


def test_png_round_trip_and_atomic_writes(tmp_path):
    image = np.random.default_rng(0).integers(0, 256, (33, 17)).astype(np.uint8)
    path = tmp_path / "slice_0001_0000.png"
    atomic_write_bytes(path, encode_png(image))
    assert np.array_equal(read_gray_png(path), image)
    assert same_pixels(path, image) and not same_pixels(path, image + 1)
    write_pair(tmp_path / "i.png", tmp_path / "m.png", encode_png(image), encode_png(image // 2))
    assert np.array_equal(read_gray_png(tmp_path / "m.png"), image // 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["i.png", "m.png", "slice_0001_0000.png"]


def test_failed_write_leaves_no_temp_file(tmp_path):
    with pytest.raises(TypeError):
        atomic_write_bytes(tmp_path / "x.png", object())  # not bytes: the write fails
    assert list(tmp_path.iterdir()) == []


def test_unwritable_places_are_output_errors_and_leave_nothing(tmp_path):
    with pytest.raises(OutputError, match="cannot write .*missing.*No such file"):
        atomic_write_bytes(tmp_path / "missing" / "x.png", b"data")
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(OutputError, match="cannot write"):
        write_pair(tmp_path / "i.png", tmp_path / "file" / "m.png", b"image", b"mask")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_unreadable_files_are_dataset_errors(tmp_path):
    with pytest.raises(DatasetError, match="cannot read"):
        read_gray_png(tmp_path / "missing.png")
    with pytest.raises(DatasetError, match="not a readable PNG"):
        decode_gray_png(b"", "empty.png")


def test_stale_temp_file_of_a_dead_process_with_the_same_pid_is_skipped(tmp_path):
    import os
    import threading

    from poissonblend import io as pbio
    target = tmp_path / "x.png"
    n = next(pbio._temp_counter) + 1  # the name the next write will try first
    stale = tmp_path / f".x.png.{os.getpid()}-{threading.get_ident()}-{n}.tmp"
    stale.write_bytes(b"left by a killed writer")
    atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new"
    assert stale.exists()  # not ours to delete here; export/remove_stale_temp_files cleans up


def test_stale_temp_cleanup_spares_live_writers(tmp_path):
    import subprocess
    import sys

    from poissonblend.io import remove_stale_temp_files, temp_path
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True).stdout.strip()
        keep = [temp_path(tmp_path / "a.png", pid=live.pid), tmp_path / ".manifest.csv.xyz.tmp"]
        stale = [temp_path(tmp_path / "b.png", pid=int(dead)), temp_path(tmp_path / "c.png")]
        for p in [*keep, *stale]:
            p.write_bytes(b"x")
        assert sorted(remove_stale_temp_files(tmp_path)) == sorted(stale)
        assert all(p.exists() for p in keep) and not any(p.exists() for p in stale)
    finally:
        live.kill()
        live.wait()
