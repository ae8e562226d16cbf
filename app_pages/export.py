"""Export: write the accepted candidates into training-set folders (dry run first)."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import streamlit as st

from poissonblend.errors import PoissonBlendError
from poissonblend.export import ExportSummary, export, export_zip
from poissonblend.output import read_manifest
from ui import context, pictures, widgets

# This page's session-state keys (prefix e_)
INPUT = "e_input"                    # output folders and manifest (text inputs)
MASK = "e_mask"
MANIFEST = "e_manifest"
PRUNE = "e_prune"
PLAN = "e_plan"                      # dry-run summary (dict) or None
RESULT = "e_result"                  # export summary (dict) or None
DRY, GO, ZIP = "e_dry", "e_go", "e_zip"  # buttons

ctx = context.context()
store = ctx.store
ss = st.session_state
root = ctx.dataset.input_dir.parent
context.page_state(ctx, "e", {
    INPUT: str(root / "aug_input"), MASK: str(root / "aug_mask"),
    MANIFEST: str(root / "poissonblend_manifest.csv"), PRUNE: False, PLAN: None, RESULT: None,
}, per_dataset=(INPUT, MASK, MANIFEST, PLAN, RESULT))


def summary_dict(summary: ExportSummary) -> dict:
    """An ExportSummary as plain data for session_state."""
    return {"line": summary.line, "written": summary.written, "skipped": summary.skipped,
            "conflicts": [str(c) for c in summary.conflicts],
            "stale": [str(s) for s in summary.stale], "pruned": len(summary.pruned) // 2,
            "repaired": len(summary.repaired), "manifest": str(summary.manifest),
            "dry_run": summary.dry_run}


def summary_metrics(summary: dict) -> None:
    verb = "Would write" if summary["dry_run"] else "Written"
    cols = st.columns(5)
    cols[0].metric(verb, summary["written"])
    cols[1].metric("Already there (skip)", summary["skipped"])
    cols[2].metric("Conflicts", len(summary["conflicts"]))
    cols[3].metric("Stale (no longer accepted)", len(summary["stale"]))
    cols[4].metric("Pruned", summary["pruned"])
    for line in summary["conflicts"]:
        st.error(line, icon=":material/error:")
    if summary["stale"] and not summary["pruned"]:
        st.warning("No longer accepted but still exported: " + ", ".join(summary["stale"][:10])
                   + (" …" if len(summary["stale"]) > 10 else ""), icon=":material/warning:")


def forget_results() -> None:
    ss[PLAN] = None
    ss[RESULT] = None


st.subheader("Export accepted samples")
counts = store.counts()
st.caption(f"{counts['accepted']} accepted of {counts['total']} candidates. Each accepted recipe is "
           "re-rendered and written as `slice_<case_id>_0000.png` in both folders (masks 0/255); "
           "existing identical files are skipped, different ones are never overwritten.")

a, b = st.columns(2)
a.text_input("Output image folder", key=INPUT, on_change=forget_results, persist_state="session")
b.text_input("Output mask folder", key=MASK, on_change=forget_results, persist_state="session")
a, b = st.columns([3, 2], vertical_alignment="bottom")
a.text_input("Manifest (CSV)", key=MANIFEST, on_change=forget_results, persist_state="session")
b.checkbox("Remove files no longer accepted", key=PRUNE, on_change=forget_results,
           persist_state="session", help="Delete exported samples whose candidate was rejected since")
folders = (ss[INPUT].strip(), ss[MASK].strip())
manifest = ss[MANIFEST].strip() or None

buttons = st.container(horizontal=True)
dry = buttons.button("Dry run", key=DRY, icon=":material/preview:")
go = buttons.button(f"Export {counts['accepted']} accepted", key=GO, type="primary",
                    icon=":material/file_download:", disabled=counts["accepted"] == 0)

if dry or go:
    bar = st.progress(0.0, text="Rendering accepted samples…")

    def progress(done: int, total: int) -> None:
        bar.progress(done / total if total else 1.0, text=f"{done} of {total} samples")

    try:
        folders = tuple(str(context.confined(f)) for f in folders)
        manifest = str(context.confined(manifest)) if manifest else None
        summary = export(store, *folders, manifest=manifest, prune=bool(ss[PRUNE]),
                         dry_run=bool(dry), progress=progress)
    except PoissonBlendError as exc:
        bar.empty()
        widgets.show_error(exc)
    else:
        bar.empty()
        ss[PLAN if dry else RESULT] = summary_dict(summary)
        if go:
            ss[PLAN] = None

plan, result = ss[PLAN], ss[RESULT]
if plan:
    with st.container(border=True):
        st.markdown("**Dry run** — nothing was written")
        summary_metrics(plan)
if result:
    with st.container(border=True):
        st.markdown(f"**Exported** · {result['line']}")
        summary_metrics(result)
        rows = read_manifest(Path(result["manifest"]))
        if rows:
            st.markdown(f"**Manifest** `{result['manifest']}` · {len(rows)} rows")
            st.dataframe(rows, hide_index=True)
            st.markdown("**A few exported pairs** (image · mask, as written on disk)")
            pairs = pictures.exported_pairs(folders[0], folders[1], [r["case_id"] for r in rows[:4]])
            cols = st.columns(8)
            for k, (name, image_png, mask_png) in enumerate(pairs):
                cols[2 * k].image(image_png, caption=name, width="stretch")
                cols[2 * k + 1].image(mask_png, caption="mask", width="stretch")
        try:
            st.download_button("Download zip (input/, mask/, manifest)", key=ZIP,
                               data=partial(export_zip, folders[0], folders[1], manifest),
                               file_name="poissonblend_export.zip", mime="application/zip",
                               icon=":material/folder_zip:", on_click="ignore")
        except PoissonBlendError as exc:
            widgets.show_error(exc)
