"""Compose: pick a source lesion and a target spot, tune the blend, keep or drop it."""

from __future__ import annotations

from dataclasses import replace

import streamlit as st
from streamlit_image_coordinates import streamlit_image_coordinates

from poissonblend.blend import MAX_MARGIN, MIN_MARGIN, VISIBLE_FRACTION
from poissonblend.errors import PoissonBlendError
from poissonblend.recipe import MAX_LEVEL_SHIFT, Recipe, default_target
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
COMPARE = "c_compare"                # bool: also show the seed script's seamlessClone
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
    FLIP_V: False, MARGIN: 6, OPACITY: 0.35, COMPARE: False, REASON: widgets.NO_REASON, LAST_SAVED: None,
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
    """Store the current recipe (once) with `decision`; say what changed if it was decided before."""
    reason = widgets.chosen_reason(REASON) if decision == "rejected" else None
    try:
        recipe = current_recipe()
        pictures.check_spot(ds, recipe)
        before = ctx.store.add(recipe, batch="manual")
        if (before.state, before.reason) == (decision, reason):
            ss[LAST_SAVED] = ("info", f"Candidate #{before.id} is already **{decision}**"
                              + (f" ({reason})" if reason else "") + "; nothing changed.")
            return
        after = ctx.store.decide(before.id, decision, reason=reason, reviewer=context.reviewer())
    except PoissonBlendError as exc:
        ss[LAST_SAVED] = ("error", str(exc))
        return
    now = f"**{after.state}**" + (f" ({after.reason})" if after.reason else "")
    if before.state == "undecided":
        ss[LAST_SAVED] = ("ok", f"Stored candidate #{after.id} as {now}.")
    else:
        was = f"**{before.state}**" + (f" ({before.reason})" if before.reason else "")
        ss[LAST_SAVED] = ("warning", f"Candidate #{after.id} (this same recipe) was {was}; "
                                     f"changed to {now}.")


def spot_recipe() -> tuple[Recipe | None, str | None]:
    """The current recipe, a valid spot drawn first if there is none; or why there is no spot."""
    if ss[SPOT] is None:
        try:
            valid = pictures.valid_spots(ctx.key, current_recipe((0, 0)).to_json(), ds)
            ss[SPOT] = pictures.random_spot(valid, ss[RANDOM_DRAWS])
        except PoissonBlendError as exc:
            return None, str(exc)
    return current_recipe(), None


@st.fragment
def compose() -> None:
    """The whole page in one fragment: a click or a setting reruns only this, not the sidebar."""
    holdout = ctx.store.holdout()
    if holdout:
        st.caption(f"{context.plural(len(holdout), 'held-out case')} left out of both pickers "
                   "(sidebar).")
    # ------------------------------------------------------------ 1 · 2: pickers
    src_col, tgt_col = st.columns(2, gap="large")
    with src_col:
        st.markdown("**1 · Source slice and lesion**")
        sources = widgets.slice_filters(ds, only_key=SRC_ONLY_LESIONS, search_key=SRC_SEARCH,
                                        placeholder="e.g. 0003", holdout=holdout)
        if not sources:
            st.warning("No slice matches this search (held-out cases are left out).")
            return
        if ss.get(SOURCE) not in sources:
            ss[SOURCE] = widgets.slice_with_largest_lesion(ds, sources)
            on_source_change()
        widgets.slice_selector(ds, "Source slice", SOURCE, sources, prev_key=SRC_PREV,
                               next_key=SRC_NEXT, case_key=SRC_CASE, on_change=on_source_change)
        lesions = ds.info(ss[SOURCE]).lesions
        if not lesions:
            st.warning("This slice has no lesion to take; choose another source.")
            return
        widgets.keep_choice(LESION, [les.index for les in lesions],
                            widgets.largest_lesion(ds.info(ss[SOURCE])))
        st.radio("Lesion (number on the image · area)", [les.index for les in lesions], key=LESION,
                 horizontal=True, format_func=lambda k: f"#{k} · {lesions[k].area} px",
                 persist_state="session")
        st.caption(f"Level {ds.info(ss[SOURCE]).level:.2f} in its case (0 = first slice, 1 = last)")
    with tgt_col:
        st.markdown("**2 · Target slice — click it to place the lesion's centre**")
        targets = widgets.slice_filters(ds, only_key=TGT_ONLY_LESIONS, search_key=TGT_SEARCH,
                                        placeholder="e.g. 0005", need_brain=True, holdout=holdout)
        if not targets:
            st.warning("No target slice (with brain) matches this search (held-out cases are "
                       "left out).")
            return
        if ss.get(TARGET) not in targets:
            ss[TARGET] = default_target(ds, ss[SOURCE], holdout=holdout)
            if ss[TARGET] not in targets:  # the search leaves it out: the nearest level it lets through
                source = ds.info(ss[SOURCE])
                ss[TARGET] = min(targets, key=lambda n: (ds.info(n).case_id == source.case_id,
                                                         abs(ds.info(n).level - source.level), n))
            on_target_change()
        widgets.slice_selector(ds, "Target slice", TARGET, targets, prev_key=TGT_PREV,
                               next_key=TGT_NEXT, case_key=TGT_CASE, on_change=on_target_change)
        shift = abs(ds.info(ss[TARGET]).level - ds.info(ss[SOURCE]).level)
        level = f"Level {ds.info(ss[TARGET]).level:.2f} · {shift:.2f} from the source's"
        st.caption(level if shift <= MAX_LEVEL_SHIFT + 1e-9 else
                   f":orange[{level}: more than {MAX_LEVEL_SHIFT}, the lesion moves up or down the head]")

    # ------------------------------------------------------------ source · target · result
    recipe, no_spot = spot_recipe()
    img_src, img_tgt, result = st.columns([4, 5, 5], gap="medium")
    with img_src:
        widgets.image(pictures.source_png(ctx.key, ss[SOURCE], int(ss[LESION]), ds),
                      f"Lesions numbered, #{ss[LESION]} in orange")
    with img_tgt:
        shown = recipe or current_recipe((0, 0))
        png = pictures.target_click_png(ctx.key, shown.to_json(), ss[SPOT], ds)
        streamlit_image_coordinates(widgets.PngSource(png), key=CLICK, use_column_width="always",
                                    on_click=on_click, cursor="crosshair")
        spot = ss[SPOT]
        where = f"spot x={spot[0]}, y={spot[1]}" if spot else "no spot yet"
        st.caption(f"Green: where the centre may go · blue: own lesions · orange: the new one · {where}")
        st.button("Random valid spot", key=RANDOM, on_click=on_random, width="stretch",
                  icon=":material/casino:")
    with result:
        invalid = no_spot and f"No valid spot for this lesion on this target: {no_spot}"
        pv = None
        if not invalid:
            try:
                pictures.check_spot(ds, recipe)
                pv = pictures.preview(ctx.key, recipe.to_json(), float(ss[OPACITY]), ds)
            except PoissonBlendError as exc:
                invalid = (f"Invalid spot — {exc}. Click in the green area of the target or draw "
                           "a random valid spot.")
        a, r = st.columns(2)
        a.button("Accept", key=ACCEPT, type="primary", icon=":material/check:", on_click=save,
                 args=("accepted",), width="stretch", disabled=pv is None)
        r.button("Reject", key=REJECT, icon=":material/close:", on_click=save, args=("rejected",),
                 width="stretch", disabled=pv is None)
        st.selectbox("Reject reason", widgets.reason_options(), key=REASON, persist_state="session",
                     label_visibility="collapsed")
        saved = ss[LAST_SAVED]
        if saved:
            {"ok": st.success, "info": st.info, "warning": st.warning, "error": st.error}[saved[0]](saved[1])
        if invalid:
            st.warning(invalid, icon=":material/wrong_location:")
        else:
            widgets.image(pv.blended, "Result")
            widgets.quality_summary(pv.quality)
            if pv.quality["changed_fraction"] < VISIBLE_FRACTION:
                st.warning(f"The lesion did not visibly arrive: only "
                           f"{pv.quality['changed_fraction']:.0%} of its pixels changed by more than "
                           f"3 grey levels (at least {VISIBLE_FRACTION:.0%} needed; generate and queue "
                           "draw such samples again). Try mode, margin or another target.",
                           icon=":material/visibility_off:")

    # ------------------------------------------------------------ 3: blend settings
    st.markdown("**3 · Blend settings**")
    k = st.columns(3, vertical_alignment="bottom", gap="medium")
    k[0].segmented_control("Mode", ["normal", "mixed"], key=MODE, required=True,
                           persist_state="session",
                           help="normal: source gradients; mixed: the stronger of source and target")
    k[1].slider("Scale", 0.25, 3.0, step=0.05, key=SCALE, persist_state="session")
    k[2].slider("Rotation (°)", -180, 180, step=5, key=ROTATION, persist_state="session")
    k = st.columns(3, vertical_alignment="bottom", gap="medium")
    k[0].slider("Margin (px)", MIN_MARGIN, MAX_MARGIN, key=MARGIN, persist_state="session",
                help="How far around the lesion the Poisson region reaches")
    k[1].slider("Overlay opacity", 0.0, 1.0, step=0.05, key=OPACITY, persist_state="session",
                help="Of the masks on 'Result + masks' below")
    k[2].toggle("Flip left–right", key=FLIP_H, persist_state="session")
    k[2].toggle("Flip top–bottom", key=FLIP_V, persist_state="session")
    st.toggle("Compare with the original seamlessClone", key=COMPARE, persist_state="session",
              help="Blend the same recipe as the seed script did (cv2.seamlessClone) and show "
                   "both results with their quality reports")
    if pv is None:
        return

    # ------------------------------------------------------------ 4: more views
    st.markdown("**4 · More views**")
    cols = st.columns(4)
    for col, data, caption in zip(cols, (pv.target, pv.overlay, pv.diff, pv.zoom),
                                  ("Target (own lesions blue)",
                                   "Result + masks (new orange, original blue)",
                                   "Difference |result − target|", "Close-up around the new lesion")):
        with col:
            widgets.image(data, caption)
    st.caption(widgets.recipe_caption(recipe))
    if ss[COMPARE]:
        compare_methods(recipe, pv)


def compare_methods(recipe: Recipe, pv: pictures.Preview) -> None:
    """The recipe blended by poissonblend (`pv`) and by the seed script's seamlessClone."""
    st.markdown("**5 · The same recipe, blended by the original `cv2.seamlessClone`**")
    try:
        seamless = pictures.preview(ctx.key, replace(recipe, method="opencv").to_json(),
                                    float(ss[OPACITY]), ds)
    except PoissonBlendError as exc:
        st.warning(f"OpenCV's seamlessClone cannot blend this recipe: {exc}",
                   icon=":material/block:")
        return
    for column, title, shown in zip(st.columns(2, gap="large"),
                                    ("poissonblend", "seamlessClone (seed script)"), (pv, seamless)):
        with column:
            st.markdown(f"*{title}*")
            picture, close_up = st.columns(2)
            with picture:
                widgets.image(shown.overlay, "Result · new lesion orange")
            with close_up:
                widgets.image(shown.zoom, "Close-up")
            widgets.quality_summary(shown.quality)


compose()
