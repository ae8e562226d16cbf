"""Gallery: thumbnails of candidates by state / batch / reason; open one, or decide many."""

from __future__ import annotations

import streamlit as st

import ui
from poissonblend.errors import PoissonBlendError
from poissonblend.store import ORDERS, REASONS, STATES

PER_PAGE = 24
PER_ROW = 6
ALL = "all"

ctx = ui.context()
store = ctx.store
ss = st.session_state
ui.init_state({ui.G_STATE: ALL, ui.G_BATCH: ALL, ui.G_REASON: ALL, ui.G_ORDER: "created",
               ui.G_OPENED: None, ui.G_BULK_REASON: "(no reason)", ui.G_ONE_REASON: "(no reason)",
               ui.G_FLASH: None})


def toggle(candidate_id: int) -> None:
    picked = ss[ui.G_PICK_PREFIX + str(candidate_id)]
    (ss[ui.G_SELECTED].add if picked else ss[ui.G_SELECTED].discard)(candidate_id)


def select_page(ids: list[int]) -> None:
    ss[ui.G_SELECTED].update(ids)


def clear_selection() -> None:
    ss[ui.G_SELECTED] = set()


def bulk(decision: str) -> None:
    ids = sorted(ss[ui.G_SELECTED])
    reason = ui.chosen_reason(ui.G_BULK_REASON) if decision == "rejected" else None
    try:
        done = store.decide_many(ids, decision, reason=reason, reviewer=ui.reviewer())
    except PoissonBlendError as exc:
        ss[ui.G_FLASH] = ("error", str(exc))
        return
    ss[ui.G_SELECTED] = set()
    ss[ui.G_FLASH] = ("ok", f"{len(done)} candidate(s) {decision}")


def decide_opened(candidate_id: int, decision: str | None) -> None:
    try:
        if decision is None:
            store.undo(candidate_id)
        else:
            store.decide(candidate_id, decision, reviewer=ui.reviewer(),
                         reason=ui.chosen_reason(ui.G_ONE_REASON) if decision == "rejected" else None)
    except PoissonBlendError as exc:
        ss[ui.G_FLASH] = ("error", str(exc))


def open_candidate(candidate_id: int | None) -> None:
    ss[ui.G_OPENED] = candidate_id


def reset_page() -> None:
    ss[ui.G_PAGE] = 1


st.subheader("Gallery")
batches = store.batches()
f = st.columns([5, 2, 2, 2], vertical_alignment="bottom")
f[0].segmented_control("State", [ALL, *STATES], key=ui.G_STATE, required=True, on_change=reset_page,
                       format_func=lambda s: s if s == ALL else f"{s}", persist_state="session")
ui.keep_choice(ui.G_BATCH, [ALL, *batches])
f[1].selectbox("Batch", [ALL, *batches], key=ui.G_BATCH, on_change=reset_page,
               persist_state="session")
f[2].selectbox("Reason", [ALL, *REASONS], key=ui.G_REASON, on_change=reset_page,
               persist_state="session")
f[3].selectbox("Order", ORDERS, key=ui.G_ORDER, format_func=ui.ORDER_LABELS.get,
               persist_state="session")

shown = store.candidates(state=None if ss[ui.G_STATE] == ALL else ss[ui.G_STATE],
                         batch=None if ss[ui.G_BATCH] == ALL else ss[ui.G_BATCH],
                         reason=None if ss[ui.G_REASON] == ALL else ss[ui.G_REASON],
                         order=ss[ui.G_ORDER])

# ---------------------------------------------------------------- the opened candidate
if ss[ui.G_OPENED] is not None:
    try:
        opened = store.get(ss[ui.G_OPENED])
    except PoissonBlendError:
        opened = None
        ss[ui.G_OPENED] = None
    if opened is not None:
        with st.container(border=True):
            head, close = st.columns([6, 1], vertical_alignment="center")
            head.markdown(f"#### {ui.candidate_title(opened)}")
            close.button("Close", key=ui.G_CLOSE, icon=":material/close:", on_click=open_candidate,
                         args=(None,), width="stretch")
            b = st.columns([2, 2, 3, 2, 2], vertical_alignment="bottom")
            b[0].button("Accept", key=ui.G_ONE_ACCEPT, type="primary", icon=":material/check:",
                        on_click=decide_opened, args=(opened.id, "accepted"), width="stretch")
            b[1].button("Reject", key=ui.G_ONE_REJECT, icon=":material/close:",
                        on_click=decide_opened, args=(opened.id, "rejected"), width="stretch")
            b[2].selectbox("Reject reason", ui.reason_options(), key=ui.G_ONE_REASON,
                           label_visibility="collapsed", persist_state="session")
            b[3].button("Skip", key=ui.G_ONE_SKIP, icon=":material/skip_next:",
                        on_click=decide_opened, args=(opened.id, "skipped"), width="stretch")
            b[4].button("Clear decision", key=ui.G_ONE_UNDO, icon=":material/undo:",
                        on_click=decide_opened, args=(opened.id, None), width="stretch",
                        disabled=opened.state == "undecided")
            ui.candidate_view(ctx, opened)

# ---------------------------------------------------------------- selection + bulk actions
page_count = max(1, -(-len(shown) // PER_PAGE))
ui.keep_choice(ui.G_PAGE, list(range(1, page_count + 1)), 1)
page = st.pagination(page_count, key=ui.G_PAGE) if page_count > 1 else 1
on_page = shown[(page - 1) * PER_PAGE:page * PER_PAGE]

selected = ss[ui.G_SELECTED]
s = st.columns([2, 2, 2, 2, 2, 3], vertical_alignment="bottom")
s[0].markdown(f"**{len(shown)}** shown · **{len(selected)}** selected")
s[1].button("Select page", key=ui.G_SELECT_PAGE, on_click=select_page,
            args=([c.id for c in on_page],), width="stretch", icon=":material/select_all:")
s[2].button("Clear", key=ui.G_CLEAR, on_click=clear_selection, width="stretch",
            disabled=not selected, icon=":material/deselect:")
s[3].button("Accept selected", key=ui.G_BULK_ACCEPT, type="primary", on_click=bulk,
            args=("accepted",), disabled=not selected, width="stretch")
s[4].button("Reject selected", key=ui.G_BULK_REJECT, on_click=bulk, args=("rejected",),
            disabled=not selected, width="stretch")
s[5].selectbox("Reject reason", ui.reason_options(), key=ui.G_BULK_REASON,
               persist_state="session")
ui.flash_message(ui.G_FLASH)

if not shown:
    st.info("No candidate matches these filters.", icon=":material/info:")
    st.stop()

# ---------------------------------------------------------------- the grid
for row in range(0, len(on_page), PER_ROW):
    cols = st.columns(PER_ROW)
    for col, c in zip(cols, on_page[row:row + PER_ROW]):
        with col:
            try:
                ui.image(ui.thumbnail_png(ctx.key, c.recipe.to_json(), ctx.dataset))
            except PoissonBlendError as exc:
                ui.show_error(exc)
            score = f"{c.score:.2f}" if c.score is not None else "–"
            reason = f" ({c.reason})" if c.reason else ""
            st.caption(f"**#{c.id}** · {ui.state_badge(c.state)}{reason} · score {score}")
            pick = ui.G_PICK_PREFIX + str(c.id)
            ss[pick] = c.id in selected
            left, right = st.columns(2, vertical_alignment="center")
            left.checkbox("Select", key=pick, on_change=toggle, args=(c.id,))
            right.button("Open", key=ui.G_OPEN_PREFIX + str(c.id), on_click=open_candidate,
                         args=(c.id,), width="stretch")
