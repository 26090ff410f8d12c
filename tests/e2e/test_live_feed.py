"""The running-run view in Chromium: it follows the run from the feed (ui.live_feed), with no script runs."""

import json
import time
import urllib.error
import urllib.request

from playwright.sync_api import Page, expect

from core import runs
from core.training.config import preset
from tests.e2e.conftest import wait_points


def _get(url: str, host: str | None = None):
    """(status, headers, the JSON answer or None)."""
    request = urllib.request.Request(url, headers={"Host": host} if host else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, headers, body = response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        status, headers, body = error.code, dict(error.headers), error.read()
    try:
        return status, headers, json.loads(body)
    except ValueError:
        return status, headers, None


def test_the_view_follows_a_run_without_the_page_running_again(server, page: Page):
    frames: list[int] = []  # what the server sent the tab over its websocket: each script run sends some
    page.on("websocket", lambda ws: ws.on("framereceived", lambda frame: frames.append(len(frame))))
    config = preset("tutorial", epochs=20, limit_batches=3000, device="cpu")
    run_id = runs.start(config, runs_dir=server.runs_dir)
    try:
        page.goto(f"{server.url}/Train")
        expect(page.get_by_role("button", name="Stop")).to_be_visible(timeout=30_000)
        wait_points(page, 2, timeout=60)
        text = page.get_by_test_id("stMainBlockContainer").locator(".studio-live-text")
        side = page.get_by_test_id("stSidebar").locator(".studio-live-text")
        time.sleep(2)  # the page's own run, and the first epoch's, are over
        frames.clear()
        seen = set()
        for _ in range(6):
            seen.add(text.inner_text())
            time.sleep(1)
        points = wait_points(page, 0)
        assert len(seen) >= 4, seen  # the progress moved on, second by second
        assert frames == [], frames  # with no script run: nothing came over Streamlit's websocket
        assert text.inner_text().startswith(side.inner_text().split(" · ", 1)[1][:9])  # "epoch N/20"
        assert points > 2
    finally:
        runs.stop(run_id, server.runs_dir)
        runs.wait(run_id, server.runs_dir, timeout=60)
    # The run's end is a phase change: the view asks for the page to run again, which shows it stopped.
    expect(page.get_by_text("Stopped before the end")).to_be_visible(timeout=30_000)


def test_the_feed_answers_its_own_host_names_only_and_no_other_site(server):
    run_id = runs.list_runs(server.runs_dir)[0].id if runs.list_runs(server.runs_dir) else None
    url = f"{server.url}/studio/live/{run_id or 'none'}?rows=0&charts=1"
    status, headers, answer = _get(url)
    assert status == 200 and "Access-Control-Allow-Origin" not in headers  # no other site's script reads it
    assert answer.get("gone") or answer["phase"]
    status, _headers, answer = _get(url, host="rebound.example:8501")  # DNS rebinding: a foreign name
    assert status == 403 and answer == {"error": "host not allowed"}
    status, _headers, answer = _get(f"{server.url}/studio/live/..%2F..%2Fetc?rows=0")
    assert answer in ({"gone": True}, None)  # no run there, and nothing outside the store
    status, _headers, _answer = _get(f"{server.url}/studio/live/x?rows=many")
    assert status == 400
