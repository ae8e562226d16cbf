"""Review: queue random candidates, then decide them one at a time (A / X / S / U)."""

from __future__ import annotations

import streamlit as st

from poissonblend.blend import MAX_MARGIN, MIN_MARGIN
from poissonblend.errors import PoissonBlendError
from poissonblend.dataset import MIN_TARGET_TISSUE
from poissonblend.recipe import MAX_LESION_FRACTION, MAX_LEVEL_SHIFT, METHODS, SamplingOptions
from poissonblend.store import ORDERS, Candidate
from ui import context, widgets

# This page's session-state keys (prefix r_)
ORDER = "r_order"                    # bound to the URL's ?r_order=
CURRENT = "r_current"                # int | None: candidate shown (None: next undecided)
UNDO = "r_undo"                      # list[int]: candidates decided in this session
REASON = "r_reason"
FLASH = "r_flash"                    # (kind, text) | None: one-shot message of the last action
WARM = "r_warm"                      # set[int]: candidates whose pictures were made ahead
QUEUE_FORM = "r_queue_form"
QUEUE_N = "r_queue_n"
QUEUE_SEED = "r_queue_seed"
QUEUE_MODE = "r_queue_mode"
QUEUE_SCALE = "r_queue_scale"        # (lo, hi)
QUEUE_ROTATION = "r_queue_rotation"  # (lo, hi)
QUEUE_FLIP = "r_queue_flip"
QUEUE_MARGIN = "r_queue_margin"
QUEUE_MIN_AREA = "r_queue_min_area"
QUEUE_METHOD = "r_queue_method"      # "poissonblend" | "opencv" (the seed script's seamlessClone)
QUEUE_LEVEL_SHIFT = "r_queue_level_shift"  # float: max |target level - source level|
QUEUE_ANY_LEVEL = "r_queue_any_level"      # bool: no level limit
QUEUE_LESION_FRACTION = "r_queue_lesion_fraction"
QUEUE_TARGET_TISSUE = "r_queue_target_tissue"
QUEUE_GO = "r_queue_go"              # buttons
QUEUE_PANEL = "r_queue_panel"        # + generation: the "queue more" expander (a new one is closed)
QUEUE_GEN = "r_queue_gen"            # int
ACCEPT, REJECT, SKIP, UNDO_BTN = "r_accept", "r_reject", "r_skip", "r_undo_btn"
PREV, NEXT = "r_prev", "r_next"
WARM_AHEAD = 4
VIEWER = widgets.ViewerKeys(target="r_show_target", layers="r_layers", flip="r_flip")

ctx = context.context()
store = ctx.store
ss = st.session_state
context.page_state(ctx, "r", {
    ORDER: "created", CURRENT: None, UNDO: [], REASON: widgets.NO_REASON, QUEUE_N: 20, QUEUE_SEED: 0,
    QUEUE_MODE: "normal", QUEUE_SCALE: (0.8, 1.2), QUEUE_ROTATION: (-30, 30), QUEUE_FLIP: True,
    QUEUE_MARGIN: 6, QUEUE_MIN_AREA: 9, QUEUE_METHOD: METHODS[0],
    QUEUE_LEVEL_SHIFT: MAX_LEVEL_SHIFT, QUEUE_ANY_LEVEL: False, QUEUE_LESION_FRACTION: MAX_LESION_FRACTION,
    QUEUE_TARGET_TISSUE: MIN_TARGET_TISSUE, QUEUE_GEN: 0, FLASH: None, WARM: set(), **VIEWER.defaults(),
}, per_dataset=(CURRENT, UNDO, WARM))


def current_candidate(pinned: int | None, order: str) -> Candidate | None:
    """The candidate to show: the pinned one if it exists, else the next undecided."""
    if pinned is not None:
        try:
            return store.get(pinned)
        except PoissonBlendError:
            pass
    return store.next_undecided(order=order)


def neighbour(candidate_id: int, order: str, step: int) -> int | None:
    """Id `step` places from `candidate_id` among all candidates in `order` (None past the ends)."""
    ids = [c.id for c in store.candidates(order=order)]
    try:
        i = ids.index(candidate_id) + step
    except ValueError:
        return None
    return ids[i] if 0 <= i < len(ids) else None


def last_decided(lookback: int = 200) -> int | None:
    """The most recently decided candidate that is still decided (for Undo after a restart)."""
    seen: set[int] = set()
    for record in reversed(store.history()[-lookback:]):
        if record.candidate_id in seen:
            continue
        seen.add(record.candidate_id)
        if store.get(record.candidate_id).state != "undecided":
            return record.candidate_id
    return None


def prefetch(current_id: int, order: str) -> None:
    """Warm the pictures of the next WARM_AHEAD undecided candidates once the next one is not warm:
    most decisions then find everything ready and do no picture work while theirs are painted."""
    skip = [current_id]
    nxt = store.next_undecided(order=order, exclude=skip)
    if nxt is None or nxt.id in ss[WARM]:
        return
    while nxt is not None and len(skip) <= WARM_AHEAD:
        try:
            widgets.warm_candidate(ctx, nxt, VIEWER)
        except PoissonBlendError:
            pass
        ss[WARM].add(nxt.id)
        skip.append(nxt.id)
        nxt = store.next_undecided(order=order, exclude=skip)


def flash(kind: str, text: str) -> None:
    ss[FLASH] = (kind, text)


def decide(candidate_id: int, decision: str) -> None:
    reason = widgets.chosen_reason(REASON) if decision == "rejected" else None
    try:
        c = store.decide(candidate_id, decision, reason=reason, reviewer=context.reviewer())
    except PoissonBlendError as exc:
        flash("error", str(exc))
        return
    ss[UNDO].append(candidate_id)
    ss[CURRENT] = None
    ss[REASON] = widgets.NO_REASON
    flash("ok", f"#{c.id} {c.state}" + (f" ({c.reason})" if c.reason else ""))


def undo() -> None:
    target = ss[UNDO].pop() if ss[UNDO] else last_decided()
    if target is None:
        flash("info", "Nothing to undo.")
        return
    try:
        c = store.undo(target)
    except PoissonBlendError as exc:
        flash("error", str(exc))
        return
    ss[CURRENT] = c.id
    flash("ok", f"#{c.id} is undecided again")


def browse(candidate_id: int, step: int) -> None:
    ss[CURRENT] = neighbour(candidate_id, ss[ORDER], step)


def on_order_change() -> None:
    ss[CURRENT] = None


def queue_form() -> None:
    """The queue form; after queueing, a rerun with the panel closed (the candidates take the screen)."""
    with st.form(QUEUE_FORM, border=False):
        a, b, c, d = st.columns(4)
        a.number_input("How many", 1, 2000, key=QUEUE_N, persist_state="session")
        b.number_input("Seed", 0, 2**31 - 1, key=QUEUE_SEED, persist_state="session")
        c.segmented_control("Mode", ["normal", "mixed"], key=QUEUE_MODE, required=True,
                            persist_state="session")
        d.slider("Margin (px)", MIN_MARGIN, MAX_MARGIN, key=QUEUE_MARGIN, persist_state="session")
        a, b, c, d = st.columns([2, 2, 1, 1], vertical_alignment="bottom")
        a.slider("Scale range", 0.25, 3.0, step=0.05, key=QUEUE_SCALE, persist_state="session")
        b.slider("Rotation range (°)", -180, 180, step=5, key=QUEUE_ROTATION, persist_state="session")
        c.number_input("Min lesion area (px)", 1, 10_000, key=QUEUE_MIN_AREA,
                       persist_state="session",
                       help="Draw only source lesions at least this large (9 skips 1–8 px specks)")
        d.toggle("Random flips", key=QUEUE_FLIP, persist_state="session")
        a, b, c, d = st.columns([3, 2, 3, 3], vertical_alignment="bottom")
        a.slider("Max level shift", 0.0, 1.0, step=0.05, key=QUEUE_LEVEL_SHIFT,
                 persist_state="session",
                 help="Largest |target level − source level|; a slice's level is its place in "
                      "its case, 0 = first slice, 1 = last")
        b.toggle("Any level", key=QUEUE_ANY_LEVEL, persist_state="session",
                 help="No level limit (--max-level-shift none)")
        c.slider("Max lesion / tissue", 0.05, 1.0, step=0.05, key=QUEUE_LESION_FRACTION,
                 persist_state="session",
                 help="Largest placed lesion as a fraction of the target's tissue area")
        d.slider("Min target tissue", 0.0, 1.0, step=0.05, key=QUEUE_TARGET_TISSUE,
                 persist_state="session",
                 help="Least tissue of a target as a fraction of the largest in its case "
                      "(near-empty edge slices are never targets)")
        a, b = st.columns([2, 4], vertical_alignment="bottom")
        a.segmented_control("Method", METHODS, key=QUEUE_METHOD, required=True,
                            persist_state="session",
                            help="poissonblend, or the seed script's cv2.seamlessClone on the same "
                                 "recipe (tiny lesions it raises on are drawn again)")
        holdout = store.holdout()
        b.caption(f"{context.plural(len(holdout), 'held-out case')} never drawn (set them in the "
                  "sidebar)." if holdout else "No held-out cases (set them in the sidebar).")
        go = st.form_submit_button("Queue candidates", key=QUEUE_GO, type="primary",
                                   icon=":material/add:")
    if not go:
        return
    seed, n = int(ss[QUEUE_SEED]), int(ss[QUEUE_N])
    batch = f"seed-{seed}"
    start = len(store.candidates(batch=batch))  # more of the same batch: new draws
    bar = st.progress(0.0, text=f"Rendering {widgets.plural(n, 'candidate')}…")
    try:
        options = SamplingOptions(mode=ss[QUEUE_MODE],
                                  scale_range=tuple(map(float, ss[QUEUE_SCALE])),
                                  rotation_range=tuple(map(float, ss[QUEUE_ROTATION])),
                                  flip=bool(ss[QUEUE_FLIP]), margin=int(ss[QUEUE_MARGIN]),
                                  min_area=int(ss[QUEUE_MIN_AREA]),
                                  method=ss[QUEUE_METHOD], holdout=holdout,
                                  max_level_shift=None if ss[QUEUE_ANY_LEVEL]
                                  else float(ss[QUEUE_LEVEL_SHIFT]),
                                  max_lesion_fraction=float(ss[QUEUE_LESION_FRACTION]),
                                  min_target_tissue=float(ss[QUEUE_TARGET_TISSUE]))
        queued = store.queue(n, seed, options, batch=batch, start=start,
                             progress=lambda k, total: bar.progress(
                                 k / total, text=f"{k} of {total} candidates rendered"))
    except PoissonBlendError as exc:
        bar.empty()
        widgets.show_error(exc)
        return
    again = [f"{count} drawn again {why}" for count, why in (
        (queued.redrawn, "where OpenCV raised"),
        (queued.invisible, "where the lesion did not visibly arrive")) if count]
    flash("ok", f"Queued {widgets.plural(len(queued), 'candidate')} (batch {batch}, "
                f"samples {start}–{start + n - 1}{''.join('; ' + a for a in again)})")
    ss[QUEUE_GEN] += 1
    st.rerun()  # the queue panel closes: a new, collapsed "queue more" (or the form shown while empty)


# ---------------------------------------------------------------- the page, as one fragment
@st.fragment
def review() -> None:
    """Everything below the sidebar: a decision reruns only this (not the router nor the sidebar),
    so the next candidate is painted sooner."""
    counts = store.counts()
    current = current_candidate(ss[CURRENT], ss[ORDER])
    decided = counts["total"] - counts["undecided"]
    title, progress, order = st.columns([5, 4, 3], vertical_alignment="center")
    title.markdown(f"##### {widgets.candidate_title(current)}" if current else "##### Review")
    progress.progress(decided / counts["total"] if counts["total"] else 0.0,
                      text=f"**{decided} of {counts['total']} decided** · {counts['accepted']} "
                           f"accepted · {counts['rejected']} rejected · {counts['skipped']} skipped")
    order.selectbox("Order", ORDERS, key=ORDER, format_func=widgets.ORDER_LABELS.get,
                    on_change=on_order_change, bind="query-params", label_visibility="collapsed")
    if not counts["total"]:
        with st.container(border=True):
            st.markdown("**Queue random candidates**")
            queue_form()

    if current is None:
        if counts["total"] == 0:
            st.info("No candidates yet: queue some above.", icon=":material/info:")
        else:
            st.success(f"All {counts['total']} candidates are decided. Export the accepted ones, "
                       "or queue more.", icon=":material/done_all:")
        left, _ = st.columns([1, 5])
        left.button("Undo last", key=UNDO_BTN, shortcut="U", on_click=undo,
                    icon=":material/undo:", width="stretch")
        widgets.flash_message(FLASH)
        return

    # one candidate
    bar = st.columns([2, 2, 3, 2, 2, 1, 1], vertical_alignment="bottom")
    bar[0].button("Accept", key=ACCEPT, shortcut="A", type="primary", icon=":material/check:",
                  on_click=decide, args=(current.id, "accepted"), width="stretch")
    bar[1].button("Reject", key=REJECT, shortcut="X", icon=":material/close:",
                  on_click=decide, args=(current.id, "rejected"), width="stretch")
    bar[2].selectbox("Reject reason", widgets.reason_options(), key=REASON,
                     label_visibility="collapsed", persist_state="session")
    bar[3].button("Skip", key=SKIP, shortcut="S", icon=":material/skip_next:",
                  on_click=decide, args=(current.id, "skipped"), width="stretch")
    bar[4].button("Undo", key=UNDO_BTN, shortcut="U", icon=":material/undo:", on_click=undo,
                  width="stretch")
    bar[5].button("", key=PREV, shortcut="P", icon=":material/chevron_left:", on_click=browse,
                  args=(current.id, -1), help="Previous candidate (P)", width="stretch")
    bar[6].button("", key=NEXT, shortcut="N", icon=":material/chevron_right:", on_click=browse,
                  args=(current.id, 1), help="Next candidate (N)", width="stretch")
    widgets.flash_message(FLASH)

    widgets.candidate_viewer(ctx, current, VIEWER)

    # Warm the cache for the candidate that comes next, so the next decision shows it at once.
    prefetch(current.id, ss[ORDER])


if store.counts()["total"]:  # outside the fragment: a decision does not redraw the form
    with st.expander("Queue more random candidates", key=f"{QUEUE_PANEL}_{ss[QUEUE_GEN]}",
                     icon=":material/playlist_add:"):
        queue_form()
review()
