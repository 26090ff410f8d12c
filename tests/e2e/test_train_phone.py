"""The Train page on a phone (412 x 915 in Chromium): nothing to scroll sideways, the knobs that matter and
Start in reach, and once a run exists its results above the form."""

import re

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import open_advanced, shot

pytestmark = pytest.mark.e2e

PHONE = {"width": 412, "height": 915}
MAIN_KNOBS = ("Model", "Epochs", "Batch size", "Learning rate (log scale)", "Optimizer")
WIDTHS_JS = """() => {
  const main = document.querySelector('[data-testid=stMain]');  // Streamlit scrolls inside it
  return {page: document.documentElement.scrollWidth, window: innerWidth,
          main: main.scrollWidth, mainBox: main.clientWidth};
}"""


@pytest.fixture
def phone(browser: Browser):
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    yield page
    context.close()


def _open(page: Page, url: str) -> None:
    page.goto(f"{url}/Train")
    expect(page.get_by_role("button", name="Start training")).to_be_enabled(timeout=30_000)
    page.wait_for_timeout(1_000)  # the rest of the page (the run's charts) is drawn after the form


def _fits(page: Page) -> None:
    widths = page.evaluate(WIDTHS_JS)
    assert widths["page"] <= widths["window"] and widths["main"] <= widths["mainBox"], widths


def _top(page: Page, locator) -> float:
    """Where `locator` starts on the page, whatever is scrolled."""
    return locator.evaluate(
        "(e) => e.getBoundingClientRect().top + document.querySelector('[data-testid=stMain]').scrollTop"
    )


def test_the_form_fits_a_phone_with_its_main_knobs_in_view_and_start_in_reach(server, phone: Page):
    _open(phone, server.url)
    _fits(phone)
    form = phone.locator(".st-key-train_form")
    for label in MAIN_KNOBS:
        knob = form.get_by_text(label, exact=True)
        knob.scroll_into_view_if_needed()
        expect(knob).to_be_in_viewport()
    for hidden in ("Seed", "Processes", "Log the loss every N batches"):  # under the closed "Advanced"
        expect(form.get_by_text(hidden, exact=True)).to_be_hidden()
    expect(form.get_by_text("Advanced", exact=True)).to_be_visible()
    start = phone.get_by_role("button", name="Start training")
    start.scroll_into_view_if_needed()
    expect(start).to_be_in_viewport()
    box = start.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box
    form_box = form.bounding_box()
    assert form_box is not None and form_box["width"] >= PHONE["width"] - 60, form_box  # not a 270 px strip

    open_advanced(phone)  # the form still fits
    expect(form.get_by_text("Processes", exact=True)).to_be_visible(timeout=10_000)
    _fits(phone)
    shot(phone, "train-phone-form")


def test_once_a_run_exists_its_results_come_before_the_form_on_a_phone(server, trained_run, phone: Page):
    _open(phone, server.url)
    run = phone.get_by_role("heading", name=re.compile(r"^Run \d{8}-\d{6}-"))
    expect(run).to_be_visible(timeout=30_000)
    mistakes = phone.get_by_role("heading", name="What the saved model gets wrong")
    expect(mistakes).to_be_attached(timeout=60_000)
    new_run = phone.get_by_role("heading", name="New run")
    all_runs = phone.get_by_role("heading", name="All runs")
    tops = [_top(phone, heading) for heading in (run, mistakes, new_run, all_runs)]
    assert tops == sorted(tops), tops  # the run, what it gets wrong, then the form, then every run
    assert tops[0] < PHONE["height"], tops  # the run's heading on the first screen
    _fits(phone)
    shot(phone, "train-phone-run")


def test_a_wide_window_keeps_the_form_beside_the_run(server, trained_run, page: Page):
    _open(page, server.url)  # 1280 x 800: the phone's order is for phones only
    run = page.get_by_role("heading", name=re.compile(r"^Run \d{8}-\d{6}-"))
    expect(run).to_be_visible(timeout=30_000)
    new_run, run_box = page.get_by_role("heading", name="New run").bounding_box(), run.bounding_box()
    assert new_run is not None and run_box is not None
    assert abs(new_run["y"] - run_box["y"]) < 5 and new_run["x"] < run_box["x"], (new_run, run_box)
