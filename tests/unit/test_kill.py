"""A worker SIGKILLed mid-run or mid-checkpoint-write: its run reads as failed, the previous checkpoint
loads, and the temp files it left behind are ignored, then cleaned up."""

import contextlib
import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core import runs
from core.data.fashion import PROJECT_ROOT
from core.model.checkpoint import load_checkpoint
from core.runs import store as runstore
from core.training.config import TrainConfig
from tests.conftest import wait_for
from tests.unit.kill_driver import MOMENTS

# Epochs of two batches: a checkpoint about every second, in a run that would go on for minutes.
ENDLESS = TrainConfig(epochs=500, limit_batches=2, log_every=1, device="cpu")
TWO_EPOCHS = ENDLESS.replace(epochs=2)
SAVE = 2  # the worker is paused in epoch 2's save, so epoch 1's checkpoint is "the previous one"


def _temps(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.glob(".*.tmp"))


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def workers():
    """Worker processes a test launches itself; any still alive at the end is killed and reaped."""
    procs: list[subprocess.Popen] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def _paused_worker(directory: Path, moment: str, marker: Path, workers: list) -> subprocess.Popen:
    """The real worker (`python -m core worker`), patched in its own process to hold inside save SAVE."""
    args = [sys.executable, "-m", "tests.unit.kill_driver", str(directory), moment, str(SAVE), str(marker)]
    with open(directory / "worker.log", "ab") as log:
        proc = subprocess.Popen(
            args, cwd=PROJECT_ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
        )
    workers.append(proc)
    return proc


def test_a_worker_killed_mid_run_fails_in_words_and_its_checkpoint_loads_and_trains_on(real_data, runs_dir):
    run_id = runs.start(ENDLESS, runs_dir=runs_dir)
    try:
        assert wait_for(lambda: runs.get_run(run_id, runs_dir).epoch >= 1)  # a checkpoint is on disk
        pid = runs.read_status(runs_dir / run_id)["pid"]
        os.kill(pid, signal.SIGKILL)
        assert wait_for(lambda: not runs.get_run(run_id, runs_dir).active, timeout=10)
    finally:
        if runs.get_run(run_id, runs_dir).active:  # the kill went wrong: do not leave a worker behind
            runs.stop(run_id, runs_dir)
            runs.wait(run_id, runs_dir, timeout=30)
    run = runs.get_run(run_id, runs_dir)
    assert run.status == "failed"
    assert run.error.startswith(f"the training process (pid {pid}) ended unexpectedly;")
    assert runs.active_run(runs_dir=runs_dir) is None
    loaded = load_checkpoint(run.checkpoint)
    assert loaded.meta is None or loaded.meta["metrics"]["epoch"] >= 1  # None: killed between the two files
    assert _temps(run.dir) == []

    more = runs.start(ENDLESS.replace(epochs=1), runs_dir=runs_dir, init_from=run.checkpoint)
    continued = runs.wait(more, runs_dir, timeout=60)
    assert continued.status == "finished", continued.error
    load_checkpoint(continued.checkpoint)


@pytest.mark.parametrize(
    ("moment", "temp_of", "sidecar_describes_weights"),
    [
        ("sidecar-temp", "model.json", True),  # the old pair untouched
        ("sidecar-replaced", None, False),  # the new sidecar beside the old weights: ignored on load
        ("weights-temp", "model.pth", False),  # and the new weights whole in a temp file
    ],
    ids=MOMENTS,
)
def test_a_worker_killed_inside_a_checkpoint_save_keeps_the_previous_checkpoint(
    moment, temp_of, sidecar_describes_weights, real_data, runs_dir, tmp_path, workers
):
    directory = runs.create_run(TWO_EPOCHS, runs_dir / "r1")
    marker = tmp_path / "paused"
    proc = _paused_worker(directory, moment, marker, workers)
    assert wait_for(marker.exists), (directory / "worker.log").read_text()
    status = runs.read_status(directory)
    assert (status["status"], status["epoch"], status["pid"]) == ("running", 1, proc.pid)
    previous = _sha(directory / runs.CHECKPOINT)  # epoch 1's weights

    os.kill(status["pid"], signal.SIGKILL)
    proc.wait()
    left = _temps(directory)
    assert len(left) == (temp_of is not None)
    assert all(name.startswith(f".{temp_of}.{proc.pid}.") for name in left)  # the worker's own, by pid

    # With the worker's temp files still there, loading picks the previous weights, whole.
    loaded = load_checkpoint(directory / runs.CHECKPOINT)
    assert loaded.sha256 == previous
    assert (loaded.meta is not None) == sidecar_describes_weights
    if sidecar_describes_weights:
        assert loaded.meta["metrics"]["epoch"] == 1

    (run,) = runs.list_runs(runs_dir)  # the temp files are not runs, nor do they stop it being read
    assert (run.id, run.status, run.epoch) == ("r1", "failed", 1)
    assert run.error.startswith(f"the training process (pid {proc.pid}) ended unexpectedly;")
    assert _temps(directory) == []  # cleaned once the dead worker was noticed
    assert load_checkpoint(run.checkpoint).sha256 == previous


def test_cleanup_after_a_dead_worker_spares_temp_files_other_processes_are_writing(runs_dir):
    directory = runs.create_run(TWO_EPOCHS, runs_dir / "r1")
    dead = subprocess.Popen(["true"])
    dead.wait()
    runstore._write_status(directory, status="running", pid=dead.pid)
    left_by_worker = directory / f".model.pth.{dead.pid}.abcd1234.tmp"
    # e.g. another browser session's server thread marking the same run failed at this very moment
    being_written = directory / f".status.json.{os.getpid()}.efgh5678.tmp"
    for path in (left_by_worker, being_written):
        path.write_bytes(b"half a fi")
    assert runs.get_run("r1", runs_dir).status == "failed"
    assert not left_by_worker.exists()
    assert being_written.exists()


def _stopped_once(directory: Path) -> None:
    wait_for(lambda: runs.read_status(directory)["status"] != "running", timeout=60)


@pytest.mark.parametrize("nproc", [1, 2])
@pytest.mark.parametrize(
    "second",
    [lambda _d: time.sleep(0.2), lambda d: (_stopped_once(d), time.sleep(0.3))],
    ids=["while-it-stops", "as-it-leaves"],
)
def test_ctrl_c_twice_still_stops_the_run_with_its_checkpoint_and_exit_3(
    nproc, second, real_data, runs_dir, workers
):
    """A terminal's Ctrl-C goes to the whole foreground process group: the first asks the run to stop,
    the second comes while it stops (a batch, the checkpoint) or as the process leaves, where the
    interpreter's teardown had restored the default handler (exit -2 before)."""
    directory = runs_dir / "r1"
    args = [sys.executable, "-m", "core", "train", "--device", "cpu", "--epochs", "500",
            "--limit-batches", "2", "--run-dir", str(directory), "--nproc", str(nproc)]  # fmt: skip
    env = {**os.environ, "STUDIO_RUNS_DIR": str(runs_dir)}
    proc = subprocess.Popen(args, cwd=PROJECT_ROOT, env=env, start_new_session=True,  # a group of its own
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    workers.append(proc)
    assert wait_for(lambda: runs.read_status(directory).get("epoch", 0) >= 1 if directory.is_dir() else False)
    os.killpg(proc.pid, signal.SIGINT)
    second(directory)
    with contextlib.suppress(ProcessLookupError):  # it may have left already: then it cannot die of it
        os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 3, f"exit {proc.returncode}\n{out[-1000:]}\n{err[-2000:]}"
    assert runs.read_status(directory)["status"] == "stopped"
    assert load_checkpoint(directory / runs.CHECKPOINT).meta is not None
    assert not (directory / runs.STOP_FILE).exists()  # no stop request left behind the stopped run
    assert "Traceback" not in err, err[-2000:]
