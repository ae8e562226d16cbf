"""Plausible samples in the app (issue 10): Compose starts on a level-matched target of typical
tissue area from another case, shows both levels, warns when the lesion did not visibly arrive;
Review's queue form takes the level, size and target-tissue limits.

Real app (AppTest over ``app.py``), real PNGs and SQLite in tmp_path (fixtures of ``test_app``).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from streamlit.testing.v1 import AppTest

from conftest import write_slice
from poissonblend.dataset import open_dataset
from poissonblend.recipe import default_target
from test_app import ROOT, TIMEOUT, app, dataset_dirs, db_path, goto, run, store_of  # noqa: F401
from ui import holdout


def level_captions(at: AppTest) -> list[str]:
    return [c.value for c in at.caption if c.value.lstrip(":orange[").startswith("Level ")]


def test_compose_starts_on_a_level_matched_target_of_another_case(app: AppTest, dataset_dirs):
    dataset = open_dataset(*dataset_dirs)
    ss = app.session_state
    source, target = dataset.info(ss["c_source"]), dataset.info(ss["c_target"])
    assert ss["c_target"] == default_target(dataset, ss["c_source"])
    nearest = min(abs(s.level - source.level) for s in dataset.slices
                  if s.case_id != source.case_id and s.brain_area)
    assert target.case_id != source.case_id
    assert abs(target.level - source.level) <= max(0.15, nearest)  # (the nearest if none within)
    src_caption, tgt_caption = level_captions(app)
    assert src_caption.startswith(f"Level {source.level:.2f} in its case")
    assert f"Level {target.level:.2f} · {abs(target.level - source.level):.2f} from the source's" in tgt_caption
    assert any("Level shift **" in m.value for m in app.markdown)  # in the quality summary
    # holding out the target's case: the default moves to another case, still level-matched
    app.text_area(key=holdout.TEXT).input(target.case_id)
    run(app.button(key=holdout.SAVE).click())
    moved = dataset.info(ss["c_target"])
    assert moved.case_id not in {target.case_id}
    assert ss["c_target"] == default_target(dataset, ss["c_source"], holdout=frozenset({target.case_id}))
    # a target far up the head: the level caption says so
    far = max((s for s in dataset.slices if s.brain_area and s.case_id != target.case_id),
              key=lambda s: abs(s.level - source.level))
    run(app.selectbox(key="c_target").set_value(far.name))
    assert "more than 0.15, the lesion moves up or down the head" in level_captions(app)[1]
    one, other = sorted({"0000", "0001", "0002"} - {target.case_id})  # 4 slices each
    run(app.selectbox(key="c_source").set_value(f"slice_{one}_0000.png"))    # level 0
    run(app.selectbox(key="c_target").set_value(f"slice_{other}_0000.png"))  # level 0
    assert level_captions(app)[1] == "Level 0.00 · 0.00 from the source's"


def faint_set(root: Path) -> tuple[Path, Path]:
    """Two cases of three noise-free slices, tissue a gentle left-right ramp (so the input
    does not look like masks); case 0000's middle slice has a lesion only 2 grey levels brighter
    than its tissue (it cannot arrive visibly)."""
    input_dir, mask_dir = root / "input", root / "mask"
    yy, xx = np.mgrid[:112, :112]
    brain = ((yy - 56) / 45) ** 2 + ((xx - 56) / 38) ** 2 < 1
    for case in range(2):
        for z in range(3):
            image = np.where(brain, 80.0 + np.round(xx / 8.0), 0.0)
            mask = np.zeros((112, 112), np.uint8)
            if case == 0 and z == 1:
                lesion = (yy - 50) ** 2 + (xx - 50) ** 2 < 36
                image[lesion] += 2
                mask[lesion] = 255
            write_slice(input_dir, mask_dir, f"slice_{case:04d}_{z:04d}.png", image, mask)
    return input_dir, mask_dir


def test_compose_warns_when_the_lesion_did_not_visibly_arrive(tmp_path: Path):
    input_dir, mask_dir = faint_set(tmp_path / "faint")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.session_state["cfg_data_dir"] = str(tmp_path / "data")
    at.session_state["cfg_cli"] = {"input_dir": str(input_dir), "mask_dir": str(mask_dir),
                                   "db": str(tmp_path / "faint.db")}
    run(at)
    assert at.session_state["c_source"] == "slice_0000_0001.png"
    assert at.session_state["c_target"] == "slice_0001_0001.png"  # same level, other case
    at.session_state["c_spot"] = (56, 56)  # mid-tissue, away from the brain's border
    run(at)
    warnings = [w.value for w in at.warning]
    assert any(w.startswith("The lesion did not visibly arrive: only ") for w in warnings), warnings
    changed = [re.search(r"Changed \*\*(\d+)%\*\*", m.value) for m in at.markdown]
    changed = [int(found.group(1)) for found in changed if found]  # the quality summary's figure
    assert changed and changed[0] < 75


def test_review_queue_takes_the_plausibility_limits(app: AppTest, dataset_dirs, db_path):
    goto(app, "review")
    app.slider(key="r_queue_level_shift").set_value(0.0)
    app.slider(key="r_queue_lesion_fraction").set_value(0.05)
    app.number_input(key="r_queue_n").set_value(12)
    run(app.button(key="r_queue_go").click())
    dataset = open_dataset(*dataset_dirs)
    got = store_of(dataset_dirs, db_path).candidates()
    assert len(got) == 12
    for c in got:
        assert dataset.info(c.recipe.target).level == dataset.info(c.recipe.source).level
        assert c.quality["level_shift"] == 0.0 and c.quality["tissue_ratio"] <= 0.05


def test_review_queue_any_level(app: AppTest, dataset_dirs, db_path):
    goto(app, "review")
    app.toggle(key="r_queue_any_level").set_value(True)
    app.number_input(key="r_queue_n").set_value(40)
    run(app.button(key="r_queue_go").click())
    shifts = [c.quality["level_shift"] for c in store_of(dataset_dirs, db_path).candidates()]
    assert len(shifts) == 40 and max(shifts) > 0.15  # lesions move across levels too
