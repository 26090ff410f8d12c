"""The Train page as users meet it, in Chromium: the form, the live view after Start, the confusion matrix."""

import re
import shutil
import time

import pytest
from playwright.sync_api import Page, expect

from bench.harness import stop_runs
from core import runs
from tests.conftest import wait_for
from tests.e2e.conftest import PLOTS_JS, advanced, open_advanced, shot, wait_points

pytestmark = pytest.mark.e2e


def _open(page: Page, url: str) -> None:
    page.goto(f"{url}/Train")
    expect(page.get_by_role("button", name="Start training")).to_be_enabled(timeout=30_000)


def _field(page: Page, name: str):
    return page.locator(".st-key-train_form").get_by_role("textbox", name=name, exact=True)


def _run_ids(server) -> set[str]:
    return {r.id for r in runs.list_runs(server.runs_dir)}


def _settle(page: Page) -> None:
    """Let the rerun a committed field causes reach the server and come back."""
    page.wait_for_timeout(1_500)
    expect(page.get_by_test_id("stStatusWidget")).to_be_hidden(timeout=10_000)


def test_enter_applies_a_field_and_start_alone_starts_with_what_was_typed(server, page: Page):
    _open(page, server.url)
    before = _run_ids(server)
    section = advanced(page)
    expect(_field(page, "Seed")).to_be_hidden()  # under Advanced, closed on a plain visit
    open_advanced(page)
    for name, text in [("Epochs", "1.5"), ("Seed", "1e30"), ("Hidden units", "5000")]:
        _field(page, name).fill(text)
        _field(page, name).press("Enter")  # in a form this was Start
        _settle(page)
    assert _run_ids(server) == before
    expect(_field(page, "Epochs")).to_have_value("1.5")  # as typed: not rounded to 1
    expect(_field(page, "Seed")).to_have_value("1e30")
    section.locator("summary").click()  # closed again: the fields out of range are out of sight
    expect(_field(page, "Hidden units")).to_be_hidden()

    page.get_by_role("button", name="Start training").click()
    problems = page.get_by_test_id("stAlert").filter(has_text="Not started. Fix these first")
    expect(problems).to_contain_text("Epochs must be a whole number, not 1.5", timeout=10_000)
    expect(problems).to_contain_text("Seed must be a whole number between 0 and 4294967295, not 1e30")
    expect(problems).to_contain_text("Hidden units must be a whole number between 1 and")
    expect(_field(page, "Hidden units")).to_be_visible()  # Start opened the section that holds them
    assert _run_ids(server) == before
    _field(page, "Hidden units").fill("")

    _field(page, "Epochs").fill("1")
    _field(page, "Seed").fill("0")
    _field(page, "Seed").press("Tab")
    _settle(page)
    expect(problems).to_be_hidden()


def test_a_cleared_cap_trains_every_batch_and_the_live_view_comes_into_sight(server, page: Page):
    _open(page, server.url)
    before = _run_ids(server)
    open_advanced(page)
    _field(page, "Epochs").fill("1")
    cap = _field(page, "Batches per epoch cap, for quick tries")
    cap.fill("100")
    cap.press("Tab")
    _settle(page)
    cap.click()
    cap.press("Control+a")
    cap.press("Delete")
    cap.press("Tab")
    _settle(page)
    expect(cap).to_have_value("")  # not refilled with 1
    start = page.get_by_role("button", name="Start training")
    start.scroll_into_view_if_needed()
    start.click()
    expect(page.get_by_role("button", name="Stop")).to_be_visible(timeout=30_000)
    (run_id,) = _run_ids(server) - before
    try:
        assert runs.get_run(run_id, server.runs_dir).config.limit_batches is None  # all batches
        wait_points(page, 0, timeout=30)
        time.sleep(1.0)  # the smooth scroll
        chart = page.locator(".studio-run-chart[data-key=steps]")  # Playwright looks into shadow roots
        box = chart.bounding_box()
        height = page.viewport_size["height"]
        assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= height, (box, height)
        shot(page, "train-after-start")
    finally:
        runs.stop(run_id, server.runs_dir)
        runs.wait(run_id, server.runs_dir, timeout=60)


def test_a_click_on_a_confusion_matrix_cell_shows_those_mistakes(server, trained_run, page: Page):
    _open(page, server.url)
    table = page.get_by_test_id("stDataFrame")
    expect(table).to_be_visible(timeout=20_000)
    matrix = page.get_by_test_id("stPlotlyChart").filter(has_text="Confusion matrix")
    expect(matrix).to_be_visible(timeout=60_000)
    matrix.scroll_into_view_if_needed()
    plot = matrix.locator(".js-plotly-plot")
    # The most confused cell, and where it is drawn, from Plotly's own data and axes.
    x, y, true, predicted_class = plot.evaluate(
        """(gd) => {
          const z = gd.data[0].z, names = gd.data[0].x;
          let best = [0, 1];
          z.forEach((row, t) => row.forEach((n, p) => {
            if (t !== p && n > z[best[0]][best[1]]) best = [t, p];
          }));
          const [t, p] = best, l = gd._fullLayout, r = gd.getBoundingClientRect();
          return [r.left + l.xaxis._offset + l.xaxis.d2p(names[p]),
                  r.top + l.yaxis._offset + l.yaxis.d2p(names[t]), names[t], names[p]];
        }"""
    )
    page.mouse.move(x, y)
    page.wait_for_timeout(300)
    page.mouse.click(x, y)
    expect(page.get_by_role("combobox", name="True class")).to_have_value(true, timeout=15_000)
    expect(page.get_by_role("combobox", name="Predicted as")).to_have_value(predicted_class)
    captions = page.get_by_test_id("stImageCaption")
    pattern = re.compile(rf"^{re.escape(true)} → {re.escape(predicted_class)} \d+%$")
    expect(captions.first).to_have_text(pattern, timeout=15_000)


LR_MARKS_JS = (
    "() => {"
    + PLOTS_JS
    + """
  return plots().flatMap((p) => ((p.layout && p.layout.annotations) || []).map((a) => a.text));
}"""
)


def test_a_running_runs_learning_rate_changes_and_the_chart_marks_it(server, page: Page):
    from tests.e2e.conftest import start_run

    _open(page, server.url)
    before = _run_ids(server)
    start_run(page, epochs=20, cap=3000)
    expect(page.get_by_role("button", name="Stop")).to_be_visible(timeout=30_000)
    (run_id,) = _run_ids(server) - before
    try:
        wait_points(page, 2, timeout=60)
        field = page.locator(f".st-key-train_lr_{run_id} input")  # the live view's field
        field.fill("0.05")
        field.press("Enter")
        _settle(page)
        page.get_by_role("button", name="Apply").click()
        expect(page.get_by_text("Learning rate 0.05 from the next batch on")).to_be_visible(timeout=15_000)
        deadline, marks = time.monotonic() + 30, []
        while time.monotonic() < deadline and "lr 0.05" not in marks:
            marks = page.evaluate(LR_MARKS_JS)
            time.sleep(0.3)
        assert "lr 0.05" in marks, marks
        shot(page, "14-train-lr-changed")
    finally:
        runs.stop(run_id, server.runs_dir)
        runs.wait(run_id, server.runs_dir, timeout=60)


def test_a_run_deleted_while_its_page_watches_it_leaves_no_error_box(server, page: Page):
    stop_runs(server.runs_dir)  # a run an earlier test left training would hold the device
    # The numbers come in a link: typed one after another, a rerun in flight could drop them or Start.
    page.goto(f"{server.url}/Train?epochs=50&cap=3000")
    start = page.get_by_role("button", name="Start training")
    expect(start).to_be_enabled(timeout=30_000)
    before = _run_ids(server)
    start.click()
    expect(page.get_by_role("button", name="Stop")).to_be_visible(timeout=60_000)
    assert wait_for(lambda: _run_ids(server) - before, timeout=30)
    (run_id,) = _run_ids(server) - before
    wait_points(page, 2, timeout=60)
    # By hand, as a user tidying data/runs might: moved away at once, then deleted (the worker may
    # still write a file into it while rmtree walks it).
    gone = server.runs_dir.parent / f"deleted-{run_id}"
    (server.runs_dir / run_id).rename(gone)
    shutil.rmtree(gone, ignore_errors=True)
    expect(page.get_by_role("heading", name=f"Run {run_id}")).to_be_hidden(timeout=15_000)
    page.wait_for_timeout(3_000)  # a few more ticks of the live view, had it stayed
    expect(page.get_by_test_id("stException")).to_have_count(0)
    # Another run of the store may be shown now, with its own error if it failed; none about this one.
    errors = page.get_by_test_id("stAlertContentError").all_inner_texts()
    assert not [e for e in errors if run_id in e or "no run" in e], errors
    expect(page.get_by_role("heading", name="All runs")).to_be_visible()  # the page, without the run
    assert run_id not in {r.id for r in runs.list_runs(server.runs_dir)}
    shot(page, "train-run-deleted")
