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
CREATE_FOLDER, KEEP_MISSING = "sb_create_folder", "sb_keep_missing"  # "create the db folder?"
ISLES_ROOT = "sb_isles_root"         # the ISLES import
ISLES_OUT = "sb_isles_out"
ISLES_MODALITY = "sb_isles_modality"
ISLES_SKIP_EMPTY = "sb_isles_skip_empty"
ISLES_RUN = "sb_isles_run"
ISLES_RESULT = "sb_isles_result"     # str | None: summary line of the last import
PENDING = "sb_pending"               # dict | None: folders to show in the inputs next run

ORIGIN_TEXT = {"command line": "Folders given on the command line.",
               "remembered": "The folders chosen last time (remembered).",
               "sidebar": "Folders chosen in the sidebar.",
               "ISLES 2022 import": "Imported from ISLES 2022."}


def _open_from_sidebar() -> None:
    ss = st.session_state
    config = {"input_dir": ss[INPUT_DIR].strip(), "mask_dir": ss[MASK_DIR].strip(),
              "db": ss[DB].strip(), "origin": "sidebar", "allow_other_dataset": bool(ss[ALLOW_OTHER])}
    ss[cx.FOLDER_ASK] = None
    opened = cx.try_open(config)
    if opened is None and ss[cx.FOLDER_ASK] is None:
        _sync_fields(ss[cx.ACTIVE])  # it failed: the fields show again what is open
    _activate_and_remember(opened)


def _create_folder_and_open() -> None:
    ss = st.session_state
    config, ss[cx.FOLDER_ASK] = ss[cx.FOLDER_ASK], None
    _activate_and_remember(cx.try_open({**config, "create_folder": True}))


def _keep_folder_missing() -> None:
    ss = st.session_state
    ss[cx.FOLDER_ASK] = None
    _sync_fields(ss[cx.ACTIVE])


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
                       ISLES_SKIP_EMPTY: True, ISLES_RESULT: None}.items():
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
    asked = st.session_state[cx.FOLDER_ASK]
    if asked:
        folder = Path(asked["db"]).expanduser().parent
        with st.container(border=True):
            st.warning(f"The folder `{folder}` for the review database does not exist. "
                       "Create it, with the database in it?", icon=":material/create_new_folder:")
            yes, no = st.columns(2)
            yes.button("Create", key=CREATE_FOLDER, type="primary", on_click=_create_folder_and_open,
                       width="stretch")
            no.button("Cancel", key=KEEP_MISSING, on_click=_keep_folder_missing, width="stretch")
    with st.form(FORM, border=False):
        st.text_input("Input folder (images)", key=INPUT_DIR, persist_state="session",
                      placeholder="/path/to/input", help="Folder of slice_<case>_<NNNN>.png images")
        st.text_input("Mask folder", key=MASK_DIR, persist_state="session", placeholder="/path/to/mask",
                      help="Lesion masks with the same file names")
        st.text_input("Review database", key=DB, persist_state="session", placeholder="(default: poissonblend.db next to "
                      "the dataset)", help="SQLite file holding candidates and decisions")
        st.checkbox(cx.ALLOW_OTHER_LABEL, key=ALLOW_OTHER,
                    help="A review database remembers the folders and file contents it was made "
                         "for; tick this to keep using it after you added or changed slices. "
                         "Export still re-renders every accepted sample and reports any that "
                         "no longer render as reviewed.")
        st.form_submit_button("Open dataset", key=OPEN, on_click=_open_from_sidebar,
                              type="primary", width="stretch")
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
        st.selectbox("Modality", ["dwi", "adc", "flair"], key=ISLES_MODALITY, persist_state="session",
                     help="DWI and ADC are on the masks' grid; FLAIR is resampled onto it")
        st.checkbox("Leave out slices without brain or lesion", key=ISLES_SKIP_EMPTY,
                    persist_state="session")
        if st.button("Import and open", key=ISLES_RUN, width="stretch"):
            ss[ISLES_RESULT] = None  # the last import's message is not this one's
            bar = st.progress(0.0, text="Reading the NIfTI headers…")

            def _progress(done: int, total: int) -> None:
                bar.progress(done / total if total else 1.0,
                             text=f"{done} of {cx.plural(total, 'case')} imported")

            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    summary = import_isles(cx.confined(ss[ISLES_ROOT].strip()),
                                           cx.confined(ss[ISLES_OUT].strip()),
                                           modality=ss[ISLES_MODALITY], skip_empty=ss[ISLES_SKIP_EMPTY],
                                           progress=_progress)
            except PoissonBlendError as exc:
                bar.empty()  # the error takes the progress bar's place
                show_error(exc)
            else:
                bar.empty()
                for w in caught:
                    st.warning(str(w.message), icon=":material/warning:")
                ss[ISLES_RESULT] = import_message(summary, ss[ISLES_MODALITY])
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


def import_message(summary, modality: str) -> str:
    """What an ISLES import did, in the app's words (plurals; FLAIR's resampling said)."""
    skipped = f" ({cx.plural(len(summary.skipped), 'case')} skipped)" if summary.skipped else ""
    text = (f"Imported {cx.plural(len(summary.cases), 'case')}{skipped}: "
            f"{cx.plural(summary.slices, 'slice')} ({summary.written:,} written, "
            f"{summary.unchanged:,} unchanged), {cx.plural(summary.lesion_slices, 'slice')} with "
            f"lesions, into `{summary.out_dir}`.")
    if modality == "flair":
        text += (" FLAIR was resampled onto the grid of the lesion masks (trilinear), so that "
                 "image and mask match voxel for voxel.")
    return text
