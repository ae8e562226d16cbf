"""Stats: accept rate, reject reasons, lesion sizes, where accepted lesions were placed."""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from poissonblend.store import Candidate
from ui import context, pictures, widgets

ctx = context.context()
store = ctx.store


def reason_counts(rejected: Sequence[Candidate]) -> dict:
    """{"reason": [...], "count": [...]} of the rejected candidates' reasons."""
    tally: dict[str, int] = {}
    for c in rejected:
        key = c.reason or widgets.NO_REASON
        tally[key] = tally.get(key, 0) + 1
    names = sorted(tally, key=lambda k: -tally[k])
    return {"reason": names, "count": [tally[k] for k in names]}


st.subheader("Statistics")
counts = store.counts()
judged = counts["accepted"] + counts["rejected"]
m = st.columns(6)
m[0].metric("Candidates", counts["total"])
m[1].metric("Accepted", counts["accepted"])
m[2].metric("Rejected", counts["rejected"])
m[3].metric("Skipped", counts["skipped"])
m[4].metric("Undecided", counts["undecided"])
m[5].metric("Accept rate", f"{counts['accepted'] / judged:.0%}" if judged else "–",
            help="Accepted / (accepted + rejected)")

accepted = store.candidates(state="accepted")
rejected = store.candidates(state="rejected")
left, right = st.columns(2, gap="large")
with left:
    st.markdown("**Reject reasons**")
    reasons = reason_counts(rejected)
    if reasons["count"]:
        st.bar_chart(reasons, x="reason", y="count", horizontal=True, height=220)
    else:
        st.caption("No rejections yet.")
    st.markdown("**Lesion size: dataset lesions vs accepted samples** (share per area bin)")
    hist = pictures.size_histogram(ctx.dataset.lesion_table.area,
                             [int(c.quality.get("lesion_area", 0)) for c in accepted])
    st.bar_chart(hist, x="area (px)", y=["originals", "accepted"], stack=False, sort=False,
                 height=280, y_label="share of lesions")
with right:
    st.markdown("**Where accepted lesions were placed**")
    picture = pictures.placement_png(ctx.key, tuple(c.recipe.to_json() for c in accepted), ctx.dataset)
    if picture is None:
        st.caption("No target slices.")
    else:
        data, n, shape = picture
        widgets.image(data, f"{n} accepted placements on {shape[1]}×{shape[0]} px slices, "
                       "over the mean of those slices")
