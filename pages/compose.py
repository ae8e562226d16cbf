"""Compose: pick a source lesion and a target spot, tune the blend, keep or drop it."""

from __future__ import annotations

import streamlit as st
from streamlit_image_coordinates import streamlit_image_coordinates

import ui
from poissonblend.blend import MAX_MARGIN, MIN_MARGIN
from poissonblend.errors import PoissonBlendError
from poissonblend.recipe import Recipe

ctx = ui.context()
ds = ctx.dataset
ss = st.session_state
ui.init_state({ui.C_SRC_ONLY_LESIONS: True, ui.C_SRC_SEARCH: "", ui.C_TGT_ONLY_LESIONS: False,
               ui.C_TGT_SEARCH: "", ui.C_SPOT: None, ui.C_LAST_CLICK: None, ui.C_RANDOM_DRAWS: 0,
               ui.C_MODE: "normal", ui.C_SCALE: 1.0, ui.C_ROTATION: 0, ui.C_FLIP_H: False,
               ui.C_FLIP_V: False, ui.C_MARGIN: 6, ui.C_OPACITY: 0.35, ui.C_REASON: "(no reason)",
               ui.C_LAST_SAVED: None})


def current_recipe(spot: tuple[int, int] | None = None) -> Recipe:
    x, y = spot if spot is not None else (ss[ui.C_SPOT] or (0, 0))
    return Recipe(ss[ui.C_SOURCE], int(ss[ui.C_LESION]), ss[ui.C_TARGET], int(x), int(y),
                  ss[ui.C_MODE], float(ss[ui.C_SCALE]), float(ss[ui.C_ROTATION]),
                  bool(ss[ui.C_FLIP_H]), bool(ss[ui.C_FLIP_V]), int(ss[ui.C_MARGIN]))


def on_source_change() -> None:
    ss[ui.C_LESION] = ui.largest_lesion(ds.info(ss[ui.C_SOURCE]))


def on_target_change() -> None:
    ss[ui.C_SPOT] = None  # a fresh random valid spot on the new target


def on_click() -> None:
    click = ss.get(ui.C_CLICK)
    if not click or click.get("unix_time") == ss[ui.C_LAST_CLICK]:
        return
    ss[ui.C_LAST_CLICK] = click.get("unix_time")
    spot = ui.display_to_image(click, ds.info(ss[ui.C_TARGET]).shape)
    if spot is not None:
        ss[ui.C_SPOT] = spot


def on_random() -> None:
    ss[ui.C_RANDOM_DRAWS] += 1
    ss[ui.C_SPOT] = None


def save(decision: str) -> None:
    try:
        recipe = current_recipe()
        ui.check_spot(ds, recipe)
        candidate = ctx.store.add(recipe, batch="manual")
        reason = ui.chosen_reason(ui.C_REASON) if decision == "rejected" else None
        candidate = ctx.store.decide(candidate.id, decision, reason=reason, reviewer=ui.reviewer())
    except PoissonBlendError as exc:
        ss[ui.C_LAST_SAVED] = ("error", str(exc))
        return
    ss[ui.C_LAST_SAVED] = ("ok", f"Stored candidate #{candidate.id} as **{candidate.state}**"
                           + (f" ({candidate.reason})" if candidate.reason else ""))


st.subheader("Compose a sample")

# ---------------------------------------------------------------- pickers (full reruns)
src_col, tgt_col = st.columns(2, gap="large")
with src_col:
    st.markdown("**1 · Source slice and lesion**")
    sources = ui.slice_filters(ds, only_key=ui.C_SRC_ONLY_LESIONS, search_key=ui.C_SRC_SEARCH,
                               placeholder="e.g. 0003")
    if not sources:
        st.warning("No slice matches this search.")
        st.stop()
    if ss.get(ui.C_SOURCE) not in sources:
        ss[ui.C_SOURCE] = ui.slice_with_largest_lesion(ds, sources)
        on_source_change()
    ui.slice_selector(ds, "Source slice", ui.C_SOURCE, sources, prev_key=ui.C_SRC_PREV,
                      next_key=ui.C_SRC_NEXT, case_key=ui.C_SRC_CASE, on_change=on_source_change)
    lesions = ds.info(ss[ui.C_SOURCE]).lesions
    if not lesions:
        st.warning("This slice has no lesion to take; choose another source.")
        st.stop()
    ui.keep_choice(ui.C_LESION, [les.index for les in lesions], ui.largest_lesion(ds.info(ss[ui.C_SOURCE])))
    st.radio("Lesion (number on the image · area)", [les.index for les in lesions], key=ui.C_LESION,
             horizontal=True, format_func=lambda k: f"#{k} · {lesions[k].area} px",
             persist_state="session")

with tgt_col:
    st.markdown("**2 · Target slice and spot**")
    targets = ui.slice_filters(ds, only_key=ui.C_TGT_ONLY_LESIONS, search_key=ui.C_TGT_SEARCH,
                               placeholder="e.g. 0005", need_brain=True)
    if not targets:
        st.warning("No target slice (with brain) matches this search.")
        st.stop()
    if ss.get(ui.C_TARGET) not in targets:
        others = [n for n in targets if ds.info(n).case_id != ds.info(ss[ui.C_SOURCE]).case_id]
        ss[ui.C_TARGET] = max(others or targets, key=lambda n: ds.info(n).brain_area)
        on_target_change()
    ui.slice_selector(ds, "Target slice", ui.C_TARGET, targets, prev_key=ui.C_TGT_PREV,
                      next_key=ui.C_TGT_NEXT, case_key=ui.C_TGT_CASE, on_change=on_target_change)
    st.caption("Click the target image to place the lesion's centre there.")


# ---------------------------------------------------------------- preview (fragment reruns)
@st.fragment
def composer() -> None:
    if ss[ui.C_SPOT] is None:
        try:
            ss[ui.C_SPOT] = ui.random_spot(ds, current_recipe(), ss[ui.C_RANDOM_DRAWS])
        except PoissonBlendError as exc:
            ss[ui.C_SPOT] = None
            no_spot = str(exc)
        else:
            no_spot = None
    else:
        no_spot = None
    recipe = current_recipe() if ss[ui.C_SPOT] is not None else None

    img_src, img_tgt = st.columns(2, gap="large")
    with img_src:
        ui.image(ui.source_png(ctx.key, ss[ui.C_SOURCE], int(ss[ui.C_LESION]), ds),
                 f"{ss[ui.C_SOURCE]} · lesions numbered, lesion {ss[ui.C_LESION]} in orange")
    with img_tgt:
        png = ui.target_click_png(ctx.key, recipe.to_json() if recipe else None, ss[ui.C_TARGET], ds)
        streamlit_image_coordinates(ui.PngSource(png), key=ui.C_CLICK, use_column_width="always",
                                    on_click=on_click, cursor="crosshair")
        spot = ss[ui.C_SPOT]
        where = f"spot x={spot[0]}, y={spot[1]}" if spot else "no spot yet"
        c1, c2 = st.columns([3, 2], vertical_alignment="center")
        c1.caption(f"{ss[ui.C_TARGET]} · own lesions blue · footprint orange · {where}")
        c2.button("Random valid spot", key=ui.C_RANDOM, on_click=on_random, width="stretch",
                  icon=":material/casino:")

    st.markdown("**3 · Blend settings**")
    k = st.columns([4, 4, 4, 4, 4], vertical_alignment="bottom", gap="medium")
    k[0].segmented_control("Mode", ["normal", "mixed"], key=ui.C_MODE, required=True,
                           persist_state="session",
                           help="normal: source gradients; mixed: the stronger of source and target")
    k[1].slider("Scale", 0.25, 3.0, step=0.05, key=ui.C_SCALE, persist_state="session")
    k[2].slider("Rotation (°)", -180, 180, step=5, key=ui.C_ROTATION, persist_state="session")
    k[3].slider("Margin (px)", MIN_MARGIN, MAX_MARGIN, key=ui.C_MARGIN, persist_state="session",
                help="How far around the lesion the Poisson region reaches")
    k[4].slider("Overlay opacity", 0.0, 1.0, step=0.05, key=ui.C_OPACITY, persist_state="session")
    f = st.columns([3, 3, 10])
    f[0].toggle("Flip left–right", key=ui.C_FLIP_H, persist_state="session")
    f[1].toggle("Flip top–bottom", key=ui.C_FLIP_V, persist_state="session")

    if no_spot:
        st.warning(f"No valid spot: {no_spot}", icon=":material/wrong_location:")
        return
    recipe = current_recipe()
    try:
        ui.check_spot(ds, recipe)
        pv = ui.preview(ctx.key, recipe.to_json(), float(ss[ui.C_OPACITY]), ds)
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
            ui.image(data, caption)
    z, q, act = st.columns([1, 2, 1], gap="medium")
    with z:
        ui.image(pv.zoom, "Close-up around the new lesion")
    with q:
        ui.quality_report(pv.quality)
        st.caption(ui.recipe_caption(recipe))
    with act:
        st.button("Accept", key=ui.C_ACCEPT, type="primary", icon=":material/check:",
                  on_click=save, args=("accepted",), width="stretch")
        st.button("Reject", key=ui.C_REJECT, icon=":material/close:", on_click=save,
                  args=("rejected",), width="stretch")
        st.selectbox("Reject reason", ui.reason_options(), key=ui.C_REASON, persist_state="session")
        saved = ss[ui.C_LAST_SAVED]
        if saved:
            (st.success if saved[0] == "ok" else st.error)(saved[1])


composer()
