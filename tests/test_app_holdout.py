"""Held-out cases in the app (issue 13): set in the sidebar, stored in the review database,
left out by Compose's pickers and Review's queue; the queue form's method choice.

Real app (AppTest over ``app.py``), real SQLite file, real PNGs in tmp_path (fixtures of
``test_app``).
"""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from test_app import ROOT, TIMEOUT, app, dataset_dirs, db_path, goto, queue, run, store_of  # noqa: F401
from ui import context, holdout


def options_of(at: AppTest, key: str) -> list[str]:
    return list(at.selectbox(key=key).options)


def case_of(label: str) -> str:
    """The case id in a slice picker's label ``case 0001 · slice 2 · 1 lesion``."""
    return label.split(" · ")[0].removeprefix("case ")


def save_holdout(at: AppTest, text: str) -> AppTest:
    at.text_area(key=holdout.TEXT).input(text)
    return run(at.button(key=holdout.SAVE).click())


def test_sidebar_stores_the_split_and_compose_leaves_it_out(app: AppTest, dataset_dirs, db_path):
    def cases(key):
        return {case_of(label) for label in options_of(app, key)}

    assert cases("c_source") == {"0000", "0001", "0002", "0009"}
    save_holdout(app, "0001\n# the test split\n0009  # two lesions\n")
    assert store_of(dataset_dirs, db_path).holdout() == {"0001", "0009"}
    assert any("2 held-out case(s) saved" in s.value for s in app.sidebar.success)
    assert cases("c_source") == {"0000", "0002"}
    assert cases("c_target") == {"0000", "0002"}
    assert app.session_state["c_source"].split("_")[1] in {"0000", "0002"}
    assert any("2 held-out cases left out" in c.value for c in app.caption)
    # Accept stores a recipe that uses none of them
    run(app.button(key="c_accept").click())
    (candidate,) = store_of(dataset_dirs, db_path).candidates()
    assert {candidate.recipe.source_case, candidate.recipe.target_case} <= {"0000", "0002"}


def test_the_split_survives_a_restart_and_is_shown(app: AppTest, tmp_path: Path, dataset_dirs, db_path):
    save_holdout(app, "0002")
    again = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    again.session_state[context.DATA_DIR] = str(tmp_path / "data")
    again.session_state[context.CLI] = {"input_dir": str(dataset_dirs[0]),
                                        "mask_dir": str(dataset_dirs[1]), "db": str(db_path)}
    run(again)
    assert again.text_area(key=holdout.TEXT).value == "0002"
    assert any(e.label == "Held-out cases (1)" for e in again.sidebar.expander)
    assert "0002" not in {case_of(label) for label in options_of(again, "c_target")}


def test_unknown_ids_bad_lines_and_clearing(app: AppTest, dataset_dirs, db_path):
    save_holdout(app, "0000\nnot-a-case")
    assert store_of(dataset_dirs, db_path).holdout() == {"0000", "not-a-case"}
    assert any("not-a-case" in w.value and "not in the dataset" in w.value for w in app.sidebar.warning)
    save_holdout(app, "0001 0002")  # two ids on a line: refused, the stored split is kept
    assert any("holds more than one case id" in e.value for e in app.sidebar.error)
    assert store_of(dataset_dirs, db_path).holdout() == {"0000", "not-a-case"}
    save_holdout(app, "")
    assert store_of(dataset_dirs, db_path).holdout() == frozenset()
    assert any("No held-out cases" in s.value for s in app.sidebar.success)


def test_a_picked_file_fills_the_ids(app: AppTest, dataset_dirs, db_path):
    run(app.sidebar.file_uploader[0].upload("test_split.txt", b"# split\n0000\n\n0002\n", "text/plain"))
    assert app.text_area(key=holdout.TEXT).value == "0000\n0002"
    assert any("2 case id(s) read from test_split.txt" in i.value for i in app.sidebar.info)
    assert store_of(dataset_dirs, db_path).holdout() == frozenset()  # not before Save
    run(app.button(key=holdout.SAVE).click())
    assert store_of(dataset_dirs, db_path).holdout() == {"0000", "0002"}
    run(app.sidebar.file_uploader[0].upload("photo.png", b"\x89PNG\r\n\x1a\n\xff\xfe", "image/png"))
    assert any("photo.png is not UTF-8 text" in e.value for e in app.sidebar.error)


def test_stored_candidates_that_use_a_new_split_are_reported(app: AppTest, dataset_dirs, db_path):
    queue(app, 12)
    used = {c.recipe.target_case for c in store_of(dataset_dirs, db_path).candidates()}
    case = sorted(used)[0]
    save_holdout(app, case)
    assert any("already use a held-out case" in w.value for w in app.sidebar.warning)


def test_review_queue_leaves_held_out_cases_out_and_takes_the_method(app: AppTest, dataset_dirs,
                                                                      db_path):
    save_holdout(app, "0000\n0009")
    goto(app, "review")
    assert any("2 held-out cases never drawn" in c.value for c in app.caption)
    app.segmented_control(key="r_queue_method").set_value("opencv")
    app.number_input(key="r_queue_n").set_value(10)
    run(app.button(key="r_queue_go").click())
    got = store_of(dataset_dirs, db_path).candidates()
    assert len(got) == 10
    assert {c.recipe.method for c in got} == {"opencv"}
    assert {c.recipe.source_case for c in got} | {c.recipe.target_case for c in got} <= {"0001", "0002"}
    assert any(t.value.startswith("Queued 10 candidates") for t in app.toast)
    assert any("method opencv" in c.value for c in app.caption)  # the candidate shown says so
