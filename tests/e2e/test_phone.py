"""Every page on a phone (Chromium at 412x915): nothing wider than the screen, and Home's way in."""

import contextlib
import time
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from ui.nav import PAGES

pytestmark = pytest.mark.e2e
PHONE = {"width": 412, "height": 915}  # a Pixel-sized phone, as Chromium's device list has it
DESKTOP = {"width": 1280, "height": 800}
HOME = ("", "FashionMNIST Studio")  # (URL path, heading)
EVERY_PAGE = [HOME] + [(info.url_path, info.title) for info in PAGES.values()]

STATE_JS = """() => ({
  busy: document.querySelectorAll('[data-testid=stSpinner], [data-testid=stSkeleton]').length
        + [...document.images].filter((img) => !img.complete).length,
  height: document.querySelector('[data-testid=stMain]').scrollHeight,
  markup: document.body.innerHTML.length,
})"""

# How wide the page is, and every code block, dataframe or link label whose text is cut: a box that
# reaches past the window, or text clipped (overflow hidden) with no scrolling of its own.
MEASURE_JS = """() => {
  const width = window.innerWidth;
  const main = document.querySelector('[data-testid=stMain]');
  const block = document.querySelector('[data-testid=stMainBlockContainer]');
  const clipped = (d) => ['hidden', 'clip'].includes(getComputedStyle(d).overflowX)
                         && d.scrollWidth > d.clientWidth + 1;
  const text = (el) => (el.querySelector('[data-testid=stMarkdownContainer]') || el).innerText.trim();
  const name = (el) => `${el.dataset.testid}: ${text(el).split('\\n')[0].slice(0, 60)}`;
  const cut = [];
  const boxes = '[data-testid=stCode], [data-testid=stDataFrame], [data-testid=stPageLink]';
  for (const el of main.querySelectorAll(boxes)) {
    const r = el.getBoundingClientRect();
    if (!r.width) continue;  // in a tab or expander that is closed
    if (r.left < -1 || r.right > width + 1) cut.push(`${name(el)} reaches ${Math.round(r.right)} px`);
    else if ([el, ...el.querySelectorAll('*')].some(clipped)) cut.push(`${name(el)} is clipped`);
  }
  // What makes the page wide: the innermost elements reaching past the window, outside any scroller.
  const scrolls = (d) => ['auto', 'scroll', 'hidden', 'clip'].includes(getComputedStyle(d).overflowX);
  const past = [...main.querySelectorAll('*')].filter((el) => {
    if (el.getBoundingClientRect().right <= width + 1) return false;
    for (let p = el.parentElement; p && p !== main; p = p.parentElement) if (scrolls(p)) return false;
    return true;
  });
  const wide = past.filter((el) => !past.some((other) => other !== el && el.contains(other)))
    .slice(0, 3).map((el) => `${el.tagName} ${el.closest('[data-testid]')?.dataset.testid}`
      + ` "${el.innerText?.trim().slice(0, 40)}" to ${Math.round(el.getBoundingClientRect().right)} px`);
  return {width, page: document.documentElement.scrollWidth, main: main.scrollWidth,
          block: block.scrollWidth, cut, wide};
}"""


def _settle(page: Page, timeout: float = 30.0) -> None:
    """Wait until the script has finished and the page has stopped changing: no spinner, every image
    loaded, the same height and markup twice in a row (plots, images and tables arrive late)."""
    with contextlib.suppress(PlaywrightTimeout):  # a live page never settles for long: measure anyway
        page.get_by_test_id("stStatusWidget").wait_for(state="hidden", timeout=timeout * 1000)
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        now = page.evaluate(STATE_JS)
        if now["busy"] == 0 and now == last:
            return
        last = now
        page.wait_for_timeout(1000)


def _open(browser: Browser, viewport: dict, url: str) -> Page:
    page = browser.new_context(viewport=viewport).new_page()
    page.goto(url)
    return page


def _fits(page: Page, where: str) -> list[str]:
    """What is wrong with the page as it is shown now (the open tab, expanders open)."""
    for summary in (
        page.get_by_test_id("stMain").locator("[data-testid=stExpander] details:not([open]) > summary").all()
    ):
        if summary.is_visible():
            summary.click()
    _settle(page, timeout=10)
    found = page.evaluate(MEASURE_JS)
    width = found["width"] + 1  # a rounding pixel
    problems = [f"{where}: {what} is {found[what]} px wide on a {found['width']} px screen"
                for what in ("page", "main", "block") if found[what] > width]  # fmt: skip
    if problems:
        problems.append(f"{where}: the widest: {'; '.join(found['wide'])}")
    return problems + [f"{where}: {cut}" for cut in found["cut"]]


@pytest.mark.parametrize(("path", "heading"), EVERY_PAGE, ids=[h for _, h in EVERY_PAGE])
def test_the_page_fits_a_phone(server, browser: Browser, path: str, heading: str):
    page = _open(browser, PHONE, f"{server.url}/{path}")
    try:
        expect(page.get_by_role("heading", name=heading).first).to_be_visible(timeout=60_000)
        _settle(page)
        problems = _fits(page, heading)
        tabs = page.get_by_test_id("stMain").get_by_role("tab")
        for i in range(tabs.count()):  # each tab's content is laid out only while it is shown
            tab = tabs.nth(i)
            tab.click()
            _settle(page, timeout=10)
            problems += _fits(page, f"{heading}, tab {tab.inner_text().strip()}")
        assert not problems, "\n".join(problems)
    finally:
        page.context.close()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1280", "412"])
def test_home_starts_here_in_the_first_screen_and_leads_to_tensors(server, browser: Browser, viewport: dict):
    page = _open(browser, viewport, server.url)
    try:
        start = page.get_by_role("button", name="Start with Tensors")
        expect(start).to_be_visible(timeout=60_000)
        box = start.bounding_box()
        assert box is not None and box["y"] + box["height"] <= viewport["height"], f"below the fold: {box}"
        cards = page.get_by_test_id("stMain").get_by_test_id("stPageLink")
        expect(cards).to_have_count(8)
        _settle(page)
        problems = _fits(page, "Home")
        assert not problems, "\n".join(problems)  # no card's label cut
        start.click()
        expect(page.get_by_role("heading", level=1, name="Tensors")).to_be_visible(timeout=30_000)
        assert urlsplit(page.url).path == "/Tensors"
    finally:
        page.context.close()
