"""Export of accepted candidates: real store, real PNG folders, a real SIGKILL."""

from __future__ import annotations

import csv
import fcntl
import io
import os
import signal
import subprocess
import sys
import textwrap
import time
import zipfile
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np
import pytest

from poissonblend.dataset import open_dataset
from poissonblend.errors import OutputError
from poissonblend.export import (EXPORT_MANIFEST_COLUMNS, MANIFEST_NAME, ExportSummary, export,
                                 export_zip)
from poissonblend.io import encode_png, temp_path
from poissonblend.output import MANIFEST_COLUMNS, sample_paths
from poissonblend.recipe import Recipe, render
from poissonblend.store import Store, sample_digest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def dataset(training_set):
    return open_dataset(*training_set)


@pytest.fixture
def store(tmp_path, dataset) -> Store:
    store = Store.open(tmp_path / "review.db", dataset)
    queued = store.queue(12, seed=5)
    for c in queued[:8]:
        store.decide(c.id, "accepted", reviewer="ana")
    store.decide(queued[8].id, "rejected", reason="seam artifact", reviewer="ben")
    store.decide(queued[9].id, "skipped")
    return store


@pytest.fixture
def out(tmp_path) -> tuple[Path, Path]:
    return tmp_path / "aug" / "input", tmp_path / "aug" / "mask"


def load_like_the_user(input_dir: Path, mask_dir: Path) -> dict[str, list[tuple[np.ndarray, np.ndarray]]]:
    """The user's loader: group by name.split('_')[1], imread grey, mask / 255."""
    cases = defaultdict(list)
    for name in sorted(os.listdir(input_dir)):
        image = cv2.imread(str(input_dir / name), cv2.IMREAD_GRAYSCALE)
        mask = cv2.imread(str(mask_dir / name), cv2.IMREAD_GRAYSCALE)
        assert image is not None and mask is not None, name
        cases[name.split("_")[1]].append((image, mask / 255))
    return cases


def files(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


def manifest_rows(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def assert_complete(store: Store, out_i: Path, out_m: Path) -> None:
    """Every accepted candidate exported bit-identically, nothing else, no leftovers."""
    accepted = store.candidates(state="accepted")
    names = {sample_paths(c.case_id, out_i, out_m)[0].name for c in accepted}
    assert files(out_i) == files(out_m) == names  # no orphans, no temp files
    for c in accepted:
        sample = render(store.dataset, Recipe.from_dict(c.recipe.to_dict()))
        image_path, mask_path = sample_paths(c.case_id, out_i, out_m)
        assert image_path.read_bytes() == encode_png(sample.image)
        assert mask_path.read_bytes() == encode_png(sample.mask)
    rows = manifest_rows(out_i.parent / MANIFEST_NAME)
    assert sorted(r["case_id"] for r in rows) == sorted(c.case_id for c in accepted)
    assert not list(out_i.parent.glob(".*.tmp"))


# ------------------------------------------------------------------ writing

def test_export_writes_the_reviewed_pixels_bit_identically(store, out):
    reviewed = {c.id: render(store.dataset, c.recipe) for c in store.candidates(state="accepted")}
    summary = export(store, *out)
    assert isinstance(summary, ExportSummary)
    assert (summary.written, summary.skipped, summary.conflicts, summary.stale) == (8, 0, [], [])
    for c in store.candidates(state="accepted"):
        image_path, mask_path = sample_paths(c.case_id, *out)
        assert image_path.name == f"slice_{c.case_id}_0000.png"
        image = cv2.imread(str(image_path), cv2.IMREAD_UNCHANGED)
        mask = cv2.imread(str(mask_path), cv2.IMREAD_UNCHANGED)
        assert np.array_equal(image, reviewed[c.id].image)
        assert np.array_equal(mask, reviewed[c.id].mask)
        assert sample_digest(reviewed[c.id]) == c.digest  # what was stored at queue time
    assert_complete(store, *out)


def test_export_loads_with_the_users_loader(store, out, dataset):
    export(store, *out)
    cases = load_like_the_user(*out)
    accepted = store.candidates(state="accepted")
    assert set(cases) == {c.case_id for c in accepted}
    assert not set(cases) & dataset.case_ids
    for slices in cases.values():
        assert len(slices) == 1
        image, mask = slices[0]
        assert image.dtype == np.uint8 and image.shape == (112, 112)
        assert set(np.unique(mask)) <= {0.0, 1.0} and mask.any()


def test_manifest_has_provenance_and_the_decision(store, out):
    summary = export(store, *out)
    assert summary.manifest == out[0].parent / MANIFEST_NAME
    with open(summary.manifest, newline="") as fh:
        assert tuple(next(csv.reader(fh))) == EXPORT_MANIFEST_COLUMNS
    rows = {r["case_id"]: r for r in manifest_rows(summary.manifest)}
    assert EXPORT_MANIFEST_COLUMNS[:len(MANIFEST_COLUMNS)] == MANIFEST_COLUMNS
    for c in store.candidates(state="accepted"):
        row = rows[c.case_id]
        assert (row["source_file"], row["target_file"], int(row["x"]), int(row["y"])) == (
            c.recipe.source, c.recipe.target, c.recipe.x, c.recipe.y)
        assert (int(row["seed"]), int(row["sample_index"])) == (c.seed, c.sample_index)
        assert float(row["score"]) == c.quality["score"]
        assert (row["decision"], row["reviewer"], row["decided_at"]) == ("accepted", "ana", c.decided_at)


def test_reexport_is_idempotent(store, out):
    export(store, *out)
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in out[0].parent.rglob("*") if p.is_file()}
    summary = export(store, *out)
    assert (summary.written, summary.skipped, summary.pruned, summary.repaired) == (0, 8, [], [])
    after = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in out[0].parent.rglob("*") if p.is_file()}
    manifest = out[0].parent / MANIFEST_NAME
    assert {p: v for p, v in after.items() if p != manifest} == {p: v for p, v in before.items() if p != manifest}
    assert after[manifest][1] == before[manifest][1]
    assert str(summary) == f"export: 0 written, 8 skipped, 0 pruned; manifest {manifest}"


def test_newly_accepted_are_added_and_foreign_manifest_rows_kept(store, out):
    manifest = out[0].parent / MANIFEST_NAME
    manifest.parent.mkdir(parents=True)
    manifest.write_text(",".join(MANIFEST_COLUMNS) + "\n" + "pbforeign," + ",".join("1" * (len(MANIFEST_COLUMNS) - 1)) + "\n")
    export(store, *out)
    undecided = store.candidates(state="undecided")
    store.decide(undecided[0].id, "accepted")
    summary = export(store, *out)
    assert (summary.written, summary.skipped) == (1, 8)
    rows = manifest_rows(manifest)
    assert "pbforeign" in {r["case_id"] for r in rows}
    assert len(rows) == 10
    assert files(out[0]) == files(out[1]) and len(files(out[0])) == 9


# ------------------------------------------------------------------ stale / prune

def test_unaccepted_after_export_is_reported_and_pruned_only_on_request(store, out):
    export(store, *out)
    victim = store.candidates(state="accepted")[0]
    store.decide(victim.id, "rejected", reason="wrong anatomy")
    image_path, mask_path = sample_paths(victim.case_id, *out)

    summary = export(store, *out)
    assert [(s.candidate_id, s.state) for s in summary.stale] == [(victim.id, "rejected")]
    assert summary.pruned == [] and image_path.exists() and mask_path.exists()
    assert "1 stale" in str(summary)
    row = {r["case_id"]: r for r in manifest_rows(summary.manifest)}[victim.case_id]
    assert (row["decision"], row["reason"]) == ("rejected", "wrong anatomy")

    dry = export(store, *out, prune=True, dry_run=True)
    assert dry.pruned == [image_path, mask_path] and image_path.exists()

    summary = export(store, *out, prune=True)
    assert summary.pruned == [image_path, mask_path]
    assert not image_path.exists() and not mask_path.exists()
    assert "1 pruned" in str(summary)
    assert_complete(store, *out)
    assert export(store, *out).stale == []


# ------------------------------------------------------------------ conflicts / crashes

def test_a_different_existing_file_is_a_conflict_never_overwritten(store, out):
    target = store.candidates(state="accepted")[0]
    image_path, _ = sample_paths(target.case_id, *out)
    image_path.parent.mkdir(parents=True)
    alien = encode_png(np.full((112, 112), 7, np.uint8))
    image_path.write_bytes(alien)
    summary = export(store, *out)
    assert [c.candidate_id for c in summary.conflicts] == [target.id]
    assert str(image_path) in str(summary.conflicts[0])
    assert image_path.read_bytes() == alien
    assert summary.written == 7 and "1 conflict(s)" in str(summary)
    assert target.case_id not in {r["case_id"] for r in manifest_rows(summary.manifest)}


def test_a_render_that_changed_since_review_is_a_conflict(store, out):
    import sqlite3

    target = store.candidates(state="accepted")[0]
    conn = sqlite3.connect(store.path, isolation_level=None)
    conn.execute("UPDATE candidates SET digest = '00' WHERE id = ?", (target.id,))
    conn.close()
    summary = export(store, *out)
    assert len(summary.conflicts) == 1 and "renders differently" in summary.conflicts[0].message
    assert not sample_paths(target.case_id, *out)[0].exists()


def test_leftovers_of_a_killed_run_are_repaired(store, out):
    out_i, out_m = out
    out_i.mkdir(parents=True)
    out_m.mkdir(parents=True)
    accepted = store.candidates(state="accepted")
    rejected = store.candidates(state="rejected")[0]
    temps = [temp_path(out_i / "slice_pbx_0000.png"), temp_path(out_m / "slice_pbx_0000.png"),
             temp_path(out_i.parent / MANIFEST_NAME)]  # ours, of this (not writing) process
    for t in temps:
        t.write_bytes(b"half")
    theirs = out_i / ".slice_pbx_0000.png.abc.tmp"  # not named as ours: left alone
    theirs.write_bytes(b"someone else's")
    # Killed between the mask and the image rename: a mask without its image.
    sample_paths(accepted[0].case_id, *out)[1].write_bytes(encode_png(render(store.dataset, accepted[0].recipe).mask))
    lone = sample_paths(rejected.case_id, *out)[1]
    lone.write_bytes(encode_png(render(store.dataset, rejected.recipe).mask))
    summary = export(store, *out)
    assert set(summary.repaired) == set(temps) | {lone}
    assert theirs.read_bytes() == b"someone else's"
    theirs.unlink()
    assert summary.written == 8
    assert_complete(store, *out)


KILLED_EXPORT = textwrap.dedent("""
    import sys, time
    from poissonblend.export import export
    from poissonblend.store import Store

    def progress(done, total):
        print(done, flush=True)
        time.sleep(0.004)

    export(Store.open(sys.argv[1]), sys.argv[2], sys.argv[3], progress=progress)
    print("finished", flush=True)
""")


@pytest.mark.parametrize("kill_after", [3, 25])
def test_export_killed_mid_way_then_rerun_is_complete(tmp_path, dataset, out, kill_after):
    store = Store.open(tmp_path / "review.db", dataset)
    store.decide_many([c.id for c in store.queue(60, seed=2)], "accepted")
    total = store.counts()["accepted"]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-c", KILLED_EXPORT, str(store.path), *map(str, out)],
                            stdout=subprocess.PIPE, text=True, env=env)
    try:
        for line in proc.stdout:
            if line.strip() == str(kill_after):
                proc.send_signal(signal.SIGKILL)
                break
    finally:
        proc.wait(60)
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    present = files(out[0]) | files(out[1])
    assert 0 < len(present) < 2 * total  # it really died mid-way
    assert not (out[0].parent / MANIFEST_NAME).exists()  # the manifest comes last

    summary = export(store, *out)
    assert summary.conflicts == [] and summary.written + summary.skipped == total
    assert summary.skipped >= kill_after - 1
    assert_complete(store, *out)
    assert export(store, *out).written == 0


def test_export_killed_at_random_moments_always_recovers(tmp_path, dataset, out):
    """No pacing: kills land anywhere, including between a mask and its image."""
    store = Store.open(tmp_path / "review.db", dataset)
    store.decide_many([c.id for c in store.queue(120, seed=4)], "accepted")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    script = KILLED_EXPORT.replace("time.sleep(0.004)", "pass")
    rng = np.random.default_rng(0)
    for round_ in range(5):
        if round_:
            store.decide(store.candidates(state="accepted")[round_].id, "rejected")
        proc = subprocess.Popen([sys.executable, "-c", script, str(store.path), *map(str, out)],
                                stdout=subprocess.PIPE, text=True, env=env)
        try:
            proc.stdout.readline()  # the export has started writing
            time.sleep(rng.uniform(0.0, 0.1))
            proc.kill()
        finally:
            proc.wait(60)
            proc.stdout.close()
        summary = export(store, *out, prune=True)
        assert summary.conflicts == []
        assert_complete(store, *out)


# ------------------------------------------------------------------ dry run, lock, zip

def test_dry_run_changes_nothing(store, out, tmp_path):
    summary = export(store, *out, dry_run=True)
    assert summary.dry_run and summary.written == 8 and str(summary).startswith("dry run: 8 would write")
    assert not out[0].exists() and not out[1].exists() and not summary.manifest.exists()


def test_a_second_export_into_the_same_folder_is_refused(store, out):
    out[0].mkdir(parents=True)
    fd = os.open(out[0], os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)  # as a running export holds it
    try:
        with pytest.raises(OutputError, match="another export or generate is writing"):
            export(store, *out)
    finally:
        os.close(fd)
    assert export(store, *out).written == 8


def test_export_invalid_inputs(store, out, dataset, tmp_path):
    with pytest.raises(OutputError, match="store must be a Store"):
        export("review.db", *out)
    with pytest.raises(OutputError, match="same folder"):
        export(store, out[0], out[0])
    with pytest.raises(OutputError, match="is an input folder"):
        export(store, dataset.input_dir, out[1])
    with pytest.raises(OutputError, match="prune 'yes' must be True or False"):
        export(store, *out, prune="yes")
    (tmp_path / "folder.csv").mkdir()
    with pytest.raises(OutputError, match="is a folder"):
        export(store, *out, manifest=tmp_path / "folder.csv")
    with pytest.raises(OutputError, match="must not be inside an output folder"):
        export(store, *out, manifest=out[0] / "m.csv")
    assert not out[0].exists() or not any(out[0].iterdir())  # nothing written


def test_export_zip_holds_both_folders_and_the_manifest(store, out, tmp_path):
    summary = export(store, *out)
    data = export_zip(*out)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = zf.namelist()
        assert MANIFEST_NAME in names
        assert sorted(n for n in names if n.startswith("input/")) == sorted(f"input/{n}" for n in files(out[0]))
        assert sorted(n for n in names if n.startswith("mask/")) == sorted(f"mask/{n}" for n in files(out[1]))
        first = sorted(files(out[0]))[0]
        assert zf.read(f"mask/{first}") == (out[1] / first).read_bytes()
        assert zf.read(MANIFEST_NAME) == summary.manifest.read_bytes()
    path = export_zip(*out, path=tmp_path / "dl" / "augmented.zip")
    assert path.read_bytes()[:2] == b"PK" and zipfile.ZipFile(path).testzip() is None


def test_export_zip_invalid_inputs(out, tmp_path):
    with pytest.raises(OutputError, match="does not exist"):
        export_zip(*out)
    out[0].mkdir(parents=True)
    out[1].mkdir(parents=True)
    with pytest.raises(OutputError, match="same folder"):
        export_zip(out[0], out[0])
    with pytest.raises(OutputError, match="must not be inside an output folder"):
        export_zip(*out, path=out[0] / "x.zip")
    assert zipfile.ZipFile(io.BytesIO(export_zip(*out))).namelist() == []
