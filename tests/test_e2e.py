"""End to end: ``streamlit run app.py`` in a real headless Chromium (Playwright).

A module fixture starts the app on a free localhost port on a small demo set
in tmp (``-- --input-dir … --mask-dir … --db …``) and waits for
``/_stcore/health``. The test then works like a curator: queue candidates,
accept two with the keyboard shortcut and reject one with the button, skip and
undo, reload and find the progress kept, place a lesion by clicking the
target, export, download the zip, and check the exported files with the
user's own loader. It prints the median time from a decision to the next
candidate being shown, and saves a screenshot of every page in
``test-artifacts/``.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
import zipfile
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np
import pytest
from playwright.sync_api import Page, expect, sync_playwright

from poissonblend.dataset import open_dataset
from poissonblend.demo import make_demo
from poissonblend.store import Store

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
VIEWPORT = {"width": 1440, "height": 1500}
START_TIMEOUT = 60


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with {proc.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"streamlit did not become healthy in {START_TIMEOUT} s:\n{log.read_text()}")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The app served on a tmp copy of a small demo set; yields (url, paths)."""
    root = tmp_path_factory.mktemp("e2e")
    made_in, made_mask = make_demo(root / "made", cases=3, slices=8, size=128)
    input_dir, mask_dir = root / "set" / "input", root / "set" / "mask"
    shutil.copytree(made_in, input_dir)
    shutil.copytree(made_mask, mask_dir)
    db = root / "review.db"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = root / "streamlit.log"
    env = {**os.environ, "XDG_CACHE_HOME": str(root / "cache"), "PYTHONUNBUFFERED": "1"}
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
             "--server.headless", "true", "--", "--input-dir", str(input_dir), "--mask-dir",
             str(mask_dir), "--db", str(db), "--data-dir", str(root / "data")],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        wait_healthy(url, proc, log)
        yield url, {"input": input_dir, "mask": mask_dir, "db": db, "root": root, "log": log}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def page(server):
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
        pg = context.new_page()
        pg.set_default_timeout(20_000)
        yield pg
        context.close()
        browser.close()


def settle(page: Page) -> None:
    """Wait until the app has finished its current run."""
    page.wait_for_selector("[data-testid=stApp][data-test-script-state=notRunning]", timeout=30_000)


def shot(page: Page, name: str) -> Path:
    """Screenshot the whole page (Streamlit scrolls inside the page: grow the viewport)."""
    settle(page)
    height = page.evaluate(
        "() => Math.max(...[...document.querySelectorAll('[data-testid=stMain], section')]"
        ".map(e => e.scrollHeight), document.body.scrollHeight)")
    page.set_viewport_size({"width": VIEWPORT["width"], "height": min(max(height, 900), 4000)})
    page.wait_for_timeout(400)  # images decoded and laid out
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    page.set_viewport_size(VIEWPORT)
    return path


def heading(page: Page, candidate_id: int):
    return page.locator("h4", has_text=re.compile(rf"Candidate #{candidate_id} ·"))


def decide_and_time(page: Page, action, next_id: int) -> float:
    """Seconds from a decision (key press or click) until candidate #next_id is shown."""
    t0 = time.perf_counter()
    action()
    heading(page, next_id).wait_for(state="visible")
    return time.perf_counter() - t0


def nav(page: Page, title: str) -> None:
    page.get_by_role("link", name=title).first.click()
    settle(page)


def load_like_the_user(input_dir: Path, mask_dir: Path) -> dict[str, list[tuple[np.ndarray, np.ndarray]]]:
    """The user's loader: group file names by case (``split('_')[1]``), read greyscale, mask/255."""
    groups: dict[str, list[str]] = defaultdict(list)
    for name in sorted(os.listdir(input_dir)):
        groups[name.split("_")[1]].append(name)
    out = {}
    for case, names in groups.items():
        pairs = []
        for name in names:
            image = cv2.imread(str(input_dir / name), cv2.IMREAD_GRAYSCALE)
            mask = cv2.imread(str(mask_dir / name), cv2.IMREAD_GRAYSCALE)
            assert image is not None and mask is not None, name
            assert image.shape == mask.shape
            mask = mask / 255
            assert set(np.unique(mask)) <= {0.0, 1.0}, (name, np.unique(mask))
            pairs.append((image, mask))
        out[case] = pairs
    return out


def test_curation_in_the_browser(server, page: Page):
    url, paths = server
    store = Store.open(paths["db"], open_dataset(paths["input"], paths["mask"]))

    # ---- Review, reached by a deep link on a fresh server: app.py runs first (the sidebar
    # shows the open dataset), then the Review page; the URL stays /review. Queue 6 candidates.
    page.goto(f"{url}/review")
    expect(page.get_by_text("Review candidates")).to_be_visible()
    sidebar = page.get_by_test_id("stSidebar")
    expect(sidebar.get_by_text("Folders given on the command line.")).to_be_visible()
    expect(sidebar.get_by_text(re.compile(r"24 slices, 3 cases"))).to_be_visible()
    assert page.url.rstrip("/").endswith("/review")
    expect(page.get_by_text("No candidates yet")).to_be_visible()
    page.get_by_label("How many").fill("6")
    page.get_by_role("button", name="Queue candidates").click()
    expect(heading(page, 1)).to_be_visible()
    expect(page.get_by_text("0 of 6 decided")).to_be_visible()
    assert store.counts()["total"] == 6
    shot(page, "review")

    # ---- decide: A, A (keyboard), Reject (button), then S and U; time each
    times = []
    page.get_by_text("Review candidates").click()  # focus on the page, not an input
    times.append(decide_and_time(page, lambda: page.keyboard.press("a"), 2))
    times.append(decide_and_time(page, lambda: page.keyboard.press("a"), 3))
    times.append(decide_and_time(
        page, lambda: page.get_by_role("button", name="Reject").click(), 4))
    times.append(decide_and_time(page, lambda: page.keyboard.press("s"), 5))
    times.append(decide_and_time(page, lambda: page.keyboard.press("u"), 4))  # undo the skip
    expect(page.get_by_text("3 of 6 decided")).to_be_visible()
    states = {c.id: c.state for c in store.candidates()}
    assert states == {1: "accepted", 2: "accepted", 3: "rejected", 4: "undecided",
                      5: "undecided", 6: "undecided"}
    median_ms = statistics.median(times) * 1000
    print(f"\ndecision -> next candidate shown: median {median_ms:.0f} ms "
          f"(n={len(times)}: {', '.join(f'{t * 1000:.0f}' for t in times)} ms)")
    assert median_ms < 3000

    # ---- reload: the queue resumes where it was (state lives in the store)
    page.reload()
    expect(heading(page, 4)).to_be_visible()
    expect(page.get_by_text("3 of 6 decided")).to_be_visible()

    # ---- Gallery
    nav(page, "Gallery")
    expect(page.get_by_text("6 shown")).to_be_visible()
    expect(page.locator("[data-testid=stImage]")).to_have_count(6)
    shot(page, "gallery")

    # ---- Compose: click the centre of the target to place the lesion there
    nav(page, "Compose")
    frame = page.frame_locator("iframe[title*='streamlit_image_coordinates']")
    target = frame.locator("img")
    expect(target).to_be_visible()
    box = target.bounding_box()
    shape = open_dataset(paths["input"], paths["mask"]).slices[0].shape
    fx, fy = 0.5, 0.42
    target.click(position={"x": box["width"] * fx, "y": box["height"] * fy})
    want = (int(fx * box["width"] * shape[1] / box["width"]),
            int(fy * box["height"] * shape[0] / box["height"]))
    spot = page.get_by_text(re.compile(r"spot x=\d+, y=\d+"))
    expect(spot).to_contain_text(f"spot x={want[0]}, y={want[1]}")
    shot(page, "compose")

    # ---- Export: dry run, export, files load with the user's loader, zip
    nav(page, "Export")
    out_in, out_mask = paths["input"].parent / "aug_input", paths["input"].parent / "aug_mask"
    page.get_by_role("button", name="Dry run").click()
    expect(page.get_by_text("nothing was written")).to_be_visible()
    assert not out_in.exists()
    page.get_by_role("button", name="Export 2 accepted").click()
    expect(page.get_by_text(re.compile(r"export: 2 written"))).to_be_visible()
    shot(page, "export")
    loaded = load_like_the_user(out_in, out_mask)
    accepted = {c.case_id for c in store.candidates(state="accepted")}
    assert set(loaded) == accepted and all(len(v) == 1 for v in loaded.values())
    for case_id, [(image, mask)] in loaded.items():
        assert mask.sum() > 0  # the blended lesion is in the mask
        candidate = next(c for c in store.candidates(state="accepted") if c.case_id == case_id)
        assert np.array_equal(image, store.render(candidate).image)
    with page.expect_download() as download:
        page.get_by_role("button", name=re.compile("Download zip")).click()
    zip_path = paths["root"] / "export.zip"
    download.value.save_as(zip_path)
    with zipfile.ZipFile(zip_path) as zf:
        names = set(zf.namelist())
    assert {f"input/slice_{c}_0000.png" for c in accepted} <= names
    assert {f"mask/slice_{c}_0000.png" for c in accepted} <= names

    # ---- Stats
    nav(page, "Stats")
    expect(page.get_by_text("Accept rate")).to_be_visible()
    expect(page.get_by_text("67%")).to_be_visible()
    shot(page, "stats")

    log = paths["log"].read_text()
    assert "Traceback" not in log, log
    assert not re.search(r"warn", log, re.IGNORECASE), log  # e.g. a widget set two ways
