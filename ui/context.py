"""What every page works on: the configuration, the open dataset and review store.

- the resolved configuration (command line, remembered settings, or the demo set);
- the root folder every path the app reads or writes must lie in (``--root``, else
  ``POISSONBLEND_ROOT``, else ``"root"`` in the data folder's ``settings.json``; none
  confines nothing) and :func:`confined`, through which every typed path goes;
- ``st.cache_resource`` wrappers for the dataset and the review store;
- :func:`context`, the :class:`Context` a page starts from, and :func:`page_state`,
  with which a page names its session-state keys and forgets the per-dataset ones
  when another dataset or database was opened since it last ran.

Only the keys several pages share live here (prefix ``cfg_``); every page owns its own.
The app data folder (``./data`` at the repo root unless ``--data-dir`` or
``POISSONBLEND_DATA_DIR`` says otherwise) holds the demo set, its review
database and ``settings.json`` (the folders chosen in the sidebar).
"""

from __future__ import annotations

import argparse
import json
import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from poissonblend.dataset import Dataset, open_dataset
from poissonblend.demo import ensure_demo
from poissonblend.errors import PoissonBlendError
from poissonblend.io import atomic_write_bytes, within_root
from poissonblend.store import Store, default_store_path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = ROOT / "data"
DATA_DIR_ENV = "POISSONBLEND_DATA_DIR"
ROOT_ENV = "POISSONBLEND_ROOT"
SETTINGS_FILE = "settings.json"

# Session-state keys shared by the router, the sidebar and the pages
DATA_DIR = "cfg_data_dir"            # str: the app data folder
CLI = "cfg_cli"                      # dict: what the command line asked for
ACTIVE = "cfg_active"                # dict(input_dir, mask_dir, db, origin) in use
LAST_GOOD = "cfg_last_good"          # dict: the last configuration that opened
OPEN_ERROR = "cfg_open_error"        # str | None: why the last open attempt failed
REVIEWER = "cfg_reviewer"            # str: reviewer name recorded with decisions (sidebar input)
ROOT_DIR = "cfg_root"                # str | None: the folder every path must lie in
FOLDER_ASK = "cfg_folder_ask"        # dict | None: a configuration waiting for "create its db folder?"

OTHER_DATASET_HINT = "(allow_other_dataset / --allow-other-dataset to use it anyway)"
"""How the library's wrong-database error ends; the app names its own checkbox instead."""
ALLOW_OTHER_LABEL = "Use the database even if the files changed"


class MissingFolder(PoissonBlendError):
    """The review database's folder does not exist: the app asks before creating it."""

    def __init__(self, folder: Path):
        super().__init__(f"the folder {folder} for the review database does not exist")
        self.folder = folder

# --------------------------------------------------------------------------- configuration

def parse_cli(argv: Sequence[str]) -> tuple[dict, str | None]:
    """``--input-dir I --mask-dir M [--db DB] [--data-dir D] [--root R]`` -> (dict, error or None).

    Unknown arguments are ignored (the app may run under a test runner).
    """
    parser = argparse.ArgumentParser(prog="streamlit run app.py --", add_help=False,
                                     exit_on_error=False)
    for name in ("--input-dir", "--mask-dir", "--db", "--data-dir", "--root"):
        parser.add_argument(name)
    try:
        args, _ = parser.parse_known_args(list(argv))
    except (argparse.ArgumentError, SystemExit) as exc:
        return {}, f"command line: {exc}"
    cli = {k: v for k, v in vars(args).items() if v}
    if bool(cli.get("input_dir")) != bool(cli.get("mask_dir")):
        return {}, "command line: give both --input-dir and --mask-dir (or neither)"
    return cli, None


def data_dir() -> Path:
    return Path(st.session_state[DATA_DIR])


def default_data_dir(cli: dict) -> str:
    return str(Path(cli.get("data_dir") or os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR))


SETTING_KEYS = ("input_dir", "mask_dir", "db", "reviewer")


def _settings_file(folder: Path) -> dict:
    """Everything in the data folder's settings.json ({} if none or unreadable)."""
    try:
        data = json.loads((folder / SETTINGS_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def load_settings(folder: Path) -> dict:
    """The remembered sidebar choices ({} if none or unreadable)."""
    return {k: v for k, v in _settings_file(folder).items() if k in SETTING_KEYS and isinstance(v, str)}


def save_settings(folder: Path, values: dict) -> None:
    """Remember some of :data:`SETTING_KEYS` (merged into the file, written atomically; other
    keys, such as the ``root`` of whoever serves the app, are kept as they are).

    A read-only data folder only loses the memory.
    """
    data = _settings_file(folder)
    data.update({k: values.get(k) or "" for k in SETTING_KEYS if k in values})
    try:
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(folder / SETTINGS_FILE, json.dumps(data, indent=2).encode())
    except OSError:
        pass


def configured_root(cli: dict, folder: Path) -> str | None:
    """The root folder: ``--root``, else ``$POISSONBLEND_ROOT``, else ``"root"`` in the data
    folder's settings.json (written by whoever serves the app; the app never writes it)."""
    if cli.get("root") or os.environ.get(ROOT_ENV):
        return cli.get("root") or os.environ[ROOT_ENV]
    root = _settings_file(folder).get("root")
    return root if isinstance(root, str) and root.strip() else None


def confined(path: str | os.PathLike) -> Path:
    """`path` resolved, checked to lie in the root folder (if one is set).

    Raises :class:`~poissonblend.errors.OutsideRootError` (a PoissonBlendError) otherwise.
    """
    return within_root(path, st.session_state.get(ROOT_DIR))


def reviewer() -> str | None:
    """The reviewer name typed in the sidebar (None if empty)."""
    return (st.session_state.get(REVIEWER) or "").strip() or None


def demo_config(folder: Path) -> dict:
    """Generate the demo set into `folder` if needed; its configuration."""
    input_dir, mask_dir = ensure_demo(folder)
    return {"input_dir": str(input_dir), "mask_dir": str(mask_dir),
            "db": str(input_dir.parent / "poissonblend.db"), "origin": "demo"}


def initial_config(cli: dict, folder: Path) -> dict:
    """What to open at start: the command line, else remembered settings, else the demo."""
    if cli.get("input_dir"):
        return {"input_dir": cli["input_dir"], "mask_dir": cli["mask_dir"],
                "db": cli.get("db") or "", "origin": "command line"}
    saved = load_settings(folder)
    if saved.get("input_dir") and saved.get("mask_dir"):
        return {**saved, "origin": "remembered"}
    return {"input_dir": "", "mask_dir": "", "db": "", "origin": "demo"}


@st.cache_resource(show_spinner="Opening the dataset…", max_entries=8)
def cached_dataset(input_dir: str, mask_dir: str, _generation: int = 0) -> tuple[Dataset, list[str]]:
    """Open (and index) a dataset once; with the warnings it raised."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dataset = open_dataset(input_dir, mask_dir)
    return dataset, [str(w.message) for w in caught]


@st.cache_resource(show_spinner=False, max_entries=8)
def cached_store(db: str, dataset_identity: str, allow_other_dataset: bool, create_folders: bool,
                 _dataset: Dataset) -> Store:
    """Open the review database once per (file, dataset); with `allow_other_dataset`,
    bind it to this dataset from now on (the user ticked "use it even if the files changed");
    with `create_folders`, make its missing folder (the user confirmed)."""
    store = Store.open(db or None, _dataset, allow_other_dataset=allow_other_dataset,
                       create_folders=create_folders)
    if allow_other_dataset:
        store.rebind(_dataset)
    return store


@dataclass(frozen=True)
class Context:
    """What a page works on: the open dataset and review store, and where they came from."""

    dataset: Dataset
    store: Store
    config: dict

    @property
    def key(self) -> str:
        """Cache key of the dataset's contents."""
        return self.dataset.identity


def open_config(config: dict) -> Context:
    """Open a configuration's dataset and store (cached). Raises PoissonBlendError."""
    if config.get("origin") == "demo" and not config.get("input_dir"):
        config.update(demo_config(data_dir()))
    if not config.get("input_dir") or not config.get("mask_dir"):
        raise PoissonBlendError("choose an input folder and a mask folder")
    dataset, _ = cached_dataset(str(confined(config["input_dir"])), str(confined(config["mask_dir"])))
    db = str(confined(config["db"] if config.get("db") else default_store_path(dataset)))
    if not Path(db).parent.exists() and not config.get("create_folder"):
        raise MissingFolder(Path(db).parent)
    store = cached_store(db, dataset.identity, bool(config.get("allow_other_dataset")),
                         bool(config.get("create_folder")), dataset)
    return Context(dataset, store, {**config, "db": db})


def context() -> Context:
    """The active dataset and store (opened by app.py before any page runs)."""
    return open_config(dict(st.session_state[ACTIVE]))


def open_active() -> Context | None:
    """Open the active configuration; if it fails, keep the previous one (or the demo)."""
    ctx = try_open(st.session_state[ACTIVE])
    error = st.session_state[OPEN_ERROR]
    if ctx is None:
        for fallback in (st.session_state.get(LAST_GOOD), {"origin": "demo"}):
            if fallback:
                ctx = try_open(fallback)
                if ctx is not None:
                    break
        if ctx is not None:
            activate(ctx)
    elif ctx.config != st.session_state[ACTIVE]:
        activate(ctx)  # first run: record the resolved paths (demo folders, default db)
    st.session_state[OPEN_ERROR] = error  # activate() clears it; the failure stays shown
    return ctx


def start(argv: Sequence[str]) -> Context | None:
    """The router's first step: parse the command line once per session, open the active set."""
    ss = st.session_state
    if CLI not in ss:
        ss[CLI], ss[OPEN_ERROR] = parse_cli(argv)
    ss.setdefault(OPEN_ERROR, None)
    ss.setdefault(FOLDER_ASK, None)
    ss.setdefault(DATA_DIR, default_data_dir(ss[CLI]))
    ss.setdefault(ROOT_DIR, configured_root(ss[CLI], data_dir()))
    if ACTIVE not in ss:
        ss[ACTIVE] = initial_config(ss[CLI], data_dir())
    return open_active()


def dataset_warnings(config: dict) -> list[str]:
    try:
        return cached_dataset(str(confined(config["input_dir"])), str(confined(config["mask_dir"])))[1]
    except PoissonBlendError:
        return []


def try_open(config: dict) -> Context | None:
    """Open `config`; on a PoissonBlendError remember the message and return None."""
    try:
        ctx = open_config(dict(config))
    except MissingFolder:
        st.session_state[FOLDER_ASK] = dict(config)
        return None
    except PoissonBlendError as exc:
        st.session_state[OPEN_ERROR] = str(exc).replace(
            OTHER_DATASET_HINT, f"(tick “{ALLOW_OTHER_LABEL}” in the sidebar to use it anyway)")
        return None
    return ctx


def activate(ctx: Context) -> None:
    """Make an opened context the active one (pages forget their per-dataset state: :func:`page_state`)."""
    st.session_state[ACTIVE] = dict(ctx.config)
    st.session_state[LAST_GOOD] = dict(ctx.config)
    st.session_state[OPEN_ERROR] = None


def page_state(ctx: Context, prefix: str, defaults: dict, *, per_dataset: Iterable[str] = ()) -> None:
    """Initialise a page's session-state keys (each starts with ``prefix + "_"``).

    Keys in `per_dataset` are first forgotten if another dataset or review database was
    opened since the page last ran (a slice name or a candidate id of the old one means
    nothing in the new one); then every key of `defaults` is ``setdefault``-ed.
    """
    ss = st.session_state
    marker = f"{prefix}_for_dataset"  # (input, mask, db) the page last ran on
    opened = (ctx.config["input_dir"], ctx.config["mask_dir"], ctx.config["db"])
    if ss.get(marker, opened) != opened:
        for key in per_dataset:
            ss.pop(key, None)
    ss[marker] = opened
    for key, value in defaults.items():
        ss.setdefault(key, value)


def describe(ctx: Context) -> str:
    ds = ctx.dataset
    return (f"{plural(len(ds), 'slice')}, {plural(len(ds.case_ids), 'case')}, "
            f"{plural(len(ds.lesion_table), 'lesion')} · review database {ctx.config['db']}")


def plural(n: int, noun: str, many: str | None = None) -> str:
    """``1 case``, ``2 cases``, ``1,024 slices`` (`many`: an irregular plural)."""
    return f"{n:,} {noun if n == 1 else many or noun + 's'}"
