"""A class on one shared server (STUDIO_SHARED=1), on the CPU: three learners in three browsers and a
teacher with the link the server printed. Runs queue, belong to whoever started them, and the next one
starts by itself as a place frees, even with its learner's tab closed."""

import re
import time

import pytest
from playwright.sync_api import Browser, Page, expect

from bench.harness import ServerFailed, stop_runs, streamlit_server
from core import runs
from core.base.errors import RunError
from tests.conftest import wait_for
from tests.e2e.conftest import shot, start_run

LINK = re.compile(r"Teacher's link .*?: (http://\S+)")


@pytest.fixture
def shared_server(tmp_path_factory, real_data, monkeypatch):
    monkeypatch.setenv("STUDIO_SHARED", "1")
    runs_dir = tmp_path_factory.mktemp("class-runs")
    log = tmp_path_factory.mktemp("class-log") / "streamlit.log"
    try:
        with streamlit_server(runs_dir, log) as server:
            yield server, log
    except ServerFailed as exc:
        pytest.fail(str(exc))
    finally:
        stop_runs(runs_dir)


def _learner(browser: Browser, url: str, name: str) -> Page:
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.goto(f"{url}/Train")
    expect(page.get_by_role("heading", name=re.compile(r"Train$"))).to_be_visible(timeout=30_000)
    field = page.get_by_test_id("stSidebar").get_by_role("textbox", name="Your name")
    field.fill(name)
    field.press("Enter")
    page.wait_for_timeout(500)
    return page


def _live_text(page: Page, pattern: str):
    """The live view's progress line, as the run's view shows it (ui/live_run.js)."""
    return (
        page.get_by_test_id("stMainBlockContainer")
        .locator(".studio-live-text")
        .get_by_text(re.compile(pattern))
    )


def test_three_learners_and_a_teacher_share_one_cpu(shared_server, browser: Browser):
    server, log = shared_server
    link = wait_for(lambda: LINK.search(log.read_text()), 30) and LINK.search(log.read_text()).group(1)
    assert link, "the shared server printed no teacher's link"
    ada, bo, cy = (_learner(browser, server.url, name) for name in ("Ada", "Bo", "Cy"))
    try:
        start_run(ada, epochs=30, cap=3000)  # minutes of work: Ada's run holds the CPU's one place
        expect(ada.get_by_role("button", name="Stop")).to_be_visible(timeout=30_000)
        (a_run,) = runs.list_runs(server.runs_dir)
        assert a_run.owner_name == "Ada" and len(a_run.owner) == 32  # a hash: not the secret, not the name

        start_run(bo, epochs=1, cap=3000)
        expect(_live_text(bo, r"^queued: next in line for cpu")).to_be_visible(timeout=20_000)
        start_run(cy, epochs=1, cap=20)
        expect(_live_text(cy, r"^queued: 2nd in line for cpu")).to_be_visible(timeout=20_000)
        shot(cy, "20-class-queued-second")

        # Bo opens Ada's run by its link: he watches it, and has no control of it
        bo.goto(f"{server.url}/Train?run={a_run.id}")
        expect(bo.get_by_text("Ada's run: watch it and learn")).to_be_visible(timeout=30_000)
        expect(bo.get_by_role("button", name="Stop")).to_have_count(0)
        with pytest.raises(RunError, match="is Ada's"):
            runs.stop(a_run.id, server.runs_dir, by=a_run.owner[::-1])  # any other owner id is refused
        shot(bo, "21-class-another-learners-run")

        b_run = next(r for r in runs.list_runs(server.runs_dir) if r.owner_name == "Bo")
        bo.context.close()  # Bo's tab is gone: his run must start by itself
        ada.get_by_role("button", name="Stop").click()
        assert runs.wait(a_run.id, server.runs_dir, timeout=60).status == "stopped"
        ended = time.monotonic()
        assert wait_for(lambda: runs.get_run(b_run.id, server.runs_dir).pid is not None, 10)
        assert time.monotonic() - ended < 2.0, "the next run did not start within 2 s of the place freeing"

        cy.get_by_role("button", name="Cancel").click()  # Cy leaves the queue
        c_run = next(r for r in runs.list_runs(server.runs_dir) if r.owner_name == "Cy")
        assert wait_for(lambda: runs.get_run(c_run.id, server.runs_dir).status == "stopped", 20)

        teacher = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        teacher.goto(link.replace("/?", "/Train?", 1))
        expect(teacher.get_by_text("Class · the teacher's view")).to_be_visible(timeout=30_000)
        assert "teacher=" not in teacher.url  # the secret left the address bar at once
        teacher.goto(f"{server.url}/Train?run={b_run.id}")
        teacher.get_by_role("button", name="Stop").click()  # Bo's run, stopped by the teacher
        assert runs.wait(b_run.id, server.runs_dir, timeout=60).status == "stopped"
        shot(teacher, "22-class-teacher")
        assert link.split("teacher=")[1] not in teacher.content()
        assert log.read_text().count(link.split("teacher=")[1]) == 1  # in the log once: the printed line
    finally:
        for page in (ada, bo, cy):
            if not page.is_closed():
                page.context.close()
