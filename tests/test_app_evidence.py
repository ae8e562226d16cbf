"""The Evidence page (issue 14): the ablation reports under the app data folder — the arms'
table, dice.png and report.md — read with ``poissonblend.ablate.report``; Keras never imported.

The reports are made by the library (``build_report`` over per-case Dice drawn with a fixed
seed, ``write_report``), in tmp_path, beside a config.json as ``ablate`` leaves them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from streamlit.testing.v1 import AppTest

from poissonblend.ablate.config import AblationConfig
from poissonblend.ablate.data import Fold
from poissonblend.ablate.report import build_report, load_report, verdict, write_report
from poissonblend.ablate.run import ArmResult
from test_app import ROOT, app, dataset_dirs, db_path, goto, run  # noqa: F401

ARMS = ("none", "poissonblend", "opencv")


def make_run(out_dir: Path, *, seed: int, lift: float) -> dict:
    """A finished two-fold run over 8 cases: `lift` is added to poissonblend's per-case Dice."""
    rng = np.random.default_rng(seed)
    cases = [f"{k:04d}" for k in range(8)]
    folds = (Fold(tuple(cases[4:]), tuple(cases[:4])), Fold(tuple(cases[:4]), tuple(cases[4:])))
    config = AblationConfig(arms=ARMS, folds=2, epochs=3, seed=seed)
    results = {}
    for k, fold in enumerate(folds):
        base = rng.uniform(0.3, 0.6, len(fold.test))
        for arm in ARMS:
            dice = base + (lift if arm == "poissonblend" else 0.0) + rng.normal(0, 0.02, len(fold.test))
            results[k, arm] = ArmResult(dict(zip(fold.test, np.clip(dice, 0, 1).tolist())),
                                        train_slices=40, samples=0 if arm == "none" else 24,
                                        steps=30, seconds=12.0)
    identity = {"settings": config.to_dict(), "holdout": [],
                "dataset": {"input_dir": "/data/set/input", "mask_dir": "/data/set/mask",
                            "identity": "x"}, "db": None}
    samples = [{arm: f"fold{k + 1}/{arm}/manifest.csv" for arm in ARMS if arm != "none"}
               for k in range(2)]
    report = build_report(folds, results, config, identity=identity, samples=samples)
    out_dir.mkdir(parents=True)
    (out_dir / "config.json").write_text(json.dumps(identity))
    write_report(out_dir, report)
    return report


def test_no_report_says_how_to_make_one(app: AppTest, tmp_path: Path):
    goto(app, "evidence")
    assert any("No ablation report under the data folder" in i.value and "ablate" in i.value
               for i in app.info)


def test_reports_are_listed_and_shown(app: AppTest, tmp_path: Path):
    data = tmp_path / "data"
    old = make_run(data / "ablation" / "first", seed=1, lift=0.0)
    os.utime(data / "ablation" / "first" / "report.json", (1_700_000_000, 1_700_000_000))
    new = make_run(data / "ablation" / "second", seed=2, lift=0.2)
    (data / "ablation" / "stray").mkdir()
    (data / "ablation" / "stray" / "report.json").write_text("{}")  # no config.json: not listed
    goto(app, "evidence")
    box = app.selectbox(key="ev_report")
    assert len(box.options) == 2 and box.options[0].startswith("ablation/second · ")
    assert Path(box.value).parent.name == "second"  # the newest first
    table = app.table[0].value
    assert list(table["arm"]) == list(ARMS)
    assert list(table["mean case Dice"]) == [f"{new['arms'][a]['mean_dice']:.3f}" for a in ARMS]
    assert table["vs none"][0] == "—"
    assert table["verdict"][1] == verdict(new["arms"]["poissonblend"]["vs_none"])
    assert "higher than none" in table["verdict"][1]
    assert len(app.image) == 1  # dice.png
    folds = app.table[1].value
    assert list(folds["fold"]) == [1, 2]
    assert list(folds["test cases"]) == [", ".join(f["test"]) for f in new["folds"]]
    assert list(folds["steps per arm"]) == [f["steps"] for f in new["folds"]]
    assert app.code[0].value.startswith("# Ablation report")  # report.md, to copy
    # the older report
    run(box.set_value(str(data / "ablation" / "first" / "report.json")))
    table = app.table[0].value
    assert list(table["mean case Dice"]) == [f"{old['arms'][a]['mean_dice']:.3f}" for a in ARMS]
    assert load_report(data / "ablation" / "first") == old


def test_a_broken_report_is_one_error_line(app: AppTest, tmp_path: Path):
    broken = tmp_path / "data" / "ablation" / "broken"
    broken.mkdir(parents=True)
    (broken / "config.json").write_text("{}")
    (broken / "report.json").write_text("{not json")
    goto(app, "evidence")
    assert any("unreadable report" in e.value for e in app.error)


def test_the_page_never_imports_keras(tmp_path: Path, dataset_dirs):
    make_run(tmp_path / "data" / "ablation" / "run", seed=3, lift=0.1)
    script = f"""
import sys
from streamlit.testing.v1 import AppTest
sys.path.insert(0, {str(ROOT)!r})
at = AppTest.from_file({str(ROOT / "app.py")!r}, default_timeout=60)
at.session_state["cfg_data_dir"] = {str(tmp_path / "data")!r}
at.session_state["cfg_cli"] = {{"input_dir": {str(dataset_dirs[0])!r},
                               "mask_dir": {str(dataset_dirs[1])!r}, "db": {str(tmp_path / "r.db")!r}}}
at.run()
at.switch_page("app_pages/evidence.py")
at.run()
assert not at.exception, at.exception
assert at.table, "no table"
print(sorted(m for m in sys.modules if m.split(".")[0] in ("keras", "jax", "jaxlib", "tensorflow", "torch")))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                         cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"
