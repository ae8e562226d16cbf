"""Compose's "compare with the original seamlessClone" switch (issue 13): the current recipe
blended both ways, side by side with both quality reports; where OpenCV raises, Compose says so.

Real app (AppTest over ``app.py``), real PNGs and SQLite in tmp_path (fixtures of ``test_app``).
"""

from __future__ import annotations

import re
from dataclasses import replace

from streamlit.testing.v1 import AppTest

from poissonblend.dataset import open_dataset
from poissonblend.recipe import Recipe, render
from test_app import app, dataset_dirs, db_path, run  # noqa: F401
from ui import widgets


def contrasts(at: AppTest) -> list[str]:
    """The "Contrast kept" figures of the quality summaries on screen, in order."""
    found = (re.search(r"Contrast kept \*\*([^*]+)\*\*", m.value) for m in at.markdown)
    return [f.group(1) for f in found if f]


def test_compare_shows_both_methods_with_their_quality(app: AppTest, dataset_dirs):
    assert len(contrasts(app)) == 1
    images = len(app.image)
    run(app.toggle(key="c_compare").set_value(True))
    assert any("original `cv2.seamlessClone`" in m.value for m in app.markdown)
    assert len(app.image) == images + 4  # result + close-up, each method
    kept = contrasts(app)
    assert len(kept) == 3  # the preview's report, then poissonblend's and seamlessClone's
    # the numbers are those of the library's two renders of the recipe on screen
    ss = app.session_state
    dataset = open_dataset(*dataset_dirs)
    recipe = Recipe(ss["c_source"], int(ss["c_lesion"]), ss["c_target"], *map(int, ss["c_spot"]),
                    ss["c_mode"], float(ss["c_scale"]), float(ss["c_rotation"]),
                    bool(ss["c_flip_h"]), bool(ss["c_flip_v"]), int(ss["c_margin"]))
    _, fmt, _ = widgets.QUALITY_HELP["contrast_transferred"]
    expected = [fmt.format(render(dataset, replace(recipe, method=m)).quality.contrast_transferred)
                for m in ("poissonblend", "opencv")]
    assert kept[1:] == expected
    assert kept[0] == kept[1]
    run(app.toggle(key="c_compare").set_value(False))
    assert len(contrasts(app)) == 1 and len(app.image) == images


def test_where_opencv_raises_compose_says_so(app: AppTest):
    run(app.selectbox(key="c_source").set_value("slice_0009_0000.png"))
    run(app.radio(key="c_lesion").set_value(1))  # the small lesion
    app.session_state["c_scale"] = 0.25           # ... made tinier: a 1-2 px box
    app.session_state["c_spot"] = None
    run(app)
    images = len(app.image)
    run(app.toggle(key="c_compare").set_value(True))
    assert any("OpenCV's seamlessClone cannot blend this recipe" in w.value and "px lesion box"
               in w.value for w in app.warning), [w.value for w in app.warning]
    assert len(contrasts(app)) == 1 and len(app.image) == images  # poissonblend's preview stays
