"""Test accuracy of the presets after 5 epochs (through the CLI, as a user runs them) and worker peak RSS."""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from core.data.fashion import PROJECT_ROOT

CASES = [("tutorial", "mlp"), ("recommended", "mlp"), ("recommended", "cnn")]


def run_case(preset: str, model: str, device: str, runs_root: Path) -> dict:
    run_dir = runs_root / f"{preset}-{model}"
    args = [sys.executable, "-m", "core", "train", "--preset", preset, "--model", model, "--device", device,
            "--run-dir", str(run_dir)]  # fmt: skip
    env = {**os.environ, "STUDIO_RUNS_DIR": str(runs_root)}
    start = time.perf_counter()
    proc = subprocess.Popen(args, cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, text=True)
    peak = 0
    watched = psutil.Process(proc.pid)
    while proc.poll() is None:
        try:
            peak = max(peak, watched.memory_info().rss)
        except psutil.NoSuchProcess:
            break
        time.sleep(0.1)
    output = proc.stdout.read()
    status = json.loads((run_dir / "status.json").read_text())
    return {
        "preset": preset,
        "model": model,
        "status": status.get("status"),
        "epochs": status.get("epoch"),
        "test_acc": status.get("last_test_acc"),
        "best_test_acc": status.get("best_test_acc"),
        "seconds": round(time.perf_counter() - start, 1),
        "peak_rss_mb": round(peak / 2**20),
        "epoch_lines": [line for line in output.splitlines() if line.startswith("epoch ")],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = [run_case(p, m, args.device, Path(tmp)) for p, m in CASES]
    print(json.dumps({"device": args.device, "results": results}, indent=2))


if __name__ == "__main__":
    main()
