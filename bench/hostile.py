"""While one user uploads JPEGs built to cost minutes of CPU on Predict, another shuffles the explorer.

The files are 4096x4096 progressive JPEGs with their last scan repeated 2,000 times (165 KB each):
before core.model.predict counted scans, each cost about 20 s of CPU to decode. Prints JSON: the other
user's Shuffle latencies before and during the uploads (each should stay within 1 s), how long the
uploader waited for its error lines, the server's CPU, and any failure.
Usage: python -m bench.hostile [--copies N] [--rounds N] [--pillow-alone] [--client-cpus LIST]
`--pillow-alone` also times Pillow decoding one such file with no limits, in this process.
`--client-cpus 1` keeps both browsers on one CPU at the lowest priority, as in bench.load.

Two more measurements run the Predict page's script in this process (Streamlit's AppTest), so the CPU
and memory counted are the server's own work for one rerun, with no browser on the same cores:
`--canvas-bomb`: the drawing canvas sent a 13000x13000 PNG data URL (0.66 MB), then a text data URL.
`--photos N`: N small photos with "which pixels mattered" on; the first run, a rerun, a top-k change.
"""

import argparse
import asyncio
import base64
import io
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.harness import CHROMIUM, CHROMIUM_FLAGS, streamlit_server
from bench.load import (
    ACTION_TIMEOUT_MS,
    Record,
    _explore,
    _grid,
    _open,
    _shuffle,
    cpu_seconds,
    pinned_chromium,
)
from core import runs
from core.data.fashion import prepare
from core.runs import store as runstore
from core.training.config import preset
from tests.unit.test_hostile_images import HOSTILE_SCANS, png_bomb, repeated_scan_jpeg

COPIES = 5  # files in one upload
ROUNDS = 4  # uploads, one after the other, each from a fresh page
BASELINE_SHUFFLES = 8  # before the uploads start
SHUFFLE_LIMIT_S = 1.0


async def _attacker(browser, url: str, files: list[list[Path]], record: Record) -> None:
    """Each round: open Predict in a new page, drop every file at once, wait for one error per file."""
    for round_, paths in enumerate(files):
        context = await browser.new_context(viewport={"width": 1280, "height": 800})
        context.set_default_timeout(ACTION_TIMEOUT_MS)
        page = await context.new_page()
        try:
            await page.goto(url)
            await _open(page, "Predict", "Predict")
            uploader = page.get_by_test_id("stFileUploader").filter(has_text="Drop images of clothing here")
            drop = uploader.get_by_test_id("stFileUploaderDropzoneInput")
            await drop.set_input_files([str(p) for p in paths])
            await record.timed(round_, "upload_until_every_error_shows", _errors_shown(page, len(paths)))
        finally:
            await context.close()


async def _errors_shown(page, count: int) -> None:
    errors = page.get_by_text("Cannot classify this file: JPEG has over ")
    deadline = time.monotonic() + ACTION_TIMEOUT_MS / 1000
    while await errors.count() < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{await errors.count()} of {count} error lines after {ACTION_TIMEOUT_MS} ms")
        await asyncio.sleep(0.05)


async def _shuffle_timed(page, record: Record, name: str) -> None:
    """One Shuffle, timed until the new grid shows; then a short pause, as a user clicking briskly."""
    before = time.monotonic()
    await record.timed(0, name, _shuffle(page, await _grid(page)))
    await asyncio.sleep(max(0.0, 0.2 - (time.monotonic() - before)))


async def _measure(url: str, files: list[list[Path]], launcher: str) -> tuple[Record, dict]:
    from playwright.async_api import async_playwright

    record = Record()
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=launcher, args=CHROMIUM_FLAGS)
        context = await browser.new_context(viewport={"width": 1280, "height": 800})
        context.set_default_timeout(ACTION_TIMEOUT_MS)
        page = await context.new_page()
        await page.goto(url)
        await _explore(page)
        for _ in range(BASELINE_SHUFFLES):
            await _shuffle_timed(page, record, "shuffle_before")
        cpu_before, start = cpu_seconds(), time.monotonic()
        attack = asyncio.ensure_future(_attacker(browser, url, files, record))
        while not attack.done():
            await _shuffle_timed(page, record, "shuffle_during_uploads")
        await attack
        seconds = time.monotonic() - start
        server_cpu = cpu_seconds()["server"] - cpu_before["server"]
        await browser.close()
    return record, {"uploads_seconds": round(seconds, 1), "server_cpu_s_during_uploads": round(server_cpu, 1)}


def _pillow_alone(data: bytes) -> float:
    """CPU seconds Pillow takes to decode the file with no limit of ours, as core.model.predict would."""
    from PIL import Image

    image = Image.open(io.BytesIO(data))
    image.draft(image.mode, (1024, 1024))
    start = time.process_time()
    image.load()
    return round(time.process_time() - start, 1)


def run(copies: int, rounds: int, folder: Path, pillow_alone: bool, client_cpus: str | None) -> dict:
    store = folder / "runs"
    small = runs.create_run(
        preset("recommended", epochs=1, limit_batches=20, device="cpu"), store / "0-model"
    )
    assert runs.train_run(small) == "finished"  # a model, so that Predict shows its uploader
    data = repeated_scan_jpeg()
    files = _write_copies(data, copies, rounds, folder)
    load_before = os.getloadavg()[0]  # the machine may be shared: other work slows both users too
    with streamlit_server(store, folder / "streamlit.log") as server:
        launcher = pinned_chromium(client_cpus, folder) if client_cpus else CHROMIUM
        record, totals = asyncio.run(_measure(server.url, files, launcher))
    log = (folder / "streamlit.log").read_text(errors="replace")
    during = record.latencies.get("shuffle_during_uploads", [])
    report = {
        "file": {"kb": round(len(data) / 1024), "scans": HOSTILE_SCANS + 10},
        "copies": copies,
        "rounds": rounds,
        "client_cpus": client_cpus or "all",
        "load_average_1min": [round(load_before, 1), round(os.getloadavg()[0], 1)],
        **totals,
        "actions": {name: _summary(times) for name, times in record.latencies.items()},
        "failures": record.failures,
        "server_tracebacks": log.count("Traceback"),
        "shuffle_within_1s": bool(during) and max(during) < SHUFFLE_LIMIT_S,
    }
    if pillow_alone:
        report["pillow_alone_cpu_s_per_file"] = _pillow_alone(data)
    return report


def _write_copies(data: bytes, copies: int, rounds: int, folder: Path) -> list[list[Path]]:
    """`copies` files per round, each under a name of its own: a new name is a new upload."""
    files = [[folder / f"scans-r{r}-{i}.jpg" for i in range(copies)] for r in range(rounds)]
    for path in (path for paths in files for path in paths):
        path.write_bytes(data)
    return files


def _summary(times: list[float]) -> dict:
    return {
        "count": len(times),
        "median_s": round(statistics.median(times), 3),
        "max_s": round(max(times), 3),
        "all_s": [round(t, 3) for t in times],
    }


# ---- the page's own work, measured in this process -----------------------------------------------

PAGE = str(Path(__file__).resolve().parent.parent / "pages" / "Predict.py")
CANVAS_KEY = "predict_canvas_0"  # the drawing canvas's widget key before any Clear
BOMB_SIDE = 13_000


def _page_store(folder: Path, model_name: str = "mlp") -> Path:
    store = folder / "page-runs"
    config = preset("recommended", model=model_name, epochs=1, limit_batches=20, device="cpu")
    model = runs.create_run(config, store / "0-m")
    assert runs.train_run(model) == "finished"
    runstore.RUNS_DIR = store  # the page's run store, in this process
    return store


def _peak_mb() -> float:
    """VmHWM: this process's peak resident memory."""
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM")) / 1024


def _reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")  # VmHWM back to what is resident now


def _timed_run(at) -> dict:
    """One rerun of the page: its CPU seconds (every thread of this process) and peak memory rise."""
    _reset_peak()
    peak, cpu, wall = _peak_mb(), time.process_time(), time.perf_counter()
    at.run()
    return {
        "cpu_s": round(time.process_time() - cpu, 2),
        "wall_s": round(time.perf_counter() - wall, 2),
        "peak_rise_mb": round(_peak_mb() - peak),
        "exception": [e.message for e in at.exception],
        "errors": sorted({e.value for e in at.error}),
    }


def canvas_bomb(folder: Path) -> dict:
    """What the page does with a forged canvas value: a PNG bomb, then a data URL that is no image."""
    from streamlit.testing.v1 import AppTest

    _page_store(folder)
    bomb = png_bomb(BOMB_SIDE)
    at = AppTest.from_file(PAGE, default_timeout=600).run()
    report = {"bomb": {"side": BOMB_SIDE, "mb": round(len(bomb) / 2**20, 2)}}
    for name, url in [
        ("png_bomb", "data:image/png;base64," + base64.b64encode(bomb).decode()),
        ("text_data_url", "data:text/plain;base64," + base64.b64encode(b"no image here").decode()),
    ]:
        at.session_state[CANVAS_KEY] = {"drawing": {"raw": {"objects": []}, "data": url}}
        report[name] = _timed_run(at)
        report[name]["exception"] = [line.splitlines()[0][:200] for line in report[name]["exception"]]
    return report


def _photo(index: int) -> bytes:
    """A small photo: test image `index` on a light background, as a phone snapshot of it might be."""
    from PIL import Image, ImageOps

    from core.data.fashion import load_split

    images, _labels = load_split("test")
    item = ImageOps.invert(Image.fromarray(images[index].numpy())).resize((96, 96))
    buffer = io.BytesIO()
    item.convert("RGB").save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def photos(count: int, folder: Path, model_name: str) -> dict:
    """CPU per rerun with `count` photos and their attributions on."""
    from streamlit.testing.v1 import AppTest

    _page_store(folder, model_name)
    at = AppTest.from_file(PAGE, default_timeout=900).run()
    at.toggle(key="predict_explain").set_value(True)
    at.file_uploader(key="predict_images").set_value(
        [(f"photo{i:03}.jpg", _photo(i), "image/jpeg") for i in range(count)]
    )
    report = {"photos": count, "model": model_name, "first_run": _timed_run(at), "rerun": _timed_run(at)}
    at.slider(key="predict_k").set_value(5)
    report["top_k_change"] = _timed_run(at)
    report["classified"] = sum(m.value.startswith("Top-1: **") for m in at.markdown)
    report["explained"] = sum(m.value.startswith("**Which pixels mattered") for m in at.markdown)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=COPIES, help="files in one upload")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="uploads, one after the other")
    parser.add_argument("--pillow-alone", action="store_true", help="also time Pillow alone on one file")
    parser.add_argument("--client-cpus", help='run Chromium on these CPUs only, e.g. "1", at nice 19')
    parser.add_argument("--canvas-bomb", action="store_true", help="the page given a forged canvas value")
    parser.add_argument("--photos", type=int, help="CPU per rerun with this many photos explained")
    parser.add_argument("--model", choices=["mlp", "cnn"], default="cnn", help="the model for --photos")
    args = parser.parse_args()
    prepare(allow_download=False)
    if args.canvas_bomb or args.photos:
        with tempfile.TemporaryDirectory() as tmp:
            report = {"canvas": canvas_bomb(Path(tmp) / "canvas")} if args.canvas_bomb else {}
            if args.photos:
                report["photos"] = photos(args.photos, Path(tmp) / "photos", args.model)
        print(json.dumps(report, indent=2))
        return
    with tempfile.TemporaryDirectory() as tmp:
        report = run(args.copies, args.rounds, Path(tmp), args.pillow_alone, args.client_cpus)
    print(json.dumps(report, indent=2))
    sys.exit(0 if report["shuffle_within_1s"] and not report["failures"] else 1)


if __name__ == "__main__":
    main()
