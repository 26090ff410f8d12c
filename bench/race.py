"""An optimizer race end to end: 4 contenders x 500 MLP steps, started like the page starts it (a worker
process), timed from Start to the results table. Prints JSON."""

import json
import tempfile
import time
from pathlib import Path

from core import runs
from core.data.fashion import prepare
from core.training.race import READY, RaceConfig

TARGET_S = 30.0


def race_time() -> dict:
    config = RaceConfig(READY["Optimizers"], steps=500, device="cpu")
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        race_id = runs.start(config, runs_dir=Path(folder))
        race = runs.wait(race_id, Path(folder), timeout=600)
        took = time.perf_counter() - start
        results = runs.read_results(race.dir) or {}
    return {
        "race": "Optimizers, 4 contenders x 500 MLP steps, CPU",
        "status": race.status,
        "seconds_start_to_table": round(took, 1),
        "within_30_s": took <= TARGET_S,
        "test_acc": {r["label"]: r["test_acc"] for r in results.get("results", [])},
    }


def main() -> None:
    prepare(allow_download=False)
    print(json.dumps(race_time(), indent=2))


if __name__ == "__main__":
    main()
