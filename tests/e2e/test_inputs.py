"""Predict's other inputs in Chromium (a drawing made with the mouse, the fake camera) and a shared link."""

import re
import time

import pytest
from playwright.sync_api import Browser, Page, expect

from bench.harness import CHROMIUM, CHROMIUM_FLAGS
from core.data.fashion import CLASSES
from tests.e2e.conftest import shot

GRID_LABEL = re.compile(r"^#\d+ · [A-Z]")  # the label under each explorer grid image
TOP1 = re.compile(r"Top-1: (.+) · [\d.]+%")
# The waist, then the two legs, in canvas pixels (the canvas is 280 x 280).
TROUSER_STROKES = [((95, 40), (185, 40)), ((105, 40), (95, 255)), ((175, 40), (185, 255))]


def _stroke(page: Page, origin: dict, start: tuple, end: tuple, release: bool = True) -> None:
    page.mouse.move(origin["x"] + start[0], origin["y"] + start[1])
    page.mouse.down()
    for step in range(1, 13):
        t = step / 12
        page.mouse.move(
            origin["x"] + start[0] + (end[0] - start[0]) * t, origin["y"] + start[1] + (end[1] - start[1]) * t
        )
    if release:
        page.mouse.up()


def _top1(page: Page) -> str:
    line = page.get_by_text(TOP1).first
    expect(line).to_be_visible(timeout=20_000)
    return TOP1.search(line.inner_text())[1]


def test_a_trouser_drawn_with_the_mouse_is_classified(server, trained_run, page: Page):
    page.goto(f"{server.url}/Predict?input=draw")
    canvas = page.locator("canvas.upper-canvas").first  # fabric.js draws on the upper canvas
    expect(canvas).to_be_visible(timeout=20_000)
    expect(page.get_by_text("Sketch a piece of clothing")).to_be_visible()
    origin = canvas.bounding_box()
    first, *rest = TROUSER_STROKES
    _stroke(page, origin, *first, release=False)
    page.wait_for_timeout(1_000)
    expect(page.get_by_text(TOP1)).to_have_count(0)  # nothing is sent while the pen is down
    page.mouse.up()
    for start, end in rest:
        _stroke(page, origin, start, end)
        page.wait_for_timeout(700)
    expect(page.get_by_text("What the model sees (28×28)")).to_be_visible(timeout=20_000)
    page.wait_for_timeout(2_000)  # the last stroke's rerun
    assert _top1(page) == "Trouser"
    shot(page, "predict-draw")


def _touch_stroke(cdp, origin: dict, start: tuple, end: tuple) -> None:
    """A finger's stroke, as a touch screen sends it (Chrome's own touch events, not mouse ones)."""

    def at(t: float) -> list[dict]:
        return [{"x": origin["x"] + start[0] + (end[0] - start[0]) * t,
                 "y": origin["y"] + start[1] + (end[1] - start[1]) * t}]  # fmt: skip

    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": at(0)})
    for step in range(1, 13):
        cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": at(step / 12)})
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})


def test_a_trouser_drawn_with_a_finger_on_a_phone_sized_screen_is_classified(server, trained_run, browser):
    context = browser.new_context(viewport={"width": 412, "height": 915}, has_touch=True)
    try:
        page = context.new_page()
        page.goto(f"{server.url}/Predict?input=draw")
        canvas = page.locator("canvas.upper-canvas").first
        expect(canvas).to_be_visible(timeout=20_000)
        canvas.scroll_into_view_if_needed()
        page.wait_for_timeout(500)
        origin = canvas.bounding_box()
        assert origin["width"] == 280  # the whole canvas fits a phone's width
        scrolled = "document.querySelector('[data-testid=stMain]').scrollTop"
        before = page.evaluate(scrolled)
        cdp = context.new_cdp_session(page)
        for start, end in TROUSER_STROKES:
            _touch_stroke(cdp, origin, start, end)
            page.wait_for_timeout(700)
        assert page.evaluate(scrolled) == before  # the finger drew; it did not scroll the page
        expect(page.get_by_text("What the model sees (28×28)")).to_be_visible(timeout=20_000)
        page.wait_for_timeout(2_000)  # the last stroke's rerun
        assert _top1(page) == "Trouser"
        shot(page, "predict-draw-touch")
        page.get_by_role("button", name="Clear").tap()  # a blank canvas, and nothing to classify
        expect(page.get_by_text("Sketch a piece of clothing")).to_be_visible(timeout=20_000)
        expect(page.get_by_text(TOP1)).to_have_count(0)
        blank = "c => c.getContext('2d').getImageData(0, 0, c.width, c.height).data.every(v => v === 255)"
        deadline = time.monotonic() + 10  # the new canvas may still be mounting
        while not page.locator("canvas.lower-canvas.dc-canvas").last.evaluate(blank):
            assert time.monotonic() < deadline, "the canvas still shows the old drawing"
            page.wait_for_timeout(250)
    finally:
        context.close()


@pytest.fixture
def camera_page(browser: Browser):
    """A Chromium of its own whose camera is the fake one, allowed without asking (launched through the
    session's Playwright: a second sync Playwright cannot start inside the first)."""
    flags = [*CHROMIUM_FLAGS, "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]
    camera_browser = browser.browser_type.launch(executable_path=CHROMIUM, args=flags)
    context = camera_browser.new_context(viewport={"width": 1280, "height": 900}, permissions=["camera"])
    yield context.new_page()
    camera_browser.close()


def test_the_fake_camera_gives_a_prediction(server, trained_run, camera_page: Page):
    page = camera_page
    page.goto(f"{server.url}/Predict?input=camera")
    take = page.get_by_role("button", name="Take Photo")
    expect(take).to_be_enabled(timeout=30_000)
    page.wait_for_timeout(1_500)  # a few frames from the fake device
    take.click()
    expect(page.get_by_text("File: camera photo")).to_be_visible(timeout=20_000)
    assert _top1(page) in CLASSES


def _grid(page: Page) -> list[str]:
    labels = page.get_by_role("button", name=GRID_LABEL)
    expect(labels).to_have_count(9, timeout=20_000)
    return labels.all_inner_texts()


def _settled_grid(page: Page, expected: list[str] | None = None, timeout: float = 20.0) -> list[str]:
    """The nine labels once two reads half a second apart agree (and match `expected`, if given): a
    rerun may still be drawing the grid when the URL has already changed."""
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        now = _grid(page)
        if now == last and (expected is None or now == expected):
            return now
        last = now
        time.sleep(0.5)
    return last or []


def _type_seed(page: Page, value: str, tries: int = 4) -> None:
    """Types the explorer's seed until the URL carries it: a rerun that redraws the field while the
    text is typed can drop it (a clean-clone run saw the old seed kept), and the user would type again."""
    for _ in range(tries):
        seed = page.locator(".st-key-explorer_seed input").last  # a rerun can briefly show two copies
        seed.fill(value)
        seed.press("Enter")
        try:
            expect(page).to_have_url(re.compile(rf"seed={value}\b"), timeout=5_000)
            return
        except AssertionError:
            continue
    expect(page).to_have_url(re.compile(rf"seed={value}\b"), timeout=5_000)


def test_a_copied_explorer_link_opens_the_same_nine_images(server, browser, page: Page):
    page.goto(f"{server.url}/Dataset_Explorer")
    before = _grid(page)
    page.get_by_text("Test (10,000)").click()
    page.get_by_role("button", name="Shuffle", exact=True).click()
    expect(page.get_by_role("button", name=GRID_LABEL).first).not_to_have_text(before[0], timeout=20_000)
    _settled_grid(page)  # the shuffle's rerun is over: one typed now is not replaced by its redraw
    _type_seed(page, "4242")
    shown = _settled_grid(page)
    page.get_by_role("button", name="Copy link").click()
    url = page.get_by_test_id("stCode").filter(has_text="seed=4242").inner_text().strip()
    assert url.startswith(server.url) and "split=test" in url
    fresh = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        other = fresh.new_page()
        other.goto(url)
        assert _settled_grid(other, expected=shown) == shown
        expect(other.get_by_role("radio", name="Test (10,000)")).to_be_checked()
    finally:
        fresh.close()
