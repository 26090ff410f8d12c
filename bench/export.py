"""An exported script against `python -m core train`: test accuracy after one epoch of the same config.

Prints JSON: both accuracies, their gap in points, and both wall times. The script trains with
torchvision's Dataset and a DataLoader, the CLI with the dashboard's in-memory batches, so their batch
orders differ; the accuracies should still agree within a couple of points.
"""

import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from core.data.fashion import PROJECT_ROOT, prepare
from core.training.config import preset
from core.training.export import script

CONFIG = preset("recommended", epochs=1)
CLI_ACC = re.compile(r"test acc (\d+\.\d)%")
SCRIPT_ACC = re.compile(r"Accuracy: (\d+\.\d)%")


def _run(args: list[str], cwd: Path, pattern: re.Pattern) -> tuple[float, float]:
    start = time.perf_counter()
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=True)
    found = pattern.findall(done.stdout)
    if not found:
        raise RuntimeError(f"no accuracy in the output of {args}:\n{done.stdout[-2000:]}")
    return float(found[-1]), time.perf_counter() - start


def compare() -> dict:
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        cli_acc, cli_s = _run(
            [sys.executable, "-m", "core", "train", "--preset", "recommended", "--epochs", "1",
             "--device", "cpu", "--run-dir", str(tmp / "run")],
            PROJECT_ROOT, CLI_ACC,
        )  # fmt: skip
        (tmp / "train_export.py").write_text(script(CONFIG, "bench.export"))
        (tmp / "data").symlink_to(PROJECT_ROOT / "data")
        script_acc, script_s = _run([sys.executable, "train_export.py"], tmp, SCRIPT_ACC)
    return {
        "config": "recommended, 1 epoch, MLP",
        "cli_test_acc": cli_acc,
        "script_test_acc": script_acc,
        "gap_points": round(abs(cli_acc - script_acc), 1),
        "cli_s": round(cli_s, 1),
        "script_s": round(script_s, 1),
    }


def main() -> None:
    prepare(allow_download=False)
    print(json.dumps(compare(), indent=2))


if __name__ == "__main__":
    main()
