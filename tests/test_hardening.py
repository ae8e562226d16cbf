"""The README's promises under hostile input and faults (issue 12), one section per class.

Real processes (subprocess + os.kill, forked children that drop to the user ``nobody``),
real files, real SQLite databases. Every test here failed before its fix.
"""

from __future__ import annotations

import csv
import errno
import faulthandler
import io
import multiprocessing
import os
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import make_training_set
from poissonblend.blend import _gradient_magnitude
from poissonblend.cli import main
from poissonblend.commands import COMMANDS
from poissonblend.dataset import open_dataset
from poissonblend.errors import (DatasetError, OutputError, OutsideRootError, PoissonBlendError,
                                 StoreError)
from poissonblend.generate import generate
from poissonblend.io import (disk_error_message, read_gray_png, remove_stale_temp_files,
                             temp_path, within_root)
from poissonblend.output import MANIFEST_COLUMNS, manifest_row, write_manifest
from poissonblend.recipe import render, sample_recipe, sample_rng
from poissonblend.store import Store

ROOT = Path(__file__).resolve().parents[1]
NOBODY = 65534


def cli(*argv: str, env: dict | None = None, **kw) -> subprocess.CompletedProcess:
    """``python -m poissonblend`` in a real process, with this checkout's package."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", "poissonblend", *argv], capture_output=True,
                          text=True, env=env, timeout=120, **kw)


def assert_one_error_line(err: str, *patterns: str) -> None:
    assert "Traceback" not in err, err
    assert err.count("\n") == 1 and err.startswith("error: "), err
    for pattern in patterns:
        assert pattern in err, err


def generate_argv(training_set, out: Path, *extra: str) -> list[str]:
    input_dir, mask_dir = training_set
    return ["generate", "--input-dir", str(input_dir), "--mask-dir", str(mask_dir),
            "--out-input-dir", str(out / "aug_input"), "--out-mask-dir", str(out / "aug_mask"),
            *extra]


def visible(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir() if not p.name.startswith(".")} if folder.is_dir() else set()


def manifest_ids(path: Path) -> set[str]:
    with open(path, newline="") as fh:
        return {row["case_id"] for row in csv.DictReader(fh)}


# ----------------------------------------------------------------- running as nobody

for _module, _ in COMMANDS.values():  # a process that drops to nobody can no longer import
    __import__(f"poissonblend.commands.{_module}")  # from /root: import what it needs first
import concurrent.futures  # noqa: E402,F401  (index builds)
import tqdm  # noqa: E402,F401


def shared_dir() -> Path:
    """A fresh folder under /tmp that the user nobody may enter (pytest's tmp_path is 0700)."""
    path = Path(tempfile.mkdtemp(prefix="pb-hardening-", dir="/tmp"))
    path.chmod(0o755)
    return path


def give_to_nobody(*paths: Path) -> None:
    for path in paths:
        for p in [path, *path.rglob("*")] if path.is_dir() else [path]:
            os.chown(p, NOBODY, NOBODY)


def as_nobody(argv: list[str], *, cache: Path | None) -> tuple[int, str, str]:
    """Run ``main(argv)`` in a forked child that first becomes the user nobody."""
    pipes = [os.pipe(), os.pipe()]
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)  # a forked child cannot use OpenCV's thread pool: it stays behind
    pid = os.fork()
    if pid:
        cv2.setNumThreads(threads)
    if pid == 0:  # the child: never return into pytest
        code = 99
        try:
            faulthandler.dump_traceback_later(60, exit=True)  # never hang the suite
            for (_, w), fd in zip(pipes, (1, 2)):
                os.dup2(w, fd)
            sys.stdout = io.TextIOWrapper(os.fdopen(1, "wb", 0, closefd=False), write_through=True)
            sys.stderr = io.TextIOWrapper(os.fdopen(2, "wb", 0, closefd=False), write_through=True)
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            os.environ["XDG_CACHE_HOME"] = str(cache) if cache else "/nonexistent"
            os.environ["HOME"] = "/nonexistent"
            code = main(argv)
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
    for _, w in pipes:
        os.close(w)
    outputs = []
    for r, _ in pipes:
        with os.fdopen(r, "rb") as fh:
            outputs.append(fh.read().decode())
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), outputs[0], outputs[1]


@pytest.fixture
def public(tmp_path):
    """(folder nobody may enter, training set in it readable by everyone, a cache nobody owns)."""
    folder = shared_dir()
    training_set = make_training_set(folder / "set")
    cache = folder / "cache"
    cache.mkdir()
    give_to_nobody(cache)
    yield folder, training_set, cache
    shutil.rmtree(folder)


# ----------------------------------------------------------------- 1 + 7: killed, interrupted

def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def start_long_generate(training_set, out: Path) -> subprocess.Popen:
    argv = generate_argv(training_set, out, "--count", "200000", "--workers", "2")
    proc = subprocess.Popen([sys.executable, "-m", "poissonblend", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    deadline = time.monotonic() + 60
    while len(visible(out / "aug_input")) < 100 and time.monotonic() < deadline:
        time.sleep(0.02)
    return proc


def everything(out: Path) -> dict[str, float]:
    return {str(p): p.stat().st_mtime for folder in (out / "aug_input", out / "aug_mask")
            for p in folder.iterdir()}


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_workers_end_within_a_second_of_the_parent_and_release_the_folders(training_set, tmp_path,
                                                                           sig):
    out = tmp_path / "out"
    proc = start_long_generate(training_set, out)
    workers = children(proc.pid)
    assert workers, "the run should have forked a worker"
    os.kill(proc.pid, sig)  # the parent alone, not its process group
    _, stderr = proc.communicate(timeout=30)
    time.sleep(1.0)
    assert not [w for w in workers if alive(w)], "a worker outlived its parent"
    snapshot = everything(out)
    time.sleep(0.5)
    assert everything(out) == snapshot, "files were written after the parent's death"
    if sig == signal.SIGTERM:  # like Ctrl-C: one line, and the manifest lists what is on disk
        assert proc.returncode == 130 and stderr == "error: interrupted\n"
        images = visible(out / "aug_input")
        assert images <= visible(out / "aug_mask")
        assert {n.split("_")[1] for n in images} == manifest_ids(out / "poissonblend_manifest.csv")
        assert not [n for n in os.listdir(out / "aug_input") if n.startswith(".")]
    else:
        assert proc.returncode == -signal.SIGKILL
    # The folders are free again: a re-run works and clears the killed run's temp files.
    code = main(generate_argv(training_set, out, "--count", "50", "--workers", "2"))
    assert code == 0
    for folder in (out / "aug_input", out / "aug_mask", out):
        assert not [n for n in os.listdir(folder) if n.endswith(".tmp")]


def test_ctrl_c_lists_every_pair_on_disk_in_the_manifest(training_set, tmp_path):
    out = tmp_path / "out"
    proc = start_long_generate(training_set, out)
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C in a terminal reaches the whole process group
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130 and stderr == "error: interrupted\n"
    images = visible(out / "aug_input")
    assert len(images) >= 100 and images <= visible(out / "aug_mask")
    assert {n.split("_")[1] for n in images} == manifest_ids(out / "poissonblend_manifest.csv")
    for folder in (out / "aug_input", out / "aug_mask", out):
        assert not [n for n in os.listdir(folder) if n.endswith(".tmp")]


# ----------------------------------------------------------------- 2: the manifest

NOT_MANIFESTS = {
    "one line of text": b"my notes\n",
    "a CSV with a case_id column": b"case_id,age,nihss\n0001,63,12\n0002,71,4\n",
    "binary": bytes(range(256)) * 4,
    "an empty file": b"",
}


@pytest.mark.parametrize("content", NOT_MANIFESTS.values(), ids=NOT_MANIFESTS.keys())
def test_a_file_that_is_not_a_manifest_is_refused_and_left_unchanged(training_set, tmp_path,
                                                                      capsys, content):
    path = tmp_path / "clinical.csv"
    path.write_bytes(content)
    code = main(generate_argv(training_set, tmp_path, "--count", "5", "--manifest", str(path)))
    _, err = capsys.readouterr()
    assert code == 2
    assert_one_error_line(err, str(path), "not a poissonblend manifest")
    assert path.read_bytes() == content
    assert not visible(tmp_path / "aug_input")  # refused before anything was written
    with pytest.raises(OutputError, match="not a poissonblend manifest"):
        write_manifest(path, [], merge=False)
    assert path.read_bytes() == content


def test_a_manifest_with_extra_columns_is_merged(training_set, tmp_path, capsys):
    path = tmp_path / "m.csv"
    assert main(generate_argv(training_set, tmp_path, "--count", "3", "--manifest", str(path))) == 0
    text = path.read_text().splitlines()
    path.write_text("\n".join([text[0] + ",note"] + [line + ",keep me" for line in text[1:]]) + "\n")
    assert main(generate_argv(training_set, tmp_path, "--count", "6", "--manifest", str(path))) == 0
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 6 and sum(r["note"] == "keep me" for r in rows) == 3


def _merge_many(path: str, worker: int) -> None:
    recipe = _merge_many.recipe
    for k in range(15):
        case_id = f"pbw{worker}n{k}"
        write_manifest(Path(path), [manifest_row(case_id, recipe, _merge_many.quality)])


def test_concurrent_merges_into_one_manifest_lose_no_rows(training_set, tmp_path):
    dataset = open_dataset(*training_set)
    recipe = sample_recipe(dataset, sample_rng(0, 0))
    _merge_many.recipe, _merge_many.quality = recipe, render(dataset, recipe).quality.to_dict()
    path = tmp_path / "shared.csv"
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_merge_many, args=(str(path), w)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert len(manifest_ids(path)) == 60


def test_two_generate_runs_into_sibling_folders_share_the_manifest(training_set, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    runs = [tmp_path / "a", tmp_path / "b"]  # siblings' default manifest: tmp_path/manifest
    argvs = [generate_argv(training_set, run, "--count", "150", "--seed", str(seed), "--workers", "1",
                           "--manifest", str(tmp_path / "poissonblend_manifest.csv"))
             for seed, run in enumerate(runs)]
    procs = [subprocess.Popen([sys.executable, "-m", "poissonblend", *argv], env=env,
                              stderr=subprocess.PIPE, text=True) for argv in argvs]
    for p in procs:
        assert p.wait(120) == 0, p.stderr.read()
    written = {n.split("_")[1] for run in runs for n in visible(run / "aug_input")}
    assert len(written) == 300
    assert manifest_ids(tmp_path / "poissonblend_manifest.csv") == written


# ----------------------------------------------------------------- 3: temp files

def test_clean_up_removes_only_our_temp_files_of_dead_writers(training_set, tmp_path):
    out_i = tmp_path / "aug_input"
    out_i.mkdir()
    dead = subprocess.Popen(["true"])
    dead.wait()
    live = subprocess.Popen(["sleep", "30"])
    try:
        theirs = out_i / ".thesis_draft.tmp"
        theirs.write_text("chapter 3")
        old_style = out_i / ".slice_x_0000.png.123-456-0.tmp"  # not in our format: not ours
        old_style.write_text("?")
        ours_dead = temp_path(out_i / "slice_pbx_0000.png", pid=dead.pid)
        ours_live = temp_path(out_i / "slice_pby_0000.png", pid=live.pid)
        for p in (ours_dead, ours_live):
            p.write_bytes(b"half a PNG")
        assert "poissonblend" in ours_dead.name and str(dead.pid) in ours_dead.name
        assert main(generate_argv(training_set, tmp_path, "--count", "3")) == 0
        assert theirs.read_text() == "chapter 3" and old_style.exists() and ours_live.exists()
        assert not ours_dead.exists()
        assert remove_stale_temp_files(out_i) == []
    finally:
        live.kill()
        live.wait()
    assert remove_stale_temp_files(out_i) == [ours_live]
    assert theirs.exists()


# ----------------------------------------------------------------- 4: one line, not a traceback

@pytest.mark.parametrize("argv", [["status", "--db", "LOOP"], ["demo", "--out", "LOOP"],
                                  ["export", "--db", "LOOP", "--out-input-dir", "a", "--out-mask-dir", "b"]])
def test_a_symlink_loop_as_a_path_argument_is_one_error_line(tmp_path, capsys, argv):
    loop = tmp_path / "loop"
    loop.symlink_to(loop)  # found by the fuzz test: Path.resolve raised RuntimeError
    code = main([str(loop) if a == "LOOP" else str(tmp_path / a) if a in "ab" else a for a in argv])
    _, err = capsys.readouterr()
    assert code == 2
    assert_one_error_line(err, "loop")


def test_a_symlink_loop_among_the_input_files_is_one_error_line(training_set, tmp_path, capsys):
    input_dir, _ = training_set
    (input_dir / "slice_0009_0000.png").symlink_to(input_dir / "slice_0009_0001.png")
    (input_dir / "slice_0009_0001.png").symlink_to(input_dir / "slice_0009_0000.png")
    code = main(generate_argv(training_set, tmp_path, "--count", "3"))
    _, err = capsys.readouterr()
    assert code == 2
    assert_one_error_line(err, "slice_0009_000", "symbolic links")


@pytest.mark.parametrize("what", ["file", "folder"])
def test_unreadable_input_for_a_user_is_one_error_line(public, what):
    folder, (input_dir, mask_dir), cache = public
    victim = input_dir / "slice_0001_0002.png" if what == "file" else mask_dir
    victim.chmod(0o600 if what == "file" else 0o700)
    out = folder / "out"
    out.mkdir()
    give_to_nobody(out)
    code, _, err = as_nobody(generate_argv((input_dir, mask_dir), out, "--count", "3"), cache=cache)
    assert code == 2
    assert_one_error_line(err, str(victim), "ermission denied")


def test_an_unwritable_output_folder_for_a_user_is_one_error_line(public):
    folder, training_set, cache = public
    out = folder / "out"
    (out / "aug_input").mkdir(parents=True)
    (out / "aug_mask").mkdir()
    code, _, err = as_nobody(generate_argv(training_set, out, "--count", "3"), cache=cache)
    assert code == 2
    assert_one_error_line(err, "aug_", "ermission denied")


def queue_db(training_set, db: Path, count: int = 40) -> None:
    input_dir, mask_dir = training_set
    assert main(["queue", "--db", str(db), "--input-dir", str(input_dir), "--mask-dir",
                 str(mask_dir), "--count", str(count), "--seed", "3"]) == 0


def damage(db: Path) -> bytes:
    """Overwrite the database's last page with garbage; return the damaged bytes."""
    data = bytearray(db.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    data[-page:] = b"\xab" * page
    db.write_bytes(bytes(data))
    return bytes(data)


@pytest.mark.parametrize("argv", [["status"], ["decide", "--accept", "--ids", "1"],
                                  ["decide", "--accept", "--all-undecided"],
                                  ["export", "--out-input-dir", "AI", "--out-mask-dir", "AM"]])
def test_a_database_with_damaged_pages_is_refused_before_writing(training_set, tmp_path, capsys,
                                                                  argv):
    db = tmp_path / "review.db"
    queue_db(training_set, db)
    capsys.readouterr()
    damaged = damage(db)
    argv = [str(tmp_path / a) if a in ("AI", "AM") else a for a in argv]
    code = main([argv[0], "--db", str(db), *argv[1:]])
    _, err = capsys.readouterr()
    assert code == 2
    assert_one_error_line(err, str(db), "damaged")
    assert db.read_bytes() == damaged
    assert not (tmp_path / "AI").exists()


@pytest.mark.parametrize("argv, message", [
    (["--seed", "-1"], "--seed"),
    (["--rotation", "nan", "nan"], "--rotation"),
    (["--scale", "1", "inf"], "--scale"),
    (["--count", "-5"], "--count"),
    (["--workers", "0"], "--workers"),
])
def test_negative_seeds_and_non_finite_numbers_are_one_error_line(training_set, tmp_path, capsys,
                                                                   argv, message):
    base = generate_argv(training_set, tmp_path)
    for command in (base + ["--count", "3"] if "--count" not in argv else base, ):
        code = main([*command, *argv])
        _, err = capsys.readouterr()
        assert code == 2
        assert_one_error_line(err, message)
    input_dir, mask_dir = training_set
    if "--workers" not in argv:
        code = main(["queue", "--db", str(tmp_path / "q.db"), "--input-dir", str(input_dir),
                     "--mask-dir", str(mask_dir), *(["--count", "3"] if "--count" not in argv else []),
                     *argv])
        _, err = capsys.readouterr()
        assert code == 2
        assert_one_error_line(err, message)


def test_generate_refuses_a_negative_seed_in_the_library(training_set, tmp_path):
    with pytest.raises(OutputError, match="seed -1"):
        generate(open_dataset(*training_set), tmp_path / "i", tmp_path / "m", count=3, seed=-1)


@pytest.mark.parametrize("ids", ["1-999999999999", "1-20000000", "99999999999999999999999", "5-3"])
def test_huge_id_ranges_are_checked_without_materialising_them(training_set, tmp_path, capsys, ids):
    db = tmp_path / "review.db"
    queue_db(training_set, db, count=5)
    capsys.readouterr()
    memory = 2 * 2**30  # a range of a trillion ids must not need more than this

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))

    proc = cli("decide", "--db", str(db), "--accept", "--ids", ids, preexec_fn=limit)
    assert proc.returncode == 2
    assert_one_error_line(proc.stderr, ids.split("-")[-1] if ids != "5-3" else "5-3")
    assert Store.open(db).counts()["accepted"] == 0


# ----------------------------------------------------------------- 5: other databases

def test_status_leaves_another_apps_database_byte_identical(tmp_path, capsys):
    db = tmp_path / "other_app.sqlite"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE patients (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("INSERT INTO patients (name) VALUES ('x')")
    conn.commit()
    conn.close()
    before = db.read_bytes()
    for argv in (["status"], ["decide", "--accept", "--all-undecided"]):
        code = main([argv[0], "--db", str(db), *argv[1:]])
        _, err = capsys.readouterr()
        assert code == 2
        assert_one_error_line(err, "not a poissonblend review database")
        assert db.read_bytes() == before
        assert sorted(os.listdir(tmp_path)) == ["cache", "other_app.sqlite"] or \
            sorted(os.listdir(tmp_path)) == ["other_app.sqlite"]


def test_read_only_commands_work_on_a_read_only_database(public):
    folder, training_set, cache = public
    db = folder / "review.db"
    queue_db(training_set, db, count=6)
    assert main(["decide", "--db", str(db), "--accept", "--ids", "1-3"]) == 0
    before = db.read_bytes()
    code, out, err = as_nobody(["status", "--db", str(db)], cache=cache)
    assert code == 0 and err == "" and "accepted" in out and "3" in out
    out_dir = folder / "export"
    out_dir.mkdir()
    give_to_nobody(out_dir)
    code, out, err = as_nobody(["export", "--db", str(db), "--out-input-dir", str(out_dir / "ai"),
                                "--out-mask-dir", str(out_dir / "am")], cache=cache)
    assert code == 0 and "Traceback" not in err, err
    assert len(visible(out_dir / "ai")) == 3
    code, _, err = as_nobody(["decide", "--db", str(db), "--reject", "--ids", "4"], cache=cache)
    assert code == 2
    assert_one_error_line(err, "read-only")
    assert db.read_bytes() == before


def test_a_full_disk_is_called_a_full_disk():
    with pytest.raises(OSError) as info:
        with open("/dev/full", "wb") as fh:
            fh.write(b"x" * 10)
    assert info.value.errno == errno.ENOSPC
    assert "disk is full" in disk_error_message(info.value)
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (x)")
    conn.execute("PRAGMA max_page_count = 2")  # SQLite's own "database or disk is full"
    with pytest.raises(sqlite3.OperationalError) as info:
        conn.executemany("INSERT INTO t VALUES (?)", [("x" * 1000,)] * 100)
    assert "disk is full" in disk_error_message(info.value)
    assert disk_error_message(PermissionError(errno.EACCES, "Permission denied")) == "Permission denied"


# ----------------------------------------------------------------- 6: identical runs

def test_identical_runs_give_identical_manifests(tmp_path):
    training_set = make_training_set(tmp_path / "set", cases=4, slices=6, size=64, seed=5)
    manifests = []
    for k, workers in enumerate(("1", "2")):
        proc = cli(*generate_argv(training_set, tmp_path / f"run{k}", "--count", "300", "--workers",
                                  workers, "--rotation", "-40", "40", "--scale", "0.7", "1.5"))
        assert proc.returncode == 0, proc.stderr
        manifests.append((tmp_path / f"run{k}" / "poissonblend_manifest.csv").read_bytes())
    assert manifests[0] == manifests[1]


# ----------------------------------------------------------------- 8: silently accepted data

def test_a_jpeg_renamed_png_is_refused(training_set, tmp_path, capsys):
    input_dir, _ = training_set
    victim = input_dir / "slice_0001_0001.png"
    ok, jpeg = cv2.imencode(".jpg", cv2.imread(str(victim), cv2.IMREAD_GRAYSCALE))
    victim.write_bytes(jpeg.tobytes())
    with pytest.raises(DatasetError, match="JPEG"):
        read_gray_png(victim)
    code = main(generate_argv(training_set, tmp_path, "--count", "3"))
    _, err = capsys.readouterr()
    assert code == 2
    assert_one_error_line(err, str(victim), "JPEG", "not a PNG")


def test_an_rgba_mask_with_the_lesion_in_its_alpha_channel_says_so(training_set, tmp_path, capsys):
    _, mask_dir = training_set
    victim = mask_dir / "slice_0001_0002.png"
    mask = cv2.imread(str(victim), cv2.IMREAD_GRAYSCALE)
    assert mask.any()
    rgba = np.zeros(mask.shape + (4,), np.uint8)
    rgba[..., 3] = mask  # black everywhere, the lesion only in alpha
    cv2.imwrite(str(victim), rgba)
    code = main(generate_argv(training_set, tmp_path, "--count", "3"))
    _, err = capsys.readouterr()
    assert code == 2
    assert_one_error_line(err, str(victim), "alpha")
    opaque = np.dstack([mask, mask, mask, np.full_like(mask, 255)])  # plain RGBA: still read
    cv2.imwrite(str(victim), opaque)
    with pytest.warns(Warning, match="greyscale"):
        assert np.array_equal(read_gray_png(victim), mask)


# ----------------------------------------------------------------- 9: the store's files

def test_the_store_never_turns_a_file_that_is_not_ours_into_a_database(training_set, tmp_path):
    dataset = open_dataset(*training_set)
    for name, content in (("empty.txt", b""), ("notes.txt", b"my notes\n")):
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(StoreError, match="not a (usable )?poissonblend review database"):
            Store.open(path, dataset)
        assert path.read_bytes() == content
        assert sorted(p.name for p in tmp_path.glob(name + "*")) == [name]


def test_the_store_creates_missing_folders_only_when_asked(training_set, tmp_path):
    dataset = open_dataset(*training_set)
    path = tmp_path / "a" / "b" / "review.db"
    with pytest.raises(StoreError, match="does not exist"):
        Store.open(path, dataset)
    assert not (tmp_path / "a").exists()
    store = Store.open(path, dataset, create_folders=True)
    assert store.counts()["total"] == 0 and path.is_file()


def test_two_processes_creating_one_database_at_once_both_get_it(training_set, tmp_path):
    path = tmp_path / "new.db"
    input_dir, mask_dir = training_set
    open_dataset(input_dir, mask_dir)  # index cached: both start at once
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = ["queue", "--db", str(path), "--input-dir", str(input_dir), "--mask-dir", str(mask_dir),
            "--count", "4"]
    procs = [subprocess.Popen([sys.executable, "-m", "poissonblend", *argv], env=env,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for p in procs:
        assert p.wait(60) == 0, p.stderr.read()
    assert Store.open(path).counts()["total"] == 4


def test_within_root_confines_paths(tmp_path):
    root = tmp_path / "team"
    (root / "data").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (root / "escape").symlink_to(tmp_path / "outside")
    assert within_root(root / "data" / "x.db", None) == (root / "data" / "x.db").resolve()
    assert within_root(root / "data" / "new" / "x.db", root) == (root / "data/new/x.db").resolve()
    assert within_root(root, root) == root.resolve()
    for bad in (tmp_path / "outside" / "x.db", root / ".." / "x.db", root / "escape" / "x.db",
                Path("/etc/passwd")):
        with pytest.raises(OutsideRootError) as info:
            within_root(bad, root)
        assert str(bad) in str(info.value) and str(root.resolve()) in str(info.value)
    assert issubclass(OutsideRootError, PoissonBlendError)
    with pytest.raises(OutsideRootError, match="not a folder"):
        within_root(root / "data", root / "data" / "missing")


# ----------------------------------------------------------------- 10: the index cache

def test_an_unusable_cache_location_works_uncached_with_one_warning(public):
    folder, training_set, _ = public
    cache = folder / "readonly-cache"
    (cache / "poissonblend").mkdir(parents=True)  # exists, owned by root: nobody cannot write
    out = folder / "out"
    out.mkdir()
    give_to_nobody(out)
    code, stdout, err = as_nobody(generate_argv(training_set, out, "--count", "3"), cache=cache)
    assert code == 0, err
    assert err.count("\n") == 1 and err.startswith("warning: ") and "not cached" in err, err
    assert "3 written" in stdout
    assert not list((cache / "poissonblend").iterdir())


def test_the_seam_gradient_is_exact_wherever_its_arrays_lie_in_memory():
    """cv2.magnitude's result depended on its output buffer's alignment (IPP's approximate root)."""
    rng = np.random.default_rng(0)
    change = rng.integers(-40, 40, (41, 57)).astype(np.float32)
    dx = change[1:-1, 2:].astype(np.float64) - change[1:-1, :-2]
    dy = change[2:, 1:-1].astype(np.float64) - change[:-2, 1:-1]
    exact = np.sqrt(dx * dx + dy * dy).astype(np.float32)  # IEEE: correctly rounded
    keep = []
    for k in range(64):
        keep.append(np.empty(k % 13 + 1, np.float32))  # move the allocator around
        assert np.array_equal(_gradient_magnitude(change), exact)
