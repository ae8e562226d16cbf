"""The generate command, end to end on real folders: python -m poissonblend generate."""

from __future__ import annotations

import csv
import fcntl
import multiprocessing
import os
import pty
import signal
import struct
import subprocess
import sys
import termios
import time
import warnings
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import make_training_set
from poissonblend.cli import main
from poissonblend.dataset import open_dataset
from poissonblend.demo import make_demo
from poissonblend.errors import OutputError, PoissonBlendWarning
from poissonblend import dataset as dataset_module
from poissonblend.generate import generate
from poissonblend.output import MANIFEST_COLUMNS


def run_generate(training_set, out: Path, *extra: str) -> int:
    input_dir, mask_dir = training_set
    return main(["generate", "--input-dir", str(input_dir), "--mask-dir", str(mask_dir),
                 "--out-input-dir", str(out / "aug_input"), "--out-mask-dir", str(out / "aug_mask"),
                 *extra])


def load_like_the_user(input_dir: Path, mask_dir: Path) -> dict[str, list]:
    """The researcher's loader: group by name.split('_')[1], read grey, mask / 255."""
    cases = defaultdict(list)
    for path in sorted(input_dir.glob("*.png")):
        image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        mask = cv2.imread(str(mask_dir / path.name), cv2.IMREAD_GRAYSCALE)
        assert image is not None and mask is not None and image.shape == mask.shape
        assert set(np.unique(mask / 255)) <= {0.0, 1.0}
        cases[path.name.split("_")[1]].append((image, mask))
    return cases


def test_writes_loadable_distinct_cases_and_a_manifest(training_set, tmp_path, capsys):
    assert run_generate(training_set, tmp_path, "--count", "60", "--seed", "5") == 0
    cases = load_like_the_user(tmp_path / "aug_input", tmp_path / "aug_mask")
    assert len(cases) == 60 and all(len(v) == 1 for v in cases.values())
    assert not set(cases) & {"0000", "0001", "0002"}
    with open(tmp_path / "poissonblend_manifest.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["case_id"] for r in rows} == set(cases)
    assert {"source_file", "lesion_index", "target_file", "x", "y", "mode", "scale", "rotation",
            "flips", "seed", "contrast_transferred", "seam_gradient", "brain_fraction"} <= set(rows[0])
    # every output's mask has the new lesion on top of the target's own lesions
    for row in rows:
        name = f"slice_{row['case_id']}_0000.png"
        out_mask = cv2.imread(str(tmp_path / "aug_mask" / name), cv2.IMREAD_GRAYSCALE) > 0
        target_mask = cv2.imread(str(training_set[1] / row["target_file"]), cv2.IMREAD_GRAYSCALE) > 0
        assert (out_mask >= target_mask).all()
        assert out_mask.sum() == target_mask.sum() + int(row["lesion_area"])
    assert "60 written" in capsys.readouterr().out


def test_a_thousand_samples_from_the_demo_set_are_a_thousand_loadable_cases(tmp_path, capsys):
    """The issue's "done when" check: 1,000 samples, 2 workers, read back as the user's loader does."""
    input_dir, mask_dir = make_demo(tmp_path / "demo")
    out_i, out_m = tmp_path / "aug_input", tmp_path / "aug_mask"
    assert main(["generate", "--input-dir", str(input_dir), "--mask-dir", str(mask_dir),
                 "--out-input-dir", str(out_i), "--out-mask-dir", str(out_m), "--count", "1000",
                 "--workers", "2"]) == 0
    assert "1000 written" in capsys.readouterr().out
    cases = load_like_the_user(out_i, out_m)
    assert len(cases) == 1000 and all(len(v) == 1 for v in cases.values())
    assert not set(cases) & {name.split("_")[1] for name in os.listdir(input_dir)}
    with open(tmp_path / "poissonblend_manifest.csv") as fh:
        contrast = [float(r["contrast_transferred"]) for r in csv.DictReader(fh)]
    assert len(contrast) == 1000 and np.median(contrast) >= 0.8


def test_rerun_skips_identical_files_and_workers_do_not_change_output(training_set, tmp_path, capsys):
    one, two = tmp_path / "one", tmp_path / "two"
    assert run_generate(training_set, one, "--count", "70", "--seed", "9") == 0
    first = {p.name: p.read_bytes() for p in (one / "aug_input").iterdir()}
    assert run_generate(training_set, one, "--count", "70", "--seed", "9") == 0
    assert "0 written, 70 already present" in capsys.readouterr().out
    assert {p.name: p.read_bytes() for p in (one / "aug_input").iterdir()} == first
    assert run_generate(training_set, two, "--count", "70", "--seed", "9", "--workers", "2") == 0
    assert {p.name: p.read_bytes() for p in (two / "aug_input").iterdir()} == first
    assert (one / "poissonblend_manifest.csv").read_text() == (two / "poissonblend_manifest.csv").read_text()


def test_different_existing_file_is_never_overwritten(training_set, tmp_path, capsys):
    assert run_generate(training_set, tmp_path, "--count", "5", "--seed", "1") == 0
    victim = sorted((tmp_path / "aug_input").iterdir())[0]
    cv2.imwrite(str(victim), np.zeros((112, 112), np.uint8))
    tampered = victim.read_bytes()
    capsys.readouterr()
    assert run_generate(training_set, tmp_path, "--count", "40", "--seed", "1") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and victim.name in err[0]
    assert victim.read_bytes() == tampered
    # every other sample is a complete pair listed in the manifest; no temp files
    images = {p.name for p in (tmp_path / "aug_input").iterdir()}
    assert images == {p.name for p in (tmp_path / "aug_mask").iterdir()}
    with open(tmp_path / "poissonblend_manifest.csv") as fh:
        listed = {f"slice_{r['case_id']}_0000.png" for r in csv.DictReader(fh)}
    assert listed == images and len(images) == 40  # the victim is listed from the first run
    assert not list((tmp_path / "aug_input").glob(".*.tmp"))


def test_count_zero_writes_nothing(training_set, tmp_path):
    out = tmp_path / "out"
    assert run_generate(training_set, out, "--count", "0") == 0
    assert not out.exists()


@pytest.mark.parametrize("case", ["out_is_input", "negative", "out_is_file", "same_out", "bad_mode",
                                  "missing_dir", "bad_margin"])
def test_bad_input_is_one_error_line_and_exit_2(training_set, tmp_path, capsys, case):
    input_dir, mask_dir = training_set
    args = {"--input-dir": str(input_dir), "--mask-dir": str(mask_dir),
            "--out-input-dir": str(tmp_path / "ai"), "--out-mask-dir": str(tmp_path / "am"),
            "--count": "3"}
    if case == "out_is_input":
        args["--out-input-dir"] = str(input_dir)
    elif case == "negative":
        args["--count"] = "-1"
    elif case == "out_is_file":
        (tmp_path / "ai").write_text("x")
    elif case == "same_out":
        args["--out-mask-dir"] = args["--out-input-dir"]
    elif case == "bad_mode":
        args["--mode"] = "fancy"
    elif case == "missing_dir":
        args["--input-dir"] = str(tmp_path / "nope")
    elif case == "bad_margin":
        args["--margin"] = "1"
    assert main(["generate", *[v for kv in args.items() for v in kv]]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")
    assert not (tmp_path / "am").exists()


def test_help_documents_every_option():
    out = subprocess.run([sys.executable, "-m", "poissonblend", "generate", "--help"],
                         capture_output=True, text=True, check=True).stdout
    for option in ("--input-dir", "--mask-dir", "--out-input-dir", "--out-mask-dir", "--count",
                   "--seed", "--mode", "--workers", "--manifest", "--scale", "--rotation", "--flip"):
        assert option in out
    top = subprocess.run([sys.executable, "-m", "poissonblend", "--help"],
                         capture_output=True, text=True, check=True).stdout
    assert "generate" in top


def test_no_traceback_from_a_subprocess(training_set, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "poissonblend", "generate", "--input-dir",
                           str(tmp_path / "missing"), "--mask-dir", str(training_set[1]),
                           "--out-input-dir", str(tmp_path / "a"), "--out-mask-dir",
                           str(tmp_path / "b"), "--count", "1"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr


def test_generate_keeps_other_columns_of_a_shared_manifest(training_set, tmp_path):
    manifest = tmp_path / "poissonblend_manifest.csv"  # as an export wrote it: its columns + more
    columns = [*MANIFEST_COLUMNS, "decision", "reviewer"]
    manifest.write_text(",".join(columns) + "\npbexported01" + "," * (len(columns) - 3) + ",accepted,ana\n")
    assert run_generate(training_set, tmp_path, "--count", "3") == 0
    with open(manifest) as fh:
        rows = {r["case_id"]: r for r in csv.DictReader(fh)}
    assert rows["pbexported01"]["decision"] == "accepted" and rows["pbexported01"]["reviewer"] == "ana"
    assert len(rows) == 4 and all(r["decision"] == "" for k, r in rows.items() if k != "pbexported01")


def test_one_or_two_workers_with_or_without_shared_decoding_write_the_same_bytes(tmp_path,
                                                                             monkeypatch):
    input_dir, mask_dir = make_training_set(tmp_path / "set", cases=3, slices=40)
    written = {}
    for workers, budget in ((1, None), (2, None), (2, 0)):
        if budget is not None:  # a block larger than the budget: each process decodes its own
            monkeypatch.setattr(dataset_module, "SHARED_BYTES", budget)
        calls = []
        out = tmp_path / f"w{workers}-{budget}"
        generate(open_dataset(input_dir, mask_dir), out / "i", out / "m", count=200, seed=4,
                 workers=workers, progress=lambda done, total: calls.append((done, total)))
        assert calls[-1] == (200, 200) and calls == sorted(calls)
        written[workers, budget] = {p.name: p.read_bytes() for p in sorted((out / "i").iterdir())}
        assert len(written[workers, budget]) == 200
    assert written[1, None] == written[2, None] == written[2, 0]


def run_on_terminal(argv: list[str]) -> tuple[int, str]:
    """Run a command with stderr on a pseudo-terminal (as in a shell); return (code, stderr)."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # 100 columns
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=follower)
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 4096)
        except OSError:  # EIO: the terminal's other end is closed
            break
        if not data:
            break
        chunks.append(data)
    os.close(leader)
    return proc.wait(), b"".join(chunks).decode(errors="replace")


def test_progress_bar_on_a_terminal_and_a_bad_slice_found_by_a_worker(training_set, tmp_path):
    input_dir, mask_dir = training_set
    argv = [sys.executable, "-m", "poissonblend", "generate", "--input-dir", str(input_dir),
            "--mask-dir", str(mask_dir), "--out-input-dir", str(tmp_path / "a"),
            "--out-mask-dir", str(tmp_path / "b"), "--count", "96", "--workers", "2"]
    code, stderr = run_on_terminal(argv)
    assert code == 0 and "generate" in stderr and "96/96" in stderr
    # A slice corrupted after the index was built: the worker that decodes it reports it.
    path = input_dir / "slice_0001_0002.png"
    stat = path.stat()
    path.write_bytes(b"\x89PNG not really" + b"\0" * (stat.st_size - 15))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same size and mtime: index kept
    code, stderr = run_on_terminal([*argv[:-4], "--count", "500", "--workers", "2",
                                    "--out-input-dir", str(tmp_path / "c")])
    assert code == 2 and "Traceback" not in stderr
    assert "error: " in stderr and "slice_0001_0002.png" in stderr and "not a readable PNG" in stderr


def test_generate_refuses_folders_another_run_is_writing_into(training_set, tmp_path):
    out_i = tmp_path / "aug_input"
    out_i.mkdir()
    fd = os.open(out_i, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)  # as a running export or generate holds it
    try:
        with pytest.raises(OutputError, match="another export or generate is writing"):
            generate(open_dataset(*training_set), out_i, tmp_path / "aug_mask", count=5)
        assert list(out_i.iterdir()) == [] and not (tmp_path / "poissonblend_manifest.csv").exists()
    finally:
        os.close(fd)
    assert generate(open_dataset(*training_set), out_i, tmp_path / "aug_mask", count=5).written == 5


def test_without_fork_two_workers_fall_back_to_one_process_with_a_warning(training_set, tmp_path,
                                                                          monkeypatch):
    reference = tmp_path / "ref"
    generate(open_dataset(*training_set), reference / "i", reference / "m", count=64, seed=2)
    monkeypatch.setattr(multiprocessing, "get_all_start_methods", lambda: ["spawn"])  # as on Windows
    with pytest.warns(PoissonBlendWarning, match="'fork' start method"):
        generate(open_dataset(*training_set), tmp_path / "i", tmp_path / "m", count=64, seed=2,
                 workers=2)
    assert ({p.name: p.read_bytes() for p in (tmp_path / "i").iterdir()}
            == {p.name: p.read_bytes() for p in (reference / "i").iterdir()})
    # Not asking for a number (the command line's default) is one quiet process there.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        generate(open_dataset(*training_set), tmp_path / "i2", tmp_path / "m2", count=64, seed=2,
                 workers=None)
    assert ({p.name: p.read_bytes() for p in (tmp_path / "i2").iterdir()}
            == {p.name: p.read_bytes() for p in (reference / "i").iterdir()})


def test_ctrl_c_stops_all_workers_with_one_line_and_leaves_whole_pairs(training_set, tmp_path):
    input_dir, mask_dir = training_set
    out_i, out_m = tmp_path / "aug_input", tmp_path / "aug_mask"
    proc = subprocess.Popen(
        [sys.executable, "-m", "poissonblend", "generate", "--input-dir", str(input_dir),
         "--mask-dir", str(mask_dir), "--out-input-dir", str(out_i), "--out-mask-dir", str(out_m),
         "--count", "100000", "--workers", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 60
    while not (out_i.is_dir() and len(os.listdir(out_i)) > 50) and time.monotonic() < deadline:
        time.sleep(0.05)  # until the workers are busy writing
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C in a terminal reaches the whole process group
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130 and stderr == "error: interrupted\n"
    images = {p.name for p in out_i.iterdir() if not p.name.startswith(".")}
    masks = {p.name for p in out_m.iterdir() if not p.name.startswith(".")}
    assert len(images) > 50 and images <= masks  # every image that made it has its mask
