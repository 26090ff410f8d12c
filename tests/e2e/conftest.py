"""A real `streamlit run app.py` on a free port and Debian's Chromium driven by Playwright."""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from core.data import PROJECT_ROOT

CHROMIUM = os.environ.get("STUDIO_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).parent / "artifacts"
HEALTH_TIMEOUT_S = 90


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen, log: Path) -> float:
    start = time.monotonic()
    while time.monotonic() - start < HEALTH_TIMEOUT_S:
        if proc.poll() is not None:
            pytest.fail(f"streamlit exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.read().strip() == b"ok":
                    return time.monotonic()
        except OSError:
            pass
        time.sleep(0.2)
    pytest.fail(f"streamlit was not healthy after {HEALTH_TIMEOUT_S} s:\n{log.read_text()[-3000:]}")


class Server:
    def __init__(self, url: str, runs_dir: Path, healthy_at: float, proc: subprocess.Popen):
        self.url = url
        self.runs_dir = runs_dir
        self.healthy_at = healthy_at
        self.proc = proc


@contextlib.contextmanager
def streamlit_server(runs_dir: Path, log: Path):
    """`streamlit run app.py` on a free port with the run store `runs_dir`; yields once it is healthy."""
    port = _free_port()
    env = {**os.environ, "STUDIO_RUNS_DIR": str(runs_dir), "PYTHONUNBUFFERED": "1"}
    args = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
            "--server.address", "127.0.0.1", "--server.headless", "true"]  # fmt: skip
    with open(log, "ab") as out:
        proc = subprocess.Popen(args, cwd=PROJECT_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        yield Server(url, runs_dir, _wait_healthy(url, proc, log), proc)
    finally:
        kill_server(proc, signal.SIGTERM)


def kill_server(proc: subprocess.Popen, sig: int) -> None:
    """Signal the server's process group; training workers run in their own sessions and live on."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=15)


@pytest.fixture(scope="session")
def server(tmp_path_factory, real_data):
    """The dashboard as users run it, with a private run store."""
    runs_dir = tmp_path_factory.mktemp("e2e-runs")
    log = tmp_path_factory.mktemp("e2e-log") / "streamlit.log"
    try:
        with streamlit_server(runs_dir, log) as running:
            yield running
    finally:
        stop_runs(runs_dir)


def stop_runs(runs_dir: Path) -> None:
    from core import runs

    for run in runs.list_runs(runs_dir):
        if run.active:
            runs.stop(run.id, runs_dir)
            runs.wait(run.id, runs_dir, timeout=30)


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
    from core.train import preset

    config = preset("recommended", epochs=1, limit_batches=150, device="cpu")
    directory = runs.create_run(config, server.runs_dir / "20260101-000000-e2e0")
    assert runs.train_run(directory) == "finished"
    return directory
