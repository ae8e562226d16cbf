"""Gallery: thumbnails of candidates by state / batch / reason; open one, or decide many."""

from __future__ import annotations

import streamlit as st

from poissonblend.errors import PoissonBlendError
from poissonblend.store import ORDERS, REASONS, STATES
from ui import context, pictures, widgets

PER_PAGE = 20
PER_ROW = 5
ALL = "all"

# This page's session-state keys (prefix g_)
STATE = "g_state"                    # filters
BATCH = "g_batch"
REASON = "g_reason"
ORDER = "g_order"
PAGE = "g_page"                      # int: the page of thumbnails shown
PAGER = "g_pager"                    # + generation: the pagination widget (a new one to set its page)
PAGER_GEN = "g_pager_gen"            # int
SELECTED = "g_selected"              # set[int]
PICK_PREFIX = "g_pick_"              # + candidate id: the per-thumbnail checkbox
OPEN_PREFIX = "g_open_"              # + candidate id: the per-thumbnail "open" button
OPENED = "g_opened"                  # int | None: candidate shown large
BULK_REASON = "g_bulk_reason"        # reject reason of the bulk action
ONE_REASON = "g_one_reason"          # reject reason for the opened candidate
FLASH = "g_flash"                    # (kind, text) | None: one-shot message
OUTLINE = "g_outline"                # bool: outlines on the thumbnails
PENDING = "g_pending"                # (decision, ids) | None: a bulk decision awaiting confirmation
LAST_BULK = "g_last_bulk"            # {"decision", "before": {id: (state, reason)}} | None: undoable
BULK_ACCEPT, BULK_REJECT = "g_bulk_accept", "g_bulk_reject"  # buttons
CONFIRM, CANCEL, UNDO_BULK = "g_confirm", "g_cancel", "g_undo_bulk"
CLOSE = "g_close"
ONE_ACCEPT, ONE_REJECT = "g_one_accept", "g_one_reject"
ONE_SKIP, ONE_UNDO = "g_one_skip", "g_one_undo"
SELECT_PAGE, CLEAR = "g_select_page", "g_clear"
VIEWER = widgets.ViewerKeys(target="g_show_target", layers="g_layers", flip="g_flip")

ctx = context.context()
store = ctx.store
ss = st.session_state
context.page_state(ctx, "g", {
    STATE: ALL, BATCH: ALL, REASON: ALL, ORDER: "created", PAGE: 1, PAGER_GEN: 0, SELECTED: set(),
    OPENED: None, BULK_REASON: widgets.NO_REASON, ONE_REASON: widgets.NO_REASON, FLASH: None,
    OUTLINE: False, PENDING: None, LAST_BULK: None, **VIEWER.defaults(),
}, per_dataset=(OPENED, SELECTED, PAGE, PENDING, LAST_BULK))


def toggle(candidate_id: int) -> None:
    picked = ss[PICK_PREFIX + str(candidate_id)]
    (ss[SELECTED].add if picked else ss[SELECTED].discard)(candidate_id)


def select_page(ids: list[int]) -> None:
    ss[SELECTED].update(ids)


def clear_selection() -> None:
    ss[SELECTED] = set()


def ask(decision: str) -> None:
    """Bulk Accept / Reject: remember what to do; the page asks for confirmation first."""
    ss[PENDING] = (decision, sorted(ss[SELECTED]))


def cancel() -> None:
    ss[PENDING] = None


def bulk() -> None:
    """Do the confirmed bulk decision; remember each candidate's state before, for one-step undo."""
    decision, ids = ss[PENDING]
    ss[PENDING] = None
    reason = widgets.chosen_reason(BULK_REASON) if decision == "rejected" else None
    try:
        before = {c.id: (c.state, c.reason) for c in (store.get(i) for i in ids)}
        done = store.decide_many(ids, decision, reason=reason, reviewer=context.reviewer())
    except PoissonBlendError as exc:
        ss[FLASH] = ("error", str(exc))
        return
    ss[SELECTED] = set()
    ss[LAST_BULK] = {"decision": decision, "before": {i: before[i] for i in done}}


def undo_bulk() -> None:
    """Put every candidate of the last bulk decision back in the state it had before it."""
    last, ss[LAST_BULK] = ss[LAST_BULK], None
    by_state: dict[tuple, list[int]] = {}
    for cid, state in last["before"].items():
        by_state.setdefault(state, []).append(cid)
    try:
        store.undo_many(list(last["before"]), reviewer=context.reviewer())
        for (state, reason), ids in by_state.items():
            if state != "undecided":
                store.decide_many(ids, state, reason=reason, reviewer=context.reviewer())
    except PoissonBlendError as exc:
        ss[FLASH] = ("error", str(exc))
        return
    ss[FLASH] = ("ok", f"Undone: {widgets.plural(len(last['before']), 'candidate')} back as they were")


def decide_opened(candidate_id: int, decision: str | None) -> None:
    try:
        if decision is None:
            store.undo(candidate_id)
        else:
            store.decide(candidate_id, decision, reviewer=context.reviewer(),
                         reason=widgets.chosen_reason(ONE_REASON) if decision == "rejected" else None)
    except PoissonBlendError as exc:
        ss[FLASH] = ("error", str(exc))


def open_candidate(candidate_id: int | None) -> None:
    ss[OPENED] = candidate_id


def show_page(number: int) -> None:
    """Show page `number` of the grid (through a new pager: a widget's value is not set by code)."""
    ss[PAGE] = number
    ss[PAGER_GEN] += 1


def reset_page() -> None:
    show_page(1)


batches = store.batches()
f = st.columns([2, 2, 2, 2, 1.4], vertical_alignment="bottom")
f[0].selectbox("State", [ALL, *STATES], key=STATE, on_change=reset_page, persist_state="session")
widgets.keep_choice(BATCH, [ALL, *batches])
f[1].selectbox("Batch", [ALL, *batches], key=BATCH, on_change=reset_page,
               persist_state="session")
f[2].selectbox("Reason", [ALL, *REASONS], key=REASON, on_change=reset_page,
               persist_state="session")
f[3].selectbox("Order", ORDERS, key=ORDER, format_func=widgets.ORDER_LABELS.get,
               persist_state="session")
f[4].toggle("Outline", key=OUTLINE, persist_state="session",
            help="Outline the new lesion (orange) and the target's own (blue) on the thumbnails")

shown = store.candidates(state=None if ss[STATE] == ALL else ss[STATE],
                         batch=None if ss[BATCH] == ALL else ss[BATCH],
                         reason=None if ss[REASON] == ALL else ss[REASON],
                         order=ss[ORDER])

# ---------------------------------------------------------------- the opened candidate
if ss[OPENED] is not None:
    try:
        opened = store.get(ss[OPENED])
    except PoissonBlendError:
        opened = None
        ss[OPENED] = None
    if opened is not None:
        with st.container(border=True):
            head, close = st.columns([6, 1], vertical_alignment="center")
            head.markdown(f"#### {widgets.candidate_title(opened)}")
            close.button("Close", key=CLOSE, icon=":material/close:", on_click=open_candidate,
                         args=(None,), width="stretch")
            b = st.columns([2, 2, 3, 2, 2], vertical_alignment="bottom")
            b[0].button("Accept", key=ONE_ACCEPT, type="primary", icon=":material/check:",
                        on_click=decide_opened, args=(opened.id, "accepted"), width="stretch")
            b[1].button("Reject", key=ONE_REJECT, icon=":material/close:",
                        on_click=decide_opened, args=(opened.id, "rejected"), width="stretch")
            b[2].selectbox("Reject reason", widgets.reason_options(), key=ONE_REASON,
                           label_visibility="collapsed", persist_state="session")
            b[3].button("Skip", key=ONE_SKIP, icon=":material/skip_next:",
                        on_click=decide_opened, args=(opened.id, "skipped"), width="stretch")
            b[4].button("Clear decision", key=ONE_UNDO, icon=":material/undo:",
                        on_click=decide_opened, args=(opened.id, None), width="stretch",
                        disabled=opened.state == "undecided")
            widgets.candidate_viewer(ctx, opened, VIEWER)

# ---------------------------------------------------------------- selection + bulk actions
page_count = max(1, -(-len(shown) // PER_PAGE))
if ss[PAGE] > page_count:
    show_page(page_count)
if page_count > 1:
    ss[PAGE] = st.pagination(page_count, default=ss[PAGE], key=f"{PAGER}_{ss[PAGER_GEN]}")
page = ss[PAGE]
on_page = shown[(page - 1) * PER_PAGE:page * PER_PAGE]

selected = ss[SELECTED]
s = st.columns([3, 3, 2, 2, 2, 3], vertical_alignment="bottom")
s[0].markdown(f"**{len(shown)}** shown · **{len(selected)}** selected")
s[1].button("Select page", key=SELECT_PAGE, on_click=select_page,
            args=([c.id for c in on_page],), width="stretch", icon=":material/select_all:")
s[2].button("Clear", key=CLEAR, on_click=clear_selection, width="stretch", disabled=not selected)
s[3].button("Accept", key=BULK_ACCEPT, type="primary", on_click=ask, args=("accepted",),
            disabled=not selected, width="stretch", help="Accept the selected candidates")
s[4].button("Reject", key=BULK_REJECT, on_click=ask, args=("rejected",),
            disabled=not selected, width="stretch", help="Reject the selected candidates")
s[5].selectbox("Reject reason", widgets.reason_options(), key=BULK_REASON,
               label_visibility="collapsed", persist_state="session")
if ss[PENDING]:
    decision, ids = ss[PENDING]
    verb = {"accepted": "Accept", "rejected": "Reject"}[decision]
    with st.container(border=True):
        decided = sum(store.get(i).state != "undecided" for i in ids)
        note = (f" {widgets.plural(decided, 'of them is', 'of them are')} decided already; "
                "that decision is replaced.") if decided else ""
        reason = widgets.chosen_reason(BULK_REASON) if decision == "rejected" else None
        st.markdown(f"**{verb} {widgets.plural(len(ids), 'selected candidate')}**"
                    + (f" as *{reason}*" if reason else "") + f"?{note} You can undo it in one step.")
        yes, no, _ = st.columns([2, 2, 5])
        yes.button(f"{verb} {len(ids)}", key=CONFIRM, type="primary", on_click=bulk, width="stretch")
        no.button("Cancel", key=CANCEL, on_click=cancel, width="stretch")
if ss[LAST_BULK]:
    last = ss[LAST_BULK]
    text, undo = st.columns([7, 2], vertical_alignment="center")
    text.success(f"{widgets.plural(len(last['before']), 'candidate')} {last['decision']}.",
                 icon=":material/check:")
    undo.button("Undo", key=UNDO_BULK, icon=":material/undo:", on_click=undo_bulk, width="stretch",
                help="Put these candidates back in the state they had before")
widgets.flash_message(FLASH)

if not shown:
    st.info("No candidate matches these filters.", icon=":material/info:")
    st.stop()

# ---------------------------------------------------------------- the grid
for row in range(0, len(on_page), PER_ROW):
    cols = st.columns(PER_ROW)
    for col, c in zip(cols, on_page[row:row + PER_ROW]):
        with col:
            try:
                widgets.image(pictures.thumbnail_png(ctx.key, c.recipe.to_json(), ss[OUTLINE],
                                                     ctx.dataset))
            except PoissonBlendError as exc:
                widgets.show_error(exc)
            score = f"{c.score:.2f}" if c.score is not None else "–"
            reason = f" ({c.reason})" if c.reason else ""
            st.caption(f"**#{c.id}** · {widgets.state_badge(c.state)}{reason} · score {score}")
            pick = PICK_PREFIX + str(c.id)
            ss[pick] = c.id in selected
            left, right = st.columns(2, vertical_alignment="center")
            left.checkbox("Select", key=pick, on_change=toggle, args=(c.id,))
            right.button("Open", key=OPEN_PREFIX + str(c.id), on_click=open_candidate,
                         args=(c.id,), width="stretch")
