"""The ablation end to end: samples never touch a test case, the model learns on the demo
set, the same seed gives the same report, a killed run resumes, Ctrl-C stops cleanly.

The training tests run the real U-Net (Keras on JAX, CPU) in the suite's quick settings:
the demo set at 48 px, the default U-Net, 2 folds of 16 epochs (48 optimiser steps per arm).
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import TEST_SEEDS, make_training_set
from poissonblend.ablate.config import AblationConfig
from poissonblend.ablate.data import case_folds
from poissonblend.ablate.run import RESULT_NAME, fold_dir, prepare_samples
from poissonblend.cli import main
from poissonblend.dataset import open_dataset
from poissonblend.demo import make_demo, scanner_slices, write_slices
from poissonblend.store import Store

ROOT = Path(__file__).resolve().parents[1]
QUICK = ["--epochs", "16", "--samples-per-case", "3", "--seed", "5"]
HELD_OUT = "0008"
MIN_BASELINE_DICE = 0.4
"""Calibrated: these settings reach a baseline mean case Dice of 0.66 (8 epochs: 0.41); before the
output bias started at the lesion prior, the network often died in its first steps (0.00-0.14)."""


def _manifest_rows(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _accepted_db(dataset, path: Path) -> Path:
    store = Store.open(path, dataset)
    candidates = store.queue(30, seed=1)
    store.decide_many([c.id for c in candidates[::2]], "accepted")
    return path


@pytest.mark.parametrize("seed", TEST_SEEDS)
def test_no_augmented_sample_touches_a_test_or_held_out_case(tmp_path, seed):
    input_dir, mask_dir = make_training_set(tmp_path / "set", cases=5, slices=4, seed=seed)
    dataset = open_dataset(input_dir, mask_dir)
    db = _accepted_db(dataset, tmp_path / "review.db")
    holdout = {sorted(dataset.case_ids)[seed % 5]}
    config = AblationConfig(arms=("none", "poissonblend", "opencv", "accepted"), folds=2, samples_per_case=8,
                            seed=seed)
    folds = case_folds(dataset.case_ids - holdout, folds=2, rng=seed)
    prepare_samples(dataset, folds, tmp_path / "run", config, store_path=db)
    accepted = {c.case_id: c for c in Store.open(db, dataset).candidates(state="accepted")}
    for k, fold in enumerate(folds):
        assert not holdout & (set(fold.train) | set(fold.test))
        generated = []
        for method in ("poissonblend", "opencv"):
            rows = _manifest_rows(fold_dir(tmp_path / "run", k) / method / "manifest.csv")
            assert len(rows) >= 0.9 * 8 * len(fold.train)  # a few draws may repeat
            assert {r["method"] for r in rows} == {method}
            generated += rows
        acc = _manifest_rows(fold_dir(tmp_path / "run", k) / "accepted" / "manifest.csv")
        for row in generated + acc:
            assert {row["source_case"], row["target_case"]} <= set(fold.train)
            assert row["source_case"] == row["source_file"].split("_")[1]
            assert row["target_case"] == row["target_file"].split("_")[1]
        expected = {cid for cid, c in accepted.items()
                    if {c.recipe.source.split("_")[1], c.recipe.target.split("_")[1]} <= set(fold.train)}
        assert {r["case_id"] for r in acc} == expected  # every usable accepted candidate, no other
        folder = fold_dir(tmp_path / "run", k) / "accepted" / "input"
        assert sorted(p.name for p in folder.iterdir()) == sorted(f"slice_{c}_0000.png" for c in expected)


@pytest.fixture(scope="module")
def demo48(tmp_path_factory) -> tuple[Path, Path]:
    return make_demo(tmp_path_factory.mktemp("demo48"), size=48)


@pytest.fixture(scope="module")
def quick_run(demo48, tmp_path_factory) -> Path:
    """One uninterrupted quick run of every arm (the default with --db).

    In a process of its own, like every training run here: JAX's threads must not start in
    the test process, which forks (``generate`` workers) in other tests.
    """
    root = tmp_path_factory.mktemp("ablate")
    input_dir, mask_dir = demo48
    _accepted_db(open_dataset(input_dir, mask_dir), root / "review.db")
    (root / "holdout.txt").write_text(f"{HELD_OUT}  # the user's own final test case\n")
    out = root / "run"
    proc = _start(_argv(input_dir, mask_dir, out, root), cache=root / "cache")
    _, err = proc.communicate(timeout=1200)
    assert proc.returncode == 0, err
    return out


def _argv(input_dir: Path, mask_dir: Path, out: Path, root: Path, *extra: str) -> list[str]:
    return ["--input-dir", str(input_dir), "--mask-dir", str(mask_dir), "--out", str(out),
            "--db", str(root / "review.db"), "--holdout", str(root / "holdout.txt"), *QUICK, *extra]


def test_a_quick_run_learns_and_writes_the_report(quick_run, capsys):
    report = json.loads((quick_run / "report.json").read_text())
    assert set(report) == {"arms", "folds", "config"}
    assert list(report["arms"]) == ["none", "poissonblend", "opencv", "accepted"]
    assert report["arms"]["none"]["mean_dice"] > MIN_BASELINE_DICE
    cases = {f"{i:04d}" for i in range(1, 9)} - {HELD_OUT}  # the held-out case is nowhere
    for arm in report["arms"].values():
        assert set(arm["per_case"]) == cases and all(0 <= d <= 1 for d in arm["per_case"].values())
        assert arm["ci95"][0] <= arm["mean_dice"] <= arm["ci95"][1]
    assert sorted(c for f in report["folds"] for c in f["test"]) == sorted(cases)
    for fold in report["folds"]:
        for arm, rel in fold["samples"].items():
            rows = _manifest_rows(quick_run / rel)
            assert all({r["source_case"], r["target_case"]} <= set(fold["train"]) for r in rows)
        assert HELD_OUT not in fold["train"]
    assert report["config"]["holdout"] == [HELD_OUT]
    assert (quick_run / "dice.png").stat().st_size > 1000
    assert "| none |" in (quick_run / "report.md").read_text()


def _same_results(a: dict, b: dict) -> None:
    """The arms of `a` scored as in `b`; the same folds, slices and steps."""
    assert {arm: b["arms"][arm] for arm in a["arms"]} == a["arms"]
    same = ("train", "test", "steps", "train_slices")
    assert [{k: f[k] for k in same} for f in a["folds"]] == [{k: f[k] for k in same} for f in b["folds"]]


def _start(argv: list[str], *, cache: Path) -> subprocess.Popen:
    """`ablate` in a new process that reacts to SIGINT as in a terminal (a background job of a
    non-interactive shell would inherit SIGINT ignored); lesion index and compiled programs
    cached in `cache`."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XDG_CACHE_HOME": str(cache)}
    return subprocess.Popen([sys.executable, "-m", "poissonblend", "ablate", *argv], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 600) -> None:
    end = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < end, f"{path} did not appear"
        time.sleep(0.2)


def test_killed_then_interrupted_run_resumes_to_the_same_report(quick_run, demo48, tmp_path):
    """SIGKILL after the first result, Ctrl-C after the second, then finish in a third process:
    each arm scores exactly as in the uninterrupted run (same seed, same report), and no
    finished fold/arm was trained again."""
    input_dir, mask_dir = demo48
    out = tmp_path / "run"
    argv = _argv(input_dir, mask_dir, out, quick_run.parent, "--arms", "none,poissonblend")
    first, second = (fold_dir(out, 0) / arm / RESULT_NAME for arm in ("none", "poissonblend"))

    proc = _start(argv, cache=quick_run.parent / "cache")
    _wait_for(first, proc)
    proc.kill()
    proc.wait()
    assert not (out / "report.json").exists()
    kept = (first.read_bytes(), first.stat().st_mtime_ns)

    proc = _start(argv, cache=quick_run.parent / "cache")
    _wait_for(second, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "stopped: finished fold/arm results are kept" in err
    assert err.rstrip().endswith("error: interrupted")
    assert "fold 1/2 none: " not in err  # resumed after it

    proc = _start(argv, cache=quick_run.parent / "cache")
    out_text, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, err
    assert "fold 1/2 none: " not in err and "fold 1/2 poissonblend: " not in err
    assert "fold 2/2 none: " in err and "fold 2/2 poissonblend: " in err
    assert (first.read_bytes(), first.stat().st_mtime_ns) == kept
    assert "none: mean case Dice" in out_text
    resumed = json.loads((out / "report.json").read_text())
    _same_results(resumed, json.loads((quick_run / "report.json").read_text()))


def _one_error_line(err: str, text: str) -> None:
    assert "Traceback" not in err
    assert err.count("\n") == 1 and err.startswith("error: ") and text in err, err


@pytest.mark.parametrize("extra, message", [
    (["--arms", "none,foo"], "unknown arm(s) foo"),
    (["--arms", "poissonblend"], "must include the baseline 'none'"),
    (["--arms", "none,accepted"], "the 'accepted' arm needs a review database (--db)"),
    (["--folds", "1"], "folds 1 must be an integer >= 2"),
    (["--folds", "9"], "8 case(s) cannot make 9 folds"),
    (["--epochs", "0"], "epochs 0 must be an integer >= 1"),
    (["--empty-fraction", "1.5"], "empty fraction 1.5"),
    (["--base-filters", "0"], "base filters 0"),
    (["--holdout", "/nonexistent/holdout.txt"], "cannot read held-out file /nonexistent/holdout.txt"),
])
def test_ablate_invalid_input(demo48, tmp_path, capsys, extra, message):
    input_dir, mask_dir = demo48
    code = main(["ablate", "--input-dir", str(input_dir), "--mask-dir", str(mask_dir),
                 "--out", str(tmp_path / "run"), *extra])
    assert code == 2
    _one_error_line(capsys.readouterr().err, message)


def test_ablate_refuses_a_foreign_folder_and_other_settings(demo48, quick_run, tmp_path, capsys):
    input_dir, mask_dir = demo48
    common = ["ablate", "--input-dir", str(input_dir), "--mask-dir", str(mask_dir)]
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    assert main([*common, "--out", str(tmp_path / "mine")]) == 2
    _one_error_line(capsys.readouterr().err, "is not empty and holds no ablation run")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
    before = (quick_run / "report.json").read_bytes()
    assert main([*common, "--out", str(quick_run), "--arms", "none", "--epochs", "3"]) == 2
    _one_error_line(capsys.readouterr().err, "holds a run with other settings or data (db, holdout, settings")
    assert (quick_run / "report.json").read_bytes() == before
    holdout = tmp_path / "holdout.txt"
    holdout.write_text("# cases kept for the final test\n0002 0003\n")
    assert main([*common, "--out", str(tmp_path / "h"), "--holdout", str(holdout)]) == 2
    _one_error_line(capsys.readouterr().err, "line 2: '0002 0003' holds more than one case id")


def test_only_training_imports_keras(tmp_path):
    """Other commands, the ablate parser and the report reader (the app's) never load Keras or JAX."""
    code = ("import sys; from poissonblend.cli import build_parser, main; build_parser(['ablate']); "
            "import poissonblend.ablate.run, poissonblend.ablate.report; "
            f"assert main(['demo', '--out', {str(tmp_path / 'demo')!r}]) == 0; "
            "assert 'keras' not in sys.modules and 'jax' not in sys.modules, 'keras loaded'")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True,
                   env={**os.environ, "PYTHONPATH": str(ROOT)})



ABLATE_REPORTING_ITS_FIRST_STEP = r'''
import sys
from poissonblend.cli import main
from poissonblend.commands import ablate

report = ablate._Bars.__call__
def first_step(self, label, done, total):
    if done == 1:
        print("training", flush=True)
    report(self, label, done, total)
ablate._Bars.__call__ = first_step
sys.exit(main(sys.argv[1:]))
'''
"""``python -m poissonblend`` that also prints "training" once its first optimiser step is done."""


def test_sigterm_stops_a_training_run(tmp_path):
    """``kill`` (SIGTERM) during training stops `ablate` as Ctrl-C does, within seconds: exit 130,
    results kept. A KeyboardInterrupt raised while a step runs used to be lost (JAX checks for
    signals inside NumPy's conversion of the step's result, which drops the error), and a killed
    run trained on for 20 minutes."""
    input_dir, mask_dir = write_slices(tmp_path / "set", scanner_slices(cases=2, slices=12, sizes=(112,)))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    argv = ["ablate", "--input-dir", str(input_dir), "--mask-dir", str(mask_dir), "--out",
            str(tmp_path / "run"), "--arms", "none", "--epochs", "10000"]
    proc = subprocess.Popen([sys.executable, "-c", ABLATE_REPORTING_ITS_FIRST_STEP, *argv], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "training\n", proc.communicate()
        time.sleep(2)  # a few steps on
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "stopped: finished fold/arm results are kept" in err
