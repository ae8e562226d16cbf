"""The app's one shared UI module: state keys, cached resources, pictures and widgets.

Pages are short scripts (read state -> call the library -> draw); everything
they share lives here:

- every ``st.session_state`` key, as a constant (set with ``setdefault``);
- the resolved configuration (CLI args, remembered settings, or the demo set);
- ``st.cache_resource`` wrappers for the dataset and the review store, and
  ``st.cache_data`` wrappers returning encoded PNG bytes, so a rerun never
  re-reads PNGs from disk nor re-renders a sample it has shown before;
- :func:`compute_preview` and friends: Streamlit-free picture making (used by
  the cached wrappers and by ``benchmarks/bench_preview.py``);
- common widgets (decision buttons, candidate view, error display).

The app data folder (``./data`` at the repo root unless ``--data-dir`` or
``POISSONBLEND_DATA_DIR`` says otherwise) holds the demo set, its review
database and ``settings.json`` (the folders chosen in the sidebar).
"""

from __future__ import annotations

import argparse
import json
import os
import runpy
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit as st

from poissonblend import overlay
from poissonblend.dataset import Dataset, SliceInfo, open_dataset
from poissonblend.demo import ensure_demo
from poissonblend.errors import PoissonBlendError
from poissonblend.io import atomic_write_bytes
from poissonblend.lesions import label_lesions
from poissonblend.placement import explain_spot, sample_spot, top_left_rc
from poissonblend.recipe import Recipe, lesion_patch, placed_lesion_mask, render, valid_spots_for
from poissonblend.store import REASONS, Candidate, Store, default_store_path

ROOT = Path(__file__).resolve().parent
DEFAULT_DATA_DIR = ROOT / "data"
DATA_DIR_ENV = "POISSONBLEND_DATA_DIR"
SETTINGS_FILE = "settings.json"
PREVIEW_PX = 384
"""Display size (long side, px) the slice pictures are upscaled to (integer zoom)."""
CLICK_PX = 512
"""Display size of the clickable target image on the Compose page."""
THUMB_PX = 256

# --------------------------------------------------------------------------- state keys
# Configuration (app.py + sidebar)
DATA_DIR = "cfg_data_dir"            # str: the app data folder
CLI = "cfg_cli"                      # dict: what the command line asked for
ACTIVE = "cfg_active"                # dict(input_dir, mask_dir, db, origin) in use
LAST_GOOD = "cfg_last_good"          # dict: the last configuration that opened
OPEN_ERROR = "cfg_open_error"        # str | None: why the last open attempt failed
OPEN_WARNINGS = "cfg_open_warnings"  # list[str]: dataset warnings of the active set
W_INPUT_DIR = "w_input_dir"          # sidebar text inputs / buttons
W_MASK_DIR = "w_mask_dir"
W_DB = "w_db"
W_ALLOW_OTHER = "w_allow_other"      # open a database made for other files anyway
W_OPEN = "w_open"
W_DEMO = "w_demo"
W_RELOAD = "w_reload"
W_REVIEWER = "w_reviewer"            # reviewer name recorded with decisions (remembered)
W_FORM = "dataset_form"              # st.form keys
R_QUEUE_FORM = "queue_form"
W_ISLES_ROOT = "w_isles_root"
W_ISLES_OUT = "w_isles_out"
W_ISLES_MODALITY = "w_isles_modality"
W_ISLES_SKIP_EMPTY = "w_isles_skip_empty"
W_ISLES_RUN = "w_isles_run"
ISLES_RESULT = "isles_result"        # str | None: summary line of the last import
SIDEBAR_PENDING = "cfg_sidebar_pending"  # dict | None: folders to show in the inputs next run

# Compose
C_SRC_ONLY_LESIONS = "c_src_only_lesions"
C_SRC_SEARCH = "c_src_search"
C_SOURCE = "c_source"                # slice name
C_LESION = "c_lesion"                # lesion index in the source
C_TGT_ONLY_LESIONS = "c_tgt_only_lesions"
C_TGT_SEARCH = "c_tgt_search"
C_TARGET = "c_target"                # slice name
C_SPOT = "c_spot"                    # (x, y) or None: placement on the target
C_CLICK = "c_click"                  # streamlit-image-coordinates value
C_LAST_CLICK = "c_last_click"        # unix_time of the last click handled
C_RANDOM_DRAWS = "c_random_draws"    # int: "random valid spot" presses (its rng seed)
C_MODE = "c_mode"
C_SCALE = "c_scale"
C_ROTATION = "c_rotation"
C_FLIP_H = "c_flip_h"
C_FLIP_V = "c_flip_v"
C_MARGIN = "c_margin"
C_OPACITY = "c_opacity"
C_SRC_PREV, C_SRC_NEXT = "c_src_prev", "c_src_next"
C_TGT_PREV, C_TGT_NEXT = "c_tgt_prev", "c_tgt_next"
C_SRC_CASE, C_TGT_CASE = "c_src_case", "c_tgt_case"  # case pickers of large datasets
C_RANDOM = "c_random"                # "random valid spot" button
C_ACCEPT = "c_accept"
C_REJECT = "c_reject"
C_REASON = "c_reason"
C_LAST_SAVED = "c_last_saved"        # str | None: what the last Accept/Reject stored

# Review
R_ORDER = "r_order"
R_CURRENT = "r_current"              # int | None: candidate shown (None: next undecided)
R_UNDO = "r_undo"                    # list[int]: candidates decided in this session
R_REASON = "r_reason"
R_OPACITY = "r_opacity"
R_QUEUE_N = "r_queue_n"
R_QUEUE_SEED = "r_queue_seed"
R_QUEUE_MODE = "r_queue_mode"
R_QUEUE_SCALE = "r_queue_scale"      # (lo, hi)
R_QUEUE_ROTATION = "r_queue_rotation"  # (lo, hi)
R_QUEUE_FLIP = "r_queue_flip"
R_QUEUE_MARGIN = "r_queue_margin"
R_QUEUE_MIN_AREA = "r_queue_min_area"
R_QUEUE_GO = "r_queue_go"
R_FLASH = "r_flash"                  # (kind, text) | None: one-shot message of the last action
R_ACCEPT, R_REJECT, R_SKIP, R_UNDO_BTN = "r_accept", "r_reject", "r_skip", "r_undo_btn"
R_PREV, R_NEXT = "r_prev", "r_next"

# Gallery
G_STATE = "g_state"
G_BATCH = "g_batch"
G_REASON = "g_reason"
G_ORDER = "g_order"
G_PAGE = "g_page"
G_SELECTED = "g_selected"            # set[int]
G_PICK_PREFIX = "g_pick_"            # + candidate id: the per-thumbnail checkbox
G_OPEN_PREFIX = "g_open_"            # + candidate id: the per-thumbnail "open" button
G_OPENED = "g_opened"                # int | None: candidate shown large
G_BULK_REASON = "g_bulk_reason"      # reject reason of the bulk action
G_ONE_REASON = "g_one_reason"        # reject reason for the opened candidate
G_BULK_ACCEPT, G_BULK_REJECT = "g_bulk_accept", "g_bulk_reject"
G_CLOSE = "g_close"                  # buttons of the opened candidate
G_ONE_ACCEPT, G_ONE_REJECT = "g_one_accept", "g_one_reject"
G_ONE_SKIP, G_ONE_UNDO = "g_one_skip", "g_one_undo"
G_SELECT_PAGE, G_CLEAR = "g_select_page", "g_clear"
G_FLASH = "g_flash"                  # (kind, text) | None: one-shot message

# Export
E_INPUT = "e_input"
E_MASK = "e_mask"
E_MANIFEST = "e_manifest"
E_PRUNE = "e_prune"
E_DRY = "e_dry"
E_GO = "e_go"
E_PLAN = "e_plan"                    # dry-run summary (dict) or None
E_RESULT = "e_result"                # export summary (dict) or None
E_ZIP = "e_zip"

ORIGIN_TEXT = {"command line": "Folders given on the command line.",
               "remembered": "The folders chosen last time (remembered).",
               "sidebar": "Folders chosen in the sidebar.",
               "ISLES 2022 import": "Imported from ISLES 2022."}
ORDER_LABELS = {"created": "Queue order", "score_asc": "Worst score first",
                "score_desc": "Best score first"}
STATE_ICONS = {"undecided": ":material/hourglass_empty:", "accepted": ":green[:material/check_circle:]",
               "rejected": ":red[:material/cancel:]", "skipped": ":gray[:material/skip_next:]"}


def init_state(defaults: dict) -> None:
    """``setdefault`` every key of `defaults` in ``st.session_state``."""
    for key, value in defaults.items():
        st.session_state.setdefault(key, value)


# --------------------------------------------------------------------------- configuration

def parse_cli(argv: Sequence[str]) -> tuple[dict, str | None]:
    """``--input-dir I --mask-dir M [--db DB] [--data-dir D]`` -> (dict, error message or None).

    Unknown arguments are ignored (the app may run under a test runner).
    """
    parser = argparse.ArgumentParser(prog="streamlit run app.py --", add_help=False,
                                     exit_on_error=False)
    for name in ("--input-dir", "--mask-dir", "--db", "--data-dir"):
        parser.add_argument(name)
    try:
        args, _ = parser.parse_known_args(list(argv))
    except (argparse.ArgumentError, SystemExit) as exc:
        return {}, f"command line: {exc}"
    cli = {k: v for k, v in vars(args).items() if v}
    if bool(cli.get("input_dir")) != bool(cli.get("mask_dir")):
        return {}, "command line: give both --input-dir and --mask-dir (or neither)"
    return cli, None


def data_dir() -> Path:
    return Path(st.session_state[DATA_DIR])


def default_data_dir(cli: dict) -> str:
    return str(Path(cli.get("data_dir") or os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR))


SETTING_KEYS = ("input_dir", "mask_dir", "db", "reviewer")


def load_settings(folder: Path) -> dict:
    """The remembered sidebar choices ({} if none or unreadable)."""
    try:
        data = json.loads((folder / SETTINGS_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in data.items() if k in SETTING_KEYS
            and isinstance(v, str)} if isinstance(data, dict) else {}


def save_settings(folder: Path, values: dict) -> None:
    """Remember some of :data:`SETTING_KEYS` (merged into the file, written atomically).

    A read-only data folder only loses the memory.
    """
    data = load_settings(folder)
    data.update({k: values.get(k) or "" for k in SETTING_KEYS if k in values})
    try:
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(folder / SETTINGS_FILE, json.dumps(data, indent=2).encode())
    except OSError:
        pass


def reviewer() -> str | None:
    """The reviewer name typed in the sidebar (None if empty)."""
    return (st.session_state.get(W_REVIEWER) or "").strip() or None


def demo_config(folder: Path) -> dict:
    """Generate the demo set into `folder` if needed; its configuration."""
    input_dir, mask_dir = ensure_demo(folder)
    return {"input_dir": str(input_dir), "mask_dir": str(mask_dir),
            "db": str(input_dir.parent / "poissonblend.db"), "origin": "demo"}


def initial_config(cli: dict, folder: Path) -> dict:
    """What to open at start: the command line, else remembered settings, else the demo."""
    if cli.get("input_dir"):
        return {"input_dir": cli["input_dir"], "mask_dir": cli["mask_dir"],
                "db": cli.get("db") or "", "origin": "command line"}
    saved = load_settings(folder)
    if saved.get("input_dir") and saved.get("mask_dir"):
        return {**saved, "origin": "remembered"}
    return {"input_dir": "", "mask_dir": "", "db": "", "origin": "demo"}


@st.cache_resource(show_spinner="Opening the dataset…", max_entries=8)
def cached_dataset(input_dir: str, mask_dir: str, _generation: int = 0) -> tuple[Dataset, list[str]]:
    """Open (and index) a dataset once; with the warnings it raised."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dataset = open_dataset(input_dir, mask_dir)
    return dataset, [str(w.message) for w in caught]


@st.cache_resource(show_spinner=False, max_entries=8)
def cached_store(db: str, dataset_identity: str, allow_other_dataset: bool, _dataset: Dataset) -> Store:
    """Open the review database once per (file, dataset); with `allow_other_dataset`,
    bind it to this dataset from now on (the user ticked "use it even if the files changed")."""
    store = Store.open(db or None, _dataset, allow_other_dataset=allow_other_dataset)
    if allow_other_dataset:
        store.rebind(_dataset)
    return store


@dataclass(frozen=True)
class Context:
    """What a page works on: the open dataset and review store, and where they came from."""

    dataset: Dataset
    store: Store
    config: dict

    @property
    def key(self) -> str:
        """Cache key of the dataset's contents."""
        return self.dataset.identity


def open_config(config: dict) -> Context:
    """Open a configuration's dataset and store (cached). Raises PoissonBlendError."""
    if config.get("origin") == "demo" and not config.get("input_dir"):
        config.update(demo_config(data_dir()))
    if not config.get("input_dir") or not config.get("mask_dir"):
        raise PoissonBlendError("choose an input folder and a mask folder")
    dataset, _ = cached_dataset(str(Path(config["input_dir"]).expanduser()),
                                str(Path(config["mask_dir"]).expanduser()))
    db = str(Path(config["db"]).expanduser()) if config.get("db") else str(default_store_path(dataset))
    store = cached_store(db, dataset.identity, bool(config.get("allow_other_dataset")), dataset)
    return Context(dataset, store, {**config, "db": db})


def leave_pages_folder_mode() -> None:
    """Run app.py the way ``st.navigation`` apps run, even in Streamlit's pages-folder mode.

    Because the pages live in ``pages/``, Streamlit begins every server process
    (and every AppTest run) in its legacy "pages folder" mode: a deep link such
    as ``/review`` runs ``pages/review.py`` alone — without app.py, so without
    the dataset, the store and the sidebar — and app.py itself runs as a page,
    under another script hash (which changes its widgets' ids). The first
    ``st.navigation`` call turns that mode off for the process.

    Called first by app.py and by every page: if the mode is still on, turn it
    off and run app.py now, in this same script run (so this run's clicks and
    widget values are kept), under the main script's hash as in a normal run;
    app.py's ``st.navigation`` picks the requested page (its url path is the same
    in both modes) and runs it. Then the caller stops.
    """
    from streamlit.runtime.pages_manager import PagesManager  # no public API for this
    from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx

    if not PagesManager.uses_pages_directory:
        return
    PagesManager.uses_pages_directory = False
    run_ctx = get_script_run_ctx()
    if run_ctx is None:
        return
    with run_ctx.run_with_active_hash(run_ctx.pages_manager.main_script_hash):
        runpy.run_path(str(ROOT / "app.py"), run_name="__main__")
    st.stop()


def context() -> Context:
    """The active dataset and store (opened by app.py before any page runs)."""
    leave_pages_folder_mode()
    return open_config(dict(st.session_state[ACTIVE]))


def dataset_warnings(config: dict) -> list[str]:
    try:
        return cached_dataset(str(Path(config["input_dir"]).expanduser()),
                              str(Path(config["mask_dir"]).expanduser()))[1]
    except PoissonBlendError:
        return []


def try_open(config: dict) -> Context | None:
    """Open `config`; on a PoissonBlendError remember the message and return None."""
    try:
        ctx = open_config(dict(config))
    except PoissonBlendError as exc:
        st.session_state[OPEN_ERROR] = str(exc)
        return None
    return ctx


def activate(ctx: Context) -> None:
    """Make an opened context the active one; forget per-dataset page state."""
    previous = st.session_state.get(ACTIVE, {})
    st.session_state[ACTIVE] = dict(ctx.config)
    st.session_state[LAST_GOOD] = dict(ctx.config)
    st.session_state[OPEN_ERROR] = None
    moved = previous.get("input_dir") and (
        (previous.get("input_dir"), previous.get("mask_dir")) != (ctx.config["input_dir"],
                                                                  ctx.config["mask_dir"])
        or (previous.get("db") and previous.get("db") != ctx.config["db"]))
    if moved:
        for key in (C_SOURCE, C_LESION, C_TARGET, C_SPOT, R_CURRENT, G_OPENED, E_PLAN, E_RESULT,
                    E_INPUT, E_MASK, E_MANIFEST):
            st.session_state.pop(key, None)
        st.session_state[R_UNDO] = []
        st.session_state[G_SELECTED] = set()


def describe(ctx: Context) -> str:
    ds = ctx.dataset
    return (f"{len(ds)} slices, {len(ds.case_ids)} cases, {len(ds.lesion_table)} lesions "
            f"· review database {ctx.config['db']}")


# --------------------------------------------------------------------------- errors

def show_error(exc: BaseException) -> None:
    """A library error as one ``st.error`` line (never a traceback)."""
    st.error(str(exc), icon=":material/error:")


# --------------------------------------------------------------------------- slices

def slice_names(dataset: Dataset, *, only_lesions: bool = False, query: str = "",
                need_brain: bool = False) -> list[str]:
    """Slice names filtered by 'has a lesion', 'has brain' and a case-id/name search."""
    q = query.strip().lower()
    out = []
    for s in dataset.slices:
        if only_lesions and not s.lesions:
            continue
        if need_brain and s.brain_area <= 0:
            continue
        if q and q not in s.case_id.lower() and q not in s.name.lower():
            continue
        out.append(s.name)
    return out


def slice_filters(dataset: Dataset, *, only_key: str, search_key: str, placeholder: str,
                  need_brain: bool = False) -> list[str]:
    """The 'only slices with lesions' toggle and case-id search; the slice names they let through."""
    f1, f2 = st.columns([2, 3], vertical_alignment="bottom")
    f1.toggle("Only slices with lesions", key=only_key, persist_state="session")
    f2.text_input("Search case id", key=search_key, placeholder=placeholder, persist_state="session")
    return slice_names(dataset, only_lesions=st.session_state[only_key],
                       query=st.session_state[search_key], need_brain=need_brain)


def _step_and_notify(key: str, options: Sequence, step: int, on_change) -> None:
    step_choice(key, options, step)
    if on_change is not None:
        on_change()


MAX_LISTED_SLICES = 1000
"""Above this many slices to choose from, a case picker comes first and the slice picker lists
that case's slices: a selectbox of thousands of options makes every rerun slow in the browser
(18,000 slices: 0.5-0.9 s a click instead of 0.25 s)."""


def _pick_case(dataset: Dataset, key: str, names: Sequence[str], case_key: str, on_change) -> None:
    case = st.session_state[case_key]
    st.session_state[key] = next(n for n in names if dataset.info(n).case_id == case)
    if on_change is not None:
        on_change()


def slice_selector(dataset: Dataset, label: str, key: str, names: Sequence[str], *,
                   prev_key: str, next_key: str, case_key: str, on_change=None) -> None:
    """◀ slice selectbox ▶ over `names`; `on_change` runs after any change of ``session_state[key]``.

    With more than :data:`MAX_LISTED_SLICES` names, a case selectbox (`case_key`) comes before
    the slice selectbox, which then lists the slices of the chosen slice's case; ◀ ▶ still step
    through all of `names`.
    """
    many = len(names) > MAX_LISTED_SLICES
    if many:
        b1, case_col, sel, b2 = st.columns([1, 3, 5, 1], vertical_alignment="bottom")
        cases = [dataset.info(n).case_id for n in names]
        current = dataset.info(st.session_state[key]).case_id
        st.session_state[case_key] = current  # ◀ ▶ may have moved to another case
        case_col.selectbox("Case", list(dict.fromkeys(cases)), key=case_key, on_change=_pick_case,
                           args=(dataset, key, names, case_key, on_change))
        listed = [n for n, case in zip(names, cases) if case == current]
    else:
        b1, sel, b2 = st.columns([1, 8, 1], vertical_alignment="bottom")
        listed = names
    b1.button("◀", key=prev_key, on_click=_step_and_notify, args=(key, names, -1, on_change),
              help=f"Previous {label.lower()}")
    sel.selectbox(label, listed, key=key, on_change=on_change, persist_state="session",
                  format_func=lambda n: slice_label(dataset, n, with_case=not many))
    b2.button("▶", key=next_key, on_click=_step_and_notify, args=(key, names, 1, on_change),
              help=f"Next {label.lower()}")


def slice_label(dataset: Dataset, name: str, *, with_case: bool = True) -> str:
    """``slice_0003_0012.png — case 0003 · slice 12 · 2 lesions``, or ``slice 12 · 2 lesions``."""
    info = dataset.info(name)
    lesions = f"{len(info.lesions)} lesion{'s' if len(info.lesions) != 1 else ''}"
    if not with_case:
        return f"slice {info.slice_index} · {lesions}"
    return f"{name} — case {info.case_id} · slice {info.slice_index} · {lesions}"


def slice_with_largest_lesion(dataset: Dataset, names: Sequence[str]) -> str:
    """The first of `names` holding the largest lesion among them (from the index alone)."""
    table = dataset.lesion_table
    largest = np.zeros(len(dataset.slices), np.int64)
    np.maximum.at(largest, table.slice_row, table.area)
    return names[int(np.argmax(largest[[dataset.row(n) for n in names]]))]


def largest_lesion(info: SliceInfo) -> int:
    return max(info.lesions, key=lambda les: les.area).index if info.lesions else 0


def keep_choice(key: str, options: Sequence, fallback=None) -> None:
    """Make ``session_state[key]`` one of `options` (before its widget is drawn)."""
    if options and st.session_state.get(key) not in options:
        st.session_state[key] = fallback if fallback in options else options[0]


def step_choice(key: str, options: Sequence, step: int) -> None:
    """Button callback: move ``session_state[key]`` by `step` within `options` (wrapping)."""
    if not options:
        return
    try:
        i = list(options).index(st.session_state.get(key))
    except ValueError:
        i = -step if step > 0 else 0
    st.session_state[key] = options[(i + step) % len(options)]


# --------------------------------------------------------------------------- pictures (no st)

@dataclass(frozen=True)
class Preview:
    """Encoded pictures of one recipe (PNG bytes) and its quality report."""

    target: bytes
    blended: bytes
    overlay: bytes
    diff: bytes
    zoom: bytes
    quality: dict


def compute_preview(dataset: Dataset, recipe: Recipe, *, opacity: float = 0.35,
                    display: int = PREVIEW_PX) -> Preview:
    """Render a recipe and draw its four views and close-up, PNG-encoded.

    Raises the engine's errors (PlacementError, LesionError, DatasetError).
    """
    sample = render(dataset, recipe)
    target, target_lesions = dataset.load(recipe.target)
    zoom = overlay.fit_zoom(target.shape, display)
    return Preview(
        target=overlay.png_bytes(overlay.mask_overlay(target, target_lesions, None, opacity=0.0,
                                                      zoom=zoom)),
        blended=overlay.png_bytes(overlay.upscale(sample.image, zoom)),
        overlay=overlay.png_bytes(overlay.mask_overlay(sample.image, target_lesions,
                                                       sample.lesion_mask, opacity=opacity,
                                                       zoom=zoom)),
        diff=overlay.png_bytes(overlay.diff_heatmap(target, sample.image, zoom=zoom)),
        zoom=overlay.png_bytes(overlay.zoom_overlay(sample.image, target_lesions,
                                                    sample.lesion_mask, display=display // 2 + 64)),
        quality=sample.quality.to_dict(),
    )


def compute_source(dataset: Dataset, name: str, highlight: int | None,
                   display: int = PREVIEW_PX) -> bytes:
    image, lesion_mask = dataset.load(name)
    return overlay.png_bytes(overlay.lesion_outlines(
        image, label_lesions(lesion_mask)[0], highlight=highlight, zoom=overlay.fit_zoom(image.shape, display)))


def placed_ghost(dataset: Dataset, recipe: Recipe) -> np.ndarray:
    """Boolean target-sized mask of where the recipe's lesion would land (clipped)."""
    target = dataset.load(recipe.target)[0]
    lesion = placed_lesion_mask(lesion_patch(dataset, recipe))
    r, c = top_left_rc(lesion, recipe.x, recipe.y)
    ghost = np.zeros(target.shape, bool)
    h, w = lesion.shape
    rows, cols = target.shape
    r0, c0, r1, c1 = max(r, 0), max(c, 0), min(r + h, rows), min(c + w, cols)
    if r1 > r0 and c1 > c0:
        ghost[r0:r1, c0:c1] = lesion[r0 - r:r1 - r, c0 - c:c1 - c]
    return ghost


def compute_target_click(dataset: Dataset, recipe: Recipe | None, target: str,
                         display: int = CLICK_PX) -> bytes:
    """The target with its lesions (blue), the lesion's footprint (orange) and the spot marker."""
    image, lesions = dataset.load(target)
    zoom = overlay.fit_zoom(image.shape, display)
    ghost = None
    if recipe is not None:
        try:
            ghost = placed_ghost(dataset, recipe)
        except PoissonBlendError:
            ghost = None
    rgb = overlay.mask_overlay(image, lesions, ghost, opacity=0.25, zoom=zoom)
    if recipe is not None:
        rgb = overlay.draw_marker(rgb, recipe.x, recipe.y, zoom=zoom)
    return overlay.png_bytes(rgb)


def compute_candidate(dataset: Dataset, recipe: Recipe, *, opacity: float = 0.35,
                      display: int = PREVIEW_PX) -> dict:
    """Source (its lesion highlighted), target, result with overlay, close-up, as PNG bytes."""
    sample = render(dataset, recipe)
    target, target_lesions = dataset.load(recipe.target)
    zoom = overlay.fit_zoom(target.shape, display)
    return {
        "source": compute_source(dataset, recipe.source, recipe.lesion, display),
        "target": overlay.png_bytes(overlay.mask_overlay(target, target_lesions, None,
                                                         opacity=0.0, zoom=zoom)),
        "overlay": overlay.png_bytes(overlay.mask_overlay(sample.image, target_lesions,
                                                          sample.lesion_mask, opacity=opacity,
                                                          zoom=zoom)),
        "blended": overlay.png_bytes(overlay.upscale(sample.image, zoom)),
        "zoom": overlay.png_bytes(overlay.zoom_overlay(sample.image, target_lesions,
                                                       sample.lesion_mask, display=display // 2)),
    }


def compute_thumbnail(dataset: Dataset, recipe: Recipe, display: int = THUMB_PX) -> bytes:
    sample = render(dataset, recipe)
    _, target_lesions = dataset.load(recipe.target)
    zoom = overlay.fit_zoom(sample.image.shape, display)
    return overlay.png_bytes(overlay.mask_overlay(sample.image, target_lesions, sample.lesion_mask,
                                                  opacity=0.4, zoom=zoom))


def random_spot(dataset: Dataset, recipe: Recipe, draw: int) -> tuple[int, int]:
    """A valid (x, y) for the recipe's lesion on its target; PlacementError if none."""
    valid = valid_spots_for(dataset, recipe)
    return sample_spot(valid, np.random.default_rng([draw, 7]))


def check_spot(dataset: Dataset, recipe: Recipe) -> None:
    """Raise PlacementError explaining why the recipe's spot is invalid (None if valid)."""
    _, target_lesions = dataset.load(recipe.target)
    explain_spot(placed_lesion_mask(lesion_patch(dataset, recipe)), dataset.brain(recipe.target),
                 target_lesions, recipe.x, recipe.y)


def display_to_image(click: dict, shape: tuple[int, int]) -> tuple[int, int] | None:
    """Map a streamlit-image-coordinates click (display px) to slice (x, y)."""
    try:
        x, y, w, h = (float(click[k]) for k in ("x", "y", "width", "height"))
    except (KeyError, TypeError, ValueError):
        return None
    if w <= 0 or h <= 0:
        return None
    rows, cols = shape
    ix = int(min(max(x * cols / w, 0), cols - 1))
    iy = int(min(max(y * rows / h, 0), rows - 1))
    return ix, iy


def size_histogram(original: Sequence[int], accepted: Sequence[int], bins: int = 12) -> dict:
    """Share of lesions per log-spaced area bin: {"area (px)": labels, "originals": …, "accepted": …}."""
    both = np.concatenate([np.asarray(original, float), np.asarray(accepted, float)])
    top = int(both.max()) if both.size else 1
    edges = np.unique(np.round(np.geomspace(1, max(top, 2) + 1, bins + 1)).astype(int))
    labels = [f"{lo}–{hi - 1}" if hi - 1 > lo else f"{lo}" for lo, hi in zip(edges[:-1], edges[1:])]

    def share(values):
        counts, _ = np.histogram(np.asarray(values, float), bins=edges)
        return (counts / max(1, counts.sum())).round(4).tolist()

    return {"area (px)": labels, "originals": share(original), "accepted": share(accepted)}


def placement_picture(dataset: Dataset, recipes: Sequence[Recipe], display: int = PREVIEW_PX
                      ) -> tuple[bytes, int, tuple[int, int]] | None:
    """Heat-map of placements over the most common slice shape, on the mean of such slices."""
    if not dataset.target_names:
        return None
    shapes: dict[tuple[int, int], int] = {}
    for s in dataset.slices:
        shapes[s.shape] = shapes.get(s.shape, 0) + 1
    shape = max(shapes, key=shapes.get)
    points = [(r.x, r.y) for r in recipes if dataset.info(r.target).shape == shape]
    names = [s.name for s in dataset.slices if s.shape == shape and s.brain_area > 0]
    picked = names[::max(1, len(names) // 64)]  # the mean of <= ~64 slices is plenty
    mean = np.mean([dataset.load(n)[0] for n in picked], axis=0)
    background = np.clip(np.rint(mean * (255.0 / max(1.0, float(mean.max())))), 0, 255).astype(np.uint8)
    picture = overlay.density_map(points, shape, background=background,
                                  sigma=max(2.0, shape[0] / 40), zoom=overlay.fit_zoom(shape, display))
    return overlay.png_bytes(picture), len(points), shape


@st.cache_data(max_entries=16, show_spinner=False)
def placement_png(key: str, recipes_json: tuple[str, ...], _dataset: Dataset
                  ) -> tuple[bytes, int, tuple[int, int]] | None:
    return placement_picture(_dataset, [Recipe.from_dict(json.loads(r)) for r in recipes_json])


# --------------------------------------------------------------------------- cached pictures

@st.cache_data(max_entries=512, show_spinner=False)
def preview(key: str, recipe_json: str, opacity: float, _dataset: Dataset) -> Preview:
    return compute_preview(_dataset, Recipe.from_dict(json.loads(recipe_json)), opacity=opacity)


@st.cache_data(max_entries=256, show_spinner=False)
def source_png(key: str, name: str, highlight: int | None, _dataset: Dataset) -> bytes:
    return compute_source(_dataset, name, highlight)


@st.cache_data(max_entries=256, show_spinner=False)
def target_click_png(key: str, recipe_json: str | None, target: str, _dataset: Dataset) -> bytes:
    recipe = Recipe.from_dict(json.loads(recipe_json)) if recipe_json else None
    return compute_target_click(_dataset, recipe, target)


@st.cache_data(max_entries=512, show_spinner=False)
def candidate_pngs(key: str, recipe_json: str, opacity: float, _dataset: Dataset) -> dict:
    return compute_candidate(_dataset, Recipe.from_dict(json.loads(recipe_json)), opacity=opacity)


@st.cache_data(max_entries=2048, show_spinner=False)
def thumbnail_png(key: str, recipe_json: str, _dataset: Dataset) -> bytes:
    return compute_thumbnail(_dataset, Recipe.from_dict(json.loads(recipe_json)))


# --------------------------------------------------------------------------- widgets

class PngSource:
    """Hands already-encoded PNG bytes to streamlit-image-coordinates (it calls ``.save``)."""

    def __init__(self, data: bytes):
        self.data = data

    def save(self, fp, format=None, **_):  # noqa: A002 - PIL's signature
        fp.write(self.data)


def image(data: bytes, caption: str | None = None) -> None:
    """A PNG picture filling its column."""
    st.image(data, caption=caption, width="stretch", output_format="PNG")


QUALITY_HELP = {
    "score": ("Score", "{:.3f}", "One number for sorting, higher is better"),
    "contrast_transferred": ("Contrast kept", "{:.0%}",
                             "Lesion-vs-surroundings contrast of the result / of the source"),
    "seam_gradient": ("Seam gradient", "{:.2f}",
                      "Mean gradient of the change (result − target) 2–4 px around the lesion, "
                      "grey levels per px (≈ 0: the blend fades in without a visible seam)"),
    "brain_fraction": ("In brain", "{:.0%}", "Share of lesion pixels inside the target's brain"),
    "lesion_area": ("Lesion area", "{:d} px", "Pixels of the placed lesion"),
    "changed_fraction": ("Changed", "{:.0%}", "Share of lesion pixels that changed by > 3 levels"),
}


def quality_report(quality: dict, *, columns: int = 3) -> None:
    """The quality report as metrics with explanations."""
    cols = st.columns(columns)
    for i, (field, (label, fmt, help_)) in enumerate(QUALITY_HELP.items()):
        value = quality.get(field)
        text = "–" if value is None else fmt.format(int(value) if fmt.endswith("px") else value)
        cols[i % columns].metric(label, text, help=help_)


def recipe_caption(recipe: Recipe) -> str:
    flips = f" · flip {recipe.flips}" if recipe.flips else ""
    return (f"lesion {recipe.lesion} of `{recipe.source}` → `{recipe.target}` at "
            f"(x={recipe.x}, y={recipe.y}) · {recipe.mode} · scale {recipe.scale:g} · "
            f"rotation {recipe.rotation:g}°{flips} · margin {recipe.margin}")


STATE_COLOURS = {"undecided": "gray", "accepted": "green", "rejected": "red", "skipped": "orange"}


def state_badge(state: str) -> str:
    """Markdown: the state in its colour."""
    return f":{STATE_COLOURS.get(state, 'gray')}[{state}]"


def candidate_title(c: Candidate) -> str:
    reason = f" ({c.reason})" if c.reason else ""
    return f"Candidate #{c.id} · {STATE_ICONS.get(c.state, '')} {c.state}{reason}"


def candidate_view(ctx: Context, c: Candidate, *, opacity: float = 0.35) -> None:
    """One candidate, large: source | target | result with overlay, close-up and quality."""
    pngs = candidate_pngs(ctx.key, c.recipe.to_json(), opacity, ctx.dataset)
    cols = st.columns(3)
    with cols[0]:
        image(pngs["source"], f"Source {c.recipe.source} · lesion {c.recipe.lesion} (orange)")
    with cols[1]:
        image(pngs["target"], f"Target {c.recipe.target} (own lesions in blue)")
    with cols[2]:
        image(pngs["overlay"], "Result · new lesion orange, original lesions blue")
    st.caption(recipe_caption(c.recipe) + f" · batch {c.batch or '–'} · case id `{c.case_id}`")
    left, right = st.columns([1, 3])
    with left:
        image(pngs["zoom"], "Close-up of the new lesion")
    with right:
        quality_report(c.quality)


def reason_options() -> list[str]:
    return ["(no reason)", *REASONS]


def chosen_reason(key: str) -> str | None:
    value = st.session_state.get(key)
    return None if not value or value == "(no reason)" else value


# --------------------------------------------------------------------------- review helpers

def current_candidate(store: Store, pinned: int | None, order: str) -> Candidate | None:
    """The candidate to show: the pinned one if it exists, else the next undecided."""
    if pinned is not None:
        try:
            return store.get(pinned)
        except PoissonBlendError:
            pass
    return store.next_undecided(order=order)


def neighbour(store: Store, candidate_id: int, order: str, step: int) -> int | None:
    """Id `step` places from `candidate_id` among all candidates in `order` (None past the ends)."""
    ids = [c.id for c in store.candidates(order=order)]
    try:
        i = ids.index(candidate_id) + step
    except ValueError:
        return None
    return ids[i] if 0 <= i < len(ids) else None


def last_decided(store: Store, lookback: int = 200) -> int | None:
    """The most recently decided candidate that is still decided (for Undo after a restart)."""
    seen: set[int] = set()
    for record in reversed(store.history()[-lookback:]):
        if record.candidate_id in seen:
            continue
        seen.add(record.candidate_id)
        if store.get(record.candidate_id).state != "undecided":
            return record.candidate_id
    return None


def prefetch_next(ctx: Context, current_id: int, order: str, opacity: float = 0.35) -> None:
    """Render and encode the next undecided candidate now, so deciding shows it at once."""
    nxt = ctx.store.next_undecided(order=order, exclude=(current_id,))
    if nxt is not None:
        try:
            candidate_pngs(ctx.key, nxt.recipe.to_json(), opacity, ctx.dataset)
        except PoissonBlendError:
            pass


def flash_message(key: str) -> None:
    """Show the one-shot message stored under `key` (ok/info as a toast, errors inline), then drop it."""
    message = st.session_state.get(key)
    if not message:
        return
    st.session_state[key] = None
    kind, text = message
    if kind == "error":
        st.error(text, icon=":material/error:")
    else:
        st.toast(text, icon=":material/check:" if kind == "ok" else ":material/info:")


# --------------------------------------------------------------------------- export helpers

def export_summary(summary) -> dict:
    """An ExportSummary as plain data for session_state."""
    return {"line": summary.line, "written": summary.written, "skipped": summary.skipped,
            "conflicts": [str(c) for c in summary.conflicts],
            "stale": [str(s) for s in summary.stale], "pruned": len(summary.pruned) // 2,
            "repaired": len(summary.repaired), "manifest": str(summary.manifest),
            "dry_run": summary.dry_run}


def summary_metrics(summary: dict) -> None:
    verb = "Would write" if summary["dry_run"] else "Written"
    cols = st.columns(5)
    cols[0].metric(verb, summary["written"])
    cols[1].metric("Already there (skip)", summary["skipped"])
    cols[2].metric("Conflicts", len(summary["conflicts"]))
    cols[3].metric("Stale (no longer accepted)", len(summary["stale"]))
    cols[4].metric("Pruned", summary["pruned"])
    for line in summary["conflicts"]:
        st.error(line, icon=":material/error:")
    if summary["stale"] and not summary["pruned"]:
        st.warning("No longer accepted but still exported: " + ", ".join(summary["stale"][:10])
                   + (" …" if len(summary["stale"]) > 10 else ""), icon=":material/warning:")


def manifest_rows(path: str) -> list[dict]:
    from poissonblend.output import read_manifest
    return read_manifest(Path(path))


@st.cache_data(max_entries=64, show_spinner=False)
def _file_png(path: str, mtime_ns: int, mask: bool) -> bytes:
    from poissonblend.io import read_gray_png
    pixels = read_gray_png(Path(path))
    return overlay.png_bytes(overlay.upscale(pixels, overlay.fit_zoom(pixels.shape, THUMB_PX)))


def exported_pairs(input_dir: str, mask_dir: str, case_ids: Sequence[str]
                   ) -> list[tuple[str, bytes, bytes]]:
    """(file name, image PNG, mask PNG) of exported cases as they are on disk (cached by mtime)."""
    from poissonblend.output import sample_paths
    out = []
    for case_id in case_ids:
        image_path, mask_path = sample_paths(case_id, Path(input_dir), Path(mask_dir))
        try:
            out.append((image_path.name,
                        _file_png(str(image_path), image_path.stat().st_mtime_ns, False),
                        _file_png(str(mask_path), mask_path.stat().st_mtime_ns, True)))
        except (OSError, PoissonBlendError):
            continue
    return out


def reason_counts(rejected: Sequence[Candidate]) -> dict:
    """{"reason": [...], "count": [...]} of the rejected candidates' reasons."""
    tally: dict[str, int] = {}
    for c in rejected:
        key = c.reason or "(no reason)"
        tally[key] = tally.get(key, 0) + 1
    names = sorted(tally, key=lambda k: -tally[k])
    return {"reason": names, "count": [tally[k] for k in names]}
