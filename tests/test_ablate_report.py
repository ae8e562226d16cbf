"""The ablation report: shape of report.json, report.md, dice.png, reading reports back."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from poissonblend.ablate.config import AblationConfig
from poissonblend.ablate.data import Fold
from poissonblend.ablate.report import build_report, list_reports, load_report, write_report
from poissonblend.ablate.run import ArmResult
from poissonblend.errors import AblationError

FOLDS = (Fold(("c", "d"), ("a", "b")), Fold(("a", "b"), ("c", "d")))
DICE = {"none": {"a": 0.5, "b": 0.6, "c": 0.7, "d": 0.0},
        "poissonblend": {"a": 0.6, "b": 0.7, "c": 0.8, "d": 0.1}}


def _report(arms=("none", "poissonblend")) -> dict:
    config = AblationConfig(arms=arms)
    results = {(k, arm): ArmResult({c: DICE[arm][c] for c in fold.test}, 20, 0 if arm == "none" else 12,
                                   30, 4.5)
               for k, fold in enumerate(FOLDS) for arm in arms}
    identity = {"settings": config.to_dict(), "holdout": [], "db": None,
                "dataset": {"input_dir": "/data/input", "mask_dir": "/data/mask", "identity": "x"}}
    samples = [{"poissonblend": f"fold{k + 1}/poissonblend/manifest.csv"} for k in range(2)]
    return build_report(FOLDS, results, config, identity=identity, samples=samples)


def test_report_has_the_issue_shape_and_known_numbers():
    report = _report()
    assert set(report) == {"arms", "folds", "config"}
    none, pb = report["arms"]["none"], report["arms"]["poissonblend"]
    assert set(none) == {"mean_dice", "ci95", "per_case", "vs_none"} and none["vs_none"] is None
    assert none["per_case"] == DICE["none"] and none["mean_dice"] == pytest.approx(0.45)
    assert pb["mean_dice"] == pytest.approx(0.55)
    assert pb["vs_none"]["mean_difference"] == pytest.approx(0.1)
    assert pb["vs_none"]["ci95"] == pytest.approx([0.1, 0.1]) and not pb["vs_none"]["ci_includes_zero"]
    assert report["folds"][0]["train"] == ["c", "d"] and report["folds"][0]["test"] == ["a", "b"]
    assert report["folds"][1]["samples"] == {"poissonblend": "fold2/poissonblend/manifest.csv"}
    assert report["config"]["arms"] == ["none", "poissonblend"] and report["config"]["seed"] == 0
    json.dumps(report)  # plain JSON types


def test_report_needs_every_fold_and_arm():
    config = AblationConfig()
    with pytest.raises(AblationError, match="no result yet for fold 1 none"):
        build_report(FOLDS, {}, config, identity={"settings": {}}, samples=[{}, {}])


def test_write_report_then_list_and_load_it(tmp_path):
    run = tmp_path / "runs" / "demo"
    run.mkdir(parents=True)
    (run / "config.json").write_text("{}")
    json_path, md_path, png_path = write_report(run, _report())
    assert load_report(json_path) == load_report(run) == json.loads(json_path.read_text())
    md = md_path.read_text()
    assert "| poissonblend | 0.550 |" in md and "+0.100" in md and "CI excludes 0" in md
    image = cv2.imread(str(png_path), cv2.IMREAD_COLOR)
    assert image is not None and image.shape == (440, 720, 3)
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 10  # something is drawn
    (tmp_path / "runs" / "stray").mkdir()
    (tmp_path / "runs" / "stray" / "report.json").write_text("{}")  # no config.json: not a run
    assert list_reports(tmp_path) == [json_path]
    assert list_reports(tmp_path / "missing") == []


def test_markdown_says_plainly_when_a_ci_includes_zero(tmp_path):
    report = _report()
    report["arms"]["poissonblend"]["vs_none"].update(ci95=[-0.05, 0.2], ci_includes_zero=True)
    _, md_path, _ = write_report(tmp_path, report)
    assert "the 95 % CI includes 0: no evidence of a difference on this data" in md_path.read_text()


@pytest.mark.parametrize("content, message", [
    (None, "no ablation report there"),
    ("{not json", "unreadable report"),
    ('{"arms": {}}', "not an ablation report"),
])
def test_load_report_invalid_input(tmp_path, content, message):
    path = tmp_path / "report.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(AblationError, match=message):
        load_report(path)
