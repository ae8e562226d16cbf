"""Widgets several pages share: pictures in columns, the quality report, slice pickers,
candidate views, decision helpers and one-shot messages.

They take the session-state keys they use as arguments: the page calling them owns those.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import streamlit as st

from poissonblend.dataset import Dataset, SliceInfo
from poissonblend.blend import VISIBLE_FRACTION
from poissonblend.recipe import MAX_LESION_FRACTION, MAX_LEVEL_SHIFT, Recipe
from poissonblend.store import REASONS, Candidate
from ui import pictures
from ui.context import Context, plural

ORDER_LABELS = {"created": "Queue order", "score_asc": "Worst score first",
                "score_desc": "Best score first"}
STATE_ICONS = {"undecided": ":material/hourglass_empty:", "accepted": ":green[:material/check_circle:]",
               "rejected": ":red[:material/cancel:]", "skipped": ":gray[:material/skip_next:]"}
NO_REASON = "(no reason)"


def show_error(exc: BaseException) -> None:
    """A library error as one ``st.error`` line (never a traceback)."""
    st.error(str(exc), icon=":material/error:")


def slice_names(dataset: Dataset, *, only_lesions: bool = False, query: str = "",
                need_brain: bool = False, holdout: frozenset[str] = frozenset()) -> list[str]:
    """Slice names filtered by 'has a lesion', 'has brain', a case-id/name search, and
    not of a held-out case."""
    q = query.strip().lower()
    out = []
    for s in dataset.slices:
        if only_lesions and not s.lesions:
            continue
        if need_brain and s.brain_area <= 0:
            continue
        if s.case_id in holdout:
            continue
        if q and q not in s.case_id.lower() and q not in s.name.lower():
            continue
        out.append(s.name)
    return out


def slice_filters(dataset: Dataset, *, only_key: str, search_key: str, placeholder: str,
                  need_brain: bool = False, holdout: frozenset[str] = frozenset()) -> list[str]:
    """The 'only slices with lesions' toggle and case-id search; the slice names they let
    through (never one of a `holdout` case)."""
    f1, f2 = st.columns([2, 3], vertical_alignment="center")
    f1.toggle("Lesions only", key=only_key, persist_state="session",
              help="List only slices with at least one lesion")
    f2.text_input("Search case id", key=search_key, placeholder=f"search case id, {placeholder}",
                  persist_state="session", label_visibility="collapsed")
    return slice_names(dataset, only_lesions=st.session_state[only_key],
                       query=st.session_state[search_key], need_brain=need_brain, holdout=holdout)


def _step_and_notify(key: str, options: Sequence, step: int, on_change) -> None:
    step_choice(key, options, step)
    if on_change is not None:
        on_change()


MAX_LISTED_SLICES = 1000
"""Above this many slices to choose from, a case picker comes first and the slice picker lists
that case's slices: a selectbox of thousands of options makes every rerun slow in the browser
(18,000 slices: 0.5-0.9 s a click instead of 0.25 s)."""


def _pick_case(dataset: Dataset, key: str, names: Sequence[str], case_key: str, on_change) -> None:
    case = st.session_state[case_key]
    st.session_state[key] = next(n for n in names if dataset.info(n).case_id == case)
    if on_change is not None:
        on_change()


def slice_selector(dataset: Dataset, label: str, key: str, names: Sequence[str], *,
                   prev_key: str, next_key: str, case_key: str, on_change=None) -> None:
    """◀ slice selectbox ▶ over `names`; `on_change` runs after any change of ``session_state[key]``.

    With more than :data:`MAX_LISTED_SLICES` names, a case selectbox (`case_key`) comes before
    the slice selectbox, which then lists the slices of the chosen slice's case; ◀ ▶ still step
    through all of `names`.
    """
    many = len(names) > MAX_LISTED_SLICES
    if many:
        b1, case_col, sel, b2 = st.columns([1, 3, 5, 1], vertical_alignment="bottom")
        cases = [dataset.info(n).case_id for n in names]
        current = dataset.info(st.session_state[key]).case_id
        st.session_state[case_key] = current  # ◀ ▶ may have moved to another case
        case_col.selectbox("Case", list(dict.fromkeys(cases)), key=case_key, on_change=_pick_case,
                           args=(dataset, key, names, case_key, on_change))
        listed = [n for n, case in zip(names, cases) if case == current]
    else:
        b1, sel, b2 = st.columns([1, 8, 1], vertical_alignment="bottom")
        listed = names
    b1.button("", key=prev_key, on_click=_step_and_notify, args=(key, names, -1, on_change),
              help=f"Previous {label.lower()}", icon=":material/chevron_left:", width="stretch")
    sel.selectbox(label, listed, key=key, on_change=on_change, persist_state="session",
                  format_func=lambda n: slice_label(dataset, n, with_case=not many))
    b2.button("", key=next_key, on_click=_step_and_notify, args=(key, names, 1, on_change),
              help=f"Next {label.lower()}", icon=":material/chevron_right:", width="stretch")


def slice_label(dataset: Dataset, name: str, *, with_case: bool = True) -> str:
    """``case 0003 · slice 12 · 2 lesions``, or ``slice 12 · 2 lesions``."""
    info = dataset.info(name)
    lesions = plural(len(info.lesions), "lesion")
    if not with_case:
        return f"slice {info.slice_index} · {lesions}"
    return f"case {info.case_id} · slice {info.slice_index} · {lesions}"


def slice_with_largest_lesion(dataset: Dataset, names: Sequence[str]) -> str:
    """The first of `names` holding the largest lesion among them (from the index alone)."""
    table = dataset.lesion_table
    largest = np.zeros(len(dataset.slices), np.int64)
    np.maximum.at(largest, table.slice_row, table.area)
    return names[int(np.argmax(largest[[dataset.row(n) for n in names]]))]


def largest_lesion(info: SliceInfo) -> int:
    return max(info.lesions, key=lambda les: les.area).index if info.lesions else 0


def keep_choice(key: str, options: Sequence, fallback=None) -> None:
    """Make ``session_state[key]`` one of `options` (before its widget is drawn)."""
    if options and st.session_state.get(key) not in options:
        st.session_state[key] = fallback if fallback in options else options[0]


def step_choice(key: str, options: Sequence, step: int) -> None:
    """Button callback: move ``session_state[key]`` by `step` within `options` (wrapping)."""
    if not options:
        return
    try:
        i = list(options).index(st.session_state.get(key))
    except ValueError:
        i = -step if step > 0 else 0
    st.session_state[key] = options[(i + step) % len(options)]


class PngSource:
    """Hands already-encoded PNG bytes to streamlit-image-coordinates (it calls ``.save``)."""

    def __init__(self, data: bytes):
        self.data = data

    def save(self, fp, format=None, **_):  # noqa: A002 - PIL's signature
        fp.write(self.data)


def image(data: bytes, caption: str | None = None) -> None:
    """A PNG picture filling its column."""
    st.image(data, caption=caption, width="stretch", output_format="PNG")


QUALITY_HELP = {
    "score": ("Score", "{:.3f}", "One number for sorting, higher is better"),
    "contrast_transferred": ("Contrast kept", "{:.0%}",
                             "Lesion-vs-surroundings contrast of the result / of the source"),
    "seam_gradient": ("Seam gradient", "{:.2f}",
                      "Mean gradient of the change (result − target) 2–4 px around the lesion, "
                      "grey levels per px (≈ 0: the blend fades in without a visible seam)"),
    "brain_fraction": ("In brain", "{:.0%}", "Share of lesion pixels inside the target's brain"),
    "lesion_area": ("Lesion area", "{:d} px", "Pixels of the placed lesion"),
    "changed_fraction": ("Changed", "{:.0%}", "Share of lesion pixels that changed by > 3 levels "
                         f"(visible from {VISIBLE_FRACTION:.0%})"),
    "level_shift": ("Level shift", "{:.2f}", "|target level − source level|, levels from 0 (first "
                    f"slice of the case) to 1 (last); sampling keeps it within {MAX_LEVEL_SHIFT} by default"),
    "tissue_ratio": ("Lesion / tissue", "{:.0%}", "Lesion area over the target's tissue area; "
                     f"sampling keeps it at most {MAX_LESION_FRACTION:.0%} by default"),
}


def quality_text(quality: dict, field: str) -> str:
    """One quality figure as shown (``–`` if missing)."""
    value = quality.get(field)
    fmt = QUALITY_HELP[field][1]
    return "–" if value is None else fmt.format(int(value) if fmt.endswith("px") else value)


def quality_summary(quality: dict) -> None:
    """The score as a metric and the other figures in two short lines (explained on hover).

    One row: the score keeps the width of its number (never cut to "0.…"), the figures
    wrap in the rest.
    """
    row = st.container(horizontal=True, vertical_alignment="center", gap="medium", wrap=False)
    label, _, help_ = QUALITY_HELP["score"]
    row.metric(label, quality_text(quality, "score"), help=help_, width="content")
    others = [f for f in QUALITY_HELP if f != "score"]
    row.markdown(" · ".join(f"{QUALITY_HELP[f][0]} **{quality_text(quality, f)}**" for f in others),
                 help="\n\n".join(f"**{QUALITY_HELP[f][0]}**: {QUALITY_HELP[f][2]}" for f in others))


def recipe_caption(recipe: Recipe) -> str:
    flips = f" · flip {recipe.flips}" if recipe.flips else ""
    method = f" · method {recipe.method}" if recipe.method != "poissonblend" else ""
    return (f"lesion {recipe.lesion} of `{recipe.source}` → `{recipe.target}` at "
            f"(x={recipe.x}, y={recipe.y}) · {recipe.mode} · scale {recipe.scale:g} · "
            f"rotation {recipe.rotation:g}°{flips} · margin {recipe.margin}{method}")


STATE_COLOURS = {"undecided": "gray", "accepted": "green", "rejected": "red", "skipped": "orange"}


def state_badge(state: str) -> str:
    """Markdown: the state in its colour."""
    return f":{STATE_COLOURS.get(state, 'gray')}[{state}]"


def candidate_title(c: Candidate) -> str:
    reason = f" ({c.reason})" if c.reason else ""
    return f"Candidate #{c.id} · {STATE_ICONS.get(c.state, '')} {c.state}{reason}"


@dataclass(frozen=True)
class ViewerKeys:
    """Session-state keys of a :func:`candidate_viewer`, named by the page that shows it."""

    target: str   # int | None: the candidate whose target is shown instead of its result (T)
    layers: str   # list[str]: LAYERS switched on
    flip: str     # the "target / result" button

    def defaults(self) -> dict:
        return {self.target: None, self.layers: []}


LAYERS = {"overlay": "Overlay", "outline": "Outline", "difference": "Difference"}
"""Drawn over a candidate's big picture on demand (all off: the result as it is)."""


@st.fragment
def candidate_viewer(ctx: Context, c: Candidate, keys: ViewerKeys) -> None:
    """One candidate for judging its realism, in one fragment (T and the toggles rerun only it).

    Left, large: the clean result, or with T the target at the same place and scale, or the
    difference map; overlay and outline on demand. Right: view controls, the quality report,
    a close-up (>= 4x nearest neighbour) and the source with its lesion outlined.
    """
    ss = st.session_state
    layers = set(ss.get(keys.layers) or ())
    showing_target = ss.get(keys.target) == c.id
    view = "difference" if "difference" in layers else "target" if showing_target else "result"
    recipe_json = c.recipe.to_json()

    def picture(close_up: bool) -> bytes:
        return pictures.candidate_picture(ctx.key, recipe_json, view, "overlay" in layers,
                                          "outline" in layers, close_up, ctx.dataset)

    def flip() -> None:
        ss[keys.target] = None if ss.get(keys.target) == c.id else c.id

    big, panel = st.columns([9, 10], gap="medium")
    captions = {"result": "Result", "target": "Target before the blend",
                "difference": "Difference |result − target|"}
    with big:
        image(picture(False), f"{captions[view]} · candidate #{c.id}")
    with panel:
        left, right = st.columns([2, 3], vertical_alignment="bottom")
        left.button("Result (T)" if showing_target else "Target (T)", key=keys.flip, shortcut="T",
                    on_click=flip, icon=":material/compare:", width="stretch",
                    disabled=view == "difference",
                    help="Flip between the result and the target before the blend (same place, same scale)")
        right.pills("Show", list(LAYERS), key=keys.layers, selection_mode="multi",
                    format_func=LAYERS.get, label_visibility="collapsed",
                    help="Overlay: masks tinted (new lesion orange, the target's own blue); "
                         "outline: their edges; difference: |result − target| as a heat-map")
        quality_summary(c.quality)
        close, source = st.columns(2, gap="small")
        close.image(picture(True), caption=f"Close-up ({pictures.CLOSE_UP_ZOOM}× or more)",
                    width="content", output_format="PNG")
        source.image(pictures.source_png(ctx.key, c.recipe.source, c.recipe.lesion, ctx.dataset),
                     caption=f"Source · lesion {c.recipe.lesion} outlined", width=pictures.CLOSE_UP_PX,
                     output_format="PNG")
        st.caption(recipe_caption(c.recipe) + f" · batch {c.batch or '–'} · case id `{c.case_id}`")


def warm_candidate(ctx: Context, c: Candidate, keys: ViewerKeys) -> None:
    """Render and encode the pictures :func:`candidate_viewer` shows first for `c` (with the layers
    switched on now), and its target for T, so that showing it later costs no picture work."""
    layers = set(st.session_state.get(keys.layers) or ())
    view = "difference" if "difference" in layers else "result"
    recipe_json = c.recipe.to_json()
    for view, close_up in ((view, False), (view, True), ("target", False)):
        pictures.candidate_picture(ctx.key, recipe_json, view, "overlay" in layers,
                                   "outline" in layers, close_up, ctx.dataset)
    pictures.source_png(ctx.key, c.recipe.source, c.recipe.lesion, ctx.dataset)


def reason_options() -> list[str]:
    return [NO_REASON, *REASONS]


def chosen_reason(key: str) -> str | None:
    value = st.session_state.get(key)
    return None if not value or value == NO_REASON else value


def flash_message(key: str) -> None:
    """Show the one-shot message stored under `key` (ok/info as a toast, errors inline), then drop it."""
    message = st.session_state.get(key)
    if not message:
        return
    st.session_state[key] = None
    kind, text = message
    if kind == "error":
        st.error(text, icon=":material/error:")
    else:
        st.toast(text, icon=":material/check:" if kind == "ok" else ":material/info:")
