"""Compose: pick a source lesion and a target spot, tune the blend, keep or drop it."""

from __future__ import annotations

import streamlit as st
from streamlit_image_coordinates import streamlit_image_coordinates

from poissonblend.blend import MAX_MARGIN, MIN_MARGIN
from poissonblend.errors import PoissonBlendError
from poissonblend.recipe import Recipe
from ui import context, pictures, widgets

# This page's session-state keys (prefix c_)
SRC_ONLY_LESIONS = "c_src_only_lesions"
SRC_SEARCH = "c_src_search"
SRC_CASE = "c_src_case"              # case picker of large datasets
SOURCE = "c_source"                  # slice name
LESION = "c_lesion"                  # lesion index in the source
TGT_ONLY_LESIONS = "c_tgt_only_lesions"
TGT_SEARCH = "c_tgt_search"
TGT_CASE = "c_tgt_case"
TARGET = "c_target"                  # slice name
SPOT = "c_spot"                      # (x, y) or None: placement on the target
CLICK = "c_click"                    # streamlit-image-coordinates value
LAST_CLICK = "c_last_click"          # unix_time of the last click handled
RANDOM_DRAWS = "c_random_draws"      # int: "random valid spot" presses (its rng seed)
MODE = "c_mode"
SCALE = "c_scale"
ROTATION = "c_rotation"
FLIP_H = "c_flip_h"
FLIP_V = "c_flip_v"
MARGIN = "c_margin"
OPACITY = "c_opacity"
REASON = "c_reason"
LAST_SAVED = "c_last_saved"          # (kind, text) | None: what the last Accept/Reject stored
SRC_PREV, SRC_NEXT = "c_src_prev", "c_src_next"  # buttons
TGT_PREV, TGT_NEXT = "c_tgt_prev", "c_tgt_next"
RANDOM, ACCEPT, REJECT = "c_random", "c_accept", "c_reject"

ctx = context.context()
ds = ctx.dataset
ss = st.session_state
context.page_state(ctx, "c", {
    SRC_ONLY_LESIONS: True, SRC_SEARCH: "", TGT_ONLY_LESIONS: False, TGT_SEARCH: "", SPOT: None,
    LAST_CLICK: None, RANDOM_DRAWS: 0, MODE: "normal", SCALE: 1.0, ROTATION: 0, FLIP_H: False,
    FLIP_V: False, MARGIN: 6, OPACITY: 0.35, REASON: widgets.NO_REASON, LAST_SAVED: None,
}, per_dataset=(SOURCE, LESION, TARGET, SPOT))


def current_recipe(spot: tuple[int, int] | None = None) -> Recipe:
    x, y = spot if spot is not None else (ss[SPOT] or (0, 0))
    return Recipe(ss[SOURCE], int(ss[LESION]), ss[TARGET], int(x), int(y),
                  ss[MODE], float(ss[SCALE]), float(ss[ROTATION]),
                  bool(ss[FLIP_H]), bool(ss[FLIP_V]), int(ss[MARGIN]))


def on_source_change() -> None:
    ss[LESION] = widgets.largest_lesion(ds.info(ss[SOURCE]))


def on_target_change() -> None:
    ss[SPOT] = None  # a fresh random valid spot on the new target


def on_click() -> None:
    click = ss.get(CLICK)
    if not click or click.get("unix_time") == ss[LAST_CLICK]:
        return
    ss[LAST_CLICK] = click.get("unix_time")
    spot = pictures.display_to_image(click, ds.info(ss[TARGET]).shape)
    if spot is not None:
        ss[SPOT] = spot


def on_random() -> None:
    ss[RANDOM_DRAWS] += 1
    ss[SPOT] = None


def save(decision: str) -> None:
    try:
        recipe = current_recipe()
        pictures.check_spot(ds, recipe)
        candidate = ctx.store.add(recipe, batch="manual")
        reason = widgets.chosen_reason(REASON) if decision == "rejected" else None
        candidate = ctx.store.decide(candidate.id, decision, reason=reason, reviewer=context.reviewer())
    except PoissonBlendError as exc:
        ss[LAST_SAVED] = ("error", str(exc))
        return
    ss[LAST_SAVED] = ("ok", f"Stored candidate #{candidate.id} as **{candidate.state}**"
                           + (f" ({candidate.reason})" if candidate.reason else ""))


st.subheader("Compose a sample")
holdout = ctx.store.holdout()
if holdout:
    st.caption(f"{len(holdout)} held-out case(s) left out of both pickers (sidebar).")

# ---------------------------------------------------------------- pickers (full reruns)
src_col, tgt_col = st.columns(2, gap="large")
with src_col:
    st.markdown("**1 · Source slice and lesion**")
    sources = widgets.slice_filters(ds, only_key=SRC_ONLY_LESIONS, search_key=SRC_SEARCH,
                               placeholder="e.g. 0003", holdout=holdout)
    if not sources:
        st.warning("No slice matches this search (held-out cases are left out).")
        st.stop()
    if ss.get(SOURCE) not in sources:
        ss[SOURCE] = widgets.slice_with_largest_lesion(ds, sources)
        on_source_change()
    widgets.slice_selector(ds, "Source slice", SOURCE, sources, prev_key=SRC_PREV,
                      next_key=SRC_NEXT, case_key=SRC_CASE, on_change=on_source_change)
    lesions = ds.info(ss[SOURCE]).lesions
    if not lesions:
        st.warning("This slice has no lesion to take; choose another source.")
        st.stop()
    widgets.keep_choice(LESION, [les.index for les in lesions], widgets.largest_lesion(ds.info(ss[SOURCE])))
    st.radio("Lesion (number on the image · area)", [les.index for les in lesions], key=LESION,
             horizontal=True, format_func=lambda k: f"#{k} · {lesions[k].area} px",
             persist_state="session")

with tgt_col:
    st.markdown("**2 · Target slice and spot**")
    targets = widgets.slice_filters(ds, only_key=TGT_ONLY_LESIONS, search_key=TGT_SEARCH,
                               placeholder="e.g. 0005", need_brain=True, holdout=holdout)
    if not targets:
        st.warning("No target slice (with brain) matches this search (held-out cases are left out).")
        st.stop()
    if ss.get(TARGET) not in targets:
        others = [n for n in targets if ds.info(n).case_id != ds.info(ss[SOURCE]).case_id]
        ss[TARGET] = max(others or targets, key=lambda n: ds.info(n).brain_area)
        on_target_change()
    widgets.slice_selector(ds, "Target slice", TARGET, targets, prev_key=TGT_PREV,
                      next_key=TGT_NEXT, case_key=TGT_CASE, on_change=on_target_change)
    st.caption("Click the target image to place the lesion's centre there.")


# ---------------------------------------------------------------- preview (fragment reruns)
@st.fragment
def composer() -> None:
    if ss[SPOT] is None:
        try:
            ss[SPOT] = pictures.random_spot(ds, current_recipe(), ss[RANDOM_DRAWS])
        except PoissonBlendError as exc:
            ss[SPOT] = None
            no_spot = str(exc)
        else:
            no_spot = None
    else:
        no_spot = None
    recipe = current_recipe() if ss[SPOT] is not None else None

    img_src, img_tgt = st.columns(2, gap="large")
    with img_src:
        widgets.image(pictures.source_png(ctx.key, ss[SOURCE], int(ss[LESION]), ds),
                 f"{ss[SOURCE]} · lesions numbered, lesion {ss[LESION]} in orange")
    with img_tgt:
        png = pictures.target_click_png(ctx.key, recipe.to_json() if recipe else None, ss[TARGET], ds)
        streamlit_image_coordinates(widgets.PngSource(png), key=CLICK, use_column_width="always",
                                    on_click=on_click, cursor="crosshair")
        spot = ss[SPOT]
        where = f"spot x={spot[0]}, y={spot[1]}" if spot else "no spot yet"
        c1, c2 = st.columns([3, 2], vertical_alignment="center")
        c1.caption(f"{ss[TARGET]} · own lesions blue · footprint orange · {where}")
        c2.button("Random valid spot", key=RANDOM, on_click=on_random, width="stretch",
                  icon=":material/casino:")

    st.markdown("**3 · Blend settings**")
    k = st.columns([4, 4, 4, 4, 4], vertical_alignment="bottom", gap="medium")
    k[0].segmented_control("Mode", ["normal", "mixed"], key=MODE, required=True,
                           persist_state="session",
                           help="normal: source gradients; mixed: the stronger of source and target")
    k[1].slider("Scale", 0.25, 3.0, step=0.05, key=SCALE, persist_state="session")
    k[2].slider("Rotation (°)", -180, 180, step=5, key=ROTATION, persist_state="session")
    k[3].slider("Margin (px)", MIN_MARGIN, MAX_MARGIN, key=MARGIN, persist_state="session",
                help="How far around the lesion the Poisson region reaches")
    k[4].slider("Overlay opacity", 0.0, 1.0, step=0.05, key=OPACITY, persist_state="session")
    f = st.columns([3, 3, 10])
    f[0].toggle("Flip left–right", key=FLIP_H, persist_state="session")
    f[1].toggle("Flip top–bottom", key=FLIP_V, persist_state="session")

    if no_spot:
        st.warning(f"No valid spot: {no_spot}", icon=":material/wrong_location:")
        return
    recipe = current_recipe()
    try:
        pictures.check_spot(ds, recipe)
        pv = pictures.preview(ctx.key, recipe.to_json(), float(ss[OPACITY]), ds)
    except PoissonBlendError as exc:
        st.warning(f"Invalid spot — {exc}. Click elsewhere on the target or draw a random "
                   "valid spot.", icon=":material/wrong_location:")
        return

    st.markdown("**4 · Preview**")
    cols = st.columns(4)
    for col, data, caption in zip(cols, (pv.target, pv.blended, pv.overlay, pv.diff),
                                  ("Target (own lesions blue)", "Blended",
                                   "Blended + masks (new orange, original blue)",
                                   "Difference |blended − target|")):
        with col:
            widgets.image(data, caption)
    z, q, act = st.columns([1, 2, 1], gap="medium")
    with z:
        widgets.image(pv.zoom, "Close-up around the new lesion")
    with q:
        widgets.quality_report(pv.quality)
        st.caption(widgets.recipe_caption(recipe))
    with act:
        st.button("Accept", key=ACCEPT, type="primary", icon=":material/check:",
                  on_click=save, args=("accepted",), width="stretch")
        st.button("Reject", key=REJECT, icon=":material/close:", on_click=save,
                  args=("rejected",), width="stretch")
        st.selectbox("Reject reason", widgets.reason_options(), key=REASON, persist_state="session")
        saved = ss[LAST_SAVED]
        if saved:
            (st.success if saved[0] == "ok" else st.error)(saved[1])


composer()
