"""The ablation's report: report.json, report.md, dice.png; and reading reports back.

``report.json``::

    {"arms": {ARM: {"mean_dice": x, "ci95": [lo, hi], "per_case": {CASE_ID: dice},
                    "vs_none": {"mean_difference", "ci95", "cases", "better", "worse",
                                "ci_includes_zero"} or null for "none"}},
     "folds": [{"train": [CASE_ID…], "test": [CASE_ID…], "samples": {ARM: "fold1/ARM/manifest.csv"},
                "seconds": {ARM: s}, "steps": n, "train_slices": n, "added_samples": {ARM: n}}],
     "config": {settings…, "holdout": [...], "dataset": {...}, "db": path or null}}

No Keras here: the app reads reports with :func:`list_reports` and :func:`load_report`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import cv2
import numpy as np

from ..errors import AblationError
from ..io import atomic_write_bytes, encode_png
from .config import BASELINE, BOOTSTRAP_STREAM
from .stats import CONFIDENCE, arm_summary, paired_difference

REPORT_JSON = "report.json"
REPORT_MD = "report.md"
DICE_PNG = "dice.png"


def build_report(folds: Sequence, results: Mapping, config, *, identity: dict,
                 samples: Sequence[Mapping[str, str]]) -> dict:
    """The report of a finished run.

    Parameters
    ----------
    folds : sequence of Fold
    results : dict of (fold index, arm) to ArmResult
        Every fold and arm of `config` (see :func:`~poissonblend.ablate.run.load_results`).
    config : AblationConfig
    identity : dict
        Settings, hold-out, dataset and database of the run (its config.json).
    samples : sequence of dict of arm to str
        Per fold, each augmented arm's manifest path relative to the run folder.
    """
    missing = [f"fold {k + 1} {a}" for k in range(len(folds)) for a in config.arms if (k, a) not in results]
    if missing:
        raise AblationError(f"no result yet for {', '.join(missing)}")
    arms = {}
    for i, arm in enumerate(config.arms):
        per_case = {c: d for k in range(len(folds)) for c, d in sorted(results[k, arm].per_case.items())}
        arms[arm] = {**arm_summary(per_case, rng=[config.seed, BOOTSTRAP_STREAM, i, 0]), "per_case": per_case}
    base = arms[BASELINE]["per_case"]
    for i, arm in enumerate(config.arms):
        arms[arm]["vs_none"] = None if arm == BASELINE else paired_difference(
            arms[arm]["per_case"], base, rng=[config.seed, BOOTSTRAP_STREAM, i, 1])
    fold_entries = [{**fold.to_dict(), "samples": dict(samples[k]),
                     "seconds": {a: results[k, a].seconds for a in config.arms},
                     "steps": results[k, config.arms[0]].steps,
                     "train_slices": results[k, config.arms[0]].train_slices,
                     "added_samples": {a: results[k, a].samples for a in config.arms}}
                    for k, fold in enumerate(folds)]
    run = {k: v for k, v in identity.items() if k != "settings"}
    return {"arms": arms, "folds": fold_entries, "config": {**identity["settings"], **run}}


def _fmt_ci(ci: Sequence[float]) -> str:
    return f"[{ci[0]:.3f}, {ci[1]:.3f}]"


def verdict(vs_none: Mapping) -> str:
    """One plain sentence on a paired difference to ``none``."""
    lo, hi = vs_none["ci95"]
    if vs_none["ci_includes_zero"]:
        return "the 95 % CI includes 0: no evidence of a difference on this data"
    return f"{'higher' if lo > 0 else 'lower'} than none: the 95 % CI excludes 0"


def report_markdown(report: Mapping) -> str:
    """report.md: the arms' table, the paired differences in words, the folds and settings."""
    cfg = report["config"]
    folds = report["folds"]
    n_cases = len(next(iter(report["arms"].values()))["per_case"])
    seconds = sum(sum(f["seconds"].values()) for f in folds)
    lines = ["# Ablation report", "",
             f"{n_cases} test cases in {len(folds)} case-level folds of "
             f"`{cfg['dataset']['input_dir']}`; {cfg['epochs']} epochs "
             f"({folds[0]['steps']} optimiser steps per arm in fold 1, batch {cfg['batch_size']}), "
             f"U-Net of {cfg['model']['base_filters']} base filters × {cfg['model']['levels']} levels, "
             f"seed {cfg['seed']}; training and scoring took {seconds / 60:.1f} min.", "",
             f"| arm | mean case Dice | {CONFIDENCE:.0%} CI | vs none (paired) | {CONFIDENCE:.0%} CI "
             "| better / worse cases |",
             "|---|---|---|---|---|---|"]
    for arm, a in report["arms"].items():
        d = a["vs_none"]
        rest = ("—", "—", "—") if d is None else (f"{d['mean_difference']:+.3f}", _fmt_ci(d["ci95"]),
                                                  f"{d['better']} / {d['worse']} of {d['cases']}")
        lines.append(f"| {arm} | {a['mean_dice']:.3f} | {_fmt_ci(a['ci95'])} | {' | '.join(rest)} |")
    lines.append("")
    for arm, a in report["arms"].items():
        if a["vs_none"] is not None:
            lines.append(f"- **{arm}**: {verdict(a['vs_none'])}.")
    lines += ["", "Per-case volume Dice (a case with no lesion and no prediction counts 1); CIs are "
              "percentile bootstraps over cases.", "",
              "| fold | train cases | test cases | original slices | added samples | seconds |",
              "|---|---|---|---|---|---|"]
    for k, f in enumerate(folds):
        added = ", ".join(f"{a} {n}" for a, n in f["added_samples"].items() if a != BASELINE) or "—"
        secs = ", ".join(f"{a} {s:.0f}" for a, s in f["seconds"].items())
        lines.append(f"| {k + 1} | {len(f['train'])} | {', '.join(f['test'])} | {f['train_slices']} | "
                     f"{added} | {secs} |")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- the plot

_W, _H = 720, 440
_LEFT, _RIGHT, _TOP, _BOTTOM = 70, 30, 40, 60
_COLOURS_BGR = [(180, 119, 31), (14, 127, 255), (44, 160, 44), (40, 39, 214)]


def dice_plot(report: Mapping) -> np.ndarray:
    """dice.png: each test case's Dice per arm, joined by a grey line; mean and CI per arm.

    Returns
    -------
    (440, 720, 3) ndarray of uint8
        BGR, drawn with OpenCV.
    """
    arms = list(report["arms"])
    img = np.full((_H, _W, 3), 255, np.uint8)
    x0, x1, y0, y1 = _LEFT, _W - _RIGHT, _TOP, _H - _BOTTOM
    font = cv2.FONT_HERSHEY_SIMPLEX

    def ypix(d: float) -> int:
        return int(round(y1 - d * (y1 - y0)))

    xs = [int(round(x0 + (k + 0.5) * (x1 - x0) / len(arms))) for k in range(len(arms))]
    for tick in np.linspace(0, 1, 6):
        y = ypix(tick)
        cv2.line(img, (x0, y), (x1, y), (225, 225, 225), 1)
        cv2.putText(img, f"{tick:.1f}", (x0 - 40, y + 5), font, 0.45, (60, 60, 60), 1, cv2.LINE_AA)
    cv2.rectangle(img, (x0, y0), (x1, y1), (120, 120, 120), 1)
    cv2.putText(img, "case Dice per arm (grey: one case; dot, bar: mean, 95% CI)", (x0, y0 - 14), font,
                0.5, (30, 30, 30), 1, cv2.LINE_AA)
    cases = sorted(report["arms"][arms[0]]["per_case"])
    for case in cases:
        pts = np.array([[x, ypix(report["arms"][a]["per_case"][case])] for x, a in zip(xs, arms)], np.int32)
        cv2.polylines(img, [pts], False, (190, 190, 190), 1, cv2.LINE_AA)
        for p in pts:
            cv2.circle(img, tuple(int(v) for v in p), 3, (150, 150, 150), -1, cv2.LINE_AA)
    for k, (x, arm) in enumerate(zip(xs, arms)):
        a, colour = report["arms"][arm], _COLOURS_BGR[k % len(_COLOURS_BGR)]
        lo, hi = a["ci95"]
        cv2.line(img, (x + 12, ypix(lo)), (x + 12, ypix(hi)), colour, 3, cv2.LINE_AA)
        cv2.circle(img, (x + 12, ypix(a["mean_dice"])), 7, colour, -1, cv2.LINE_AA)
        label = f"{arm} {a['mean_dice']:.2f}"
        (tw, _), _ = cv2.getTextSize(label, font, 0.55, 1)
        cv2.putText(img, label, (x - tw // 2, y1 + 30), font, 0.55, colour, 1, cv2.LINE_AA)
    return img


def write_report(out_dir: str | os.PathLike, report: Mapping) -> tuple[Path, Path, Path]:
    """Write report.json, report.md and dice.png into `out_dir`, each atomically."""
    out_dir = Path(out_dir)
    paths = out_dir / REPORT_JSON, out_dir / REPORT_MD, out_dir / DICE_PNG
    atomic_write_bytes(paths[0], (json.dumps(report, indent=2) + "\n").encode())
    atomic_write_bytes(paths[1], report_markdown(report).encode())
    atomic_write_bytes(paths[2], encode_png(dice_plot(report)))
    return paths


# ---------------------------------------------------------------- reading reports back


def list_reports(folder: str | os.PathLike) -> list[Path]:
    """Every ablation report.json under `folder` (any depth), newest first.

    A report.json counts when a config.json of an ablation sits beside it.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [p for p in folder.rglob(REPORT_JSON) if (p.parent / "config.json").is_file()]
    return sorted(found, key=lambda p: (-p.stat().st_mtime, str(p)))


def load_report(path: str | os.PathLike) -> dict:
    """Read a report.json (or the report of a run folder).

    Raises
    ------
    AblationError
        If it is missing, not JSON, or not an ablation report.
    """
    path = Path(path)
    if path.is_dir():
        path = path / REPORT_JSON
    try:
        report = json.loads(path.read_text())
    except FileNotFoundError:
        raise AblationError(f"{path}: no ablation report there (the run may not have finished)") from None
    except (OSError, ValueError) as exc:
        raise AblationError(f"{path}: unreadable report ({exc})") from None
    if not (isinstance(report, dict) and {"arms", "folds", "config"} <= set(report)
            and isinstance(report["arms"], dict) and BASELINE in report["arms"]):
        raise AblationError(f"{path}: not an ablation report")
    return report
