"""A run of several processes whose launcher or rank 0 is SIGKILLed: no rank trains on as an orphan,
the run's status says failed and stays so, the device is free, and no temp file is left behind."""

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from core import runs
from core.base.procs import pid_alive
from core.data.fashion import PROJECT_ROOT
from core.model.checkpoint import load_checkpoint
from core.runs import store as runstore
from core.training.config import TrainConfig
from tests.conftest import rank_pids, wait_for

pytestmark = pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is missing")

# Epochs of two batches: a checkpoint about every second, in a run that would go on for minutes.
ENDLESS = TrainConfig(epochs=500, limit_batches=2, log_every=1, device="cpu", processes=2)
SAVE = 2  # rank 0 is paused in epoch 2's save, so epoch 1's checkpoint is "the previous one"


def _temps(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.glob(".*.tmp"))


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def procs():
    """Processes a test starts, and the ranks it finds; any still alive at the end is killed."""
    started: list[subprocess.Popen] = []
    ranks: list[int] = []
    yield started, ranks
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    for pid in ranks:
        if pid_alive(pid):  # an orphan the test failed to see die: it must not train on after the test
            os.kill(pid, signal.SIGKILL)


def _start(args: list[str], runs_dir: Path, log: Path, started: list) -> subprocess.Popen:
    env = {**os.environ, "STUDIO_RUNS_DIR": str(runs_dir)}
    with open(log, "ab") as out:
        proc = subprocess.Popen(args, cwd=PROJECT_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT)  # fmt: skip
    started.append(proc)
    return proc


def _epochs(directory: Path) -> int:
    return runs.read_status(directory).get("epoch") or 0


def test_a_killed_launcher_takes_its_ranks_with_it_and_its_run_stays_failed(real_data, runs_dir, procs):
    started, seen = procs
    directory = runs_dir / "r1"
    args = [sys.executable, "-m", "core", "train", "--nproc", "2", "--device", "cpu", "--epochs", "500",
            "--limit-batches", "2", "--run-dir", str(directory)]  # fmt: skip
    launcher = _start(args, runs_dir, runs_dir / "r1.log", started)
    assert wait_for(lambda: directory.is_dir() and _epochs(directory) >= 1), (runs_dir / "r1.log").read_text()
    ranks = rank_pids("r1")
    seen.extend(ranks.values())
    assert sorted(ranks) == [0, 1]
    # The ranks outlive the thread-and-process checks of a normal run: two more epochs, both still there.
    epochs = _epochs(directory)
    assert wait_for(lambda: _epochs(directory) >= epochs + 2)
    assert all(pid_alive(pid) for pid in ranks.values())

    os.kill(launcher.pid, signal.SIGKILL)
    launcher.wait()
    assert wait_for(lambda: not any(pid_alive(pid) for pid in ranks.values()), timeout=5), "orphaned ranks"
    run = runs.get_run("r1", runs_dir)
    assert (run.status, run.pid) == ("failed", launcher.pid)
    assert run.error.startswith(f"the training process (pid {launcher.pid}) ended unexpectedly;")
    rows = (directory / "metrics.jsonl").read_text()
    with runs.device_lock(runs.device_keys(ENDLESS), runs_dir, grace=0):  # the next run can have the CPU
        time.sleep(3)  # what an orphan would have trained meanwhile: about three epochs
    assert runs.read_status(directory)["status"] == "failed"
    assert runs.read_status(directory)["error"] == run.error
    assert (directory / "metrics.jsonl").read_text() == rows
    assert load_checkpoint(run.checkpoint) is not None


def test_a_rank_whose_launcher_is_gone_before_it_starts_leaves_at_once(runs_dir):
    directory = runs.create_run(ENDLESS, runs_dir / "r1")
    before = (directory / "status.json").read_text()
    gone = subprocess.Popen(["true"])
    gone.wait()
    # Rank 1 of a run whose launcher is gone (it is not this test); joining, it would wait 5 s for rank 0.
    env = {**os.environ, "RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1", "MASTER_ADDR": "127.0.0.1",
           "MASTER_PORT": "1", "STUDIO_LAUNCHER_PID": str(gone.pid),
           "STUDIO_DIST_TIMEOUT_S": "5"}  # fmt: skip
    worker = [sys.executable, "-m", "core", "worker", str(directory)]
    result = subprocess.run(worker, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stderr[-2000:]
    said = f"error: the launcher of this run (pid {gone.pid}) is gone, so this process stops too\n"
    assert result.stderr == said
    assert (directory / "status.json").read_text() == before


def _paused_rank_zero(runs_dir: Path, marker: Path, started: list) -> tuple[Path, subprocess.Popen, int]:
    """A run of two ranks under its launcher (the real one), rank 0 held inside its weights' save."""
    directory = runs.create_run(ENDLESS, runs_dir / "r1")
    args = [sys.executable, "-m", "tests.unit.kill_driver", str(directory), "weights-temp", str(SAVE),
            str(marker), "launcher"]  # fmt: skip
    launcher = _start(args, runs_dir, runs_dir / "r1.log", started)
    assert wait_for(marker.exists), (runs_dir / "r1.log").read_text()
    assert wait_for(lambda: marker.read_text().isdigit())
    rank_zero = int(marker.read_text())
    assert _temps(directory) and all(
        name.startswith(f".model.pth.{rank_zero}.") for name in _temps(directory)
    )
    return directory, launcher, rank_zero


def test_rank_zero_killed_inside_a_save_leaves_no_temp_file_once_the_launcher_records_it(
    real_data, runs_dir, tmp_path, procs
):
    started, seen = procs
    directory, launcher, rank_zero = _paused_rank_zero(runs_dir, tmp_path / "paused", started)
    seen.extend(rank_pids("r1").values())
    previous = _sha(directory / runs.CHECKPOINT)  # epoch 1's weights

    os.kill(rank_zero, signal.SIGKILL)
    assert launcher.wait(timeout=90) == 1
    status = runs.read_status(directory)
    assert status["status"] == "failed"
    assert status["error"].startswith(f"process rank 0 (pid {rank_zero}) was killed by SIGKILL"), status[
        "error"
    ]
    assert _temps(directory) == []  # the launcher tidied after the rank it lost
    assert load_checkpoint(directory / runs.CHECKPOINT).sha256 == previous


def test_a_launcher_killed_while_rank_zero_saves_leaves_no_temp_file_once_a_reader_notices(
    real_data, runs_dir, tmp_path, procs
):
    started, seen = procs
    directory, launcher, _rank_zero = _paused_rank_zero(runs_dir, tmp_path / "paused", started)
    ranks = rank_pids("r1")
    seen.extend(ranks.values())
    previous = _sha(directory / runs.CHECKPOINT)

    os.kill(launcher.pid, signal.SIGKILL)
    launcher.wait()
    assert wait_for(lambda: not any(pid_alive(pid) for pid in ranks.values()), timeout=5), "orphaned ranks"
    run = runs.get_run("r1", runs_dir)  # the reader marks it failed and tidies after every dead writer
    assert (run.status, run.pid) == ("failed", launcher.pid)
    assert _temps(directory) == []
    assert load_checkpoint(run.checkpoint).sha256 == previous


def test_a_final_status_is_changed_only_by_the_process_it_names(runs_dir):
    directory = runs.create_run(ENDLESS, runs_dir / "r1")
    launcher = subprocess.Popen(["true"])
    launcher.wait()  # the launcher, killed
    runstore._write_status(directory, status="running", **runstore._pid_fields(launcher.pid))
    reader_said = runs.get_run("r1", runs_dir).error  # the reader marks it failed for the dead launcher
    runstore._write_status(
        directory, status="finished", step=10, epoch=5
    )  # what an orphaned rank 0 would write
    runs.record_failure(directory, "a stale error")
    status = runs.read_status(directory)
    assert (status["status"], status["error"], status.get("epoch")) == ("failed", reader_said, None)

    owned = runs.create_run(ENDLESS, runs_dir / "r2")
    runstore._write_status(
        owned, status="running", **runstore._pid_fields(os.getpid())
    )  # this process is its launcher
    runs.record_failure(owned, "the processes of this run ended without a result: start again")
    runs.record_failure(owned, "process rank 1 (pid 7) was killed by SIGKILL")  # its better words, later
    assert runs.read_status(owned)["error"] == "process rank 1 (pid 7) was killed by SIGKILL"
