"""The review store: real SQLite files in tmp_path, real PNG datasets."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
from pathlib import Path

import cv2
import pytest

from conftest import TEST_SEEDS, make_training_set
from poissonblend.dataset import open_dataset
from poissonblend.errors import DatasetError, LesionError, StoreError
from poissonblend.recipe import Recipe, SamplingOptions, render, sample_recipe, sample_rng
from poissonblend.store import (CLEARED, DECISIONS, QUEUE_GROUP, REASONS, SCHEMA_VERSION, STATES,
                                Candidate, DecisionRecord, Store, default_store_path, migrate,
                                sample_digest, schema_version)


@pytest.fixture
def dataset(training_set):
    return open_dataset(*training_set)


@pytest.fixture
def db_path(tmp_path) -> Path:
    return tmp_path / "review" / "review.db"


@pytest.fixture
def store(db_path, dataset) -> Store:
    return Store.open(db_path, dataset, create_folders=True)


@pytest.fixture
def queued(store) -> list[Candidate]:
    return store.queue(10, seed=7)


def raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


# ------------------------------------------------------------------ open / schema

def test_open_creates_wal_database_with_current_schema(store, db_path, dataset):
    assert store.path == db_path.resolve() and db_path.is_file()
    conn = raw(db_path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert schema_version(conn) == SCHEMA_VERSION
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert {"schema_version", "meta", "candidates", "decisions"} <= tables
        meta = dict(conn.execute("SELECT key, value FROM meta"))
    finally:
        conn.close()
    assert meta["dataset_identity"] == dataset.identity
    assert meta["input_dir"] == str(dataset.input_dir) and meta["mask_dir"] == str(dataset.mask_dir)
    assert store.recorded_dataset == meta


def test_default_path_is_next_to_the_dataset(dataset):
    store = Store.open(None, dataset)
    assert store.path == default_store_path(dataset) == dataset.input_dir.parent / "poissonblend.db"
    assert store.path.is_file()


def test_reopen_without_dataset_opens_the_recorded_one_lazily(store, queued, db_path, dataset):
    again = Store.open(db_path)
    assert again.counts()["total"] == len(queued)
    assert again._dataset is None  # status/decide never touch the images
    assert again.dataset.identity == dataset.identity
    assert [c.recipe for c in again.candidates()] == [c.recipe for c in queued]


def test_open_for_another_dataset_is_an_error_unless_allowed(store, tmp_path, db_path):
    other = open_dataset(*make_training_set(tmp_path / "other", seed=5))
    with pytest.raises(StoreError, match="was made for the dataset"):
        Store.open(db_path, other)
    allowed = Store.open(db_path, other, allow_other_dataset=True)
    assert allowed.dataset is other
    assert Store.open(db_path).recorded_dataset["input_dir"] == str(store.dataset.input_dir)


def test_open_after_the_files_changed_is_an_error(store, training_set, db_path):
    input_dir, _ = training_set
    name = sorted(p.name for p in input_dir.iterdir())[0]
    image = cv2.imread(str(input_dir / name), cv2.IMREAD_GRAYSCALE)
    cv2.imwrite(str(input_dir / name), 255 - image)
    changed = open_dataset(*training_set)
    with pytest.raises(StoreError, match="files have changed"):
        Store.open(db_path, changed)
    with pytest.raises(StoreError, match="files have changed"):
        Store.open(db_path).dataset  # the recorded dataset is checked too
    assert Store.open(db_path, changed, allow_other_dataset=True).counts()["total"] == 0


def test_migrate_brings_an_empty_database_to_the_current_version(tmp_path, dataset):
    path = tmp_path / "empty.db"
    conn = raw(path)
    conn.execute("PRAGMA user_version = 0")
    assert schema_version(conn) == 0
    assert migrate(conn) == 0
    assert schema_version(conn) == SCHEMA_VERSION
    assert migrate(conn) == SCHEMA_VERSION  # idempotent
    conn.close()
    assert Store.open(path, dataset).counts() == {**dict.fromkeys(STATES, 0), "total": 0}


def test_open_invalid_inputs(tmp_path, dataset, store, db_path):
    with pytest.raises(StoreError, match="is a folder"):
        Store.open(tmp_path, dataset)
    with pytest.raises(StoreError, match="no review database"):
        Store.open(tmp_path / "missing.db")
    with pytest.raises(StoreError, match="no dataset"):
        Store.open(None)
    with pytest.raises(StoreError, match="must be a Dataset"):
        Store.open(tmp_path / "x.db", "not a dataset")
    text = tmp_path / "notes.db"
    text.write_text("this is not a database, just some words " * 20)
    with pytest.raises(StoreError, match="not a usable poissonblend review database"):
        Store.open(text, dataset)
    foreign = tmp_path / "foreign.db"
    conn = raw(foreign)
    conn.execute("CREATE TABLE something (x)")
    conn.close()
    with pytest.raises(StoreError, match="not a poissonblend review database"):
        Store.open(foreign, dataset)
    conn = raw(db_path)
    conn.execute("UPDATE schema_version SET version = 99")
    conn.close()
    with pytest.raises(StoreError, match="schema version 99, newer"):
        Store.open(db_path, dataset)


# ------------------------------------------------------------------ candidates

@pytest.mark.parametrize("seed", TEST_SEEDS)
def test_queue_is_deterministic_and_matches_the_engine(tmp_path, dataset, seed):
    options = SamplingOptions(scale_range=(0.8, 1.2), rotation_range=(-20, 20), flip=True)
    a = Store.open(tmp_path / "a.db", dataset).queue(6, seed, options)
    b = Store.open(tmp_path / "b.db", dataset).queue(6, seed, options)
    expected = [sample_recipe(dataset, sample_rng(seed, i), options) for i in range(6)]
    assert [c.recipe for c in a] == [c.recipe for c in b] == expected
    assert [c.case_id for c in a] == [r.case_id(taken=dataset.case_ids) for r in expected]
    assert [(c.batch, c.seed, c.sample_index) for c in a] == [(f"seed-{seed}", seed, i) for i in range(6)]
    for c in a:
        sample = render(dataset, c.recipe)
        assert c.quality == sample.quality.to_dict() and c.digest == sample_digest(sample)
        assert c.state == "undecided" and c.reason is c.reviewer is c.decided_at is None
        assert "_" not in c.case_id and c.case_id not in dataset.case_ids


def test_queue_again_adds_nothing_twice_and_start_extends_a_batch(store):
    calls = []
    first = store.queue(5, 3, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(k, 5) for k in range(1, 6)]
    again = store.queue(5, 3, batch="other label")
    assert [c.id for c in again] == [c.id for c in first]
    assert {c.batch for c in again} == {"seed-3"}  # the first batch stored is kept
    more = store.queue(3, 3, start=5)
    assert [c.sample_index for c in more] == [5, 6, 7]
    assert store.counts()["total"] == len({c.id for c in first + more})
    store.queue(2, 4, batch="manual")
    assert store.batches() == ["seed-3", "manual"]
    assert {c.batch for c in store.candidates(batch="manual")} == {"manual"}


def test_an_interrupted_queue_keeps_its_committed_groups_and_a_rerun_adds_the_rest(store, tmp_path,
                                                                                 dataset):
    def stop_in_the_second_group(done: int, total: int) -> None:
        if done == QUEUE_GROUP + 8:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        store.queue(2 * QUEUE_GROUP + 5, 9, progress=stop_in_the_second_group)
    kept = store.candidates()
    assert [c.sample_index for c in kept] == list(range(QUEUE_GROUP))  # the first group, whole
    done = store.queue(2 * QUEUE_GROUP + 5, 9)
    assert [c.id for c in done[:QUEUE_GROUP]] == [c.id for c in kept]
    assert store.counts()["total"] == len({c.id for c in done})
    fresh = Store.open(tmp_path / "fresh.db", dataset).queue(2 * QUEUE_GROUP + 5, 9)
    assert [c.recipe for c in done] == [c.recipe for c in fresh]  # as if never interrupted


def test_queue_invalid_inputs(store):
    for bad in (dict(count=-1, seed=0), dict(count=1.5, seed=0), dict(count=2, seed=-3),
                dict(count=True, seed=0), dict(count=2, seed=0, start=-1)):
        with pytest.raises(StoreError, match="must be an integer >= 0"):
            store.queue(**bad)
    with pytest.raises(StoreError, match="options must be SamplingOptions"):
        store.queue(2, 0, {"mode": "normal"})
    assert store.counts()["total"] == 0


def test_add_same_recipe_twice_is_one_candidate(store, dataset):
    recipe = sample_recipe(dataset, sample_rng(11, 0))
    first = store.add(recipe, batch="manual")
    second = store.add(Recipe.from_dict(recipe.to_dict()), batch="elsewhere", seed=4)
    assert second == first and second.batch == "manual" and second.seed is None
    assert first.quality == render(dataset, recipe).quality.to_dict()
    assert store.counts()["total"] == 1
    assert store.get(first.id) == first


def test_add_with_a_given_quality_does_not_need_a_render(store, dataset):
    recipe = sample_recipe(dataset, sample_rng(12, 0))
    quality = render(dataset, recipe).quality.to_dict() | {"score": 0.25}
    cand = store.add(recipe, quality=quality, seed=12, sample_index=0)
    assert cand.quality == quality and cand.score == 0.25 and cand.digest is None


def test_add_invalid_inputs(store, dataset):
    recipe = sample_recipe(dataset, sample_rng(13, 0))
    quality = render(dataset, recipe).quality.to_dict()
    with pytest.raises(StoreError, match="recipe must be a Recipe"):
        store.add(recipe.to_dict())
    with pytest.raises(StoreError, match="quality is missing score"):
        store.add(recipe, quality={k: v for k, v in quality.items() if k != "score"})
    with pytest.raises(StoreError, match="quality score nan"):
        store.add(recipe, quality=quality | {"score": float("nan")})
    with pytest.raises(StoreError, match="seed True must be an integer"):
        store.add(recipe, seed=True)
    with pytest.raises(StoreError, match="batch 3 must be text"):
        store.add(recipe, batch=3)
    with pytest.raises(StoreError, match="lesion 5 does not exist"):
        store.add(Recipe.from_dict(recipe.to_dict() | {"lesion": 5}), quality=quality)
    with pytest.raises(DatasetError, match="no such slice"):
        store.add(Recipe.from_dict(recipe.to_dict() | {"target": "slice_9999_0000.png"}))
    with pytest.raises(LesionError):
        store.add(Recipe.from_dict(recipe.to_dict() | {"lesion": 5}))
    assert store.counts()["total"] == 0


def test_get_invalid_inputs(store, queued):
    with pytest.raises(StoreError, match="no candidate with id 999"):
        store.get(999)
    with pytest.raises(StoreError, match="must be an integer candidate id"):
        store.get("1")
    assert store.get(queued[0].id) == queued[0]


# ------------------------------------------------------------------ decisions

def test_decide_sets_state_reason_reviewer(store, queued):
    c = store.decide(queued[0].id, "rejected", reason=REASONS[0], reviewer="ana")
    assert (c.state, c.reason, c.reviewer) == ("rejected", "seam artifact", "ana")
    assert c.decided_at is not None and c.recipe == queued[0].recipe
    store.decide(queued[1].id, "accepted")
    store.decide(queued[2].id, "skipped", reason="not sure about this one")
    assert store.counts() == {"undecided": 7, "accepted": 1, "rejected": 1, "skipped": 1, "total": 10}
    assert [x.id for x in store.candidates(state="accepted")] == [queued[1].id]
    assert [x.id for x in store.candidates(reason="seam artifact")] == [queued[0].id]
    assert [x.id for x in store.candidates(state="undecided")] == [q.id for q in queued[3:]]


def test_decide_invalid_inputs(store, queued):
    with pytest.raises(StoreError, match="decision 'maybe' must be one of accepted, rejected, skipped"):
        store.decide(queued[0].id, "maybe")
    with pytest.raises(StoreError, match="decision 'cleared'"):
        store.decide(queued[0].id, CLEARED)  # only undo clears
    with pytest.raises(StoreError, match="no candidate with id 999"):
        store.decide(999, "accepted")
    with pytest.raises(StoreError, match="must be an integer candidate id"):
        store.decide(True, "accepted")
    with pytest.raises(StoreError, match="reason 5 must be text"):
        store.decide(queued[0].id, "rejected", reason=5)
    assert store.history() == []


def test_decide_many_is_all_or_nothing_and_can_spare_decided_ones(store, queued):
    ids = [c.id for c in queued]
    with pytest.raises(StoreError, match="no candidate with id 999"):
        store.decide_many(ids + [999], "accepted")
    assert store.history() == []
    store.decide(ids[0], "rejected")
    done = store.decide_many(ids, "accepted", reviewer="bot", only_undecided=True)
    assert done == ids[1:]
    assert store.get(ids[0]).state == "rejected"
    assert store.counts()["accepted"] == 9
    with pytest.raises(StoreError, match="must be an iterable"):
        store.decide_many("12", "accepted")


def test_undo_many_clears_the_decided_ones_in_one_go(store, queued):
    ids = [c.id for c in queued]
    store.decide_many(ids[:4], "accepted", reviewer="ana")
    store.decide(ids[4], "rejected", reason="other")
    with pytest.raises(StoreError, match="no candidate with id 999"):
        store.undo_many(ids[:4] + [999])
    assert store.counts()["accepted"] == 4  # nothing written
    assert store.undo_many(ids[:6], reviewer="ana") == ids[:5]  # ids[5] was undecided
    assert store.counts()["undecided"] == len(ids)
    assert [h.decision for h in store.history(ids[4])] == ["rejected", "cleared"]
    with pytest.raises(StoreError, match="must be an iterable"):
        store.undo_many(3)


def test_undo_redo_history(store, queued):
    cid = queued[0].id
    store.decide(cid, "accepted", reviewer="ana")
    undone = store.undo(cid, reviewer="ana")
    assert undone.state == "undecided" and undone.reason is None and undone.decided_at is None
    assert store.next_undecided().id == cid
    store.decide(cid, "accepted", reviewer="ana")  # redo
    store.decide(cid, "rejected", reason="wrong anatomy", reviewer="ben")
    history = store.history(cid)
    assert [(h.decision, h.reason, h.reviewer) for h in history] == [
        ("accepted", None, "ana"), ("cleared", None, "ana"), ("accepted", None, "ana"),
        ("rejected", "wrong anatomy", "ben")]
    assert all(isinstance(h, DecisionRecord) and h.candidate_id == cid for h in history)
    assert [h.decided_at for h in history] == sorted(h.decided_at for h in history)
    assert store.get(cid).state == "rejected"
    store.decide(queued[1].id, "skipped")
    assert [h.candidate_id for h in store.history()] == [cid] * 4 + [queued[1].id]


def test_undo_and_history_invalid_inputs(store, queued):
    with pytest.raises(StoreError, match="is undecided; there is no decision to undo"):
        store.undo(queued[0].id)
    store.decide(queued[0].id, "accepted")
    store.undo(queued[0].id)
    with pytest.raises(StoreError, match="no decision to undo"):
        store.undo(queued[0].id)  # a second undo does not go further back
    with pytest.raises(StoreError, match="no candidate with id 999"):
        store.undo(999)
    with pytest.raises(StoreError, match="no candidate with id 999"):
        store.history(999)
    assert len(store.history(queued[0].id)) == 2


def test_decisions_are_append_only_in_the_database(store, queued, db_path):
    store.decide(queued[0].id, "accepted")
    conn = raw(db_path)
    try:
        for sql in ("UPDATE decisions SET decision = 'rejected'", "DELETE FROM decisions"):
            with pytest.raises(sqlite3.DatabaseError, match="append-only"):
                conn.execute(sql)
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute("INSERT INTO decisions (candidate_id, decision, decided_at) "
                         "VALUES (1, 'maybe', 'now')")
    finally:
        conn.close()
    assert store.get(queued[0].id).state == "accepted"


# ------------------------------------------------------------------ queries

def test_next_undecided_orders_and_exclude(store, queued):
    by_score = sorted(queued, key=lambda c: (c.score, c.id))
    assert store.next_undecided().id == queued[0].id
    assert store.next_undecided(order="score_asc").id == by_score[0].id
    assert store.next_undecided(order="score_desc").score == max(c.score for c in queued)
    assert store.next_undecided(exclude=[queued[0].id, queued[1].id]).id == queued[2].id
    assert [c.id for c in store.candidates(order="score_asc")] == [c.id for c in by_score]
    store.decide_many([c.id for c in queued], "accepted")
    assert store.next_undecided() is None


def test_queries_invalid_inputs(store, queued):
    with pytest.raises(StoreError, match="order 'random' must be one of created, score_asc, score_desc"):
        store.next_undecided(order="random")
    with pytest.raises(StoreError, match="state 'done' must be one of undecided"):
        store.candidates(state="done")
    with pytest.raises(StoreError, match="order 'best'"):
        store.candidates(order="best")
    assert store.counts()["total"] == len(queued) and set(store.counts()) == {*STATES, "total"}
    assert store.batches() == ["seed-7"]


def test_render_checks_the_pixels_stored_at_queue_time(store, queued, db_path):
    sample = store.render(queued[0].id)
    assert sample_digest(sample) == queued[0].digest
    conn = raw(db_path)
    conn.execute("UPDATE candidates SET digest = 'feedbeef' WHERE id = ?", (queued[0].id,))
    conn.close()
    with pytest.raises(StoreError, match="renders differently"):
        store.render(queued[0].id)
    with pytest.raises(StoreError, match="no candidate with id 999"):
        store.render(999)


def test_migrate_invalid_inputs(tmp_path):
    conn = raw(tmp_path / "foreign.db")
    try:
        conn.execute("CREATE TABLE notes (text)")
        with pytest.raises(StoreError, match="not a poissonblend review database"):
            migrate(conn)
        conn.execute("DROP TABLE notes")
        conn.execute("CREATE TABLE schema_version (version INTEGER)")
        conn.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION + 1,))
        with pytest.raises(StoreError, match="newer than this poissonblend"):
            migrate(conn)
        assert schema_version(conn) == SCHEMA_VERSION + 1  # left untouched
    finally:
        conn.close()


# ------------------------------------------------------------------ concurrency

def _writer(db: str, ids: list[int], decision: str, go) -> None:
    store = Store.open(db)
    go.wait()
    for cid in ids:
        store.decide(cid, decision, reviewer=decision)


def test_two_writer_processes_lose_no_decision(store, dataset, db_path):
    recipe = sample_recipe(dataset, sample_rng(0, 0))
    quality = render(dataset, recipe).quality.to_dict()
    for i in range(1000):  # 1000 distinct recipes without rendering each
        store.add(Recipe.from_dict(recipe.to_dict() | {"x": i % 40, "y": i // 40}), quality=quality)
    ids = [c.id for c in store.candidates()]
    assert len(ids) == 1000
    ctx = multiprocessing.get_context("spawn")
    go = ctx.Event()
    procs = [ctx.Process(target=_writer, args=(str(db_path), ids[k::2], decision, go))
             for k, decision in enumerate(("accepted", "rejected"))]
    for p in procs:
        p.start()
    go.set()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]
    history = store.history()
    assert len(history) == 1000
    assert sorted(h.candidate_id for h in history) == ids
    assert store.counts() == {"undecided": 0, "accepted": 500, "rejected": 500, "skipped": 0,
                              "total": 1000}
    assert {c.id for c in store.candidates(state="accepted")} == set(ids[0::2])
    # The writers really overlapped: their decisions interleave in the history.
    order = [h.decision for h in history]
    switches = sum(a != b for a, b in zip(order, order[1:]))
    assert switches > 1


def test_threads_share_one_store(store, queued):
    errors = []

    def work(k: int) -> None:
        try:
            for _ in range(25):
                for c in queued[k::4]:
                    store.decide(c.id, DECISIONS[k % 3])
                    store.counts()
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(store.history()) == 25 * len(queued)
    assert store.counts()["undecided"] == 0


def test_a_writer_waits_for_a_long_transaction(store, queued, db_path):
    conn = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
    conn.execute("BEGIN IMMEDIATE")  # another writer holds the lock for a moment
    timer = threading.Timer(0.3, conn.execute, ("COMMIT",))
    timer.start()
    try:
        decided = store.decide(queued[0].id, "accepted")
    finally:
        timer.join()
        conn.close()
    assert decided.state == "accepted"
    assert [h.decision for h in store.history()] == ["accepted"]


def test_rebind_to_changed_files_keeps_the_decisions(tmp_path):
    input_dir, mask_dir = make_training_set(tmp_path / "set")
    db = tmp_path / "review.db"
    store = Store.open(db, open_dataset(input_dir, mask_dir))
    first = store.queue(3, seed=0)[0]
    store.decide(first.id, "accepted")
    image = cv2.imread(str(input_dir / "slice_0000_0001.png"), cv2.IMREAD_GRAYSCALE)
    cv2.imwrite(str(input_dir / "slice_0000_0001.png"), image[::-1])
    changed = open_dataset(input_dir, mask_dir)
    with pytest.raises(StoreError, match="changed since"):
        Store.open(db, changed)
    Store.open(db, changed, allow_other_dataset=True).rebind(changed)
    again = Store.open(db, changed)
    assert again.get(first.id).state == "accepted" and again.counts()["total"] == 3
    assert again.recorded_dataset["dataset_identity"] == changed.identity
