"""`--root DIR` (issue 12, item 9): every path the app reads or writes lies in one folder, and a
review database in a folder that does not exist is made only after the user confirms.

Real app (AppTest over ``app.py``), real folders, PNGs and SQLite files in tmp_path.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from conftest import make_training_set
from test_app import ROOT, TIMEOUT, goto, queue, run, two_lesion_set
from ui import context, sidebar


def serve(tmp_path: Path, root: Path, **cli) -> AppTest:
    """The app as ``streamlit run app.py -- --root ROOT …`` with its data folder inside ROOT."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.session_state[context.DATA_DIR] = str(root / "data")
    at.session_state[context.CLI] = {"root": str(root), **{k: str(v) for k, v in cli.items()}}
    return run(at)


@pytest.fixture
def team(tmp_path: Path) -> tuple[Path, Path, Path]:
    """(root, input_dir, mask_dir): a dataset inside the root folder; another set outside it."""
    root = tmp_path / "team"
    input_dir, mask_dir = two_lesion_set(root / "set")
    make_training_set(tmp_path / "outside", seed=3)
    return root, input_dir, mask_dir


def test_parse_cli_and_the_configured_root(tmp_path: Path, monkeypatch):
    assert context.parse_cli(["--root", "/srv/data"])[0] == {"root": "/srv/data"}
    monkeypatch.delenv(context.ROOT_ENV, raising=False)
    assert context.configured_root({}, tmp_path) is None
    (tmp_path / context.SETTINGS_FILE).write_text(json.dumps({"root": "/from/settings"}))
    assert context.configured_root({}, tmp_path) == "/from/settings"
    monkeypatch.setenv(context.ROOT_ENV, "/from/env")
    assert context.configured_root({}, tmp_path) == "/from/env"
    assert context.configured_root({"root": "/from/cli"}, tmp_path) == "/from/cli"
    # the sidebar's remembered choices never write the root
    context.save_settings(tmp_path, {"input_dir": "x", "mask_dir": "y", "root": "/elsewhere"})
    assert json.loads((tmp_path / context.SETTINGS_FILE).read_text())["root"] == "/from/settings"


def test_folders_outside_the_root_are_refused(team, tmp_path: Path):
    root, input_dir, mask_dir = team
    at = serve(tmp_path, root, input_dir=input_dir, mask_dir=mask_dir, db=root / "review.db")
    assert any(f"must lie in `{root.resolve()}`" in c.value for c in at.sidebar.caption)
    before = dict(at.session_state[context.ACTIVE])
    for typed in (tmp_path / "outside" / "input", root / ".." / "outside" / "input"):
        at.text_input(key=sidebar.INPUT_DIR).input(str(typed))
        at.text_input(key=sidebar.MASK_DIR).input(str(tmp_path / "outside" / "mask"))
        run(at.button(key=sidebar.OPEN).click())
        assert any("is outside the root folder" in e.value for e in at.sidebar.error)
        assert at.session_state[context.ACTIVE] == before
    # a symbolic link inside the root that leads out of it is caught too
    (root / "link").symlink_to(tmp_path / "outside", target_is_directory=True)
    at.text_input(key=sidebar.INPUT_DIR).input(str(root / "link" / "input"))
    at.text_input(key=sidebar.MASK_DIR).input(str(root / "link" / "mask"))
    run(at.button(key=sidebar.OPEN).click())
    assert any("is outside the root folder" in e.value for e in at.sidebar.error)
    # a database outside the root: refused, nothing created there
    at.text_input(key=sidebar.INPUT_DIR).input(str(input_dir))
    at.text_input(key=sidebar.MASK_DIR).input(str(mask_dir))
    at.text_input(key=sidebar.DB).input(str(tmp_path / "stolen.db"))
    run(at.button(key=sidebar.OPEN).click())
    assert any("is outside the root folder" in e.value for e in at.sidebar.error)
    assert not (tmp_path / "stolen.db").exists()


def test_command_line_folders_outside_the_root_fall_back(team, tmp_path: Path):
    root, _, _ = team
    at = serve(tmp_path, root, input_dir=tmp_path / "outside" / "input",
               mask_dir=tmp_path / "outside" / "mask")
    assert any("is outside the root folder" in e.value for e in at.sidebar.error)
    assert at.session_state[context.ACTIVE]["origin"] == "demo"  # made in the data folder, inside


def test_export_and_isles_import_outside_the_root_are_refused(team, tmp_path: Path):
    root, input_dir, mask_dir = team
    at = serve(tmp_path, root, input_dir=input_dir, mask_dir=mask_dir, db=root / "review.db")
    queue(at, 2)
    run(at.button(key="r_accept").click())
    goto(at, "export")
    at.text_input(key="e_input").input(str(tmp_path / "out_input"))
    run(at.button(key="e_go").click())
    assert any("is outside the root folder" in e.value for e in at.error)
    assert not (tmp_path / "out_input").exists()
    at.text_input(key="e_input").input(str(root / "aug_input"))
    at.text_input(key="e_manifest").input(str(tmp_path / "manifest.csv"))
    run(at.button(key="e_go").click())
    assert any("is outside the root folder" in e.value for e in at.error)
    assert not (tmp_path / "manifest.csv").exists() and not (root / "aug_input").exists()
    at.text_input(key=sidebar.ISLES_ROOT).input(str(tmp_path))
    run(at.button(key=sidebar.ISLES_RUN).click())
    assert any("is outside the root folder" in e.value for e in at.sidebar.error)


def test_a_database_in_a_new_folder_is_made_only_when_confirmed(team, tmp_path: Path):
    root, input_dir, mask_dir = team
    at = serve(tmp_path, root, input_dir=input_dir, mask_dir=mask_dir, db=root / "review.db")
    wanted = root / "a" / "b" / "review.db"
    at.text_input(key=sidebar.DB).input(str(wanted))
    run(at.button(key=sidebar.OPEN).click())
    assert any(f"`{(root / 'a' / 'b').resolve()}` for the review database does not exist" in w.value
               for w in at.sidebar.warning)
    assert not (root / "a").exists()
    run(at.button(key=sidebar.KEEP_MISSING).click())
    assert not any("does not exist" in w.value for w in at.sidebar.warning)
    assert not (root / "a").exists() and Path(at.session_state[context.ACTIVE]["db"]) == root / "review.db"
    at.text_input(key=sidebar.DB).input(str(wanted))
    run(at.button(key=sidebar.OPEN).click())
    run(at.button(key=sidebar.CREATE_FOLDER).click())
    assert wanted.is_file() and Path(at.session_state[context.ACTIVE]["db"]) == wanted
    assert not at.sidebar.error


def test_a_file_that_is_not_a_database_is_left_alone(team, tmp_path: Path):
    root, input_dir, mask_dir = team
    at = serve(tmp_path, root, input_dir=input_dir, mask_dir=mask_dir, db=root / "review.db")
    notes = root / "notes.txt"
    notes.write_bytes(b"")
    at.text_input(key=sidebar.DB).input(str(notes))
    run(at.button(key=sidebar.OPEN).click())
    assert at.sidebar.error
    assert notes.read_bytes() == b""
