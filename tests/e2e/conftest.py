"""A real `streamlit run serve.py` (app, live feed) on a free port; Debian's Chromium driven by Playwright."""

import contextlib
import time
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from bench.harness import CHROMIUM, CHROMIUM_FLAGS, ServerFailed, stop_runs, streamlit_server

ARTIFACTS = Path(__file__).parent / "artifacts"


def serve(tmp_path_factory, runs_dir: Path, name: str):
    """Yield a server over `runs_dir` (its log in a folder `name`-log); stop its runs afterwards."""
    log = tmp_path_factory.mktemp(f"{name}-log") / "streamlit.log"
    try:
        with streamlit_server(runs_dir, log) as running:
            yield running
    except ServerFailed as exc:
        pytest.fail(str(exc))
    finally:
        stop_runs(runs_dir)


@pytest.fixture(scope="session")
def server(tmp_path_factory, real_data):
    """The dashboard as users run it, with a private run store."""
    yield from serve(tmp_path_factory, tmp_path_factory.mktemp("e2e-runs"), "e2e")


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: install it with `apt-get install chromium`")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser, request):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    yield page
    context.close()


def shot(page: Page, name: str) -> Path:
    """A full-page screenshot under tests/e2e/artifacts/ (git-ignored) for people to look at."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    with contextlib.suppress(PlaywrightTimeout):  # a live page never settles for long: take it anyway
        page.get_by_test_id("stStatusWidget").wait_for(state="hidden", timeout=5_000)
    # Streamlit scrolls inside its main section, so grow the window to the content's height instead.
    size = page.viewport_size
    height = page.evaluate("document.querySelector('[data-testid=stMain]')?.scrollHeight || 0")
    page.set_viewport_size({"width": size["width"], "height": max(size["height"], min(height, 5000))})
    page.wait_for_timeout(500)
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size(size)
    return path


@pytest.fixture(scope="session")
def trained_run(server):
    """A small finished run in the server's run store, trained in-process the way the worker does."""
    from core import runs
    from core.training.config import preset

    config = preset("recommended", epochs=1, limit_batches=150, device="cpu")
    directory = runs.create_run(config, server.runs_dir / "20260101-000000-e2e0")
    assert runs.train_run(directory) == "finished"
    return directory


# ---- steps several journeys take ----------------------------------------------------------------------


def drop(page: Page, uploader_label: str, path) -> None:
    uploader = page.get_by_test_id("stFileUploader").filter(has_text=uploader_label)
    uploader.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(path))


# Plotly charts of the page, the running-run view's too: it draws in a shadow root (ui/live_run.js), which
# document.querySelectorAll does not look into. A script that uses it starts with this.
PLOTS_JS = """
const roots = () => [document, ...[...document.querySelectorAll('*')].map((e) => e.shadowRoot)]
  .filter(Boolean);
const deep = (selector) => roots().flatMap((root) => [...root.querySelectorAll(selector)]);
const plots = () => deep('.studio-run-chart, .studio-live-chart, [data-testid=stPlotlyChart] .js-plotly-plot')
  .filter((p) => p.data && p.layout);
"""

LIVE_CHART_JS = (
    "() => {"
    + PLOTS_JS
    + """
  const count = (plot) => plot.data.reduce((n, t) => n + (t.x ? t.x.length : 0), 0);
  const chart = deep('.studio-run-chart[data-key=steps]')[0];
  if (chart && chart.data) {
    chart.dataset.seen = chart.dataset.seen || String(Math.random());  // stays only if not rebuilt
    return {points: count(chart), mark: chart.dataset.seen};
  }
  return {points: 0, mark: null};
}"""
)


def live_chart(page: Page) -> dict:
    """The live step chart's point count, and a mark that stays while it is the same element.

    The mark is None until the chart is drawn: the running-run view draws it once the tab has Plotly
    (see ui/live_run.py)."""
    try:
        return page.evaluate(LIVE_CHART_JS)
    except PlaywrightError:  # the page navigated meanwhile: look again
        return {"points": 0, "mark": None}


def wait_in_place(page: Page, timeout: float = 10.0) -> str:
    """Wait for the live step chart to be drawn (then updated in place: ui.live_run); its mark."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (mark := live_chart(page)["mark"]) is not None:
            return mark
        time.sleep(0.1)
    pytest.fail(f"the live chart was not drawn after {timeout} s")


def advanced(page: Page):
    """The Train form's "Advanced" section (the cap, seed, device, ...): a <details> element."""
    form = page.locator(".st-key-train_form")
    return form.locator("details").filter(has=page.locator("summary").get_by_text("Advanced", exact=True))


def open_advanced(page: Page) -> None:
    """Open the Train form's "Advanced" section unless it is open already (in the browser alone: no rerun)."""
    section = advanced(page)
    expect(section).to_be_visible(timeout=20_000)
    if section.get_attribute("open") is None:
        section.locator("summary").click()
    expect(section).to_have_attribute("open", "")


def start_run(page: Page, epochs: int, cap: int) -> None:
    open_advanced(page)
    form = page.locator(".st-key-train_form")
    form.get_by_role("textbox", name="Epochs", exact=True).fill(str(epochs))
    form.get_by_role("textbox", name="Batches per epoch cap, for quick tries").fill(str(cap))
    page.get_by_role("button", name="Start training").click()


def wait_points(page: Page, more_than: int, timeout: float = 20.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        points = live_chart(page)["points"]
        if points > more_than:
            return points
        time.sleep(0.1)
    pytest.fail(f"the live chart did not grow past {more_than} points in {timeout} s")
