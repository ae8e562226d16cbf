"""The review store: candidates and the curators' decisions, in one SQLite file.

A *candidate* is a recipe (kept as canonical JSON, never pixels) with the
dataset it was drawn from, its batch/seed/sample index, its quality report and
the digest of its rendered pixels. The same recipe twice is one candidate.

A *decision* is ``"accepted"``, ``"rejected"`` or ``"skipped"`` for a
candidate, with an optional reason, reviewer and timestamp. Decisions are an
append-only history (triggers forbid UPDATE and DELETE): a candidate's current
state is its latest decision, and :meth:`Store.undo` appends ``"cleared"``,
which makes it ``"undecided"`` again.

Concurrency: the database runs in WAL mode; every call opens its own
short-lived connection with a busy timeout and writes in one short
``BEGIN IMMEDIATE`` transaction, so one :class:`Store` may be shared by many
threads (the app) and several processes may write to the same file at once
without losing anything.

Schema (version :data:`SCHEMA_VERSION`)::

    schema_version(version INTEGER)                    -- one row
    meta(key TEXT PRIMARY KEY, value TEXT)             -- input_dir, mask_dir,
                                                       -- dataset_identity, created_at,
                                                       -- holdout (JSON list of case ids)
    candidates(id INTEGER PRIMARY KEY, recipe TEXT UNIQUE, case_id TEXT UNIQUE,
               dataset_identity TEXT, batch TEXT, seed INTEGER, sample_index INTEGER,
               quality TEXT (JSON), score REAL, digest TEXT, created_at TEXT)
    decisions(id INTEGER PRIMARY KEY AUTOINCREMENT, candidate_id INTEGER REFERENCES
              candidates, decision TEXT CHECK IN (accepted, rejected, skipped, cleared),
              reason TEXT, reviewer TEXT, decided_at TEXT)   -- append-only
    candidate_state  -- view: each candidate with its latest decision and its state
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote

from .dataset import Dataset, open_dataset
from .errors import HoldoutError, PoissonBlendError, StoreError
from .holdout import held_out_roles
from .io import disk_error_message, disk_full, resolve_path, temp_path
from .output import QUALITY_COLUMNS
from .recipe import Recipe, Sample, SamplingOptions, draw_sample, render, sample_rng

SCHEMA_VERSION = 1
"""Schema version this code writes; older databases are migrated on open."""
DEFAULT_DB_NAME = "poissonblend.db"
BUSY_TIMEOUT_MS = 30_000
"""How long a call waits for another writer's lock before :class:`StoreError`."""
QUEUE_GROUP = 32
"""Candidates :meth:`Store.queue` commits in one transaction: one sync to disk per group
instead of per candidate (a network home folder can take 10 ms for each)."""

DECISIONS = ("accepted", "rejected", "skipped")
"""The values of a decision; :meth:`Store.undo` appends :data:`CLEARED`."""
CLEARED = "cleared"
STATES = ("undecided", "accepted", "rejected", "skipped")
"""A candidate's current state: its latest decision, or undecided (none, or cleared)."""
REASONS = ("seam artifact", "wrong anatomy", "intensity mismatch", "other")
"""Suggested reasons; any non-empty text is accepted."""
ORDERS = ("created", "score_asc", "score_desc")
"""Orders of :meth:`Store.candidates` and :meth:`Store.next_undecided`."""
HOLDOUT_KEY = "holdout"
"""``meta`` key of the database's held-out case ids (a JSON list; absent: none)."""

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Candidate:
    """One stored candidate with its current state.

    Attributes
    ----------
    id : int
        Row id, increasing in creation order.
    recipe : Recipe
    case_id : str
        Output case id (``recipe.case_id(taken=dataset.case_ids)`` when stored).
    batch : str or None
        Batch label (``queue`` uses ``"seed-<seed>"`` unless told otherwise).
    seed, sample_index : int or None
        Where ``queue`` drew it: ``sample_recipe(dataset, sample_rng(seed, sample_index))``.
    quality : dict
        :meth:`Quality.to_dict` of its render (``quality["score"]`` sorts).
    created_at : str
        ISO 8601 UTC timestamp.
    state : str
        One of :data:`STATES`.
    reason, reviewer, decided_at : str or None
        Of the current decision (all None when undecided).
    digest : str or None
        Hash of the rendered image and mask pixels when stored (None if unknown);
        export checks the re-render against it.
    """

    id: int
    recipe: Recipe
    case_id: str
    batch: str | None
    seed: int | None
    sample_index: int | None
    quality: dict = field(hash=False)
    created_at: str
    state: str
    reason: str | None
    reviewer: str | None
    decided_at: str | None
    digest: str | None = None

    @property
    def score(self) -> float | None:
        """``quality["score"]`` (None if missing)."""
        value = self.quality.get("score")
        return float(value) if value is not None else None

    @property
    def source_case(self) -> str:
        """Case id of the recipe's source slice."""
        return self.recipe.source_case

    @property
    def target_case(self) -> str:
        """Case id of the recipe's target slice."""
        return self.recipe.target_case


@dataclass(frozen=True)
class DecisionRecord:
    """One entry of the append-only decision history.

    Attributes
    ----------
    candidate_id : int
    decision : str
        One of :data:`DECISIONS` or ``"cleared"`` (an undo).
    reason, reviewer : str or None
    decided_at : str
        ISO 8601 UTC timestamp. The history is ordered by insertion, not by this.
    """

    candidate_id: int
    decision: str
    reason: str | None
    reviewer: str | None
    decided_at: str


class Queued(list):
    """What :meth:`Store.queue` returns: its candidates, in sample order (a list).

    Attributes
    ----------
    redrawn : int
        Recipes drawn again because OpenCV's seamlessClone failed on them
        (method "opencv"; see :func:`~poissonblend.recipe.draw_sample`).
    invisible : int
        Recipes drawn again because their lesion did not visibly arrive.
    """

    def __init__(self, candidates: Iterable["Candidate"] = (), *, redrawn: int = 0,
                 invisible: int = 0):
        super().__init__(candidates)
        self.redrawn = redrawn
        self.invisible = invisible


def default_store_path(dataset: Dataset) -> Path:
    """``poissonblend.db`` next to the dataset: in the parent of its input folder."""
    return dataset.input_dir.parent / DEFAULT_DB_NAME


def sample_digest(sample: Sample) -> str:
    """Hash of a rendered sample's image and mask pixels (and shape)."""
    h = hashlib.blake2b(digest_size=16)
    h.update(repr(sample.image.shape).encode())
    h.update(sample.image.tobytes())
    h.update(sample.mask.tobytes())
    return h.hexdigest()


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


# --------------------------------------------------------------------------- schema

_SCHEMA_V1 = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE candidates (
        id INTEGER PRIMARY KEY,
        recipe TEXT NOT NULL UNIQUE,
        case_id TEXT NOT NULL UNIQUE,
        dataset_identity TEXT NOT NULL,
        batch TEXT,
        seed INTEGER,
        sample_index INTEGER,
        quality TEXT NOT NULL,
        score REAL,
        digest TEXT,
        created_at TEXT NOT NULL)""",
    "CREATE INDEX candidates_batch ON candidates(batch, id)",
    "CREATE INDEX candidates_score ON candidates(score, id)",
    """CREATE TABLE decisions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        candidate_id INTEGER NOT NULL REFERENCES candidates(id),
        decision TEXT NOT NULL
            CHECK (decision IN ('accepted', 'rejected', 'skipped', 'cleared')),
        reason TEXT,
        reviewer TEXT,
        decided_at TEXT NOT NULL)""",
    "CREATE INDEX decisions_candidate ON decisions(candidate_id, id)",
    """CREATE TRIGGER decisions_append_only_update BEFORE UPDATE ON decisions
        BEGIN SELECT RAISE(ABORT, 'decisions are append-only'); END""",
    """CREATE TRIGGER decisions_append_only_delete BEFORE DELETE ON decisions
        BEGIN SELECT RAISE(ABORT, 'decisions are append-only'); END""",
    """CREATE VIEW candidate_state AS
        SELECT c.*, d.decision AS decision, d.reason AS reason, d.reviewer AS reviewer,
               d.decided_at AS decided_at,
               COALESCE(NULLIF(d.decision, 'cleared'), 'undecided') AS state
        FROM candidates c
        LEFT JOIN decisions d ON d.id = (
            SELECT max(id) FROM decisions WHERE candidate_id = c.id)""",
)


def _migrate_0_to_1(conn: sqlite3.Connection) -> None:
    """Create the first schema (statement by statement: executescript would commit)."""
    for statement in _SCHEMA_V1:
        conn.execute(statement)


MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (_migrate_0_to_1,)
"""``MIGRATIONS[v]`` upgrades a database from schema version ``v`` to ``v + 1``."""
assert len(MIGRATIONS) == SCHEMA_VERSION


def schema_version(conn: sqlite3.Connection) -> int:
    """The schema version of an open database (0: empty, nothing created yet).

    Raises
    ------
    StoreError
        If the file holds tables but no poissonblend schema version.
    """
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if "schema_version" not in tables:
        if tables:
            raise StoreError("the database holds other tables and no poissonblend schema; "
                             "it is not a poissonblend review database")
        return 0
    row = conn.execute("SELECT version FROM schema_version").fetchone()
    return int(row[0]) if row else 0


def migrate(conn: sqlite3.Connection) -> int:
    """Bring a database up to :data:`SCHEMA_VERSION`; return the version it had.

    Runs the pending :data:`MIGRATIONS` in one ``BEGIN IMMEDIATE`` transaction
    (so two processes opening a new file at once do not both create it).

    Raises
    ------
    StoreError
        If the database was written by a newer poissonblend (higher version),
        or is not a poissonblend database.
    """
    with immediate_transaction(conn):
        version = schema_version(conn)
        if version > SCHEMA_VERSION:
            raise StoreError(f"the database has schema version {version}, newer than this "
                             f"poissonblend's {SCHEMA_VERSION}; upgrade poissonblend")
        if version < SCHEMA_VERSION:
            if version == 0:
                conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
                conn.execute("INSERT INTO schema_version VALUES (0)")
            for step in MIGRATIONS[version:]:
                step(conn)
            conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION,))
    return version


@contextlib.contextmanager
def immediate_transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """``BEGIN IMMEDIATE`` … ``COMMIT``, rolled back if anything fails inside."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:  # SQLite ends it itself on some errors (e.g. a full disk)
            conn.execute("ROLLBACK")
        raise


# --------------------------------------------------------------------------- store

_SELECT = ("SELECT id, recipe, case_id, batch, seed, sample_index, quality, created_at, "
           "state, reason, reviewer, decided_at, digest FROM candidate_state")
_ORDER_SQL = {"created": "id", "score_asc": "score IS NULL, score, id",
              "score_desc": "score IS NULL, score DESC, id"}


def _candidate(row: tuple) -> Candidate:
    (cid, recipe, case_id, batch, seed, index, quality, created, state, reason, reviewer,
     decided_at, digest) = row
    undecided = state == "undecided"
    return Candidate(cid, Recipe.from_dict(json.loads(recipe)), case_id, batch, seed, index,
                     json.loads(quality), created, state,
                     None if undecided else reason, None if undecided else reviewer,
                     None if undecided else decided_at, digest)


def _check_id(candidate_id: object, name: str = "candidate_id") -> int:
    if not isinstance(candidate_id, int) or isinstance(candidate_id, bool):
        raise StoreError(f"{name} {candidate_id!r} must be an integer candidate id")
    return candidate_id


def _check_text(value: object, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise StoreError(f"{name} {value!r} must be text or None")
    value = value.strip()
    return value or None


def _check_choice(value: object, name: str, choices: Sequence[str]) -> str:
    if value not in choices:
        raise StoreError(f"{name} {value!r} must be one of {', '.join(choices)}")
    return value  # type: ignore[return-value]


def _check_optional_int(value: object, name: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise StoreError(f"{name} {value!r} must be an integer or None")
    return value


def _check_quality(quality: object) -> dict:
    if not isinstance(quality, dict):
        raise StoreError(f"quality must be a dict (Quality.to_dict()), not {type(quality).__name__}")
    missing = [k for k in QUALITY_COLUMNS if k not in quality]
    if missing:
        raise StoreError(f"quality is missing {', '.join(missing)}")
    score = quality["score"]
    if not isinstance(score, (int, float)) or isinstance(score, bool) or not math.isfinite(score):
        raise StoreError(f"quality score {score!r} must be a finite number")
    try:
        json.dumps(quality)
    except (TypeError, ValueError):
        raise StoreError("quality must hold JSON values only") from None
    return quality


def check_integrity(conn: sqlite3.Connection) -> None:
    """Raise :class:`StoreError` if the database's pages are damaged (``PRAGMA quick_check``).

    A few milliseconds for thousands of candidates (see README); run before
    anything is written to or exported from a database.
    """
    try:
        problems = [r[0] for r in conn.execute("PRAGMA quick_check(3)")]
    except sqlite3.DatabaseError as exc:
        problems = [str(exc)]
    if problems != ["ok"]:
        raise StoreError(f"the database is damaged ({problems[0]}); nothing was written: restore "
                         "it from a backup (sqlite3 .recover can save what is left)")


def _database_error(path: Path, exc: sqlite3.Error) -> StoreError:
    """One line for an SQLite error on `path`: full disk, read-only, damaged, or as SQLite says."""
    text = str(exc)
    if disk_full(exc):
        return StoreError(f"{path}: {disk_error_message(exc)}")
    if "readonly" in text:
        return StoreError(f"{path} is read-only for this user: nothing can be recorded in it")
    if "malformed" in text:
        return StoreError(f"{path}: the database is damaged ({text}); restore it from a backup")
    if isinstance(exc, sqlite3.OperationalError):
        return StoreError(f"{path}: {text}")
    return StoreError(f"{path}: not a usable poissonblend review database ({text})")


def _connect(path: Path, *, read_only: bool) -> sqlite3.Connection:
    """A connection with the busy timeout; `read_only`: one that never writes the file or its folder.

    A WAL database in a folder the user may not write, without its ``-shm``
    file, cannot be read the usual way (SQLite must create that file); it is
    then read as immutable, which is right for a database nobody may change
    from here.
    """
    uri = str(path)
    if read_only:
        shm = Path(f"{path}-shm").exists() or os.access(path.parent, os.W_OK)
        uri = f"file:{quote(str(path))}?{'mode=ro' if shm else 'immutable=1'}"
    try:
        conn = sqlite3.connect(uri, uri=read_only, timeout=BUSY_TIMEOUT_MS / 1000,
                               isolation_level=None)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    except sqlite3.DatabaseError as exc:
        raise _database_error(path, exc) from None
    return conn


def _bind(conn: sqlite3.Connection, dataset: Dataset) -> dict[str, str]:
    """Record `dataset` in the meta table unless another process did first; return the meta."""
    with immediate_transaction(conn):
        meta = dict(conn.execute("SELECT key, value FROM meta"))
        if not meta:
            meta = {"input_dir": str(dataset.input_dir), "mask_dir": str(dataset.mask_dir),
                    "dataset_identity": dataset.identity, "created_at": _now()}
            conn.executemany("INSERT INTO meta VALUES (?, ?)", meta.items())
    return meta


def _create_database(path: Path, dataset: Dataset, *, create_folders: bool) -> None:
    """Make a new review database at `path`, whole: built in a temp file, then linked into place.

    Linking never replaces a file: if another process made `path` meanwhile,
    that one is kept (and opened by the caller).
    """
    if not path.parent.is_dir():
        if not create_folders:
            raise StoreError(f"cannot create {path}: its folder {path.parent} does not exist "
                             "(create it first)")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create folder {path.parent} ({disk_error_message(exc)})") from None
    tmp = temp_path(path)
    try:
        conn = sqlite3.connect(tmp, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode = MEMORY")  # no journal file beside the temp file
            migrate(conn)
            _bind(conn, dataset)
        finally:
            conn.close()
        os.link(tmp, path)
    except FileExistsError:
        pass  # made by another process at the same moment: use that one
    except sqlite3.DatabaseError as exc:
        raise _database_error(path, exc) from None
    except OSError as exc:
        raise StoreError(f"cannot create {path} ({disk_error_message(exc)})") from None
    finally:
        tmp.unlink(missing_ok=True)


class Store:
    """A review database bound to one dataset. Use :meth:`Store.open`.

    Every method opens its own short-lived connection, so one instance can be
    shared across threads; several processes may use the same file at once.

    Attributes
    ----------
    path : Path
        The SQLite file (absolute).
    dataset : Dataset
        The dataset the candidates come from. When the store was opened without
        one, it is opened on first use from the folders recorded in the
        database (and checked against the recorded identity).
    """

    def __init__(self, path: Path, dataset: Dataset | None, meta: dict[str, str],
                 allow_other_dataset: bool):
        self.path = path
        self._dataset = dataset
        self._meta = meta
        self._allow_other = allow_other_dataset
        self._read_only = False  # set by open: the user may not write the file or its folder
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    # ---------------------------------------------------------------- opening

    @classmethod
    def open(cls, path: str | os.PathLike | None, dataset: Dataset | None = None, *,
             allow_other_dataset: bool = False, create_folders: bool = False) -> "Store":
        """Create or open a review database.

        An existing file is used only if it is a poissonblend review database
        (checked before anything is written to it, so another program's file,
        or an empty one, is left byte-identical) whose pages are intact
        (``PRAGMA quick_check``). A new database is built in a temp file and
        linked into place whole, so no other file is ever replaced. A
        database the user may not write (file or folder read-only) opens
        read-only: reading works, writing raises :class:`StoreError`.

        Parameters
        ----------
        path : path or None
            The SQLite file; None means :func:`default_store_path` of `dataset`.
            Created if missing and `dataset` is given.
        dataset : Dataset, optional
            The dataset candidates come from. Without it the file must exist;
            the recorded dataset is opened lazily when first needed
            (:attr:`dataset`), so ``status`` and ``decide`` never touch the images.
        allow_other_dataset : bool
            Use the database although it was made for other folders or other
            file contents (the recorded dataset is not changed).
        create_folders : bool
            Create the missing folders of a new database's path (otherwise its
            folder must exist).

        Raises
        ------
        StoreError
            If `path` is a folder or not a poissonblend database, is damaged,
            was written by a newer version, does not exist and no `dataset` was
            given (or its folder does not exist and not `create_folders`), or
            was made for another dataset (different folders or
            :attr:`Dataset.identity`) and `allow_other_dataset` is False.
        """
        if path is None:
            if dataset is None:
                raise StoreError("path is None and no dataset is given to place the database next to")
            path = default_store_path(dataset)
        if not isinstance(path, (str, os.PathLike)):
            raise StoreError(f"path {path!r} must be a file path")
        if dataset is not None and not isinstance(dataset, Dataset):
            raise StoreError(f"dataset must be a Dataset (see open_dataset), not {type(dataset).__name__}")
        path = resolve_path(path, StoreError)
        if path.is_dir():
            raise StoreError(f"review database path {path} is a folder")
        if not path.exists():
            if dataset is None:
                raise StoreError(f"no review database at {path} (queue candidates first)")
            _create_database(path, dataset, create_folders=create_folders)
        read_only = not (os.access(path, os.W_OK) and os.access(path.parent, os.W_OK))
        conn = _connect(path, read_only=read_only)
        try:
            version = schema_version(conn)  # reads only: another program's file stays as it was
            if version == 0:
                raise StoreError("the file holds no tables: it is not a poissonblend review "
                                 "database (refusing to turn it into one)")
            check_integrity(conn)
            if version != SCHEMA_VERSION and not read_only:
                migrate(conn)
            elif version > SCHEMA_VERSION:
                migrate(conn)  # raises: newer than this poissonblend
            if not read_only and conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise StoreError(f"the database cannot use WAL mode (journal mode {mode}); "
                                     "put it on a local disk")
            meta = dict(conn.execute("SELECT key, value FROM meta"))
            if not meta and dataset is not None and not read_only:  # made by an early version
                meta = _bind(conn, dataset)
        except StoreError as exc:
            raise StoreError(f"{path}: {exc}") from None
        except sqlite3.DatabaseError as exc:
            raise _database_error(path, exc) from None
        finally:
            conn.close()
        if not meta:
            raise StoreError(f"{path}: the review database records no dataset; "
                             "open it with the dataset once")
        store = cls(path, dataset, meta, allow_other_dataset)
        store._read_only = read_only
        if dataset is not None:
            store._check_dataset(dataset)
        return store

    def _check_dataset(self, dataset: Dataset) -> None:
        if self._allow_other:
            return
        meta = self._meta
        if (str(dataset.input_dir), str(dataset.mask_dir)) != (meta["input_dir"], meta["mask_dir"]):
            raise StoreError(
                f"{self.path} was made for the dataset {meta['input_dir']} + {meta['mask_dir']}, "
                f"not {dataset.input_dir} + {dataset.mask_dir} (allow_other_dataset / "
                "--allow-other-dataset to use it anyway)")
        if dataset.identity != meta["dataset_identity"]:
            raise StoreError(
                f"{self.path} was made for the files of {meta['input_dir']} as they were on "
                f"{meta['created_at']}; the files have changed since (allow_other_dataset / "
                "--allow-other-dataset to use it anyway)")

    @property
    def recorded_dataset(self) -> dict[str, str]:
        """What the database records: input_dir, mask_dir, dataset_identity, created_at."""
        return {k: v for k, v in self._meta.items() if k != HOLDOUT_KEY}

    # ---------------------------------------------------------------- held-out cases

    def holdout(self) -> frozenset[str]:
        """The database's held-out case ids, as stored now (empty if none were set).

        :meth:`queue` never draws them; ``export`` refuses accepted candidates
        that use one.
        """
        rows = self._read("SELECT value FROM meta WHERE key = ?", (HOLDOUT_KEY,))
        if not rows:
            return frozenset()
        try:
            ids = json.loads(rows[0][0])
        except ValueError:
            ids = None
        if not (isinstance(ids, list) and all(isinstance(i, str) for i in ids)):
            raise StoreError(f"{self.path}: the held-out cases in its meta table are not a "
                             "JSON list of case ids")
        return frozenset(ids)

    def set_holdout(self, case_ids: Iterable[str]) -> frozenset[str]:
        """Record `case_ids` as the database's held-out cases (replacing any before).

        An empty set clears them. Candidates already stored are kept; see
        :meth:`holdout_leaks` for those that use a held-out case.

        Raises
        ------
        HoldoutError
            If `case_ids` is not an iterable of non-empty strings without spaces.
        """
        if isinstance(case_ids, str) or not isinstance(case_ids, Iterable):
            raise HoldoutError(f"held-out cases {case_ids!r} must be a set of case ids")
        ids = frozenset(case_ids)
        bad = [i for i in ids if not isinstance(i, str) or not i or i.split() != [i]]
        if bad:
            raise HoldoutError(f"held-out case id(s) {', '.join(map(repr, bad))} must be "
                               "non-empty text without spaces")
        value = json.dumps(sorted(ids))
        self._write(lambda conn: conn.execute(
            "INSERT INTO meta VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (HOLDOUT_KEY, value)))
        return ids

    def holdout_leaks(self, *, state: str | None = None,
                      holdout: frozenset[str] | None = None) -> list[tuple["Candidate", list[str]]]:
        """Candidates (in `state`, or all) whose source or target is a held-out case.

        Returns
        -------
        list of (Candidate, list of str)
            Each with its roles, e.g. ``["target 0007"]``, in id order.
        """
        holdout = self.holdout() if holdout is None else holdout
        if not holdout:
            return []
        found = ((c, held_out_roles(c.recipe, holdout)) for c in self.candidates(state=state))
        return [(c, roles) for c, roles in found if roles]

    @property
    def dataset(self) -> Dataset:
        """The dataset (opened from the recorded folders on first use if not given).

        Raises
        ------
        StoreError
            If the recorded folders cannot be opened or their files changed.
        """
        with self._lock:
            if self._dataset is None:
                try:
                    dataset = open_dataset(self._meta["input_dir"], self._meta["mask_dir"])
                except PoissonBlendError as exc:
                    raise StoreError(f"{self.path}: cannot open its dataset: {exc}") from None
                self._check_dataset(dataset)
                self._dataset = dataset
            return self._dataset

    def rebind(self, dataset: Dataset) -> None:
        """Record `dataset` (its folders and current file contents) as this database's own.

        For a curator who added or changed slices and wants to keep the decisions:
        later opens with this dataset need no ``allow_other_dataset``. Candidates are
        unchanged; export still checks every re-render against what was reviewed.
        """
        values = {"input_dir": str(dataset.input_dir), "mask_dir": str(dataset.mask_dir),
                  "dataset_identity": dataset.identity, "rebound_at": _now()}
        self._write(lambda conn: conn.executemany(
            "INSERT INTO meta VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            values.items()))
        with self._lock:
            self._meta = {**self._meta, **values}
            self._dataset = dataset

    def _connect(self) -> sqlite3.Connection:
        conn = _connect(self.path, read_only=self._read_only)
        try:
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA synchronous = FULL")
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise _database_error(self.path, exc) from None
        return conn

    def _read(self, sql: str, params: Sequence = ()) -> list[tuple]:
        conn = self._connect()
        try:
            return conn.execute(sql, params).fetchall()
        except sqlite3.DatabaseError as exc:
            raise _database_error(self.path, exc) from None
        finally:
            conn.close()

    def _write(self, fn: Callable[[sqlite3.Connection], object]) -> object:
        """Run `fn(conn)` in one short ``BEGIN IMMEDIATE`` transaction."""
        if self._read_only:
            raise StoreError(f"{self.path} is read-only for this user: nothing can be recorded "
                             "in it (ask its owner, or copy it)")
        conn = self._connect()
        try:
            with immediate_transaction(conn):
                result = fn(conn)
            return result
        except sqlite3.DatabaseError as exc:  # e.g. still locked after the busy timeout, disk full
            raise _database_error(self.path, exc) from None
        finally:
            conn.close()

    # ---------------------------------------------------------------- candidates

    def add(self, recipe: Recipe, *, quality: dict | None = None, batch: str | None = None,
            seed: int | None = None, sample_index: int | None = None,
            digest: str | None = None) -> Candidate:
        """Store a recipe as a candidate (or return the one already stored for it).

        Parameters
        ----------
        recipe : Recipe
        quality : dict, optional
            Its ``Quality.to_dict()``; when None the recipe is rendered to get it
            (and its pixel digest).
        batch : str, optional
        seed, sample_index : int, optional
            Provenance (set by :meth:`queue`).
        digest : str, optional
            :func:`sample_digest` of its render, when `quality` is given and the
            caller has rendered it.

        Returns
        -------
        Candidate
            The same recipe twice gives the same candidate; the first batch,
            seed and quality stored are kept.

        Raises
        ------
        StoreError
            If an argument has the wrong type or `quality` lacks a field.
        DatasetError, LesionError, PlacementError
            If the recipe does not fit the dataset (unknown slice, lesion, spot).
        HoldoutError
            If the recipe's source or target is one of the database's held-out cases.
        """
        if isinstance(recipe, Recipe):
            roles = held_out_roles(recipe, self.holdout())
            if roles:
                raise HoldoutError(f"the recipe uses held-out case(s) of {self.path.name}: "
                                   f"{', '.join(roles)}")
        return _candidate(self._write(self._inserter(recipe, quality=quality, batch=batch,
                                                     seed=seed, sample_index=sample_index,
                                                     digest=digest)))

    def _inserter(self, recipe: Recipe, *, quality: dict | None, batch: str | None,
                  seed: int | None, sample_index: int | None, digest: str | None = None,
                  sample: Sample | None = None) -> Callable[[sqlite3.Connection], tuple]:
        """Check a candidate (rendering it if need be); return what stores it in a transaction.

        The returned function inserts the candidate and returns its row, or the
        row already stored for the same recipe.
        """
        if not isinstance(recipe, Recipe):
            raise StoreError(f"recipe must be a Recipe, not {type(recipe).__name__}")
        batch = _check_text(batch, "batch")
        seed = _check_optional_int(seed, "seed")
        sample_index = _check_optional_int(sample_index, "sample_index")
        digest = _check_text(digest, "digest")
        dataset = self.dataset
        if quality is None:
            if sample is None:
                sample = render(dataset, recipe)
            quality = sample.quality.to_dict()
            digest = sample_digest(sample)
        else:
            quality = _check_quality(quality)
            info = dataset.info(recipe.source)
            dataset.info(recipe.target)
            if recipe.lesion >= len(info.lesions):
                raise StoreError(f"recipe lesion {recipe.lesion} does not exist: "
                                 f"{recipe.source} has {len(info.lesions)} lesion(s)")
        recipe_json = recipe.to_json()
        taken = set(dataset.case_ids)
        identity = dataset.identity

        def insert(conn: sqlite3.Connection) -> tuple:
            row = conn.execute(_SELECT + " WHERE recipe = ?", (recipe_json,)).fetchone()
            if row:
                return row
            while True:  # lengthen the id in the (practically impossible) event of a clash
                case_id = recipe.case_id(taken=taken)
                if conn.execute("SELECT 1 FROM candidates WHERE case_id = ?", (case_id,)).fetchone() is None:
                    break
                taken.add(case_id)
            cur = conn.execute(
                "INSERT INTO candidates (recipe, case_id, dataset_identity, batch, seed, "
                "sample_index, quality, score, digest, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (recipe_json, case_id, identity, batch, seed, sample_index,
                 json.dumps(quality, sort_keys=True), float(quality["score"]), digest, _now()))
            return conn.execute(_SELECT + " WHERE id = ?", (cur.lastrowid,)).fetchone()

        return insert

    def queue(self, count: int, seed: int, options: SamplingOptions = SamplingOptions(), *,
              batch: str | None = None, start: int = 0,
              progress: Progress | None = None) -> Queued:
        """Draw `count` recipes with the engine and store them as candidates.

        Sample ``i`` (``start <= i < start + count``) is
        ``draw_sample(dataset, sample_rng(seed, i), options)`` (``sample_recipe``
        and ``render``, once for its quality and digest, drawing again where the
        lesion did not visibly arrive or the "opencv" method fails; as ``generate``
        draws it); the same seed gives the same candidates. The
        database's held-out cases (:meth:`holdout`) are never drawn, in addition
        to ``options.holdout``.
        Candidates are committed in groups of :data:`QUEUE_GROUP` as they are
        rendered (one transaction each), so an interrupted queue keeps all it
        drew but the group under way, and re-running it adds only the rest.

        Parameters
        ----------
        count : int
            Samples to draw (>= 0).
        seed : int
            Batch seed.
        options : SamplingOptions
        batch : str, optional
            Batch label (default ``"seed-<seed>"``).
        start : int
            Index of the first sample (draw more of the same batch with
            ``start=previous count``).
        progress : callable(done, total), optional

        Returns
        -------
        Queued
            The candidates (a list), in sample order; a draw repeating a stored
            recipe returns that candidate. ``.redrawn`` counts recipes OpenCV failed on,
            ``.invisible`` those whose lesion did not show.

        Raises
        ------
        StoreError
            If `count`, `seed` or `start` is not a non-negative integer.
        PlacementError
            If the dataset offers no valid placement.
        """
        for name, value in (("count", count), ("seed", seed), ("start", start)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise StoreError(f"{name} {value!r} must be an integer >= 0")
        if not isinstance(options, SamplingOptions):
            raise StoreError(f"options must be SamplingOptions, not {type(options).__name__}")
        batch = _check_text(batch, "batch") or f"seed-{seed}"
        dataset = self.dataset
        holdout = self.holdout()
        if not holdout <= options.holdout:
            options = replace(options, holdout=options.holdout | holdout)
        out = Queued()
        pending: list[Callable[[sqlite3.Connection], tuple]] = []
        for k, i in enumerate(range(start, start + count)):
            draw = draw_sample(dataset, sample_rng(seed, i), options)
            out.redrawn += draw.redrawn
            out.invisible += draw.invisible
            pending.append(self._inserter(draw.sample.recipe, quality=None, batch=batch, seed=seed,
                                          sample_index=i, sample=draw.sample))
            if len(pending) == QUEUE_GROUP or k + 1 == count:
                rows = self._write(lambda conn, group=tuple(pending): [insert(conn) for insert in group])
                out.extend(_candidate(row) for row in rows)
                pending.clear()
            if progress is not None:
                progress(k + 1, count)
        return out

    def get(self, candidate_id: int) -> Candidate:
        """The candidate with this id; :class:`StoreError` if there is none."""
        candidate_id = _check_id(candidate_id)
        rows = self._read(_SELECT + " WHERE id = ?", (candidate_id,))
        if not rows:
            raise StoreError(f"no candidate with id {candidate_id} in {self.path}")
        return _candidate(rows[0])

    def render(self, candidate: Candidate | int) -> Sample:
        """Re-render a candidate and check it against the pixels stored at add time.

        Raises
        ------
        StoreError
            If the render differs from the one stored (the engine or the
            dataset changed since), or the candidate does not exist.
        """
        if not isinstance(candidate, Candidate):
            candidate = self.get(candidate)
        sample = render(self.dataset, candidate.recipe)
        if candidate.digest is not None and sample_digest(sample) != candidate.digest:
            raise StoreError(f"candidate {candidate.id} ({candidate.case_id}) renders differently "
                             "from when it was stored; the engine or the dataset has changed")
        return sample

    # ---------------------------------------------------------------- decisions

    def decide(self, candidate_id: int, decision: str, *, reason: str | None = None,
               reviewer: str | None = None) -> Candidate:
        """Append a decision for a candidate; return the candidate in its new state.

        Parameters
        ----------
        candidate_id : int
        decision : {"accepted", "rejected", "skipped"}
        reason : str, optional
            Free text; :data:`REASONS` are the suggested ones.
        reviewer : str, optional

        Raises
        ------
        StoreError
            If the candidate does not exist or `decision` is not in :data:`DECISIONS`.
        """
        candidate_id = _check_id(candidate_id)
        decision = _check_choice(decision, "decision", DECISIONS)
        return self._append([candidate_id], decision, _check_text(reason, "reason"),
                            _check_text(reviewer, "reviewer"), states=None, fetch=True)

    def decide_many(self, candidate_ids: Iterable[int], decision: str, *,
                    reason: str | None = None, reviewer: str | None = None,
                    only_undecided: bool = False) -> list[int]:
        """Append the same decision for many candidates in one transaction.

        Parameters
        ----------
        candidate_ids : iterable of int
        decision : {"accepted", "rejected", "skipped"}
        reason, reviewer : str, optional
        only_undecided : bool
            Leave alone candidates that are decided by the time the transaction
            runs (another reviewer may have decided them meanwhile).

        Returns
        -------
        list of int
            The ids that received the decision.

        Raises
        ------
        StoreError
            If a candidate does not exist (nothing is written) or `decision` is
            not in :data:`DECISIONS`.
        """
        decision = _check_choice(decision, "decision", DECISIONS)
        reason = _check_text(reason, "reason")
        reviewer = _check_text(reviewer, "reviewer")
        if isinstance(candidate_ids, (str, bytes)) or not isinstance(candidate_ids, Iterable):
            raise StoreError(f"candidate_ids {candidate_ids!r} must be an iterable of integers")
        ids = list(dict.fromkeys(_check_id(i, "candidate id") for i in candidate_ids))
        return self._append(ids, decision, reason, reviewer,
                            states=("undecided",) if only_undecided else None)

    def undo(self, candidate_id: int, *, reviewer: str | None = None) -> Candidate:
        """Clear a candidate's current decision (appends ``"cleared"``): it is undecided again.

        Raises
        ------
        StoreError
            If the candidate does not exist or is undecided (nothing to undo).
        """
        candidate_id = _check_id(candidate_id)
        reviewer = _check_text(reviewer, "reviewer")
        return self._append([candidate_id], CLEARED, None, reviewer, states=DECISIONS, fetch=True)

    def undo_many(self, candidate_ids: Iterable[int], *, reviewer: str | None = None) -> list[int]:
        """Clear the current decision of many candidates in one transaction (appends ``"cleared"``
        for those decided; undecided ones are left alone). Returns the ids cleared.

        Raises
        ------
        StoreError
            If a candidate does not exist (nothing is written).
        """
        reviewer = _check_text(reviewer, "reviewer")
        if isinstance(candidate_ids, (str, bytes)) or not isinstance(candidate_ids, Iterable):
            raise StoreError(f"candidate_ids {candidate_ids!r} must be an iterable of integers")
        ids = list(dict.fromkeys(_check_id(i, "candidate id") for i in candidate_ids))
        return self._append(ids, CLEARED, None, reviewer, states=DECISIONS)

    def _append(self, ids: list[int], decision: str, reason: str | None, reviewer: str | None,
                *, states: Sequence[str] | None, fetch: bool = False):
        """Append `decision` for `ids` (those in `states` only) in one transaction.

        Returns the ids decided, or with `fetch` the single candidate afterwards
        (:class:`StoreError` if it was not in `states`: the undo case).
        """
        def append(conn: sqlite3.Connection):
            current = {}
            for k in range(0, len(ids), 500):
                part = ids[k:k + 500]
                current.update(conn.execute(
                    f"SELECT id, state FROM candidate_state WHERE id IN ({','.join('?' * len(part))})",
                    part))
            missing = [i for i in ids if i not in current]
            if missing:
                raise StoreError(f"no candidate with id {missing[0]} in {self.path}"
                                 + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
            chosen = [i for i in ids if states is None or current[i] in states]
            now = _now()
            conn.executemany(
                "INSERT INTO decisions (candidate_id, decision, reason, reviewer, decided_at) "
                "VALUES (?, ?, ?, ?, ?)", [(i, decision, reason, reviewer, now) for i in chosen])
            if not fetch:
                return chosen
            if not chosen:
                raise StoreError(f"candidate {ids[0]} is undecided; there is no decision to undo")
            return _candidate(conn.execute(_SELECT + " WHERE id = ?", (ids[0],)).fetchone())

        return self._write(append)

    # ---------------------------------------------------------------- queries

    def next_undecided(self, *, order: str = "created", exclude: Iterable[int] = ()) -> Candidate | None:
        """The first undecided candidate in `order`, skipping ids in `exclude`.

        Parameters
        ----------
        order : {"created", "score_asc", "score_desc"}
            Creation order, or by ``quality["score"]`` (ties by creation).
        exclude : iterable of int
            Ids to pass over (e.g. shown in another tab right now).

        Returns
        -------
        Candidate or None
            None when every candidate is decided.

        Raises
        ------
        StoreError
            If `order` is not one of :data:`ORDERS`.
        """
        order = _check_choice(order, "order", ORDERS)
        skip = set(exclude)
        conn = self._connect()
        try:
            cur = conn.execute(f"{_SELECT} WHERE state = 'undecided' ORDER BY {_ORDER_SQL[order]}")
            for row in cur:
                if row[0] not in skip:
                    return _candidate(row)
            return None
        except sqlite3.OperationalError as exc:
            raise StoreError(f"{self.path}: {exc}") from None
        finally:
            conn.close()

    def candidates(self, *, state: str | None = None, batch: str | None = None,
                   reason: str | None = None, order: str = "created") -> list[Candidate]:
        """Candidates filtered by current state, batch and current reason.

        Parameters
        ----------
        state : str, optional
            One of :data:`STATES`.
        batch : str, optional
        reason : str, optional
            Exact reason of the current decision.
        order : {"created", "score_asc", "score_desc"}

        Raises
        ------
        StoreError
            If `state` or `order` is not a known value.
        """
        where, params = [], []
        if state is not None:
            where.append("state = ?")
            params.append(_check_choice(state, "state", STATES))
        if batch is not None:
            where.append("batch = ?")
            params.append(_check_text(batch, "batch"))
        if reason is not None:
            where.append("state != 'undecided' AND reason = ?")
            params.append(_check_text(reason, "reason"))
        order = _check_choice(order, "order", ORDERS)
        sql = _SELECT + (" WHERE " + " AND ".join(where) if where else "") + f" ORDER BY {_ORDER_SQL[order]}"
        return [_candidate(r) for r in self._read(sql, params)]

    def counts(self) -> dict[str, int]:
        """Candidates per state: every one of :data:`STATES` as a key, plus ``"total"``."""
        counts = dict.fromkeys(STATES, 0)
        counts.update(self._read("SELECT state, count(*) FROM candidate_state GROUP BY state"))
        counts["total"] = sum(counts[s] for s in STATES)
        return counts

    def history(self, candidate_id: int | None = None) -> list[DecisionRecord]:
        """Every decision (including undos), oldest first; of one candidate if given.

        Raises
        ------
        StoreError
            If `candidate_id` is given and there is no such candidate.
        """
        sql = "SELECT candidate_id, decision, reason, reviewer, decided_at FROM decisions"
        if candidate_id is None:
            rows = self._read(sql + " ORDER BY id")
        else:
            self.get(candidate_id)
            rows = self._read(sql + " WHERE candidate_id = ? ORDER BY id", (candidate_id,))
        return [DecisionRecord(*r) for r in rows]

    def last_id(self) -> int:
        """The highest candidate id (0 when there is none); ids run from 1 up."""
        return int(self._read("SELECT coalesce(max(id), 0) FROM candidates")[0][0])

    def batches(self) -> list[str]:
        """Batch labels, in the order their first candidate was stored."""
        return [r[0] for r in self._read(
            "SELECT batch FROM candidates WHERE batch IS NOT NULL GROUP BY batch ORDER BY min(id)")]


__all__ = ["CLEARED", "Candidate", "DECISIONS", "DecisionRecord", "MIGRATIONS", "ORDERS", "REASONS",
           "SCHEMA_VERSION", "STATES", "Store", "default_store_path", "migrate", "sample_digest",
           "schema_version"]
