"""PoissonBlend curation app: compose, review, gallery, export, stats.

Run ``streamlit run app.py`` (opens on the bundled demo set) or
``streamlit run app.py -- --input-dir I --mask-dir M [--db DB] [--data-dir D] [--root R]``
(``--root``: every path the app reads or writes must lie in R).

This entry script is the router: it resolves the dataset (command line, else
the folders remembered from the sidebar, else the demo set generated into the
data folder), opens it and its review database once (cached), draws the
sidebar (dataset panel, ISLES import) and runs the page chosen with
``st.navigation``; every URL, a deep link such as ``/review`` included, runs
this script first. The pages live in ``app_pages/`` (a folder named ``pages/``
would turn on Streamlit's legacy multipage mode) and share code through ``ui``.
"""

from __future__ import annotations

import sys

import streamlit as st

from ui import context, sidebar

st.set_page_config(page_title="PoissonBlend curation", page_icon="🧠", layout="wide")
ctx = context.start(sys.argv[1:])
sidebar.sidebar(ctx)
page = st.navigation([
    st.Page("app_pages/compose.py", title="Compose", icon=":material/brush:", default=True),
    st.Page("app_pages/review.py", title="Review", icon=":material/fact_check:"),
    st.Page("app_pages/gallery.py", title="Gallery", icon=":material/grid_view:"),
    st.Page("app_pages/export.py", title="Export", icon=":material/file_download:"),
    st.Page("app_pages/stats.py", title="Stats", icon=":material/bar_chart:"),
    st.Page("app_pages/evidence.py", title="Evidence", icon=":material/science:"),
], position="top")
if ctx is None:
    st.error("No dataset could be opened; choose folders in the sidebar.", icon=":material/error:")
    st.stop()
page.run()
