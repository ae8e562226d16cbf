"""Export: write the accepted candidates into training-set folders (dry run first)."""

from __future__ import annotations

from functools import partial

import streamlit as st

import ui
from poissonblend.errors import PoissonBlendError
from poissonblend.export import export, export_zip

ctx = ui.context()
store = ctx.store
ss = st.session_state
root = ctx.dataset.input_dir.parent
ui.init_state({ui.E_INPUT: str(root / "aug_input"), ui.E_MASK: str(root / "aug_mask"),
               ui.E_MANIFEST: str(root / "poissonblend_manifest.csv"), ui.E_PRUNE: False,
               ui.E_PLAN: None, ui.E_RESULT: None})


def forget_results() -> None:
    ss[ui.E_PLAN] = None
    ss[ui.E_RESULT] = None


st.subheader("Export accepted samples")
counts = store.counts()
st.caption(f"{counts['accepted']} accepted of {counts['total']} candidates. Each accepted recipe is "
           "re-rendered and written as `slice_<case_id>_0000.png` in both folders (masks 0/255); "
           "existing identical files are skipped, different ones are never overwritten.")

a, b = st.columns(2)
a.text_input("Output image folder", key=ui.E_INPUT, on_change=forget_results, persist_state="session")
b.text_input("Output mask folder", key=ui.E_MASK, on_change=forget_results, persist_state="session")
a, b = st.columns([3, 1], vertical_alignment="bottom")
a.text_input("Manifest (CSV)", key=ui.E_MANIFEST, on_change=forget_results, persist_state="session")
b.checkbox("Remove files no longer accepted", key=ui.E_PRUNE, on_change=forget_results,
           persist_state="session", help="Delete exported samples whose candidate was rejected since")
folders = (ss[ui.E_INPUT].strip(), ss[ui.E_MASK].strip())
manifest = ss[ui.E_MANIFEST].strip() or None

left, right, _ = st.columns([1, 1, 3])
dry = left.button("Dry run", key=ui.E_DRY, icon=":material/preview:", width="stretch")
go = right.button(f"Export {counts['accepted']} accepted", key=ui.E_GO, type="primary",
                  icon=":material/file_download:", width="stretch", disabled=counts["accepted"] == 0)

if dry or go:
    bar = st.progress(0.0, text="Rendering accepted samples…")

    def progress(done: int, total: int) -> None:
        bar.progress(done / total if total else 1.0, text=f"{done} of {total} samples")

    try:
        summary = export(store, *folders, manifest=manifest, prune=bool(ss[ui.E_PRUNE]),
                         dry_run=bool(dry), progress=progress)
    except PoissonBlendError as exc:
        bar.empty()
        ui.show_error(exc)
    else:
        bar.empty()
        ss[ui.E_PLAN if dry else ui.E_RESULT] = ui.export_summary(summary)
        if go:
            ss[ui.E_PLAN] = None

plan, result = ss[ui.E_PLAN], ss[ui.E_RESULT]
if plan:
    with st.container(border=True):
        st.markdown("**Dry run** — nothing was written")
        ui.summary_metrics(plan)
if result:
    with st.container(border=True):
        st.markdown(f"**Exported** · {result['line']}")
        ui.summary_metrics(result)
        rows = ui.manifest_rows(result["manifest"])
        if rows:
            st.markdown(f"**Manifest** `{result['manifest']}` · {len(rows)} rows")
            st.dataframe(rows, hide_index=True)
            st.markdown("**A few exported pairs** (image · mask, as written on disk)")
            pairs = ui.exported_pairs(folders[0], folders[1], [r["case_id"] for r in rows[:4]])
            cols = st.columns(8)
            for k, (name, image_png, mask_png) in enumerate(pairs):
                cols[2 * k].image(image_png, caption=name, width="stretch")
                cols[2 * k + 1].image(mask_png, caption="mask", width="stretch")
        try:
            st.download_button("Download zip (input/, mask/, manifest)", key=ui.E_ZIP,
                               data=partial(export_zip, folders[0], folders[1], manifest),
                               file_name="poissonblend_export.zip", mime="application/zip",
                               icon=":material/folder_zip:", on_click="ignore")
        except PoissonBlendError as exc:
            ui.show_error(exc)
