"""The sidebar, drawn by the router on every page: the dataset panel and the ISLES 2022 import.

Its session-state keys (prefix ``sb_``) are named here; the configuration it changes
(what is open, the reviewer's name) is :mod:`ui.context`'s.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import streamlit as st

from poissonblend.errors import PoissonBlendError
from poissonblend.isles import import_isles
from ui import context as cx
from ui.holdout import holdout_panel
from ui.widgets import show_error

INPUT_DIR = "sb_input_dir"           # text inputs of the dataset form
MASK_DIR = "sb_mask_dir"
DB = "sb_db"
ALLOW_OTHER = "sb_allow_other"       # open a database made for other files anyway
FORM = "sb_form"
OPEN = "sb_open"                     # buttons
DEMO = "sb_demo"
RELOAD = "sb_reload"
ISLES_ROOT = "sb_isles_root"         # the ISLES import
ISLES_OUT = "sb_isles_out"
ISLES_MODALITY = "sb_isles_modality"
ISLES_SKIP_EMPTY = "sb_isles_skip_empty"
ISLES_RUN = "sb_isles_run"
ISLES_RESULT = "sb_isles_result"     # str | None: summary line of the last import
PENDING = "sb_pending"               # dict | None: folders to show in the inputs next run
CONFIRM = "sb_confirm"               # dict | None: configuration whose database folder is to be made
CREATE, CANCEL = "sb_create", "sb_cancel"  # buttons of that question

ORIGIN_TEXT = {"command line": "Folders given on the command line.",
               "remembered": "The folders chosen last time (remembered).",
               "sidebar": "Folders chosen in the sidebar.",
               "ISLES 2022 import": "Imported from ISLES 2022."}


def missing_db_folder(db: str) -> Path | None:
    """The folder a typed database path needs that does not exist yet (None if none is missing,
    or the path is unusable anyway: opening it says why)."""
    if not db:
        return None
    try:
        folder = cx.confined(db).parent
    except PoissonBlendError:
        return None
    return None if folder.is_dir() else folder


def _open_from_sidebar() -> None:
    ss = st.session_state
    config = {"input_dir": ss[INPUT_DIR].strip(), "mask_dir": ss[MASK_DIR].strip(),
              "db": ss[DB].strip(), "origin": "sidebar", "allow_other_dataset": bool(ss[ALLOW_OTHER])}
    ss[CONFIRM] = config if missing_db_folder(config["db"]) else None
    if ss[CONFIRM] is None:  # else the user is asked first
        _activate_and_remember(cx.try_open(config))


def _create_and_open() -> None:
    config = st.session_state[CONFIRM]
    st.session_state[CONFIRM] = None
    _activate_and_remember(cx.try_open({**config, "create_folders": True}))


def _open_demo() -> None:
    opened = cx.try_open({"origin": "demo"})
    if opened is not None:
        cx.activate(opened)
        cx.save_settings(cx.data_dir(), {"input_dir": "", "mask_dir": "", "db": ""})
        _sync_fields(opened.config)


def _activate_and_remember(opened: cx.Context | None) -> None:
    if opened is not None:
        cx.activate(opened)
        cx.save_settings(cx.data_dir(), opened.config)
        _sync_fields(opened.config)


def _reload() -> None:
    cx.cached_dataset.clear()
    cx.cached_store.clear()
    st.cache_data.clear()


def _sync_fields(config: dict) -> None:
    st.session_state[INPUT_DIR] = config.get("input_dir", "")
    st.session_state[MASK_DIR] = config.get("mask_dir", "")
    st.session_state[DB] = config.get("db", "")


def _init_state() -> None:
    ss = st.session_state
    pending = ss.pop(PENDING, None)
    if pending:  # set by the ISLES import, which runs after the inputs exist
        _sync_fields(pending)
    active = ss[cx.ACTIVE]
    for key, value in {cx.REVIEWER: cx.load_settings(cx.data_dir()).get("reviewer", ""),
                       INPUT_DIR: active.get("input_dir", ""), MASK_DIR: active.get("mask_dir", ""),
                       DB: active.get("db", ""), ALLOW_OTHER: False, ISLES_ROOT: "",
                       ISLES_OUT: str(cx.data_dir() / "isles2022"), ISLES_MODALITY: "dwi",
                       ISLES_SKIP_EMPTY: True, ISLES_RESULT: None, CONFIRM: None}.items():
        ss.setdefault(key, value)


def sidebar(ctx: cx.Context | None) -> None:
    """Draw the sidebar: what is open and how to open something else."""
    _init_state()
    with st.sidebar:
        dataset_panel(ctx)
        if ctx is not None:
            holdout_panel(ctx)
        isles_panel()


def dataset_panel(ctx: cx.Context | None) -> None:
    """The sidebar's dataset section: what is open, the folder form, demo, re-index, reviewer."""
    st.markdown("### Dataset")
    if ctx is not None:
        origin = ctx.config.get("origin")
        if origin == "demo":
            st.info(f"Showing the **built-in demo dataset**, generated in `{Path(ctx.config['input_dir']).parent}`. "
                    "Point the app at your own training set below.", icon=":material/science:")
        else:
            st.caption(ORIGIN_TEXT.get(origin, ""))
        st.caption(cx.describe(ctx))
        for message in cx.dataset_warnings(ctx.config):
            st.warning(message, icon=":material/warning:")
    if st.session_state[cx.ROOT_DIR]:
        st.caption(f"Every folder and file must lie in `{cx.confined(st.session_state[cx.ROOT_DIR])}`.")
    if st.session_state[cx.OPEN_ERROR]:
        st.error(st.session_state[cx.OPEN_ERROR], icon=":material/error:")
    with st.form(FORM, border=False):
        st.text_input("Input folder (images)", key=INPUT_DIR, persist_state="session",
                      placeholder="/path/to/input", help="Folder of slice_<case>_<NNNN>.png images")
        st.text_input("Mask folder", key=MASK_DIR, persist_state="session", placeholder="/path/to/mask",
                      help="Lesion masks with the same file names")
        st.text_input("Review database", key=DB, persist_state="session", placeholder="(default: poissonblend.db next to "
                      "the dataset)", help="SQLite file holding candidates and decisions")
        st.checkbox("Use the database even if the files changed", key=ALLOW_OTHER,
                    help="A review database remembers the folders and file contents it was made "
                         "for; tick this to keep using it after you added or changed slices. "
                         "Export still re-renders every accepted sample and reports any that "
                         "no longer render as reviewed.")
        st.form_submit_button("Open dataset", key=OPEN, on_click=_open_from_sidebar,
                              type="primary", width="stretch")
    if st.session_state[CONFIRM]:
        folder = missing_db_folder(st.session_state[CONFIRM]["db"])
        st.warning(f"The folder {folder} of the review database does not exist. Create it and "
                   "a new database there?", icon=":material/create_new_folder:")
        left, right = st.columns(2)
        left.button("Create", key=CREATE, on_click=_create_and_open, type="primary",
                    width="stretch")
        right.button("Cancel", key=CANCEL, on_click=st.session_state.__setitem__,
                     args=(CONFIRM, None), width="stretch")
    left, right = st.columns(2)
    left.button("Demo dataset", key=DEMO, on_click=_open_demo, width="stretch")
    right.button("Re-index", key=RELOAD, on_click=_reload, width="stretch",
                 help="Re-read the folders after files changed on disk")

    st.text_input("Reviewer (optional)", key=cx.REVIEWER, persist_state="session",
                  placeholder="your name, stored with each decision",
                  on_change=lambda: cx.save_settings(cx.data_dir(), {"reviewer": cx.reviewer()}))


def isles_panel() -> None:
    """The sidebar's ISLES 2022 import (NIfTI -> training-set PNGs), then open the result."""
    ss = st.session_state
    with st.expander("Import ISLES 2022", icon=":material/upload_file:"):
        st.text_input("ISLES 2022 folder", key=ISLES_ROOT, persist_state="session",
                      help="The folder holding the sub-strokecaseNNNN cases and derivatives/")
        st.text_input("Output folder", key=ISLES_OUT, persist_state="session",
                      help="Slices go to <output>/input and <output>/mask")
        st.selectbox("Modality", ["dwi", "adc", "flair"], key=ISLES_MODALITY, persist_state="session")
        st.checkbox("Leave out slices without brain or lesion", key=ISLES_SKIP_EMPTY,
                    persist_state="session")
        if st.button("Import and open", key=ISLES_RUN, width="stretch"):
            bar = st.progress(0.0, text="Reading the NIfTI headers…")

            def _progress(done: int, total: int) -> None:
                bar.progress(done / total if total else 1.0, text=f"{done} of {total} cases imported")

            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    summary = import_isles(cx.confined(ss[ISLES_ROOT].strip()),
                                           cx.confined(ss[ISLES_OUT].strip()),
                                           modality=ss[ISLES_MODALITY], skip_empty=ss[ISLES_SKIP_EMPTY],
                                           progress=_progress)
            except PoissonBlendError as exc:
                show_error(exc)
            else:
                for w in caught:
                    st.warning(str(w.message), icon=":material/warning:")
                ss[ISLES_RESULT] = summary.summary_line()
                opened = cx.try_open({"input_dir": str(summary.input_dir),
                                      "mask_dir": str(summary.mask_dir), "db": "",
                                      "origin": "ISLES 2022 import"})
                if opened is not None:
                    cx.activate(opened)
                    cx.save_settings(cx.data_dir(), opened.config)
                    ss[PENDING] = opened.config
                    st.rerun()
        if ss[ISLES_RESULT]:
            st.success(ss[ISLES_RESULT])
