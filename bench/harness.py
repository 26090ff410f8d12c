"""The real dashboard server and Debian's Chromium, as the browser tests and the UI benchmarks drive them."""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from core.data.fashion import PROJECT_ROOT

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
HEALTH_TIMEOUT_S = 90


class ServerFailed(RuntimeError):
    """The server exited or never answered its health check; the message ends with its log."""


class Server:
    def __init__(self, url: str, runs_dir: Path, healthy_at: float, proc: subprocess.Popen):
        self.url = url
        self.runs_dir = runs_dir
        self.healthy_at = healthy_at  # time.monotonic() when /_stcore/health first answered
        self.proc = proc


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen, log: Path) -> float:
    start = time.monotonic()
    while time.monotonic() - start < HEALTH_TIMEOUT_S:
        if proc.poll() is not None:
            raise ServerFailed(f"streamlit exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.read().strip() == b"ok":
                    return time.monotonic()
        except OSError:
            pass
        time.sleep(0.2)
    raise ServerFailed(f"streamlit was not healthy after {HEALTH_TIMEOUT_S} s:\n{log.read_text()[-3000:]}")


@contextlib.contextmanager
def streamlit_server(runs_dir: Path, log: Path, *, make: bool = False, host: str | None = None):
    """`streamlit run serve.py` (app.py, the live feed) on a free port with the run store `runs_dir`.

    Yields once it is healthy.

    make=True starts it the way users do, with `make run` (HOST=`host` if given, else the default)."""
    env = {**os.environ, "STUDIO_RUNS_DIR": str(runs_dir), "PYTHONUNBUFFERED": "1"}
    port = free_port()
    if make:  # this interpreter's venv, already set up: `make run` only checks it
        args = ["make", "--no-print-directory", "run", f"PORT={port}", f"VENV={sys.prefix}"]
        args += [f"HOST={host}"] if host else []
    else:
        args = [sys.executable, "-m", "streamlit", "run", "serve.py", "--server.port", str(port),
                "--server.address", host or "127.0.0.1", "--server.headless", "true"]  # fmt: skip
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


def stop_runs(runs_dir: Path) -> None:
    """Stop whatever still trains in `runs_dir`, so no worker outlives the test or benchmark."""
    from core import runs

    for run in runs.list_runs(runs_dir):
        if run.active:
            runs.stop(run.id, runs_dir)
            runs.wait(run.id, runs_dir, timeout=30)
