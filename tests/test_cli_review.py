"""The review commands through ``main(argv)``: queue, status, decide, export."""

from __future__ import annotations

import csv
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from conftest import make_training_set
from poissonblend.cli import main
from poissonblend.io import encode_png
from poissonblend.output import sample_paths
from poissonblend.store import Store


@pytest.fixture
def db(tmp_path) -> Path:
    return tmp_path / "review.db"


@pytest.fixture
def queued(training_set, db, capsys) -> Path:
    input_dir, mask_dir = training_set
    assert main(["queue", "--db", str(db), "--input-dir", str(input_dir), "--mask-dir",
                 str(mask_dir), "--count", "12", "--seed", "3"]) == 0
    capsys.readouterr()
    return db


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_error_line(err: str, pattern: str) -> None:
    assert "Traceback" not in err
    assert err.count("\n") == 1 and err.startswith("error: ") and pattern in err, err


def test_queue_status(training_set, db, capsys):
    input_dir, mask_dir = training_set
    base = ["queue", "--db", str(db), "--input-dir", str(input_dir), "--mask-dir", str(mask_dir),
            "--seed", "9", "--scale", "0.8", "1.2", "--flip"]
    args = [*base, "--count", "6"]
    code, out, err = run(capsys, *args)
    assert code == 0 and err == ""
    assert f"queued 6 candidate(s) in batch seed-9 (6 new) into {db}" in out
    code, out, _ = run(capsys, *args)  # same seed: nothing new
    assert code == 0 and "(0 new)" in out
    code, out, _ = run(capsys, *base, "--count", "2", "--start", "6", "--batch", "more")
    assert code == 0 and "(2 new)" in out
    code, out, err = run(capsys, "status", "--db", str(db))
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0] == str(db)
    assert [line.split() for line in lines[1:6]] == [
        ["undecided", "8"], ["accepted", "0"], ["rejected", "0"], ["skipped", "0"], ["total", "8"]]
    assert lines[6] == "batches: seed-9, more"


def test_decide_by_ids_all_undecided_and_min_quality(queued, capsys):
    store = Store.open(queued)
    ids = [c.id for c in store.candidates()]
    code, out, _ = run(capsys, "decide", "--db", str(queued), "--reject", "--ids",
                       f"{ids[0]},{ids[1]}", "--reason", "seam artifact", "--reviewer", "ana")
    assert code == 0 and out.startswith("rejected 2 candidate(s)")
    assert [(c.state, c.reason, c.reviewer) for c in map(store.get, ids[:2])] == [
        ("rejected", "seam artifact", "ana")] * 2

    threshold = sorted(c.score for c in store.candidates(state="undecided"))[4]
    expected = {c.id for c in store.candidates(state="undecided") if c.score >= threshold}
    code, out, _ = run(capsys, "decide", "--db", str(queued), "--accept", "--min-quality", str(threshold))
    assert code == 0 and out.startswith(f"accepted {len(expected)} candidate(s)")
    assert {c.id for c in store.candidates(state="accepted")} == expected

    code, out, _ = run(capsys, "decide", "--db", str(queued), "--skip", "--all-undecided")
    assert code == 0
    assert store.counts() == {"undecided": 0, "accepted": len(expected), "rejected": 2,
                              "skipped": 10 - len(expected), "total": 12}
    assert "undecided 0 · accepted" in out
    assert len(store.history()) == 12  # decided ones were left alone


def test_decide_ids_as_several_arguments_lists_and_ranges(queued, capsys):
    store = Store.open(queued)
    ids = sorted(c.id for c in store.candidates())
    code, out, _ = run(capsys, "decide", "--db", str(queued), "--accept", "--ids", str(ids[0]),
                       f"{ids[1]}-{ids[3]}", f"{ids[5]},{ids[6]}")
    assert code == 0 and out.startswith("accepted 6 candidate(s)")
    assert {c.id for c in store.candidates(state="accepted")} == {*ids[:4], ids[5], ids[6]}


@pytest.mark.parametrize("argv, message", [
    (["--accept", "--ids", "1,x"], "argument --ids: '1,x' is not a list of ids such as 3,4,9 or 3-9"),
    (["--accept", "--ids", "2-x"], "argument --ids: '2-x' is not a list of ids"),
    (["--accept", "--ids", "5-3"], "argument --ids: '5-3' is not a list of ids"),
    (["--accept", "--ids", ","], "argument --ids: ',' holds no id"),
    (["--accept", "--ids", "999"], "no candidate with id 999"),
    (["--accept", "--ids", "0"], "candidate id 0 must be >= 1"),
    (["--accept", "--min-quality", "nan"], "argument --min-quality: 'nan' is not a finite number"),
    (["--accept"], "one of the arguments --ids --all-undecided --min-quality is required"),
    (["--accept", "--reject", "--all-undecided"], "not allowed with argument"),
])
def test_decide_invalid_input(queued, capsys, argv, message):
    code, out, err = run(capsys, "decide", "--db", str(queued), *argv)
    assert code == 2 and out == ""
    assert_one_error_line(err, message)
    assert Store.open(queued).history() == []


def test_status_and_decide_never_need_the_images(queued, training_set, capsys):
    for folder in training_set:
        for png in folder.iterdir():
            png.unlink()
    assert run(capsys, "decide", "--db", str(queued), "--accept", "--all-undecided")[0] == 0
    code, out, _ = run(capsys, "status", "--db", str(queued))
    assert code == 0 and "accepted" in out and "12" in out


def test_status_invalid_input(tmp_path, capsys):
    code, out, err = run(capsys, "status", "--db", str(tmp_path / "none.db"))
    assert code == 2 and out == ""
    assert_one_error_line(err, f"no review database at {tmp_path / 'none.db'}")
    (tmp_path / "junk.db").write_text("not sqlite at all " * 10)
    code, _, err = run(capsys, "status", "--db", str(tmp_path / "junk.db"))
    assert code == 2
    assert_one_error_line(err, "not a usable poissonblend review database")


def test_queue_invalid_input(queued, training_set, tmp_path, capsys):
    other = make_training_set(tmp_path / "other", seed=8)
    code, out, err = run(capsys, "queue", "--db", str(queued), "--input-dir", str(other[0]),
                         "--mask-dir", str(other[1]), "--count", "2")
    assert code == 2 and out == ""
    assert_one_error_line(err, "was made for the dataset")
    code, _, err = run(capsys, "queue", "--db", str(queued), "--input-dir", str(training_set[0]),
                       "--mask-dir", str(training_set[1]), "--count", "-1")
    assert code == 2
    assert_one_error_line(err, "--count: -1 must be >= 0")
    code, out, _ = run(capsys, "queue", "--db", str(queued), "--input-dir", str(other[0]),
                       "--mask-dir", str(other[1]), "--count", "1", "--allow-other-dataset")
    assert code == 0 and "(1 new)" in out


def test_export_prune_and_zip(queued, tmp_path, capsys):
    out_i, out_m = tmp_path / "aug" / "input", tmp_path / "aug" / "mask"
    store = Store.open(queued)
    ids = [c.id for c in store.candidates()]
    assert run(capsys, "decide", "--db", str(queued), "--accept", "--ids", ",".join(map(str, ids[:5])))[0] == 0
    args = ["export", "--db", str(queued), "--out-input-dir", str(out_i), "--out-mask-dir", str(out_m)]
    code, out, err = run(capsys, *args, "--zip", str(tmp_path / "aug.zip"))
    manifest = tmp_path / "aug" / "poissonblend_manifest.csv"
    assert code == 0 and err == ""
    assert f"export: 5 written, 0 skipped, 0 pruned; manifest {manifest}" in out
    assert (tmp_path / "aug.zip").read_bytes()[:2] == b"PK"
    with open(manifest, newline="") as fh:
        assert {r["decision"] for r in csv.DictReader(fh)} == {"accepted"}

    code, out, _ = run(capsys, *args)
    assert code == 0 and "0 written, 5 skipped" in out

    assert run(capsys, "decide", "--db", str(queued), "--reject", "--ids", str(ids[0]))[0] == 0
    image_path, mask_path = sample_paths(store.get(ids[0]).case_id, out_i, out_m)
    code, out, _ = run(capsys, *args)
    assert code == 0 and f"stale: {image_path.name} (candidate {ids[0]}, now rejected)" in out
    assert image_path.exists()
    code, out, _ = run(capsys, *args, "--prune", "--dry-run")
    assert code == 0 and f"would prune: {image_path}" in out and image_path.exists()
    code, out, _ = run(capsys, *args, "--prune")
    assert code == 0 and f"pruned: {image_path}" in out and f"pruned: {mask_path}" in out
    assert not image_path.exists() and not mask_path.exists()
    assert "0 written, 4 skipped, 1 pruned" in out


def test_export_uses_moved_dataset_folders(queued, training_set, tmp_path, capsys):
    moved = tmp_path / "moved"
    training_set[0].parent.rename(moved)
    assert run(capsys, "decide", "--db", str(queued), "--accept", "--all-undecided")[0] == 0
    args = ["export", "--db", str(queued), "--out-input-dir", str(tmp_path / "o" / "input"),
            "--out-mask-dir", str(tmp_path / "o" / "mask")]
    code, _, err = run(capsys, *args)
    assert code == 2
    assert_one_error_line(err, "cannot open its dataset")
    code, _, err = run(capsys, *args, "--input-dir", str(moved / "input"), "--mask-dir", str(moved / "mask"))
    assert code == 2
    assert_one_error_line(err, "was made for the dataset")
    code, out, _ = run(capsys, *args, "--input-dir", str(moved / "input"), "--mask-dir",
                       str(moved / "mask"), "--allow-other-dataset")
    assert code == 0 and "12 written" in out


def test_export_invalid_input(queued, tmp_path, capsys):
    out_i, out_m = tmp_path / "aug" / "input", tmp_path / "aug" / "mask"
    args = ["export", "--db", str(queued), "--out-input-dir", str(out_i), "--out-mask-dir", str(out_m)]
    code, _, err = run(capsys, "export", "--db", str(tmp_path / "none.db"), *args[3:])
    assert code == 2
    assert_one_error_line(err, "no review database at")
    code, _, err = run(capsys, *args, "--input-dir", str(tmp_path))
    assert code == 2
    assert_one_error_line(err, "give both --input-dir and --mask-dir")
    code, _, err = run(capsys, "export", "--db", str(queued), "--out-input-dir", str(out_i),
                       "--out-mask-dir", str(out_i))
    assert code == 2
    assert_one_error_line(err, "same folder")

    # A different file where an accepted sample goes: a conflict, exit 2, never overwritten.
    store = Store.open(queued)
    first = store.decide(store.candidates()[0].id, "accepted")
    image_path, _ = sample_paths(first.case_id, out_i, out_m)
    out_i.mkdir(parents=True)
    alien = encode_png(np.zeros((112, 112), np.uint8))
    image_path.write_bytes(alien)
    code, out, err = run(capsys, *args)
    assert code == 2 and "1 conflict(s)" in out
    assert "Traceback" not in err and err.splitlines()[-1].startswith("error: candidate")
    assert str(image_path) in err.splitlines()[-1]
    assert image_path.read_bytes() == alien


def test_commands_are_registered(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for name in ("queue", "status", "decide", "export"):
        assert name in out
    code, out, _ = run(capsys, "decide", "--help")
    assert code == 0 and "--min-quality" in out and "scripted curation" in out


def test_decisions_from_the_cli_are_in_the_real_database_file(queued, capsys):
    assert run(capsys, "decide", "--db", str(queued), "--accept", "--ids", "1")[0] == 0
    conn = sqlite3.connect(queued)
    try:
        assert conn.execute("SELECT candidate_id, decision FROM decisions").fetchall() == [(1, "accepted")]
    finally:
        conn.close()
