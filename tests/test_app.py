"""The Streamlit app, page by page, with ``streamlit.testing.v1.AppTest``.

Each test runs the real ``app.py`` (st.navigation + pages) on a small synthetic
training set in tmp_path, with the review database and the app data folder in
tmp_path too. The command line is injected as ``session_state[context.CLI]`` (what
``app.py`` would parse from ``-- --input-dir … --mask-dir … --db …``).
Custom components (the clickable target) are unknown elements in AppTest, so
the placement is driven through ``session_state["c_spot"]``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from conftest import brain_slice, make_training_set, write_slice
from poissonblend import overlay
from poissonblend.dataset import open_dataset
from poissonblend.recipe import Recipe, lesion_patch, placed_lesion_mask, valid_spots_for
from poissonblend.store import Store

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from ui import context, pictures, sidebar, widgets  # noqa: E402

TIMEOUT = 60


def two_lesion_set(root: Path) -> tuple[Path, Path]:
    """The 12-slice training set plus slice_0009_0000 with two lesions (big #0, small #1)."""
    input_dir, mask_dir = make_training_set(root)
    rng = np.random.default_rng(5)
    image = brain_slice(rng)
    mask = np.zeros(image.shape, np.uint8)
    yy, xx = np.mgrid[:112, :112]
    for cy, cx, r in ((40, 45, 7), (70, 65, 3)):
        lesion = (yy - cy) ** 2 + (xx - cx) ** 2 < r * r
        image[lesion] += 80
        mask[lesion] = 255
    write_slice(input_dir, mask_dir, "slice_0009_0000.png", image, mask)
    return input_dir, mask_dir


@pytest.fixture
def dataset_dirs(tmp_path: Path) -> tuple[Path, Path]:
    return two_lesion_set(tmp_path / "set")


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "review.db"


@pytest.fixture
def app(tmp_path: Path, dataset_dirs, db_path) -> AppTest:
    """The app opened as ``streamlit run app.py -- --input-dir … --mask-dir … --db …``."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.session_state[context.DATA_DIR] = str(tmp_path / "data")
    at.session_state[context.CLI] = {"input_dir": str(dataset_dirs[0]), "mask_dir": str(dataset_dirs[1]),
                                "db": str(db_path)}
    run(at)
    return at


def run(target) -> AppTest:
    """Run the app (``target`` is the AppTest or a widget just interacted with); no exception."""
    at = target.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def store_of(dataset_dirs, db_path) -> Store:
    return Store.open(db_path, open_dataset(*dataset_dirs))


def metric(at: AppTest, label: str) -> str:
    values = [m.value for m in at.metric if m.label == label]
    assert values, f"no metric {label!r} in {[m.label for m in at.metric]}"
    return values[0]


def lesion_area(at: AppTest) -> str:
    """The 'Lesion area' figure of the quality summary, e.g. ``"35 px"``."""
    found = [m.value.split("Lesion area **")[1].split("**")[0] for m in at.markdown
             if "Lesion area **" in m.value]
    assert found, "no lesion area shown"
    return found[0]


def image_urls(at: AppTest) -> list[str]:
    return [i.proto.imgs[0].url for i in at.image]


def goto(at: AppTest, page: str) -> AppTest:
    at.switch_page(f"app_pages/{page}.py")
    return run(at)


def queue(at: AppTest, n: int, seed: int = 0) -> None:
    goto(at, "review")
    at.number_input(key="r_queue_n").set_value(n)
    at.number_input(key="r_queue_seed").set_value(seed)
    run(at.button(key="r_queue_go").click())


# --------------------------------------------------------------------------- start-up

def test_opens_on_demo_when_nothing_is_configured(tmp_path: Path):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.session_state[context.DATA_DIR] = str(tmp_path / "data")
    at.session_state[context.CLI] = {}
    run(at)
    active = at.session_state[context.ACTIVE]
    assert active["origin"] == "demo"
    assert Path(active["input_dir"]) == (tmp_path / "data" / "demo" / "input").resolve()
    assert len(list(Path(active["input_dir"]).glob("*.png"))) == 96
    assert Path(active["db"]).parent == (tmp_path / "data" / "demo").resolve()
    assert any("demo dataset" in i.value for i in at.sidebar.info)  # said on screen
    assert at.selectbox(key="c_source").value.startswith("slice_")


def test_cli_folders_are_used(app: AppTest, dataset_dirs, db_path):
    active = app.session_state[context.ACTIVE]
    assert active["origin"] == "command line"
    assert Path(active["input_dir"]) == dataset_dirs[0]
    assert Path(active["db"]) == db_path and db_path.exists()
    assert "13 slices" in " ".join(c.value for c in app.sidebar.caption)


def test_parse_cli():
    cli, err = context.parse_cli(["--input-dir", "I", "--mask-dir", "M", "--db", "D", "-q", "x.py"])
    assert err is None and cli == {"input_dir": "I", "mask_dir": "M", "db": "D"}
    cli, err = context.parse_cli(["--input-dir", "I"])
    assert cli == {} and "--mask-dir" in err
    assert context.parse_cli([]) == ({}, None)


def test_bad_cli_folders_show_error_and_fall_back_to_demo(tmp_path: Path):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.session_state[context.DATA_DIR] = str(tmp_path / "data")
    at.session_state[context.CLI] = {"input_dir": str(tmp_path / "nope"), "mask_dir": str(tmp_path / "m")}
    run(at)
    errors = [e.value for e in at.sidebar.error]
    assert any("does not exist" in e and "nope" in e for e in errors), errors
    assert at.session_state[context.ACTIVE]["origin"] == "demo"
    assert at.selectbox(key="c_source").value  # the page still works


def test_bad_sidebar_folders_show_error_and_keep_dataset(app: AppTest, tmp_path: Path, dataset_dirs):
    before = dict(app.session_state[context.ACTIVE])
    app.text_input(key=sidebar.INPUT_DIR).input(str(tmp_path / "missing"))
    run(app.button(key=sidebar.OPEN).click())
    errors = [e.value for e in app.sidebar.error]
    assert any("does not exist" in e for e in errors), errors
    assert app.session_state[context.ACTIVE] == before
    assert image_urls(app)  # the previous dataset stays usable
    assert app.text_input(key=sidebar.INPUT_DIR).value == before["input_dir"]  # fields restored
    # same folder twice, and a PNG that is not a slice
    app.text_input(key=sidebar.INPUT_DIR).input(str(dataset_dirs[0]))
    app.text_input(key=sidebar.MASK_DIR).input(str(dataset_dirs[0]))
    run(app.button(key=sidebar.OPEN).click())
    assert any("same folder" in e.value for e in app.sidebar.error)
    assert app.session_state[context.ACTIVE] == before


def test_database_of_another_dataset_is_refused(app: AppTest, tmp_path: Path, db_path):
    other_in, other_mask = make_training_set(tmp_path / "other", seed=3)
    app.text_input(key=sidebar.INPUT_DIR).input(str(other_in))
    app.text_input(key=sidebar.MASK_DIR).input(str(other_mask))
    app.text_input(key=sidebar.DB).input(str(db_path))
    run(app.button(key=sidebar.OPEN).click())
    assert any("was made for the dataset" in e.value for e in app.sidebar.error)
    said = " ".join(e.value for e in app.sidebar.error)
    assert "“Use the database even if the files changed” in the sidebar" in said
    assert "--allow-other-dataset" not in said
    app.text_input(key=sidebar.INPUT_DIR).input(str(other_in))  # (restored after the failure)
    app.text_input(key=sidebar.MASK_DIR).input(str(other_mask))
    app.text_input(key=sidebar.DB).input(str(db_path))
    assert Path(app.session_state[context.ACTIVE]["db"]) == db_path
    assert Path(app.session_state[context.ACTIVE]["input_dir"]) != other_in  # the old set stays open
    # Asked explicitly, the same database opens for the other files.
    app.checkbox(key=sidebar.ALLOW_OTHER).check()
    run(app.button(key=sidebar.OPEN).click())
    assert not app.sidebar.error
    assert Path(app.session_state[context.ACTIVE]["input_dir"]) == other_in
    assert Path(app.session_state[context.ACTIVE]["db"]) == db_path
    # ... and is bound to them from now on: it opens for them without the option.
    assert Store.open(db_path, open_dataset(other_in, other_mask)).recorded_dataset["input_dir"] \
        == str(other_in.resolve())


def test_a_database_in_a_missing_folder_is_created_only_when_confirmed(app: AppTest,
                                                                     tmp_path: Path):
    before = dict(app.session_state[context.ACTIVE])
    wanted = tmp_path / "new" / "folder" / "review.db"
    app.text_input(key=sidebar.DB).input(str(wanted))
    run(app.button(key=sidebar.OPEN).click())
    assert any("does not exist" in w.value and "Create it" in w.value for w in app.sidebar.warning)
    assert not wanted.parent.exists() and app.session_state[context.ACTIVE] == before
    run(app.button(key=sidebar.KEEP_MISSING).click())  # cancel: nothing made, nothing asked
    assert not wanted.parent.exists() and not app.sidebar.warning
    assert app.text_input(key=sidebar.DB).value == before["db"]
    app.text_input(key=sidebar.DB).input(str(wanted))
    run(app.button(key=sidebar.OPEN).click())
    run(app.button(key=sidebar.CREATE_FOLDER).click())
    assert wanted.exists() and Path(app.session_state[context.ACTIVE]["db"]) == wanted


def test_isles_import_message_has_plurals_and_says_flair_was_resampled(tmp_path: Path):
    from poissonblend.isles import CaseSummary, ImportSummary

    one = CaseSummary("0001", slices=1, written=1, unchanged=0, dropped_empty=0, lesion_slices=1,
                      lesion_voxels=9)
    text = sidebar.import_message(ImportSummary(tmp_path, (one,), ()), "flair")
    assert text.startswith("Imported 1 case: 1 slice (1 written, 0 unchanged), 1 slice with lesions")
    assert "FLAIR was resampled onto the grid of the lesion masks" in text
    two = ImportSummary(tmp_path, (one, CaseSummary("0002", 2, 2, 0, 0, 0, 0)), ())
    assert sidebar.import_message(two, "dwi").startswith("Imported 2 cases: 3 slices")
    assert "resampled" not in sidebar.import_message(two, "dwi")


def test_sidebar_choice_is_remembered_across_restarts(app: AppTest, tmp_path: Path):
    other_in, other_mask = make_training_set(tmp_path / "other", seed=3)
    app.text_input(key=sidebar.INPUT_DIR).input(str(other_in))
    app.text_input(key=sidebar.MASK_DIR).input(str(other_mask))
    app.text_input(key=sidebar.DB).input("")
    run(app.button(key=sidebar.OPEN).click())
    assert not app.sidebar.error
    assert Path(app.session_state[context.ACTIVE]["input_dir"]) == other_in
    saved = json.loads((tmp_path / "data" / context.SETTINGS_FILE).read_text())
    assert Path(saved["input_dir"]) == other_in
    # a new session (restart) with no command line opens the remembered folders
    again = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    again.session_state[context.DATA_DIR] = str(tmp_path / "data")
    again.session_state[context.CLI] = {}
    run(again)
    assert again.session_state[context.ACTIVE]["origin"] == "remembered"
    assert Path(again.session_state[context.ACTIVE]["input_dir"]) == other_in


def test_pages_forget_their_per_dataset_state_when_another_set_opens(app: AppTest, tmp_path: Path):
    queue(app, 3)
    goto(app, "gallery")
    run(app.checkbox(key="g_pick_1").check())
    run(app.button(key="g_open_2").click())
    assert app.session_state["g_selected"] == {1} and app.session_state["g_opened"] == 2
    other_in, other_mask = make_training_set(tmp_path / "other", seed=3)
    app.text_input(key=sidebar.INPUT_DIR).input(str(other_in))
    app.text_input(key=sidebar.MASK_DIR).input(str(other_mask))
    app.text_input(key=sidebar.DB).input(str(tmp_path / "other.db"))
    run(app.button(key=sidebar.OPEN).click())
    assert Path(app.session_state[context.ACTIVE]["input_dir"]) == other_in
    assert app.session_state["g_selected"] == set() and app.session_state["g_opened"] is None
    goto(app, "compose")
    assert app.selectbox(key="c_source").value in {p.name for p in other_in.glob("*.png")}


APP_SOURCES = [ROOT / "app.py", *sorted((ROOT / "ui").glob("*.py")), *sorted((ROOT / "app_pages").glob("*.py"))]


@pytest.mark.parametrize("path", APP_SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_app_uses_only_streamlits_public_api(path: Path):
    """No import of streamlit.runtime, .web, .elements, .proto or any other streamlit submodule
    (``streamlit.components.v1`` is public), and no ``st._private`` attribute."""
    import ast

    tree = ast.parse(path.read_text())
    modules = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    modules += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    private = [m for m in modules if m.startswith("streamlit.") and m != "streamlit.components.v1"]
    assert not private, f"{path.name} imports {private}"
    attrs = [n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)
             and isinstance(n.value, ast.Name) and n.value.id == "st"]
    assert not [a for a in attrs if a.startswith("_") or a in ("runtime", "web", "elements", "proto")]
    assert (ROOT / "app_pages").is_dir() and not (ROOT / "pages").exists()  # no legacy pages mode


# --------------------------------------------------------------------------- compose

def test_compose_widgets_present(app: AppTest):
    for key in ("c_source", "c_target", "c_reason"):
        assert app.selectbox(key=key).value is not None
    for key in ("c_scale", "c_rotation", "c_margin", "c_opacity"):
        assert app.slider(key=key) is not None
    for key in ("c_flip_h", "c_flip_v", "c_src_only_lesions", "c_tgt_only_lesions"):
        assert app.toggle(key=key) is not None
    for key in ("c_accept", "c_reject", "c_random", "c_src_prev", "c_src_next"):
        assert app.button(key=key) is not None
    assert app.radio(key="c_lesion").options
    assert app.button_group(key="c_mode").value == "normal"
    # source, result, 3 more views, close-up (the clickable target is a custom component)
    assert len(app.image) == 6
    assert lesion_area(app).endswith("px")
    assert app.session_state["c_spot"] is not None  # a random valid spot to start with


def test_only_lesion_filter_and_search(app: AppTest):
    assert all(json.dumps(o) for o in app.selectbox(key="c_source").options)
    with_lesions = app.selectbox(key="c_source").options
    assert len(with_lesions) == 7  # 6 + the two-lesion slice
    run(app.toggle(key="c_src_only_lesions").set_value(False))
    assert len(app.selectbox(key="c_source").options) == 13
    run(app.text_input(key="c_src_search").input("0009"))
    assert len(app.selectbox(key="c_source").options) == 1
    assert app.session_state["c_source"] == "slice_0009_0000.png"


def test_many_slices_are_picked_by_case_then_slice(app: AppTest, monkeypatch):
    monkeypatch.setattr(widgets, "MAX_LISTED_SLICES", 5)  # as with an ISLES-sized set
    run(app.toggle(key="c_src_only_lesions").set_value(False))  # 13 sources: above 5

    def case_of(name: str) -> str:
        return name.split("_")[1]

    case = app.selectbox(key="c_src_case")
    assert list(case.options) == ["0000", "0001", "0002", "0009"]
    assert case.value == case_of(app.session_state["c_source"])
    # Another case: the source moves to its first slice; the slice picker lists that case only.
    run(case.set_value("0001"))
    assert app.session_state["c_source"] == "slice_0001_0000.png"
    slices = app.selectbox(key="c_source").options
    # (the case is in the picker above, so the labels leave it out)
    assert slices == ["slice 0 · 1 lesion", "slice 1 · 0 lesions", "slice 2 · 1 lesion",
                      "slice 3 · 0 lesions"]
    # ... and the lesion choice follows the source.
    run(app.selectbox(key="c_src_case").set_value("0009"))
    assert app.session_state["c_source"] == "slice_0009_0000.png"
    assert app.radio(key="c_lesion").value == 0 and len(app.radio(key="c_lesion").options) == 2
    # ◀ from a case's first slice steps into the previous case; the case picker follows.
    run(app.button(key="c_src_prev").click())
    assert app.session_state["c_source"] == "slice_0002_0003.png"
    assert app.selectbox(key="c_src_case").value == "0002"
    assert len(app.selectbox(key="c_source").options) == 4


def test_lesion_choice_changes_preview(app: AppTest, dataset_dirs):
    run(app.selectbox(key="c_source").set_value("slice_0009_0000.png"))
    assert app.radio(key="c_lesion").value == 0  # the largest lesion first
    areas = [les.area for les in open_dataset(*dataset_dirs).info("slice_0009_0000.png").lesions]
    assert areas[0] > areas[1]
    assert list(app.radio(key="c_lesion").options) == [f"#0 · {areas[0]} px", f"#1 · {areas[1]} px"]
    app.session_state["c_spot"] = None  # a valid spot for this lesion
    run(app)
    area0, urls0 = lesion_area(app), image_urls(app)
    run(app.radio(key="c_lesion").set_value(1))
    area1, urls1 = lesion_area(app), image_urls(app)
    assert (area0, area1) == (f"{areas[0]} px", f"{areas[1]} px")
    assert urls0[0] != urls1[0]  # the source picture highlights the other lesion
    assert urls0[1] != urls1[1] and urls0[3] != urls1[3]  # result + overlay differ


def test_controls_change_preview(app: AppTest):
    before = image_urls(app)
    run(app.slider(key="c_opacity").set_value(0.8))
    after = image_urls(app)
    assert before[3] != after[3] and before[1] == after[1]  # overlay only
    run(app.button_group(key="c_mode").set_value("mixed"))
    assert image_urls(app)[1] != after[1]


def test_invalid_spot_is_explained(app: AppTest):
    app.session_state["c_spot"] = (0, 0)
    run(app)
    warnings = [w.value for w in app.warning]
    assert any("Invalid spot" in w and "outside" in w for w in warnings), warnings
    assert len(app.image) == 1  # only the source: no preview of an invalid recipe
    run(app.button(key="c_random").click())
    assert app.session_state["c_spot"] != (0, 0)
    assert not app.warning and len(app.image) == 6


def test_click_maps_display_to_image_pixels():
    # a 128 px slice shown 512 px wide: display pixel 300 is slice pixel 75
    click = {"x": 300, "y": 40, "width": 512, "height": 512, "unix_time": 1}
    assert pictures.display_to_image(click, (128, 128)) == (75, 10)
    # shown 333 px wide (stretched to the column): scaled, clipped to the slice
    assert pictures.display_to_image({**click, "x": 332.9, "width": 333, "height": 333},
                               (128, 128)) == (127, 15)
    assert pictures.display_to_image({"x": 1}, (128, 128)) is None


def test_compose_accept_and_reject_write_the_store(app: AppTest, dataset_dirs, db_path, tmp_path):
    run(app.text_input(key=context.REVIEWER).input("alice"))
    assert json.loads((tmp_path / "data" / context.SETTINGS_FILE).read_text())["reviewer"] == "alice"
    run(app.button(key="c_accept").click())
    assert any("as **accepted**" in s.value for s in app.success)
    run(app.slider(key="c_rotation").set_value(45))
    app.selectbox(key="c_reason").set_value("seam artifact")
    run(app.button(key="c_reject").click())
    store = store_of(dataset_dirs, db_path)
    got = store.candidates()
    assert [(c.state, c.batch, c.reason, c.reviewer) for c in got] == [
        ("accepted", "manual", None, "alice"), ("rejected", "manual", "seam artifact", "alice")]
    assert got[1].recipe.rotation == 45.0
    assert got[0].recipe.target == app.session_state["c_target"]


def test_compose_re_deciding_a_recipe_says_what_changed(app: AppTest, dataset_dirs, db_path):
    run(app.button(key="c_accept").click())
    assert any("as **accepted**" in s.value for s in app.success)
    app.selectbox(key="c_reason").set_value("seam artifact")
    run(app.button(key="c_reject").click())
    said = [w.value for w in app.warning]
    assert any("was **accepted**; changed to **rejected** (seam artifact)" in w for w in said), said
    run(app.button(key="c_reject").click())
    assert any("already **rejected** (seam artifact); nothing changed" in i.value for i in app.info)
    store = store_of(dataset_dirs, db_path)
    [c] = store.candidates()
    assert [h.decision for h in store.history(c.id)] == ["accepted", "rejected"]


def test_target_click_shades_valid_spots_and_rings_tiny_lesions(dataset_dirs):
    ds = open_dataset(*dataset_dirs)
    tiny = Recipe("slice_0009_0000.png", 1, "slice_0000_0001.png", 0, 0, scale=0.25)
    valid = valid_spots_for(ds, tiny)
    ys, xs = np.nonzero(valid)
    spot = (int(xs[len(xs) // 2]), int(ys[len(ys) // 2]))

    def decoded(png: bytes) -> np.ndarray:
        return cv2.cvtColor(cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR),
                            cv2.COLOR_BGR2RGB)

    plain = decoded(pictures.compute_target_click(ds, tiny, None))
    zoom = plain.shape[0] // 112
    green = np.all(plain == overlay.VALID_RGB, axis=2)  # the valid region's outline
    assert green.any() and not green[:zoom * 5].any()  # not on the black border rows
    placed = decoded(pictures.compute_target_click(ds, tiny, spot))
    orange = np.all(placed == overlay.NEW_RGB, axis=2)
    rows, cols = np.nonzero(orange)
    assert placed_lesion_mask(lesion_patch(ds, tiny)).sum() <= pictures.TINY_AREA
    assert rows.max() - rows.min() > 6 * zoom  # a ring, much larger than the 1-2 px footprint


# --------------------------------------------------------------------------- review

def test_review_queue_decide_undo(app: AppTest, dataset_dirs, db_path):
    queue(app, 5)
    store = store_of(dataset_dirs, db_path)
    assert store.counts()["total"] == 5
    first = store.next_undecided().id
    assert f"Candidate #{first}" in app.markdown[-1].value or any(
        f"Candidate #{first}" in m.value for m in app.markdown)
    run(app.button(key="r_accept").click())
    assert [t.value for t in app.toast] == [f"#{first} accepted"]
    app.selectbox(key="r_reason").set_value("wrong anatomy")
    run(app.button(key="r_reject").click())
    run(app.button(key="r_skip").click())
    states = {c.id: (c.state, c.reason) for c in store.candidates()}
    assert states[first] == ("accepted", None)
    assert states[first + 1] == ("rejected", "wrong anatomy")
    assert states[first + 2] == ("skipped", None)
    assert "3 of 5 decided" in app.get("progress")[0].proto.text
    run(app.button(key="r_undo_btn").click())
    assert store.get(first + 2).state == "undecided"
    assert any(f"Candidate #{first + 2}" in m.value for m in app.markdown)
    run(app.button(key="r_undo_btn").click())
    assert store.get(first + 1).state == "undecided"


def captions(at: AppTest) -> list[str]:
    return [i.proto.imgs[0].caption for i in at.image]


def test_review_shows_the_clean_result_large_and_flips_to_the_target(app: AppTest, dataset_dirs,
                                                                     db_path):
    queue(app, 2)
    [panel] = [e for e in app.expander if e.label == "Queue more random candidates"]
    assert not panel.proto.expanded  # the queue panel closed once candidates were queued
    first = store_of(dataset_dirs, db_path).next_undecided()
    assert captions(app)[:3] == [f"Result · candidate #{first.id}", "Close-up (4× or more)",
                                 f"Source · lesion {first.recipe.lesion} outlined"]
    assert app.button_group(key="r_layers").value == []  # overlay, outline, difference: all off
    sample = store_of(dataset_dirs, db_path).render(first)
    result = cv2.imdecode(np.frombuffer(pictures.compute_candidate_picture(
        open_dataset(*dataset_dirs), first.recipe), np.uint8), cv2.IMREAD_UNCHANGED)
    zoom = result.shape[0] // sample.image.shape[0]
    assert result.ndim == 2 and np.array_equal(result[::zoom, ::zoom], sample.image)  # clean
    clean = image_urls(app)[0]
    run(app.button(key="r_flip").click())  # T
    assert captions(app)[0] == f"Target before the blend · candidate #{first.id}"
    run(app.button(key="r_flip").click())
    assert captions(app)[0] == f"Result · candidate #{first.id}" and image_urls(app)[0] == clean
    run(app.button_group(key="r_layers").set_value(["outline"]))
    assert captions(app)[0] == f"Result · candidate #{first.id}" and image_urls(app)[0] != clean
    run(app.button_group(key="r_layers").set_value(["difference"]))
    assert captions(app)[0] == f"Difference |result − target| · candidate #{first.id}"
    # the next candidate starts on its clean result again after a decision... with the layers kept
    run(app.button_group(key="r_layers").set_value([]))
    run(app.button(key="r_flip").click())
    run(app.button(key="r_accept").click())
    assert captions(app)[0].startswith("Result · candidate #")


@pytest.mark.parametrize("view", ["result", "target", "difference"])
@pytest.mark.parametrize("layers", [(False, False), (True, False), (False, True), (True, True)])
def test_close_up_is_at_least_4x_nearest_neighbour(dataset_dirs, view, layers):
    ds = open_dataset(*dataset_dirs)
    store = Store.open(None, ds)
    for c in store.queue(4, 7):
        png = pictures.compute_candidate_picture(ds, c.recipe, view=view, overlay_masks=layers[0],
                                                 outline=layers[1], close_up=True)
        close = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
        assert close.shape[0] <= pictures.CLOSE_UP_PX and close.shape[1] <= pictures.CLOSE_UP_PX
        if any(layers) and view != "difference":
            continue  # outlines are drawn across pixel blocks

        def made_of_blocks(z: int) -> bool:
            if close.shape[0] % z or close.shape[1] % z:
                return False
            grid = close.reshape(close.shape[0] // z, z, close.shape[1] // z, z, -1)
            return bool((grid == grid[:, :1, :, :1]).all())

        zooms = [z for z in range(2, 13) if made_of_blocks(z)]
        assert zooms and max(zooms) >= pictures.CLOSE_UP_ZOOM  # every slice pixel a >= 4 x 4 block


def test_review_undo_after_restart_uses_the_store(app: AppTest, dataset_dirs, db_path, tmp_path):
    queue(app, 3)
    run(app.button(key="r_accept").click())
    fresh = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    fresh.session_state[context.DATA_DIR] = str(tmp_path / "data")
    fresh.session_state[context.CLI] = dict(app.session_state[context.CLI])
    run(fresh)
    goto(fresh, "review")
    assert "1 of 3 decided" in fresh.get("progress")[0].proto.text  # progress kept
    run(fresh.button(key="r_undo_btn").click())
    assert store_of(dataset_dirs, db_path).counts()["undecided"] == 3


def test_review_orders_by_score(app: AppTest, dataset_dirs, db_path):
    queue(app, 6)
    store = store_of(dataset_dirs, db_path)
    worst = min(store.candidates(), key=lambda c: (c.score, c.id))
    best = max(store.candidates(), key=lambda c: (c.score, -c.id))
    run(app.selectbox(key="r_order").set_value("score_asc"))
    assert any(f"Candidate #{worst.id} " in m.value for m in app.markdown)
    run(app.selectbox(key="r_order").set_value("score_desc"))
    assert any(f"Candidate #{best.id} " in m.value for m in app.markdown)


def test_review_previous_next_and_all_done(app: AppTest, dataset_dirs, db_path):
    queue(app, 2)
    store = store_of(dataset_dirs, db_path)
    ids = [c.id for c in store.candidates()]
    run(app.button(key="r_next").click())
    assert any(f"Candidate #{ids[1]} " in m.value for m in app.markdown)
    run(app.button(key="r_prev").click())
    assert any(f"Candidate #{ids[0]} " in m.value for m in app.markdown)
    run(app.button(key="r_accept").click())
    run(app.button(key="r_accept").click())
    assert any("All 2 candidates are decided" in s.value for s in app.success)


def test_switching_pages_keeps_state(app: AppTest):
    run(app.selectbox(key="c_source").set_value("slice_0009_0000.png"))
    run(app.slider(key="c_scale").set_value(1.5))
    run(app.toggle(key="c_flip_h").set_value(True))
    spot = app.session_state["c_spot"]
    queue(app, 2)
    goto(app, "gallery")
    goto(app, "compose")
    assert app.selectbox(key="c_source").value == "slice_0009_0000.png"
    assert app.slider(key="c_scale").value == 1.5
    assert app.toggle(key="c_flip_h").value is True
    assert app.session_state["c_spot"] == spot
    goto(app, "review")
    assert "0 of 2 decided" in app.get("progress")[0].proto.text


# --------------------------------------------------------------------------- gallery

def test_gallery_filters_bulk_and_open(app: AppTest, dataset_dirs, db_path):
    queue(app, 4)
    goto(app, "gallery")
    store = store_of(dataset_dirs, db_path)
    ids = [c.id for c in store.candidates()]
    assert len(app.image) == 4
    run(app.checkbox(key=f"g_pick_{ids[0]}").check())
    run(app.checkbox(key=f"g_pick_{ids[2]}").check())
    assert app.session_state["g_selected"] == {ids[0], ids[2]}
    run(app.button(key="g_bulk_accept").click())
    assert [store.get(i).state for i in ids] == ["undecided"] * 4  # asks first
    assert any("Accept 2 selected candidates" in m.value for m in app.markdown)
    run(app.button(key="g_confirm").click())
    assert [store.get(i).state for i in ids] == ["accepted", "undecided", "accepted", "undecided"]
    assert app.session_state["g_selected"] == set()
    run(app.selectbox(key="g_state").set_value("accepted"))
    assert len(app.image) == 2
    run(app.button(key=f"g_open_{ids[0]}").click())
    assert any(f"Candidate #{ids[0]} " in m.value for m in app.markdown)
    app.selectbox(key="g_one_reason").set_value("intensity mismatch")
    run(app.button(key="g_one_reject").click())
    assert (store.get(ids[0]).state, store.get(ids[0]).reason) == ("rejected", "intensity mismatch")
    run(app.selectbox(key="g_state").set_value("all"))
    run(app.selectbox(key="g_reason").set_value("intensity mismatch"))
    assert len(app.image) == 3 + 1  # the opened candidate's pictures (3) + one thumbnail


def test_gallery_bulk_reject_is_confirmed_and_undone_in_one_step(app: AppTest, dataset_dirs,
                                                                  db_path):
    queue(app, 4)
    store = store_of(dataset_dirs, db_path)
    ids = [c.id for c in store.candidates()]
    store.decide(ids[1], "accepted")
    store.decide(ids[2], "rejected", reason="other")
    goto(app, "gallery")
    run(app.button(key="g_select_page").click())
    app.selectbox(key="g_bulk_reason").set_value("seam artifact")
    run(app.button(key="g_bulk_reject").click())
    ask = " ".join(m.value for m in app.markdown)
    assert "Reject 4 selected candidates" in ask and "2 of them are decided already" in ask
    run(app.button(key="g_cancel").click())  # cancelled: nothing changes, the selection stays
    assert [store.get(i).state for i in ids] == ["undecided", "accepted", "rejected", "undecided"]
    assert len(app.session_state["g_selected"]) == 4
    run(app.button(key="g_bulk_reject").click())
    run(app.button(key="g_confirm").click())
    assert {(store.get(i).state, store.get(i).reason) for i in ids} == {("rejected", "seam artifact")}
    assert any("4 candidates rejected" in s.value for s in app.success)
    run(app.button(key="g_undo_bulk").click())
    assert [(store.get(i).state, store.get(i).reason) for i in ids] == [
        ("undecided", None), ("accepted", None), ("rejected", "other"), ("undecided", None)]
    assert [t.value for t in app.toast] == ["Undone: 4 candidates back as they were"]


def test_gallery_thumbnails_are_clean_unless_outlined(app: AppTest, dataset_dirs, db_path):
    queue(app, 1)
    goto(app, "gallery")
    store = store_of(dataset_dirs, db_path)
    c = store.candidates()[0]
    clean = image_urls(app)[0]
    png = pictures.compute_thumbnail(open_dataset(*dataset_dirs), c.recipe)
    thumb = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
    zoom = thumb.shape[0] // store.render(c).image.shape[0]
    assert thumb.ndim == 2 and np.array_equal(thumb[::zoom, ::zoom], store.render(c).image)
    run(app.toggle(key="g_outline").set_value(True))
    assert image_urls(app)[0] != clean


# --------------------------------------------------------------------------- export

def test_export_dry_run_then_export(app: AppTest, dataset_dirs, db_path, tmp_path):
    store = store_of(dataset_dirs, db_path)
    got = store.queue(4, 1)
    store.decide(got[0].id, "accepted")
    store.decide(got[1].id, "accepted")
    store.decide(got[2].id, "rejected", reason="other")
    goto(app, "export")
    out_in, out_mask = tmp_path / "out" / "input", tmp_path / "out" / "mask"
    assert app.text_input(key="e_input").value == str(dataset_dirs[0].parent / "aug_input")
    app.text_input(key="e_input").input(str(out_in))
    app.text_input(key="e_mask").input(str(out_mask))
    app.text_input(key="e_manifest").input(str(tmp_path / "out" / "manifest.csv"))
    run(app.button(key="e_dry").click())
    assert metric(app, "Would write") == "2"
    assert not out_in.exists()  # a dry run writes nothing
    run(app.button(key="e_go").click())
    assert metric(app, "Written") == "2"
    files = sorted(p.name for p in out_in.glob("*.png"))
    assert files == sorted(f"slice_{c.case_id}_0000.png" for c in got[:2])
    for name in files:
        mask = cv2.imread(str(out_mask / name), cv2.IMREAD_GRAYSCALE)
        assert set(np.unique(mask // 255)) <= {0, 1} and mask.max() == 255
    assert (tmp_path / "out" / "manifest.csv").exists()
    assert len(app.dataframe) == 1 and len(app.dataframe[0].value) == 2
    assert len(app.image) == 4  # two pairs shown as written on disk
    assert app.get("download_button")
    run(app.button(key="e_go").click())
    assert metric(app, "Already there (skip)") == "2"


def test_export_to_dataset_folder_is_an_error(app: AppTest, dataset_dirs, db_path):
    store = store_of(dataset_dirs, db_path)
    store.decide(store.queue(1, 2)[0].id, "accepted")
    goto(app, "export")
    app.text_input(key="e_input").input(str(dataset_dirs[0]))
    run(app.button(key="e_go").click())
    assert any("is an input folder" in e.value for e in app.error)


# --------------------------------------------------------------------------- stats

def test_stats_page(app: AppTest, dataset_dirs, db_path):
    store = store_of(dataset_dirs, db_path)
    got = store.queue(5, 3)
    for c, d in zip(got, ("accepted", "accepted", "accepted", "rejected")):
        store.decide(c.id, d, reason="seam artifact" if d == "rejected" else None)
    goto(app, "stats")
    assert metric(app, "Candidates") == "5"
    assert metric(app, "Accept rate") == "75%"
    assert len(app.image) == 1  # the placement heat-map
    assert "3 accepted placements" in app.image[0].proto.imgs[0].caption
    assert len(app.get("vega_lite_chart")) == 2  # reasons + size histogram


def test_size_histogram_shares():
    hist = pictures.size_histogram([1, 1, 2, 100], [100, 100])
    assert sum(hist["originals"]) == pytest.approx(1.0)
    assert sum(hist["accepted"]) == pytest.approx(1.0)
    assert hist["area (px)"][0] == "1" and hist["originals"][0] == 0.5


def test_the_default_source_is_the_slice_with_the_largest_lesion(dataset_dirs):
    ds = open_dataset(*dataset_dirs)
    names = [s.name for s in ds.slices]

    def largest(n: str) -> int:
        return max((les.area for les in ds.info(n).lesions), default=0)

    for among in (names, names[:5], names[::-1], [names[0]]):
        assert widgets.slice_with_largest_lesion(ds, among) == max(among, key=largest)


# --------------------------------------------------------------------------- ISLES import

def fake_isles(root: Path) -> Path:
    """A one-case ISLES 2022 tree: sub-strokecase0001 DWI + its mask in derivatives/."""
    import nibabel as nib

    rng = np.random.default_rng(0)
    shape = (64, 64, 6)
    xx, yy = np.mgrid[:64, :64]
    dwi = np.zeros(shape, np.float32)
    msk = np.zeros(shape, np.uint8)
    for z in range(shape[2]):
        brain = ((xx - 32) / 24) ** 2 + ((yy - 32) / 20) ** 2 < 1
        dwi[..., z] = np.where(brain, 300 + rng.normal(0, 10, (64, 64)), 0)
        if z in (2, 3):
            lesion = (xx - 28) ** 2 + (yy - 36) ** 2 < 16
            dwi[..., z][lesion] += 400
            msk[..., z][lesion] = 1
    case = root / "sub-strokecase0001" / "ses-0001" / "dwi"
    masks = root / "derivatives" / "sub-strokecase0001" / "ses-0001"
    case.mkdir(parents=True)
    masks.mkdir(parents=True)
    nib.save(nib.Nifti1Image(dwi, np.eye(4)), case / "sub-strokecase0001_ses-0001_dwi.nii.gz")
    nib.save(nib.Nifti1Image(msk, np.eye(4)), masks / "sub-strokecase0001_ses-0001_msk.nii.gz")
    return root


def test_isles_import_opens_the_imported_set(app: AppTest, tmp_path: Path):
    app.text_input(key=sidebar.ISLES_ROOT).input(str(tmp_path / "no-such-isles"))
    run(app.button(key=sidebar.ISLES_RUN).click())
    assert app.sidebar.error, "a missing ISLES folder is an st.error"
    assert not app.sidebar.get("progress") and not app.sidebar.success  # the error alone
    assert app.session_state[context.ACTIVE]["origin"] == "command line"

    root = fake_isles(tmp_path / "isles")
    out = tmp_path / "imported"
    app.text_input(key=sidebar.ISLES_ROOT).input(str(root))
    app.text_input(key=sidebar.ISLES_OUT).input(str(out))
    run(app.button(key=sidebar.ISLES_RUN).click())
    active = app.session_state[context.ACTIVE]
    assert active["origin"] == "ISLES 2022 import"
    assert Path(active["input_dir"]) == out / "input"
    assert len(list((out / "mask").glob("slice_0001_*.png"))) == 6
    assert any(s.value.startswith("Imported 1 case: 6 slices") for s in app.sidebar.success)
    assert not any("1 cases" in s.value for s in app.sidebar.success)
    assert Path(app.text_input(key=sidebar.INPUT_DIR).value) == out / "input"
    assert app.selectbox(key="c_source").value.startswith("slice_0001_")
