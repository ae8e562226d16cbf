"""Held-out cases: never a source or a target in generate, queue and the app's draws; recorded
in the review database; export refuses accepted candidates that use one."""

from __future__ import annotations

import csv
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import make_training_set
from poissonblend.cli import main
from poissonblend.dataset import open_dataset
from poissonblend.errors import HoldoutError, PlacementError, RecipeError
from poissonblend.export import export
from poissonblend.holdout import held_out_roles, parse_holdout, read_holdout
from poissonblend.recipe import SamplingOptions, sample_recipe, sample_rng
from poissonblend.store import SCHEMA_VERSION, Store

CASES = ("0000", "0001", "0002", "0003")


@pytest.fixture
def training_set(tmp_path):  # four cases, so that some can be held out
    return make_training_set(tmp_path / "set", cases=4)


@pytest.fixture
def dataset(training_set):
    return open_dataset(*training_set)


def holdout_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "test_split.txt"
    path.write_text(text)
    return path


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_holdout_file_one_id_a_line_blank_lines_and_comments_ignored(tmp_path):
    text = "# test split\n0001\n\n  0003   # the second\n#0002\n\t\n"
    assert read_holdout(holdout_file(tmp_path, text)) == {"0001", "0003"}
    assert parse_holdout("") == frozenset()
    with pytest.raises(HoldoutError, match=r"line 2: '0001 0002' holds more than one case id"):
        parse_holdout("0000\n0001 0002\n")
    with pytest.raises(HoldoutError, match="cannot read held-out file .*missing.txt"):
        read_holdout(tmp_path / "missing.txt")
    (tmp_path / "binary.txt").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(HoldoutError, match="not UTF-8 text"):
        read_holdout(tmp_path / "binary.txt")


def test_sampling_options_holdout_is_a_frozenset_of_ids():
    assert SamplingOptions(holdout=["0001", "0001", "0002"]).holdout == frozenset({"0001", "0002"})
    assert SamplingOptions().to_dict()["holdout"] == []
    with pytest.raises(RecipeError, match="must be a set of case ids"):
        SamplingOptions(holdout="0001")
    with pytest.raises(RecipeError, match="must hold case ids"):
        SamplingOptions(holdout={1, 2})


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(held=st.sets(st.sampled_from(CASES), max_size=3), seed=st.integers(0, 2**32 - 1))
def test_held_out_cases_are_never_a_source_or_a_target(dataset, held, seed):
    options = SamplingOptions(holdout=frozenset(held), flip=True, scale_range=(0.8, 1.2))
    for i in range(10):
        recipe = sample_recipe(dataset, sample_rng(seed, i), options)
        assert recipe.source_case not in held and recipe.target_case not in held
        assert held_out_roles(recipe, frozenset(held)) == []


def test_holding_out_every_case_is_a_clear_error(dataset):
    with pytest.raises(PlacementError, match="no lesion of at least 1 px in the dataset outside the "
                                             "held-out cases"):
        sample_recipe(dataset, 0, SamplingOptions(holdout=frozenset(CASES)))


def test_generate_holdout_and_a_warning_naming_unknown_ids(training_set, tmp_path, capsys):
    input_dir, mask_dir = training_set
    split = holdout_file(tmp_path, "0001\n0003\nsub-strokecase0042  # not ours\n")
    code, out, err = run(capsys, "generate", "--input-dir", str(input_dir), "--mask-dir",
                         str(mask_dir), "--out-input-dir", str(tmp_path / "ai"), "--out-mask-dir",
                         str(tmp_path / "am"), "--count", "80", "--holdout", str(split))
    assert code == 0 and "80 written" in out
    assert err == (f"warning: 1 held-out case id(s) not in the dataset {input_dir}: "
                   "sub-strokecase0042\n")
    with open(tmp_path / "poissonblend_manifest.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 80
    assert {r["source_case"] for r in rows} | {r["target_case"] for r in rows} == {"0000", "0002"}
    assert {r["holdout_cases"] for r in rows} == {"0001 0003 sub-strokecase0042"}  # the split kept
    code, _, err = run(capsys, "generate", "--input-dir", str(input_dir), "--mask-dir", str(mask_dir),
                       "--out-input-dir", str(tmp_path / "ai"), "--out-mask-dir",
                       str(tmp_path / "am"), "--count", "1", "--holdout", str(tmp_path / "nope.txt"))
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: cannot read held-out file")


def test_queue_records_the_holdout_in_the_database_and_keeps_to_it(training_set, tmp_path, capsys):
    input_dir, mask_dir = training_set
    db = tmp_path / "review.db"
    queue = ("queue", "--db", str(db), "--input-dir", str(input_dir), "--mask-dir", str(mask_dir))
    split = holdout_file(tmp_path, "0002\n")
    code, out, err = run(capsys, *queue, "--count", "30", "--holdout", str(split))
    assert code == 0 and not err and "held-out cases of" in out
    store = Store.open(db)
    assert store.holdout() == {"0002"}
    # a later queue without --holdout still keeps to the database's held-out cases
    assert run(capsys, *queue, "--count", "30", "--seed", "1")[0] == 0
    candidates = store.candidates()
    assert len(candidates) > 30
    assert all(held_out_roles(c.recipe, frozenset({"0002"})) == [] for c in candidates)
    # a new split replaces the old one: the ids dropped and the candidates now leaking are named
    code, out, err = run(capsys, *queue, "--count", "0", "--holdout", str(holdout_file(tmp_path, "0000")))
    assert code == 0 and Store.open(db).holdout() == {"0000"}
    assert "warning: no longer held out: 0002" in err
    assert "candidate(s) stored earlier use held-out cases; export refuses those that are accepted" in err
    # the database's schema is unchanged: the split lives in its meta table
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("SELECT value FROM meta WHERE key = 'holdout'").fetchone()[0] == '["0000"]'


def test_store_holdout_set_read_clear_and_invalid(tmp_path, dataset):
    store = Store.open(tmp_path / "review.db", dataset)
    assert store.holdout() == frozenset()
    assert store.set_holdout(["0003", "0001"]) == {"0001", "0003"}
    assert Store.open(tmp_path / "review.db").holdout() == {"0001", "0003"}  # another handle sees it
    assert "holdout" not in store.recorded_dataset
    queued = store.queue(20, 0)
    assert all(c.source_case in {"0000", "0002"} and c.target_case in {"0000", "0002"}
               and c.source_case == c.recipe.source.split("_")[1] for c in queued)
    with pytest.raises(HoldoutError, match="the recipe uses held-out case.*: source 0001"):
        store.add(replace(queued[0].recipe, source=queued[0].recipe.source.replace(
            f"_{queued[0].recipe.source_case}_", "_0001_")))
    assert store.set_holdout(set()) == frozenset() and store.holdout() == frozenset()
    for bad in ("0001", ["a b"], [""], [3]):
        with pytest.raises(HoldoutError):
            store.set_holdout(bad)
    with sqlite3.connect(tmp_path / "review.db") as conn:
        conn.execute("UPDATE meta SET value = '{\"x\": 1}' WHERE key = 'holdout'")
    with pytest.raises(Exception, match="not a JSON list of case ids"):
        store.holdout()


@pytest.fixture
def accepted_store(tmp_path, dataset) -> Store:
    store = Store.open(tmp_path / "review.db", dataset)
    for c in store.queue(16, 2):
        store.decide(c.id, "accepted")
    return store


def test_export_refuses_accepted_candidates_that_use_held_out_cases(accepted_store, tmp_path):
    store = accepted_store
    used = store.candidates()[0].recipe.target_case
    store.set_holdout({used})
    leaks = store.holdout_leaks(state="accepted")
    assert leaks and all(f"target {used}" in roles or f"source {used}" in roles for _, roles in leaks)
    out_i, out_m = tmp_path / "aug" / "input", tmp_path / "aug" / "mask"
    with pytest.raises(HoldoutError) as info:
        export(store, out_i, out_m)
    message = str(info.value)
    assert message.startswith(f"{len(leaks)} accepted candidate(s) use held-out cases: candidate ")
    assert f"candidate {leaks[0][0].id} (" in message and "\n" not in message
    assert not out_i.exists() and not out_m.exists()  # nothing written
    with pytest.raises(HoldoutError):
        export(store, out_i, out_m, dry_run=True)
    # rejecting them lets the rest out, and the manifest names the split it respects
    for candidate, _ in leaks:
        store.decide(candidate.id, "rejected", reason="other")
    summary = export(store, out_i, out_m)
    assert summary.written == len(store.candidates(state="accepted")) > 0
    assert "none uses the 1 held-out case(s)" in str(summary)
    with open(summary.manifest) as fh:
        rows = list(csv.DictReader(fh))
    assert {r["holdout_cases"] for r in rows} == {used} and {r["holdout_leak"] for r in rows} == {""}
    assert all(used not in (r["source_case"], r["target_case"]) for r in rows)


def test_export_with_allow_holdout_leak_marks_the_leaking_rows(accepted_store, tmp_path):
    store = accepted_store
    store.set_holdout({"0001", "0002"})
    leaks = store.holdout_leaks(state="accepted")
    assert leaks
    summary = export(store, tmp_path / "ai", tmp_path / "am", allow_holdout_leak=True)
    assert summary.leaked == len(leaks) and "using held-out cases (allowed)" in str(summary)
    with open(summary.manifest) as fh:
        rows = {r["case_id"]: r for r in csv.DictReader(fh)}
    assert {r["holdout_cases"] for r in rows.values()} == {"0001 0002"}
    for candidate, roles in leaks:
        assert rows[candidate.case_id]["holdout_leak"] == "; ".join(roles)
    with pytest.raises(Exception, match="allow_holdout_leak"):
        export(store, tmp_path / "ai", tmp_path / "am", allow_holdout_leak="yes")


def test_export_cli_refusal_is_one_line_and_the_flag_allows_it(accepted_store, tmp_path, capsys):
    store = accepted_store
    store.set_holdout({c.recipe.source_case for c in store.candidates()})  # every one leaks
    n = len(store.candidates(state="accepted"))
    argv = ("export", "--db", str(store.path), "--out-input-dir", str(tmp_path / "ai"),
            "--out-mask-dir", str(tmp_path / "am"))
    code, out, err = run(capsys, *argv)
    assert code == 2 and "Traceback" not in err and err.count("\n") == 1
    assert err.startswith(f"error: {n} accepted candidate(s) use held-out cases: candidate ")
    assert (" and 6 more; " in err) == (n == 16) and "--allow-holdout-leak" in err
    code, out, err = run(capsys, *argv, "--allow-holdout-leak")
    assert code == 0 and f"{n} using held-out cases (allowed)" in out
