"""A run trained by two processes (DistributedDataParallel), started, watched and stopped in Chromium."""

import contextlib
import os

import pytest
from playwright.sync_api import Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from core import runs
from core.base.procs import pid_alive
from tests.conftest import wait_for
from tests.e2e.conftest import shot, wait_points

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="two processes need two CPU cores"),
]
DDP = "2 processes (DistributedDataParallel)"


def _run_ids(server) -> set[str]:
    return {r.id for r in runs.list_runs(server.runs_dir)}


def _choose(page: Page, key: str, option: str) -> None:
    """Pick `option` in the selectbox with that key (a rerun can briefly show two copies: the last), once
    the page has settled; again if a rerun closed the list under us."""
    box = page.locator(f".st-key-{key}").last.get_by_role("combobox")
    for _ in range(3):
        with contextlib.suppress(PlaywrightTimeout):
            page.get_by_test_id("stStatusWidget").wait_for(state="hidden", timeout=15_000)
        box.click()
        with contextlib.suppress(PlaywrightTimeout):
            page.get_by_role("option", name=option, exact=True).click(timeout=5_000)
            break
    expect(box).to_have_value(option)


def _gone(server, run_id: str) -> bool:
    """The run's processes have all left (they hold the CPU for the next test's run until they do)."""
    status = runs.read_status(server.runs_dir / run_id)
    return not pid_alive(status.get("pid"), started=status.get("pid_started"))


def _lr_rows(server, run_id: str) -> list[dict]:
    return [r for r in runs.read_metrics(run_id, server.runs_dir) if r.get("kind") == "lr"]


def test_a_two_process_run_starts_from_the_form_trains_live_and_stops_with_a_checkpoint(server, page: Page):
    # The numbers come in a link (the form's own URL state): typed one after another, a rerun in flight
    # could drop them (a clean-clone run started the tutorial's 5 epochs); Processes is chosen by hand.
    page.goto(f"{server.url}/Train?epochs=20&cap=3000&log=5&device=cpu")
    start = page.get_by_role("button", name="Start training")
    expect(start).to_be_enabled(timeout=30_000)
    form = page.locator(".st-key-train_form")
    expect(form.get_by_text("Processes", exact=True)).to_be_visible()
    expect(
        form.get_by_text("On one CPU, several processes show DistributedDataParallel at work")
    ).to_be_visible()
    before = _run_ids(server)

    _choose(page, "train_processes", "2")
    for name, value in (("Epochs", "20"), ("Log the loss every N batches", "5")):  # minutes of work
        expect(form.get_by_role("textbox", name=name, exact=True)).to_have_value(value)
    expect(form.get_by_role("textbox", name="Batches per epoch cap, for quick tries")).to_have_value("3000")
    expect(page.locator(".st-key-train_device").last.get_by_role("combobox")).to_have_value("cpu")
    shot(page, "distributed-form")
    start.click()

    stop = page.get_by_role("button", name="Stop")
    expect(stop).to_be_visible(timeout=60_000)
    (run_id,) = _run_ids(server) - before
    try:
        assert runs.get_run(run_id, server.runs_dir).config.processes == 2
        header = page.get_by_test_id("stCaptionContainer").filter(has_text=DDP)
        expect(header.last).to_contain_text("status training")
        wait_points(page, 2, timeout=120)  # the two processes load PyTorch and the data, then train
        live = page.get_by_test_id("stMainBlockContainer").locator(".studio-live-text")  # ui/live_run.js
        expect(live).to_contain_text("epoch 1/20")
        shot(page, "distributed-live")

        field = page.locator(f".st-key-train_lr_{run_id} input").last  # a new rate, as for one process
        field.fill("0.05")
        field.press("Enter")
        expect(page.get_by_test_id("stStatusWidget")).to_be_hidden(timeout=10_000)
        page.get_by_role("button", name="Apply").last.click()
        expect(page.get_by_text("Learning rate 0.05 from the next batch on")).to_be_visible(timeout=15_000)
        assert wait_for(lambda: _lr_rows(server, run_id), 60)  # rank 0 took it (and shares it with rank 1)
        assert _lr_rows(server, run_id)[0]["lr"] == 0.05

        stop.click()
        stopped = page.get_by_text("Stopped before the end; the checkpoint holds the weights at that moment.")
        expect(stopped).to_be_visible(timeout=90_000)
        expect(header.last).to_contain_text("status stopped")
        expect(page.get_by_role("button", name="model.pth")).to_be_visible()
        expect(page.get_by_role("button", name="Continue training from this checkpoint")).to_be_visible()
        run = runs.get_run(run_id, server.runs_dir)
        assert run.status == "stopped" and run.checkpoint is not None and run.checkpoint.is_file()
        shot(page, "distributed-stopped")
    finally:
        runs.stop(run_id, server.runs_dir)
        runs.wait(run_id, server.runs_dir, timeout=60)
        assert wait_for(lambda: _gone(server, run_id), 120)
