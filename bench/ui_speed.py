"""The dashboard's numbers on CPU: grid, prediction, first live point, and what watching a run costs.

Prints JSON. The live-view overhead trains the same run twice with nobody watching and twice
with Chromium showing the Train page (alternating), and compares the epochs' own timings.
"""

import io
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

WATCHED = preset("tutorial", device="cpu")  # the quickstart as is: 5 epochs, about 12 s on 2 cores
FIRST_POINT = preset("tutorial", epochs=1, limit_batches=1500, device="cpu")
REPEATS = 3
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


def _training_seconds(run_id: str, store: Path) -> float:
    """The run's own time for all its epochs (train and test passes), as it logged them."""
    run = runs.wait(run_id, store, timeout=600)
    assert run.status == "finished", run.error
    return sum(m["seconds"] for m in runs.read_metrics(run_id, store) if m["kind"] == "epoch")


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


def live_view_overhead(store: Path) -> dict:
    from playwright.sync_api import sync_playwright

    alone, watched = [], []
    with streamlit_server(store, store / "streamlit.log") as server, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        for _ in range(REPEATS):
            page.goto("about:blank")  # nobody watching
            alone.append(_training_seconds(runs.start(WATCHED, runs_dir=store), store))
            run_id = runs.start(WATCHED, runs_dir=store)
            page.goto(f"{server.url}/Train")  # re-attaches to the active run and redraws it every second
            watched.append(_training_seconds(run_id, store))
        browser.close()
    a, w = statistics.median(alone), statistics.median(watched)
    rounded = {
        "training_s_alone": [round(x, 2) for x in alone],
        "training_s_watched": [round(x, 2) for x in watched],
    }
    best = min(watched) / min(alone) - 1  # the least disturbed run of each kind: steadier than medians
    return {
        **rounded,
        "overhead_pct_median": round((w / a - 1) * 100, 1),
        "overhead_pct_best": round(best * 100, 1),
    }


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
