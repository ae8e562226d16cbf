"""End to end: ``streamlit run app.py`` in a real headless Chromium (Playwright).

A module fixture starts the app on a free localhost port on a copy of the demo set
in tmp (``-- --input-dir … --mask-dir … --db …``) and waits for
``/_stcore/health``. The test then works like a curator: opens Review by a deep link
on the cold server (app.py runs first), queues candidates, checks that the clean
result, the decision buttons and the score are in view at 1440x900 and 1280x720 and
that T flips to the target, decides with keys and buttons (timing each decision until
the next candidate is painted with its pictures loaded, and asserting the median),
reloads and finds the progress kept, pages through the Gallery and undoes a confirmed
bulk decision, places a lesion by clicking the target, exports, downloads the zip,
checks the exported files with the user's own loader, and opens Stats and Evidence. It saves screenshots of every
page at both sizes in ``test-artifacts/`` and asserts the server log has no warning.
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
from functools import partial
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
VIEWPORT = {"width": 1440, "height": 900}
TARGET_MS = 300
"""The aim for decision -> next candidate painted with its pictures loaded, median (README)."""
LATENCY_BOUND_MS = 3000
"""What the test asserts: a busy shared machine (other test runs) can be far from the aim,
which the README reports as measured."""
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
    made_in, made_mask = make_demo(root / "made")  # the demo set: 8 cases x 12 slices of 128 px
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
        expect.set_options(timeout=20_000)  # a busy machine (other test runs) is slow
        yield pg
        context.close()
        browser.close()


def settle(page: Page) -> None:
    """Wait until the app has finished its current run."""
    page.wait_for_selector("[data-testid=stApp][data-test-script-state=notRunning]", timeout=30_000)


SIZES = ((1440, 900), (1280, 720))


def shot(page: Page, name: str) -> None:
    """Screenshots of what a user sees at 1440x900 and 1280x720 (test-artifacts/NAME-WxH.png)."""
    settle(page)
    for width, height in SIZES:
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_timeout(400)  # laid out again, images decoded
        page.screenshot(path=str(ARTIFACTS / f"{name}-{width}x{height}.png"))
    page.set_viewport_size(VIEWPORT)


def heading(page: Page, candidate_id: int):
    return page.locator("h5", has_text=re.compile(rf"Candidate #{candidate_id} ·"))


PAINTED = """(id) => {
  const main = document.querySelector('[data-testid=stMain]');
  const caption = [...main.querySelectorAll('[data-testid=stImageCaption]')]
    .some(c => c.innerText.trim().endsWith('candidate #' + id));
  const boxes = [...main.querySelectorAll('[data-testid=stElementContainer]')]
    .filter(e => e.querySelector('img'));
  const done = caption && boxes.length >= 3 && boxes.every(e => e.getAttribute('data-stale') !== 'true'
    && [...e.querySelectorAll('img')].every(i => i.complete && i.naturalWidth > 0));
  if (done && window.__decided !== undefined && window.__painted === undefined) {
    window.__painted = performance.now();
  }
  return done;
}"""
"""Candidate #id is painted: its big picture's caption names it, and every picture on the page
is from this run (not a stale one of the previous candidate) and loaded. Checked on every
animation frame in the page, which notes the time it first holds."""

START_CLOCK = """() => {
  delete window.__decided; delete window.__painted;
  const start = () => { if (window.__decided === undefined) window.__decided = performance.now(); };
  document.addEventListener('keydown', start, {capture: true, once: true});
  document.addEventListener('pointerdown', start, {capture: true, once: true});
}"""
"""Note in the page when the next key press or click (the decision) happens."""


def decide_and_time(page: Page, action, next_id: int) -> float:
    """Seconds from a decision (key press or click) until candidate #next_id is painted with its
    pictures loaded (:data:`PAINTED`), by the page's own clock (no test-driver delays in it).
    Starts when the app is idle, as after a curator's look."""
    settle(page)
    page.evaluate(START_CLOCK)
    action()
    page.wait_for_function(PAINTED, arg=next_id, polling="raf")
    expect(heading(page, next_id)).to_be_visible()
    return page.evaluate("() => (window.__painted - window.__decided) / 1000")


def in_view(page: Page, locator) -> bool:
    """The element is wholly inside the viewport (no scrolling needed)."""
    box = locator.bounding_box()
    size = page.viewport_size
    return (box is not None and box["x"] >= 0 and box["y"] >= 0
            and box["x"] + box["width"] <= size["width"] + 0.5
            and box["y"] + box["height"] <= size["height"] + 0.5)


def big_picture(page: Page):
    return page.get_by_test_id("stImage").filter(has_text=re.compile(r"· candidate #\d+$"))


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
    # shows the open dataset), then the Review page; the URL stays /review. Queue 12 candidates.
    page.goto(f"{url}/review")
    sidebar = page.get_by_test_id("stSidebar")
    expect(sidebar.get_by_text("Folders given on the command line.")).to_be_visible()
    expect(sidebar.get_by_text(re.compile(r"96 slices, 8 cases"))).to_be_visible()
    assert page.url.rstrip("/").endswith("/review")
    expect(page.get_by_text("No candidates yet")).to_be_visible()
    page.get_by_label("How many").fill("12")
    page.get_by_role("button", name="Queue candidates").click()
    expect(heading(page, 1)).to_be_visible()
    expect(page.get_by_text("0 of 12 decided")).to_be_visible()
    expect(page.get_by_label("How many")).to_be_hidden()  # the queue panel closed
    assert store.counts()["total"] == 12
    page.wait_for_function(PAINTED, arg=1)

    # ---- judging realism: the clean result large; decisions, picture and score in view
    for size, least_px in zip(SIZES, (400, 300)):
        page.set_viewport_size({"width": size[0], "height": size[1]})
        settle(page)
        picture = big_picture(page)
        expect(picture).to_contain_text("Result · candidate #1")
        assert picture.locator("img").bounding_box()["width"] >= least_px, size
        for element in (page.get_by_role("button", name="Accept"),
                        page.get_by_role("button", name="Reject"),
                        page.get_by_role("button", name="Skip"), picture,
                        page.get_by_test_id("stMetric").filter(has_text="Score")):
            assert in_view(page, element), (size, element)
        page.screenshot(path=str(ARTIFACTS / f"review-{size[0]}x{size[1]}.png"))
    page.set_viewport_size(VIEWPORT)
    # T flips to the target at the same place and scale, and back; layers are off until asked
    page.get_by_test_id("stProgress").click()  # focus on the page, not an input
    box = big_picture(page).locator("img").bounding_box()
    page.keyboard.press("t")
    expect(big_picture(page)).to_contain_text("Target before the blend · candidate #1")
    assert big_picture(page).locator("img").bounding_box() == box
    page.keyboard.press("t")
    expect(big_picture(page)).to_contain_text("Result · candidate #1")
    clean = big_picture(page).locator("img").get_attribute("src")
    layers = page.get_by_test_id("stButtonGroup")
    layers.get_by_role("button", name="Outline").click()
    expect(big_picture(page).locator("img")).not_to_have_attribute("src", clean)
    layers.get_by_role("button", name="Outline").click()
    expect(big_picture(page).locator("img")).to_have_attribute("src", clean)

    # ---- decide with keys and buttons; time each decision until the next one is painted
    times = []
    page.get_by_test_id("stProgress").click()
    for key_or_button, next_id in (("a", 2), ("a", 3), ("Reject", 4), ("s", 5), ("u", 4),
                                   ("a", 5), ("a", 6), ("Reject", 7), ("a", 8), ("a", 9)):
        if len(key_or_button) == 1:
            action = partial(page.keyboard.press, key_or_button)
        else:
            action = page.get_by_role("button", name=key_or_button).click
        times.append(decide_and_time(page, action, next_id))
    expect(page.get_by_text("8 of 12 decided")).to_be_visible()
    states = {c.id: c.state for c in store.candidates()}
    assert states == {1: "accepted", 2: "accepted", 3: "rejected", 4: "accepted", 5: "accepted",
                      6: "rejected", 7: "accepted", 8: "accepted", 9: "undecided",
                      10: "undecided", 11: "undecided", 12: "undecided"}
    median_ms = statistics.median(times) * 1000
    print(f"\ndecision -> next candidate painted, pictures loaded: median {median_ms:.0f} ms "
          f"(n={len(times)}: {', '.join(f'{t * 1000:.0f}' for t in times)} ms; aim {TARGET_MS} ms)")
    assert median_ms <= LATENCY_BOUND_MS

    # ---- reload: the queue resumes where it was (state lives in the store)
    page.reload()
    expect(heading(page, 9)).to_be_visible()
    expect(page.get_by_text("8 of 12 decided")).to_be_visible()

    # ---- Gallery: 24 candidates on two pages; a filter goes back to page 1; a bulk decision
    # asks first and is undone in one step
    store.queue(12, 5, batch="more")
    nav(page, "Gallery")
    expect(page.get_by_text("24 shown")).to_be_visible()
    thumbs = page.locator("[data-testid=stImage]")
    expect(thumbs).to_have_count(20)
    page.get_by_role("button", name="Page 2").click()
    expect(thumbs).to_have_count(4)
    page.get_by_label("State", exact=True).click()
    page.get_by_role("option", name="undecided").click()
    expect(page.get_by_text("16 shown")).to_be_visible()
    expect(thumbs).to_have_count(16)
    settle(page)
    page.get_by_role("button", name="Select page").click()
    expect(page.get_by_text("16 shown · 16 selected")).to_be_visible()
    settle(page)
    page.get_by_role("button", name="Reject", exact=True).click()
    expect(page.get_by_text("Reject 16 selected candidates")).to_be_visible()
    page.get_by_role("button", name="Reject 16").click()
    expect(page.get_by_text("16 candidates rejected.")).to_be_visible()
    assert store.counts()["rejected"] == 2 + 16
    page.get_by_role("button", name="Undo").click()
    expect(page.get_by_text("16 shown")).to_be_visible()
    assert store.counts()["rejected"] == 2 and store.counts()["undecided"] == 16
    shot(page, "gallery")

    # ---- Compose: click the centre of the target to place the lesion there
    nav(page, "Compose")
    frame = page.frame_locator("iframe[title*='streamlit_image_coordinates']")
    target = frame.locator("img")
    expect(target).to_be_visible()
    box = target.bounding_box()
    shape = open_dataset(paths["input"], paths["mask"]).slices[0].shape
    want = (shape[1] // 2, int(0.42 * shape[0]))  # slice pixel (x, y); click its middle
    target.click(position={"x": (want[0] + 0.5) * box["width"] / shape[1],
                           "y": (want[1] + 0.5) * box["height"] / shape[0]})
    spot = page.get_by_text(re.compile(r"spot x=\d+, y=\d+"))
    expect(spot).to_contain_text(f"spot x={want[0]}, y={want[1]}")
    # the result and Accept / Reject sit beside the target: a click needs no scroll at 1440x900
    # (the result, or why this spot is not valid, in the same place)
    settle(page)
    outcome = page.get_by_test_id("stImage").filter(has_text="Result").locator("img").or_(
        page.get_by_text(re.compile(r"^(Invalid spot|No valid spot)"))).first
    expect(outcome).to_be_visible()
    for element in (outcome, page.get_by_role("button", name="Accept"),
                    page.get_by_role("button", name="Reject")):
        assert in_view(page, element), element
    # a random valid spot always gives a result, beside the target and in view
    page.get_by_role("button", name="Random valid spot").click()
    settle(page)
    result = page.get_by_test_id("stImage").filter(has_text="Result").locator("img").first
    expect(result).to_be_visible()
    assert in_view(page, result) and in_view(page, page.get_by_role("button", name="Accept"))
    shot(page, "compose")

    # ---- Export: dry run, export, files load with the user's loader, zip
    nav(page, "Export")
    out_in, out_mask = paths["input"].parent / "aug_input", paths["input"].parent / "aug_mask"
    page.get_by_role("button", name="Dry run").click()
    expect(page.get_by_text("nothing was written")).to_be_visible()
    assert not out_in.exists()
    page.get_by_role("button", name="Export 6 accepted").click()
    expect(page.get_by_text(re.compile(r"export: 6 written"))).to_be_visible()
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
    expect(page.get_by_text("75%")).to_be_visible()
    shot(page, "stats")

    # ---- Evidence: no ablation run under the data folder yet, and it says how to make one
    nav(page, "Evidence")
    expect(page.get_by_text(re.compile(r"^No ablation report under the data folder"))).to_be_visible()
    shot(page, "evidence")

    log = paths["log"].read_text()
    assert "Traceback" not in log, log
    assert not re.search(r"warn", log, re.IGNORECASE), log  # e.g. a widget set two ways
