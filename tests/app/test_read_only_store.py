"""A run store that cannot be written (a folder without write permission): every page works, the sidebar
says so once, Start is off, and no spare worker is started again and again."""

import json
import os
import shutil
import subprocess
import sys

import psutil
import pytest

from core import runs
from core.data.fashion import PROJECT_ROOT
from core.runs import store as runstore
from core.training.config import TrainConfig

GOOD = "20260101-000000-good"


def _without_write_permission(store) -> list[str]:
    """The command prefix that makes a folder's missing write bit hold, for root too: root's
    CAP_DAC_OVERRIDE ignores permission bits, so it is dropped (util-linux's setpriv) for the child."""
    os.chmod(store, 0o555)
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.fail("running as root, this test needs util-linux's setpriv to drop CAP_DAC_OVERRIDE")
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search"]


def _spares_of(store) -> list[int]:
    return [
        p.pid
        for p in psutil.process_iter(["cmdline"])
        if "core.runs.spare" in (p.info["cmdline"] or []) and str(store) in (p.info["cmdline"] or [])
    ]


def test_a_read_only_store_shows_one_notice_and_disables_starting(real_data, tmp_path):
    store = tmp_path / "runs"
    directory = runs.create_run(TrainConfig(epochs=1, limit_batches=2, device="cpu"), store / GOOD)
    runstore._write_status(directory, status="finished", epoch=1, step=2, best_test_acc=0.5)
    prefix = _without_write_permission(store)
    env = {**os.environ, "STUDIO_RUNS_DIR": str(store), "STUDIO_SPARE_WORKER": "1"}
    try:
        result = subprocess.run(
            [*prefix, sys.executable, "-m", "tests.app.read_only_driver"],
            cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
    finally:
        os.chmod(store, 0o755)
    assert result.returncode == 0, result.stderr[-3000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["problem"] and "cannot be written" in seen["problem"] and seen["spare"] is None
    for page, shown in seen["pages"].items():
        assert shown["exceptions"] == [], page
        assert shown["runs"] == [GOOD], page  # the runs are still there to look at
        notices = [c for c in shown["sidebar"] if "cannot be written" in c]
        assert len(notices) == 1, (page, shown["sidebar"])
    assert seen["pages"]["pages/Train.py"]["starts"] == {"train_start": True}
    assert seen["pages"]["pages/Optimization.py"]["starts"] == {"race_start": True}
    assert _spares_of(store) == [] and not list(store.glob(".spare*"))
