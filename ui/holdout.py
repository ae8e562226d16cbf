"""The sidebar's held-out cases: the open review database's test split (keys ``ho_``).

Case ids are pasted into a text area or read from a picked text file (one id per
line, blank lines and ``#`` comments ignored: :func:`poissonblend.holdout.parse_holdout`),
then saved into the database (:meth:`Store.set_holdout`). Compose leaves these cases
out of its pickers, Review's queue never draws them, export refuses accepted
candidates that use one.
"""

from __future__ import annotations

import warnings

import streamlit as st

from poissonblend.errors import PoissonBlendError
from poissonblend.holdout import parse_holdout, warn_unknown_cases
from ui.context import Context

TEXT = "ho_text"                     # text area: the ids being edited
FILE = "ho_file"                     # file uploader
FOR_DB = "ho_for_db"                 # database whose split TEXT was filled from
SAVE = "ho_save"                     # button
MESSAGES = "ho_messages"             # list[(kind, text)] of the last save or file pick


def _ids_text(ids: frozenset[str]) -> str:
    return "\n".join(sorted(ids))


def _on_file() -> None:
    """A picked file fills the text area (saved with the button)."""
    upload = st.session_state.get(FILE)
    if upload is None:
        return
    try:
        ids = parse_holdout(upload.getvalue().decode("utf-8"), origin=upload.name)
    except UnicodeDecodeError:
        st.session_state[MESSAGES] = [("error", f"{upload.name} is not UTF-8 text")]
    except PoissonBlendError as exc:
        st.session_state[MESSAGES] = [("error", str(exc))]
    else:
        st.session_state[TEXT] = _ids_text(ids)
        st.session_state[MESSAGES] = [("info", f"{len(ids)} case id(s) read from {upload.name}; "
                                               "save to use them")]


def save(ctx: Context) -> None:
    """Parse the text area and store it as the database's held-out cases."""
    ss = st.session_state
    try:
        ids = ctx.store.set_holdout(parse_holdout(ss[TEXT], origin="held-out cases"))
    except PoissonBlendError as exc:
        ss[MESSAGES] = [("error", str(exc))]
        return
    ss[TEXT] = _ids_text(ids)
    messages = [("ok", f"{len(ids)} held-out case(s) saved in the review database"
                       if ids else "No held-out cases: every case may be drawn")]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warn_unknown_cases(ctx.dataset, ids)
    messages += [("warning", str(w.message)) for w in caught]
    leaks = ctx.store.holdout_leaks()
    if leaks:
        messages.append(("warning", f"{len(leaks)} stored candidate(s) already use a held-out "
                                    "case; export refuses the accepted ones"))
    ss[MESSAGES] = messages


def holdout_panel(ctx: Context) -> None:
    """The sidebar section: the database's held-out cases, editable."""
    ss = st.session_state
    try:
        stored = ctx.store.holdout()
    except PoissonBlendError as exc:
        st.error(str(exc), icon=":material/error:")
        return
    if ss.get(FOR_DB) != ctx.config["db"]:  # another database: show its split
        ss[FOR_DB] = ctx.config["db"]
        ss[TEXT] = _ids_text(stored)
        ss[MESSAGES] = []
    ss.setdefault(MESSAGES, [])
    with st.expander(f"Held-out cases ({len(stored)})", icon=":material/lock:"):
        st.caption("Test cases: never a source or a target in Compose and Review; export "
                   "refuses accepted candidates that use one. Stored in the review database.")
        st.text_area("Case ids, one per line", key=TEXT, height=120,
                     placeholder="0003\n0007  # comments are ignored")
        st.file_uploader("…or pick a text file", key=FILE,
                         on_change=_on_file)
        st.button("Save held-out cases", key=SAVE, on_click=save, args=(ctx,), width="stretch")
        for kind, text in ss[MESSAGES]:
            {"ok": st.success, "info": st.info, "warning": st.warning,
             "error": st.error}[kind](text)
