"""Ten browser sessions browse the explorer and predict while one run trains.

Prints JSON: the run's training speed before, during and after the load (samples/s, from its own
metrics), each action's latency, and every failure. Each user opens the explorer, shuffles, opens
Predict and classifies a new upload, pausing --think seconds between actions.
Usage: python -m bench.load [--sessions N] [--seconds S] [--think S] [--client-cpus LIST].
Users' browsers normally run on their own machines; here ten Chromium pages share the machine with
the server and the run. `--client-cpus 1` keeps them on one CPU at the lowest priority, standing
in for that; without it they compete for every core on equal terms.
"""

import argparse
import asyncio
import itertools
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from bench.harness import CHROMIUM, CHROMIUM_FLAGS, stop_runs, streamlit_server
from core import runs
from core.data.fashion import load_split, prepare
from core.training.config import preset

RUN = preset("tutorial", epochs=1000, device="cpu")  # trains until stopped
QUIET_S = 15.0  # each quiet window, before and after the load
THINK_S = 1.0  # a user's pause between two actions
WARMUP_S = 5.0  # after the run's first metrics row: data loaded, first epoch under way
ACTION_TIMEOUT_MS = 90_000  # ten pages drawing on a shared CPU are slow to appear
CLASS_CAPTION = re.compile(r"^#\d+ · [A-Z]")


@dataclass
class Record:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    failures: list[str] = field(default_factory=list)

    async def timed(self, session: int, name: str, action) -> bool:
        start = time.monotonic()
        try:
            await action
        except Exception as exc:  # a timeout or a page error: count it, tell which, keep going
            self.failures.append(f"session {session}, {name}: {type(exc).__name__}: {str(exc)[:200]}")
            return False
        self.latencies[name].append(time.monotonic() - start)
        return True


# ---- what one user does -----------------------------------------------------------------------------


async def _no_error_shown(page) -> None:
    if await page.get_by_test_id("stException").count():
        raise AssertionError("the page shows an exception")


async def _open(page, link: str, heading: str) -> None:
    from playwright.async_api import expect

    await page.get_by_test_id("stSidebarNav").get_by_role("link", name=link).click()
    await expect(page.get_by_role("heading", name=heading)).to_be_visible(timeout=ACTION_TIMEOUT_MS)


async def _grid(page) -> list[str]:
    return await page.get_by_role("button", name=CLASS_CAPTION).all_inner_texts()  # the grid labels


async def _wait_grid(page, unlike: list[str] | None = None) -> list[str]:
    deadline = time.monotonic() + ACTION_TIMEOUT_MS / 1000
    while time.monotonic() < deadline:
        now = await _grid(page)
        if len(now) == 9 and now != unlike:
            await _no_error_shown(page)
            return now
        await asyncio.sleep(0.1)
    raise TimeoutError("no (new) 3x3 grid")


async def _explore(page) -> list[str]:
    await _open(page, "Dataset Explorer", "Dataset Explorer")
    return await _wait_grid(page)


async def _shuffle(page, before: list[str]) -> None:
    await page.get_by_role("button", name="Shuffle", exact=True).click()
    await _wait_grid(page, unlike=before)


async def _predict(page, image: Path) -> None:
    from playwright.async_api import expect

    await _open(page, "Predict", "Predict")
    uploader = page.get_by_test_id("stFileUploader").filter(has_text="Drop images of clothing here")
    await uploader.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(image))
    await expect(page.get_by_text(f"File: {image.name}")).to_be_visible(timeout=ACTION_TIMEOUT_MS)
    top1 = page.get_by_text(re.compile(r"^Top-1: .+ · \d+\.\d%$"))
    await expect(top1).to_be_visible(timeout=ACTION_TIMEOUT_MS)
    await _no_error_shown(page)


async def user(
    browser, url: str, session: int, sample: Path, until: float, think_s: float, record: Record
) -> None:
    """Open the app, then explore, shuffle and predict (at least once) until `until`, timing each step."""
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(ACTION_TIMEOUT_MS)  # clicks too, not only the waits below
    page = await context.new_page()
    try:
        await record.timed(session, "open_home", page.goto(url))
        round_ = 0
        while round_ == 0 or time.monotonic() < until:
            round_ += 1
            image = sample.with_name(f"user{session}-{round_}.png")  # a new name: a new upload each round
            shutil.copy(sample, image)
            explore = asyncio.ensure_future(_explore(page))
            if await record.timed(session, "open_explorer_3x3", explore):
                await asyncio.sleep(think_s)
                await record.timed(session, "shuffle", _shuffle(page, explore.result()))
            await asyncio.sleep(think_s)
            await record.timed(session, "open_predict_and_classify", _predict(page, image))
            await asyncio.sleep(think_s)
    finally:
        await context.close()


# ---- the run's speed -----------------------------------------------------------------------------------


def samples_per_s(rows: list[dict], start: float, end: float, batch_size: int) -> float | None:
    """Training speed between two wall-clock times, from consecutive logged steps of the same epoch."""
    steps = seconds = 0.0
    batches = [r for r in rows if r.get("kind") == "batch" and start <= r["time"] <= end]
    for a, b in itertools.pairwise(batches):
        if a["epoch"] == b["epoch"]:  # skip the test pass and checkpoint between epochs
            steps += b["step"] - a["step"]
            seconds += b["time"] - a["time"]
    return steps * batch_size / seconds if seconds else None


def cpu_seconds() -> dict[str, float]:
    """CPU seconds used so far by the worker, the server, Chromium and everything else (from /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    used: dict[str, float] = defaultdict(float)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue  # it exited meanwhile
        kind = "other"
        if b"core worker" in cmdline or b"core spare" in cmdline:  # a spare that took a run
            kind = "worker"
        elif b"streamlit run" in cmdline:
            kind = "server"
        elif b"chromium" in cmdline:
            kind = "chromium"
        used[kind] += (int(fields[11]) + int(fields[12])) / tick  # utime + stime
    return used


def _share(before: dict[str, float], after: dict[str, float], seconds: float) -> dict[str, float]:
    """Cores used on average by each kind of process between two cpu_seconds() snapshots.

    Chromium is left out: its renderers exit with their pages, taking their CPU time with them.
    """
    kinds = sorted(k for k in after if k != "chromium")
    return {k: round((after[k] - before.get(k, 0.0)) / seconds, 2) for k in kinds}


def pinned_chromium(cpus: str, folder: Path) -> str:
    """A launcher that runs Chromium, and every process it starts, on the CPUs listed (e.g. "1"), at
    the lowest priority: the share of a machine that a user's own browser would not take from it.

    Playwright starts the browser in a session of its own; with autogroup scheduling (Linux's
    default) that session's autogroup is what competes with the server and the run, so it is
    lowered as well as the nice value.
    """
    script = folder / "chromium-pinned"
    script.write_text(
        "#!/bin/sh\n"
        "echo 19 > /proc/self/autogroup 2>/dev/null\n"
        f'exec nice -n 19 taskset -c {cpus} {CHROMIUM} "$@"\n'
    )
    script.chmod(0o755)
    return str(script)


async def measure(
    sessions: int,
    seconds: float,
    folder: Path,
    *,
    think_s: float = THINK_S,
    quiet_s: float = QUIET_S,
    client_cpus: str | None = None,
) -> dict:
    """Start a server and a long run, then time `sessions` users for `seconds`; see the module docstring."""
    from PIL import Image

    store = folder / "runs"
    images, _ = load_split("test")
    sample = folder / "uploads" / "sample.png"
    sample.parent.mkdir()
    Image.fromarray(images[0].numpy()).save(sample)
    small = preset("recommended", epochs=1, limit_batches=100, device="cpu")
    small = runs.create_run(small, store / "0-model")
    assert runs.train_run(small) == "finished"  # a model for the Predict page
    record = Record()
    with streamlit_server(store, folder / "streamlit.log") as server:
        try:
            run_id = runs.start(RUN, runs_dir=store)
            while not runs.read_metrics(run_id, store):
                await asyncio.sleep(0.2)
            await asyncio.sleep(WARMUP_S)
            quiet_start, cpu_quiet = time.time(), cpu_seconds()
            await asyncio.sleep(quiet_s)
            args = (server.url, sessions, seconds, think_s, sample, client_cpus, folder, record)
            load_start, cpu_load = await _browser_load(*args)
            load_end, cpu_end = time.time(), cpu_seconds()
            await asyncio.sleep(quiet_s)
            after_end = time.time()
            rows = runs.read_metrics(run_id, store)
        finally:
            stop_runs(store)
        log = (folder / "streamlit.log").read_text(errors="replace")

    def speed(a: float, b: float) -> float | None:
        value = samples_per_s(rows, a, b, RUN.batch_size)
        return round(value) if value else None

    before, loaded, after = (
        speed(quiet_start, load_start),
        speed(load_start, load_end),
        speed(load_end, after_end),
    )
    quiet = statistics.mean(v for v in (before, after) if v) if (before or after) else None
    return {
        "sessions": sessions,
        "client_cpus": client_cpus or "all",
        "load_seconds": round(load_end - load_start, 1),
        "think_s": think_s,
        "run_samples_per_s": {"before": before, "during_load": loaded, "after": after},
        "run_speed_kept": round(loaded / quiet, 3) if loaded and quiet else None,
        "cores_used_quiet": _share(cpu_quiet, cpu_load, load_start - quiet_start),
        "cores_used_under_load": _share(cpu_load, cpu_end, load_end - load_start),
        "actions": {
            name: {
                "count": len(times),
                "median_s": round(statistics.median(times), 2),
                "max_s": round(max(times), 2),
            }
            for name, times in record.latencies.items()
        },
        "failures": record.failures,
        "server_tracebacks": log.count("Traceback"),
    }


async def _browser_load(url, sessions, seconds, think_s, sample, client_cpus, folder, record):
    """Chromium pages against the real server; returns when the load began and the CPU used by then."""
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        launcher = pinned_chromium(client_cpus, folder) if client_cpus else CHROMIUM
        browser = await p.chromium.launch(executable_path=launcher, args=CHROMIUM_FLAGS)
        start, cpu = time.time(), cpu_seconds()
        until = time.monotonic() + seconds
        users = (user(browser, url, i, sample, until, think_s, record) for i in range(sessions))
        await asyncio.gather(*users)
        await browser.close()
    return start, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=40.0, help="how long the sessions keep working")
    parser.add_argument("--client-cpus", help='run Chromium on these CPUs only, e.g. "1", at nice 19')
    parser.add_argument("--think", type=float, default=THINK_S, help="seconds a user pauses between actions")
    parser.add_argument("--quiet", type=float, default=QUIET_S, help="seconds measured before and after")
    parser.add_argument("--json", type=Path, help="also write the report to this file")
    args = parser.parse_args()
    prepare(allow_download=False)
    with tempfile.TemporaryDirectory() as tmp:
        work = measure(
            args.sessions,
            args.seconds,
            Path(tmp),
            think_s=args.think,
            quiet_s=args.quiet,
            client_cpus=args.client_cpus,
        )
        report = asyncio.run(work)
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    sys.exit(1 if report["failures"] or report["server_tracebacks"] else 0)


if __name__ == "__main__":
    main()
