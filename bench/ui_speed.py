"""The dashboard's numbers on CPU: grid, prediction, first live point, and what watching a run costs.

Prints JSON. The live-view overhead is measured on one long run while Chromium switches between
no page, another dashboard page and the live Train page (see live_view_overhead).
"""

import io
import itertools
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image
from streamlit.testing.v1 import AppTest

from bench.harness import CHROMIUM, CHROMIUM_FLAGS, streamlit_server
from core import runs
from core.data import PROJECT_ROOT, load_split, prepare
from core.explore import sample_indices, to_display
from core.models import build_model
from core.predict import predict
from core.predict import prepare as prepare_image
from core.train import preset

WATCHED = preset("tutorial", device="cpu")  # the quickstart's model, optimizer and batches
FIRST_POINT = preset("tutorial", epochs=1, limit_batches=1500, device="cpu")
CYCLES = 6
WINDOW_S = 9.0
SETTLE_S = 3.0
# (condition, page path or None for about:blank); the first is the reference
CONDITIONS = (
    ("nobody watching", None),
    ("Dataset Explorer open", "Dataset_Explorer"),
    ("live Train page", "Train"),
)
SPARE_WARM_UP_S = 8.0


def _ms(samples: list[float]) -> dict:
    return {
        "median_ms": round(statistics.median(samples) * 1000, 1),
        "best_ms": round(min(samples) * 1000, 1),
    }


def grid_times() -> dict:
    images, labels = load_split("train")
    core_calls = []
    for seed in range(30):
        start = time.perf_counter()
        for i in sample_indices(labels, None, 9, seed):
            to_display(images[i], 150)
        core_calls.append(time.perf_counter() - start)
    at = AppTest.from_file(str(PROJECT_ROOT / "pages/1_Dataset_Explorer.py"), default_timeout=60).run()
    reruns = []
    for _ in range(10):  # a full server-side rerun after pressing Shuffle, as the page does it
        start = time.perf_counter()
        at.button(key="explorer_shuffle").click().run()
        reruns.append(time.perf_counter() - start)
    assert not at.exception
    return {"core_calls_3x3": _ms(core_calls), "page_rerun_after_shuffle": _ms(reruns)}


def prediction_times() -> dict:
    model = build_model("mlp").eval()  # the weights do not change the cost
    images, _ = load_split("test")
    small = io.BytesIO()
    Image.fromarray(images[0].numpy()).save(small, "PNG")
    photo = Image.new("RGB", (4000, 3000), "white")
    photo.paste((40, 40, 40), (1500, 600, 2500, 2600))
    big = io.BytesIO()
    photo.save(big, "JPEG", quality=90)
    result = {}
    for name, data in (("28x28_png", small.getvalue()), ("4000x3000_jpeg", big.getvalue())):
        times = []
        for _ in range(15):
            start = time.perf_counter()
            predict(model, prepare_image(data), k=3)
            times.append(time.perf_counter() - start)
        result[name] = _ms(times)
    return result


def first_point_seconds(store: Path, *, spare: bool) -> float:
    """Start to first metrics row, by a worker started then (cold) or by the spare (core.spare)."""
    if spare:
        runs.prepare_worker(store)
        time.sleep(SPARE_WARM_UP_S)  # the user picking settings while it warms up
    start = time.perf_counter()
    run_id = runs.start(FIRST_POINT, runs_dir=store)
    while not runs.read_metrics(run_id, store):
        time.sleep(0.02)
    elapsed = time.perf_counter() - start
    runs.stop(run_id, store)
    runs.wait(run_id, store)
    return elapsed


def live_view_overhead(store: Path, cycles: int = CYCLES) -> dict:
    """Training speed with nobody watching, with another dashboard page open, and with the live view.

    One long run, with the browser switching between the three in turn every WINDOW_S seconds: the
    machine's own drift (other tenants of this VM, CPU boost) then hits every condition alike,
    which separate runs one after another do not (their times here vary by 30% with nobody
    watching). The first SETTLE_S of each window are left out (the page loading, a one-time cost),
    and so are the test passes at epoch ends. Speeds come from the run's own logged (time, step).
    """
    from playwright.sync_api import sync_playwright

    config = WATCHED.replace(epochs=1000, log_every=20)
    windows = []  # (condition, start, end)
    with streamlit_server(store, store / "streamlit.log") as server, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        run_id = runs.start(config, runs_dir=store)
        try:
            while not runs.read_metrics(run_id, store):
                time.sleep(0.1)
            for _ in range(cycles):
                for condition, path in CONDITIONS:
                    page.goto(f"{server.url}/{path}" if path is not None else "about:blank")
                    opened = time.time()
                    time.sleep(WINDOW_S)
                    windows.append((condition, opened + SETTLE_S, time.time()))
        finally:
            runs.stop(run_id, store)
            runs.wait(run_id, store, timeout=60)
            browser.close()
    rows = [r for r in runs.read_metrics(run_id, store) if r["kind"] == "batch"]
    speeds: dict[str, list[float]] = {condition: [] for condition, _ in CONDITIONS}
    for condition, start, end in windows:
        speeds[condition].append(_speed(rows, start, end, config.batch_size))
    reference = CONDITIONS[0][0]
    alone = statistics.median(speeds[reference])
    report = {
        "window_s": WINDOW_S,
        "cycles": cycles,
        "samples_per_s": {k: [round(v) for v in vs] for k, vs in speeds.items()},
        "median_samples_per_s": {k: round(statistics.median(vs)) for k, vs in speeds.items()},
    }
    for condition, _ in CONDITIONS[1:]:
        slower = alone / statistics.median(speeds[condition]) - 1  # extra training time
        paired = [a / w - 1 for a, w in zip(speeds[reference], speeds[condition], strict=True)]
        report[f"added_time_pct: {condition}"] = {
            "of_medians": round(slower * 100, 1),
            "median_of_cycles": round(statistics.median(paired) * 100, 1),
        }
    return report


def _speed(rows: list[dict], start: float, end: float, batch_size: int) -> float:
    """Samples per second between consecutive logged steps inside [start, end], within an epoch."""
    steps = seconds = 0.0
    for a, b in itertools.pairwise(rows):
        if a["epoch"] == b["epoch"] and start <= a["time"] and b["time"] <= end:
            steps += b["step"] - a["step"]
            seconds += b["time"] - a["time"]
    return steps * batch_size / seconds if seconds else float("nan")


def main() -> None:
    prepare(allow_download=False)
    if "--live-only" in sys.argv:
        with tempfile.TemporaryDirectory() as tmp:
            print(json.dumps(live_view_overhead(Path(tmp)), indent=2))
        return
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp)
        report = {
            "grid": grid_times(),
            "prediction_after_model_load": prediction_times(),
            "first_metrics_row_after_start_s": {
                "cold_worker": round(first_point_seconds(store, spare=False), 2),
                "spare_worker": round(first_point_seconds(store, spare=True), 2),
            },
            "live_view": live_view_overhead(store),
        }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
