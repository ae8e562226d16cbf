"""PoissonBlend curation app: compose, review, gallery, export, stats.

Run ``streamlit run app.py`` (opens on the bundled demo set) or
``streamlit run app.py -- --input-dir I --mask-dir M [--db DB] [--data-dir D]``.

This entry script is the router: it resolves the dataset (command line, else
the folders remembered from the sidebar, else the demo set generated into the
data folder), opens it and its review database once (cached), draws the
sidebar (dataset panel, ISLES import) and runs the page chosen with
``st.navigation``. The pages share state and helpers through ``ui``.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import streamlit as st

import ui
from poissonblend.errors import PoissonBlendError
from poissonblend.isles import import_isles


def open_active() -> ui.Context | None:
    """Open the active configuration; if it fails, keep the previous one (or the demo)."""
    ctx = ui.try_open(st.session_state[ui.ACTIVE])
    error = st.session_state[ui.OPEN_ERROR]
    if ctx is None:
        for fallback in (st.session_state.get(ui.LAST_GOOD), {"origin": "demo"}):
            if fallback:
                ctx = ui.try_open(fallback)
                if ctx is not None:
                    break
        if ctx is not None:
            ui.activate(ctx)
    elif ctx.config != st.session_state[ui.ACTIVE]:
        ui.activate(ctx)  # first run: record the resolved paths (demo folders, default db)
    st.session_state[ui.OPEN_ERROR] = error  # activate() clears it; the failure stays shown
    return ctx


def _open_from_sidebar() -> None:
    config = {"input_dir": st.session_state[ui.W_INPUT_DIR].strip(),
              "mask_dir": st.session_state[ui.W_MASK_DIR].strip(),
              "db": st.session_state[ui.W_DB].strip(), "origin": "sidebar",
              "allow_other_dataset": bool(st.session_state[ui.W_ALLOW_OTHER])}
    opened = ui.try_open(config)
    if opened is not None:
        ui.activate(opened)
        ui.save_settings(ui.data_dir(), opened.config)
        _sync_sidebar(opened.config)


def _open_demo() -> None:
    opened = ui.try_open({"origin": "demo"})
    if opened is not None:
        ui.activate(opened)
        ui.save_settings(ui.data_dir(), {"input_dir": "", "mask_dir": "", "db": ""})
        _sync_sidebar(opened.config)


def _reload() -> None:
    ui.cached_dataset.clear()
    ui.cached_store.clear()
    st.cache_data.clear()


def _sync_sidebar(config: dict) -> None:
    st.session_state[ui.W_INPUT_DIR] = config.get("input_dir", "")
    st.session_state[ui.W_MASK_DIR] = config.get("mask_dir", "")
    st.session_state[ui.W_DB] = config.get("db", "")


def init_sidebar_state() -> None:
    pending = st.session_state.pop(ui.SIDEBAR_PENDING, None)
    if pending:  # set by the ISLES import, which runs after the inputs exist
        _sync_sidebar(pending)
    active = st.session_state[ui.ACTIVE]
    ui.init_state({ui.W_REVIEWER: ui.load_settings(ui.data_dir()).get("reviewer", ""),
                   ui.W_INPUT_DIR: active.get("input_dir", ""), ui.W_MASK_DIR: active.get("mask_dir", ""),
                   ui.W_DB: active.get("db", ""), ui.W_ALLOW_OTHER: False, ui.W_ISLES_ROOT: "",
                   ui.W_ISLES_OUT: str(ui.data_dir() / "isles2022"), ui.W_ISLES_MODALITY: "dwi",
                   ui.W_ISLES_SKIP_EMPTY: True})


def dataset_panel(ctx: ui.Context | None) -> None:
    """The sidebar's dataset section: what is open, the folder form, demo, re-index, reviewer."""
    st.markdown("### Dataset")
    if ctx is not None:
        origin = ctx.config.get("origin")
        if origin == "demo":
            st.info(f"Showing the **built-in demo dataset**, generated in `{Path(ctx.config['input_dir']).parent}`. "
                    "Point the app at your own training set below.", icon=":material/science:")
        else:
            st.caption(ui.ORIGIN_TEXT.get(origin, ""))
        st.caption(ui.describe(ctx))
        for message in ui.dataset_warnings(ctx.config):
            st.warning(message, icon=":material/warning:")
    if st.session_state[ui.OPEN_ERROR]:
        st.error(st.session_state[ui.OPEN_ERROR], icon=":material/error:")
    with st.form(ui.W_FORM, border=False):
        st.text_input("Input folder (images)", key=ui.W_INPUT_DIR, persist_state="session",
                      placeholder="/path/to/input", help="Folder of slice_<case>_<NNNN>.png images")
        st.text_input("Mask folder", key=ui.W_MASK_DIR, persist_state="session", placeholder="/path/to/mask",
                      help="Lesion masks with the same file names")
        st.text_input("Review database", key=ui.W_DB, persist_state="session", placeholder="(default: poissonblend.db next to "
                      "the dataset)", help="SQLite file holding candidates and decisions")
        st.checkbox("Use the database even if the files changed", key=ui.W_ALLOW_OTHER,
                    help="A review database remembers the folders and file contents it was made "
                         "for; tick this to keep using it after you added or changed slices. "
                         "Export still re-renders every accepted sample and reports any that "
                         "no longer render as reviewed.")
        st.form_submit_button("Open dataset", key=ui.W_OPEN, on_click=_open_from_sidebar,
                              type="primary", width="stretch")
    left, right = st.columns(2)
    left.button("Demo dataset", key=ui.W_DEMO, on_click=_open_demo, width="stretch")
    right.button("Re-index", key=ui.W_RELOAD, on_click=_reload, width="stretch",
                 help="Re-read the folders after files changed on disk")

    st.text_input("Reviewer (optional)", key=ui.W_REVIEWER, persist_state="session",
                  placeholder="your name, stored with each decision",
                  on_change=lambda: ui.save_settings(ui.data_dir(), {"reviewer": ui.reviewer()}))


def isles_panel() -> None:
    """The sidebar's ISLES 2022 import (NIfTI -> training-set PNGs), then open the result."""
    with st.expander("Import ISLES 2022", icon=":material/upload_file:"):
        st.text_input("ISLES 2022 folder", key=ui.W_ISLES_ROOT, persist_state="session",
                      help="The folder holding the sub-strokecaseNNNN cases and derivatives/")
        st.text_input("Output folder", key=ui.W_ISLES_OUT, persist_state="session",
                      help="Slices go to <output>/input and <output>/mask")
        st.selectbox("Modality", ["dwi", "adc", "flair"], key=ui.W_ISLES_MODALITY,
                     persist_state="session")
        st.checkbox("Leave out slices without brain or lesion", key=ui.W_ISLES_SKIP_EMPTY,
                    persist_state="session")
        if st.button("Import and open", key=ui.W_ISLES_RUN, width="stretch"):
            bar = st.progress(0.0, text="Reading the NIfTI headers…")

            def _progress(done: int, total: int) -> None:
                bar.progress(done / total if total else 1.0, text=f"{done} of {total} cases imported")

            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    summary = import_isles(st.session_state[ui.W_ISLES_ROOT].strip(),
                                           st.session_state[ui.W_ISLES_OUT].strip(),
                                           modality=st.session_state[ui.W_ISLES_MODALITY],
                                           skip_empty=st.session_state[ui.W_ISLES_SKIP_EMPTY],
                                           progress=_progress)
            except PoissonBlendError as exc:
                ui.show_error(exc)
            else:
                for w in caught:
                    st.warning(str(w.message), icon=":material/warning:")
                st.session_state[ui.ISLES_RESULT] = summary.summary_line()
                opened = ui.try_open({"input_dir": str(summary.input_dir),
                                      "mask_dir": str(summary.mask_dir), "db": "",
                                      "origin": "ISLES 2022 import"})
                if opened is not None:
                    ui.activate(opened)
                    ui.save_settings(ui.data_dir(), opened.config)
                    st.session_state[ui.SIDEBAR_PENDING] = opened.config
                    st.rerun()
        if st.session_state[ui.ISLES_RESULT]:
            st.success(st.session_state[ui.ISLES_RESULT])


ui.leave_pages_folder_mode()
st.set_page_config(page_title="PoissonBlend curation", page_icon="🧠", layout="wide")
cli, cli_error = ui.parse_cli(sys.argv[1:])
ui.init_state({ui.CLI: cli, ui.DATA_DIR: ui.default_data_dir(cli), ui.OPEN_ERROR: cli_error,
               ui.R_UNDO: [], ui.G_SELECTED: set(), ui.ISLES_RESULT: None})
if ui.ACTIVE not in st.session_state:
    st.session_state[ui.ACTIVE] = ui.initial_config(st.session_state[ui.CLI], ui.data_dir())
context = open_active()
init_sidebar_state()
with st.sidebar:
    dataset_panel(context)
    isles_panel()
pages = [
    st.Page("pages/compose.py", title="Compose", icon=":material/brush:", default=True),
    st.Page("pages/review.py", title="Review", icon=":material/fact_check:"),
    st.Page("pages/gallery.py", title="Gallery", icon=":material/grid_view:"),
    st.Page("pages/export.py", title="Export", icon=":material/file_download:"),
    st.Page("pages/stats.py", title="Stats", icon=":material/bar_chart:"),
]
page = st.navigation(pages, position="top")
if context is None:
    st.error("No dataset could be opened; choose folders in the sidebar.", icon=":material/error:")
    st.stop()
page.run()
