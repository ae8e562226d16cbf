"""Widgets several pages share: pictures in columns, the quality report, slice pickers,
candidate views, decision helpers and one-shot messages.

They take the session-state keys they use as arguments: the page calling them owns those.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import streamlit as st

from poissonblend.dataset import Dataset, SliceInfo
from poissonblend.recipe import Recipe
from poissonblend.store import REASONS, Candidate
from ui import pictures
from ui.context import Context

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
    f1, f2 = st.columns([2, 3], vertical_alignment="bottom")
    f1.toggle("Only slices with lesions", key=only_key, persist_state="session")
    f2.text_input("Search case id", key=search_key, placeholder=placeholder, persist_state="session")
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
    b1.button("◀", key=prev_key, on_click=_step_and_notify, args=(key, names, -1, on_change),
              help=f"Previous {label.lower()}")
    sel.selectbox(label, listed, key=key, on_change=on_change, persist_state="session",
                  format_func=lambda n: slice_label(dataset, n, with_case=not many))
    b2.button("▶", key=next_key, on_click=_step_and_notify, args=(key, names, 1, on_change),
              help=f"Next {label.lower()}")


def slice_label(dataset: Dataset, name: str, *, with_case: bool = True) -> str:
    """``slice_0003_0012.png — case 0003 · slice 12 · 2 lesions``, or ``slice 12 · 2 lesions``."""
    info = dataset.info(name)
    lesions = f"{len(info.lesions)} lesion{'s' if len(info.lesions) != 1 else ''}"
    if not with_case:
        return f"slice {info.slice_index} · {lesions}"
    return f"{name} — case {info.case_id} · slice {info.slice_index} · {lesions}"


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
    "changed_fraction": ("Changed", "{:.0%}", "Share of lesion pixels that changed by > 3 levels"),
}


def quality_report(quality: dict, *, columns: int = 3) -> None:
    """The quality report as metrics with explanations."""
    cols = st.columns(columns)
    for i, (field, (label, fmt, help_)) in enumerate(QUALITY_HELP.items()):
        value = quality.get(field)
        text = "–" if value is None else fmt.format(int(value) if fmt.endswith("px") else value)
        cols[i % columns].metric(label, text, help=help_)


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


def candidate_view(ctx: Context, c: Candidate, *, opacity: float = 0.35) -> None:
    """One candidate, large: source | target | result with overlay, close-up and quality."""
    pngs = pictures.candidate_pngs(ctx.key, c.recipe.to_json(), opacity, ctx.dataset)
    cols = st.columns(3)
    with cols[0]:
        image(pngs["source"], f"Source {c.recipe.source} · lesion {c.recipe.lesion} (orange)")
    with cols[1]:
        image(pngs["target"], f"Target {c.recipe.target} (own lesions in blue)")
    with cols[2]:
        image(pngs["overlay"], "Result · new lesion orange, original lesions blue")
    st.caption(recipe_caption(c.recipe) + f" · batch {c.batch or '–'} · case id `{c.case_id}`")
    left, right = st.columns([1, 3])
    with left:
        image(pngs["zoom"], "Close-up of the new lesion")
    with right:
        quality_report(c.quality)


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
