"""Evidence: the ablation reports under the app data folder (``python -m poissonblend ablate``).

Reading only: the table of arms (mean case Dice, 95 % CI, the paired difference to
``none``), the per-case plot dice.png and report.md. Keras is never imported here.
"""

from __future__ import annotations

import time
from pathlib import Path

import streamlit as st

from poissonblend.ablate.report import DICE_PNG, REPORT_MD, list_reports, load_report, verdict
from poissonblend.errors import PoissonBlendError
from ui import context, widgets

# This page's session-state keys (prefix ev_)
REPORT = "ev_report"                 # str: path of the report shown

ss = st.session_state
folder = context.data_dir()


def ci(pair) -> str:
    return f"{pair[0]:.3f} – {pair[1]:.3f}"


def arms_table(report: dict) -> dict:
    """Columns of the arms' table: mean case Dice, its CI, the paired difference to none."""
    rows = {"arm": [], "mean case Dice": [], "95 % CI": [], "vs none": [], "vs none 95 % CI": [],
            "better / worse cases": [], "verdict": []}
    for arm, a in report["arms"].items():
        d = a.get("vs_none")
        rows["arm"].append(arm)
        rows["mean case Dice"].append(f"{a['mean_dice']:.3f}")
        rows["95 % CI"].append(ci(a["ci95"]))
        rows["vs none"].append("—" if d is None else f"{d['mean_difference']:+.3f}")
        rows["vs none 95 % CI"].append("—" if d is None else ci(d["ci95"]))
        rows["better / worse cases"].append("—" if d is None else f"{d['better']} / {d['worse']} of {d['cases']}")
        rows["verdict"].append("baseline" if d is None else verdict(d))
    return rows


def folds_table(report: dict) -> dict:
    """Columns of the folds' table: cases, slices, samples added and training time per arm."""
    rows = {"fold": [], "test cases": [], "training cases": [], "original slices": [],
            "steps per arm": [], "added samples": [], "minutes per arm": []}
    for k, fold in enumerate(report["folds"], 1):
        rows["fold"].append(k)
        rows["test cases"].append(", ".join(fold["test"]))
        rows["training cases"].append(len(fold["train"]))
        rows["original slices"].append(fold.get("train_slices"))
        rows["steps per arm"].append(fold.get("steps"))
        added = fold.get("added_samples", {})
        rows["added samples"].append(" · ".join(f"{arm} {n}" for arm, n in added.items() if n))
        rows["minutes per arm"].append(" · ".join(f"{arm} {s / 60:.1f}"
                                                  for arm, s in fold.get("seconds", {}).items()))
    return rows


def report_label(path: Path) -> str:
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(path.stat().st_mtime))
    try:
        where = path.parent.relative_to(folder)
    except ValueError:
        where = path.parent
    return f"{where} · {when}"


st.subheader("Evidence: does augmentation raise Dice here?")
reports = list_reports(folder)
if not reports:
    st.info(f"No ablation report under the data folder `{folder}` yet. Run "
            f"`python -m poissonblend ablate --input-dir I --mask-dir M --out {folder / 'ablation'}` "
            "and open this page again.", icon=":material/science:")
    st.stop()

names = [str(p) for p in reports]
widgets.keep_choice(REPORT, names)
st.selectbox(f"Report ({len(reports)} under `{folder}`, newest first)", names, key=REPORT,
             format_func=lambda n: report_label(Path(n)))
run_dir = Path(ss[REPORT]).parent
try:
    report = load_report(ss[REPORT])
except PoissonBlendError as exc:
    widgets.show_error(exc)
    st.stop()

cfg = report["config"]
cases = len(report["arms"]["none"]["per_case"])
st.caption(f"{cases} test cases in {len(report['folds'])} case-level folds of "
           f"`{cfg.get('dataset', {}).get('input_dir', '?')}` · {cfg.get('epochs', '?')} epochs · "
           f"seed {cfg.get('seed', '?')} · `{run_dir}`")
st.table(arms_table(report), hide_index=True)  # a static table: its verdicts wrap, never cut

plot, _ = st.columns([1, 1], gap="large")
with plot:
    if (run_dir / DICE_PNG).is_file():
        widgets.image((run_dir / DICE_PNG).read_bytes(), "Per-case volume Dice of each arm (dice.png)")
    else:
        st.warning(f"No {DICE_PNG} beside the report.", icon=":material/image_not_supported:")
st.table(folds_table(report), hide_index=True)
try:
    markdown = (run_dir / REPORT_MD).read_text(encoding="utf-8")
except (OSError, UnicodeDecodeError):
    st.warning(f"No readable {REPORT_MD} beside the report.", icon=":material/description:")
else:
    with st.expander("report.md (the same, as text to paste)", icon=":material/description:"):
        st.code(markdown, language="markdown", wrap_lines=True)
