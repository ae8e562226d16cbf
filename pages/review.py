"""Review: queue random candidates, then decide them one at a time (A / X / S / U)."""

from __future__ import annotations

import streamlit as st

import ui
from poissonblend.blend import MAX_MARGIN, MIN_MARGIN
from poissonblend.errors import PoissonBlendError
from poissonblend.recipe import SamplingOptions
from poissonblend.store import ORDERS

ctx = ui.context()
store = ctx.store
ss = st.session_state
ui.init_state({ui.R_ORDER: "created", ui.R_CURRENT: None, ui.R_REASON: "(no reason)",
               ui.R_QUEUE_N: 20, ui.R_QUEUE_SEED: 0, ui.R_QUEUE_MODE: "normal",
               ui.R_QUEUE_SCALE: (0.8, 1.2), ui.R_QUEUE_ROTATION: (-30, 30), ui.R_QUEUE_FLIP: True,
               ui.R_QUEUE_MARGIN: 6, ui.R_QUEUE_MIN_AREA: 9, ui.R_FLASH: None})


def flash(kind: str, text: str) -> None:
    ss[ui.R_FLASH] = (kind, text)


def decide(candidate_id: int, decision: str) -> None:
    reason = ui.chosen_reason(ui.R_REASON) if decision == "rejected" else None
    try:
        c = store.decide(candidate_id, decision, reason=reason, reviewer=ui.reviewer())
    except PoissonBlendError as exc:
        flash("error", str(exc))
        return
    ss[ui.R_UNDO].append(candidate_id)
    ss[ui.R_CURRENT] = None
    ss[ui.R_REASON] = "(no reason)"
    flash("ok", f"#{c.id} {c.state}" + (f" ({c.reason})" if c.reason else ""))


def undo() -> None:
    target = ss[ui.R_UNDO].pop() if ss[ui.R_UNDO] else ui.last_decided(store)
    if target is None:
        flash("info", "Nothing to undo.")
        return
    try:
        c = store.undo(target)
    except PoissonBlendError as exc:
        flash("error", str(exc))
        return
    ss[ui.R_CURRENT] = c.id
    flash("ok", f"#{c.id} is undecided again")


def browse(candidate_id: int, step: int) -> None:
    ss[ui.R_CURRENT] = ui.neighbour(store, candidate_id, ss[ui.R_ORDER], step)


def on_order_change() -> None:
    ss[ui.R_CURRENT] = None


st.subheader("Review candidates")

# ---------------------------------------------------------------- queue
counts = store.counts()
with st.expander("Queue random candidates", expanded=counts["total"] == 0,
                 icon=":material/playlist_add:"):
    with st.form(ui.R_QUEUE_FORM, border=False):
        a, b, c, d = st.columns(4)
        a.number_input("How many", 1, 2000, key=ui.R_QUEUE_N, persist_state="session")
        b.number_input("Seed", 0, 2**31 - 1, key=ui.R_QUEUE_SEED, persist_state="session")
        c.segmented_control("Mode", ["normal", "mixed"], key=ui.R_QUEUE_MODE, required=True,
                            persist_state="session")
        d.slider("Margin (px)", MIN_MARGIN, MAX_MARGIN, key=ui.R_QUEUE_MARGIN, persist_state="session")
        a, b, c, d = st.columns([2, 2, 1, 1], vertical_alignment="bottom")
        a.slider("Scale range", 0.25, 3.0, step=0.05, key=ui.R_QUEUE_SCALE, persist_state="session")
        b.slider("Rotation range (°)", -180, 180, step=5, key=ui.R_QUEUE_ROTATION, persist_state="session")
        c.number_input("Min lesion area (px)", 1, 10_000, key=ui.R_QUEUE_MIN_AREA,
                       persist_state="session",
                       help="Draw only source lesions at least this large (9 skips 1–8 px specks)")
        d.toggle("Random flips", key=ui.R_QUEUE_FLIP, persist_state="session")
        go = st.form_submit_button("Queue candidates", key=ui.R_QUEUE_GO, type="primary",
                                   icon=":material/add:")
    if go:
        seed, n = int(ss[ui.R_QUEUE_SEED]), int(ss[ui.R_QUEUE_N])
        batch = f"seed-{seed}"
        start = len(store.candidates(batch=batch))  # more of the same batch: new draws
        bar = st.progress(0.0, text=f"Rendering {n} candidates…")
        try:
            options = SamplingOptions(mode=ss[ui.R_QUEUE_MODE],
                                      scale_range=tuple(map(float, ss[ui.R_QUEUE_SCALE])),
                                      rotation_range=tuple(map(float, ss[ui.R_QUEUE_ROTATION])),
                                      flip=bool(ss[ui.R_QUEUE_FLIP]), margin=int(ss[ui.R_QUEUE_MARGIN]),
                                      min_area=int(ss[ui.R_QUEUE_MIN_AREA]))
            queued = store.queue(n, seed, options, batch=batch, start=start,
                                 progress=lambda k, total: bar.progress(
                                     k / total, text=f"{k} of {total} candidates rendered"))
        except PoissonBlendError as exc:
            bar.empty()
            ui.show_error(exc)
        else:
            bar.empty()
            flash("ok", f"Queued {len(queued)} candidates (batch {batch}, samples "
                        f"{start}–{start + n - 1})")
            counts = store.counts()

# ---------------------------------------------------------------- progress + order
decided = counts["total"] - counts["undecided"]
top_l, top_r = st.columns([3, 2], vertical_alignment="bottom")
with top_l:
    st.progress(decided / counts["total"] if counts["total"] else 0.0,
                text=f"**{decided} of {counts['total']} decided** · {counts['accepted']} accepted · "
                     f"{counts['rejected']} rejected · {counts['skipped']} skipped")
with top_r:
    st.segmented_control("Order", ORDERS, key=ui.R_ORDER, required=True,
                         format_func=ui.ORDER_LABELS.get, on_change=on_order_change,
                         bind="query-params", label_visibility="collapsed")

current = ui.current_candidate(store, ss[ui.R_CURRENT], ss[ui.R_ORDER])
if current is None:
    if counts["total"] == 0:
        st.info("No candidates yet: queue some above.", icon=":material/info:")
    else:
        st.success(f"All {counts['total']} candidates are decided. Export the accepted ones, "
                   "or queue more.", icon=":material/done_all:")
    left, _ = st.columns([1, 5])
    left.button("Undo last", key=ui.R_UNDO_BTN, shortcut="U", on_click=undo,
                icon=":material/undo:", width="stretch")
    ui.flash_message(ui.R_FLASH)
    st.stop()

# ---------------------------------------------------------------- one candidate
st.markdown(f"#### {ui.candidate_title(current)}")
bar = st.columns([2, 2, 3, 2, 2, 1, 1], vertical_alignment="bottom")
bar[0].button("Accept", key=ui.R_ACCEPT, shortcut="A", type="primary", icon=":material/check:",
              on_click=decide, args=(current.id, "accepted"), width="stretch")
bar[1].button("Reject", key=ui.R_REJECT, shortcut="X", icon=":material/close:",
              on_click=decide, args=(current.id, "rejected"), width="stretch")
bar[2].selectbox("Reject reason", ui.reason_options(), key=ui.R_REASON,
                 label_visibility="collapsed", persist_state="session")
bar[3].button("Skip", key=ui.R_SKIP, shortcut="S", icon=":material/skip_next:",
              on_click=decide, args=(current.id, "skipped"), width="stretch")
bar[4].button("Undo", key=ui.R_UNDO_BTN, shortcut="U", icon=":material/undo:", on_click=undo,
              width="stretch")
bar[5].button("", key=ui.R_PREV, shortcut="P", icon=":material/chevron_left:", on_click=browse,
              args=(current.id, -1), help="Previous candidate (P)", width="stretch")
bar[6].button("", key=ui.R_NEXT, shortcut="N", icon=":material/chevron_right:", on_click=browse,
              args=(current.id, 1), help="Next candidate (N)", width="stretch")
ui.flash_message(ui.R_FLASH)

ui.candidate_view(ctx, current)

# Warm the cache for the candidate that comes next, so the next decision shows it at once.
ui.prefetch_next(ctx, current.id, ss[ui.R_ORDER])
