import json
import os
import signal
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core import runs
from core.base.errors import RunError
from core.base.priority import WORKER_NICE
from core.model.checkpoint import load_checkpoint
from core.runs import store as runstore
from core.training.config import TrainConfig
from tests.conftest import wait_for

QUICK = TrainConfig(epochs=1, limit_batches=3, log_every=1, device="cpu")
LONG = TrainConfig(epochs=50, limit_batches=500, log_every=1, device="cpu", batch_size=16)


def test_a_run_trains_in_a_worker_and_leaves_a_loadable_checkpoint(real_data, runs_dir):
    run_id = runs.start(QUICK, runs_dir=runs_dir)
    run = runs.wait(run_id, runs_dir, timeout=120)
    assert run.status == "finished", run.error
    assert run.epoch == 1 and run.step == 3 and run.total_steps == 3
    assert json.loads((run.dir / "config.json").read_text()) == QUICK.to_dict()
    metrics = runs.read_metrics(run_id, runs_dir)
    assert [m["step"] for m in metrics if m["kind"] == "batch"] == [1, 2, 3]
    assert [m["kind"] for m in metrics][-1] == "epoch"
    loaded = load_checkpoint(run.checkpoint)
    assert loaded.model_name == "mlp"
    assert loaded.meta["train_config"] == QUICK.to_dict()
    assert run.best_test_acc == metrics[-1]["test_acc"]
    assert [r.id for r in runs.list_runs(runs_dir)] == [run_id]


def test_stop_is_honoured_quickly_and_saves_a_checkpoint(real_data, runs_dir):
    run_id = runs.start(LONG, runs_dir=runs_dir)
    assert wait_for(lambda: len(runs.read_metrics(run_id, runs_dir)) >= 2)
    assert runs.get_run(run_id, runs_dir).status == "running"
    runs.stop(run_id, runs_dir)
    run = runs.wait(run_id, runs_dir, timeout=30)
    assert run.status == "stopped"
    load_checkpoint(run.checkpoint)  # loadable, and matches its sidecar


def test_a_second_start_on_the_same_device_is_refused(real_data, runs_dir):
    first = runs.start(LONG, runs_dir=runs_dir)
    try:
        with pytest.raises(RunError, match="already training on cpu"):
            runs.start(QUICK, runs_dir=runs_dir)
    finally:
        runs.stop(first, runs_dir)
        runs.wait(first, runs_dir, timeout=30)
    second = runs.start(QUICK, runs_dir=runs_dir)  # the lock is free again
    assert runs.wait(second, runs_dir, timeout=120).status == "finished"


def test_simultaneous_starts_let_exactly_one_through(real_data, runs_dir):
    results, barrier = [], threading.Barrier(4)

    def attempt():
        barrier.wait()
        try:
            results.append(runs.start(LONG, runs_dir=runs_dir))
        except RunError as exc:
            results.append(exc)

    threads = [threading.Thread(target=attempt) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    started = [r for r in results if isinstance(r, str)]
    assert len(started) == 1 and sum(isinstance(r, RunError) for r in results) == 3
    runs.stop(started[0], runs_dir)
    runs.wait(started[0], runs_dir, timeout=30)


def test_a_killed_worker_is_reported_as_failed(real_data, runs_dir):
    run_id = runs.start(LONG, runs_dir=runs_dir)
    assert wait_for(lambda: runs.read_metrics(run_id, runs_dir))
    os.kill(runs.get_run(run_id, runs_dir).pid, signal.SIGKILL)
    assert wait_for(lambda: runs.get_run(run_id, runs_dir).status == "failed", timeout=10)
    assert "ended unexpectedly" in runs.get_run(run_id, runs_dir).error
    assert runs.active_run(runs_dir=runs_dir) is None
    runs.wait(runs.start(QUICK, runs_dir=runs_dir), runs_dir, timeout=120)  # the device is free again


def test_read_metrics_skips_a_partial_last_line(runs_dir):
    directory = runs.create_run(QUICK, runs_dir / "r1")
    (directory / "metrics.jsonl").write_text(
        '{"kind": "batch", "step": 1}\n{"kind": "batch", "step": 2}\n{"kind": "ba'
    )
    assert [m["step"] for m in runs.read_metrics("r1", runs_dir)] == [1, 2]


def test_unknown_run_and_bad_ids_are_clear_errors(runs_dir):
    with pytest.raises(RunError, match="no run"):
        runs.get_run("nope", runs_dir)
    with pytest.raises(RunError, match="not a run id"):
        runs.get_run("../etc", runs_dir)


def test_sigterm_to_a_worker_is_a_clean_stop(real_data, runs_dir):
    run_id = runs.start(LONG, runs_dir=runs_dir)
    assert wait_for(lambda: runs.read_metrics(run_id, runs_dir))
    os.kill(runs.get_run(run_id, runs_dir).pid, signal.SIGTERM)
    run = runs.wait(run_id, runs_dir, timeout=30)
    assert run.status == "stopped"
    load_checkpoint(run.checkpoint)


def test_progress_reads_the_last_complete_row(runs_dir):
    directory = runs.create_run(QUICK, runs_dir / "r2")
    rows = [{"kind": "batch", "epoch": 1, "step": s, "samples_per_s": 1000.0} for s in (1, 2)]
    text = "".join(json.dumps(r) + "\n" for r in rows) + '{"kind": "bat'
    (directory / "metrics.jsonl").write_text(text)
    runstore._write_status(directory, total_steps=10)
    where = runs.progress(runs.get_run("r2", runs_dir))
    assert (where.epoch, where.step, where.total_steps) == (1, 2, 10)
    assert where.fraction == 0.2
    assert where.eta_s is None  # two steps timed are no pace to go by (tests/app/test_train_progress.py)


def test_a_queued_run_is_not_failed_before_its_pid_is_recorded(runs_dir):
    """runs.start writes the pid just after launching the worker; another tab may look in between."""
    directory = runs.create_run(QUICK, runs_dir / "r1")
    assert runs.get_run("r1", runs_dir).status == "queued"
    long_ago = (datetime.now(UTC) - timedelta(seconds=runs.QUEUED_GRACE_S + 1)).isoformat()
    runstore._write_status(directory, created=long_ago)  # a server that died before recording the pid
    run = runs.get_run("r1", runs_dir)
    assert run.status == "failed" and run.error.startswith("the training process never started")


def _nice(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])


def test_a_dashboard_run_yields_the_cpu_once_it_trains_and_the_cli_does_not(real_data, runs_dir):
    run_id = runs.start(LONG, runs_dir=runs_dir)
    try:
        assert wait_for(lambda: runs.read_metrics(run_id, runs_dir))
        pid = runs.get_run(run_id, runs_dir).pid
        assert wait_for(lambda: _nice(pid) == WORKER_NICE, timeout=10)
        autogroup = Path(f"/proc/{pid}/autogroup")
        if autogroup.exists():  # the session's share of the CPU, which is what counts under autogroup
            assert autogroup.read_text().strip().endswith(f"nice {WORKER_NICE}")
    finally:
        runs.stop(run_id, runs_dir)
        runs.wait(run_id, runs_dir, timeout=30)
    directory, ours = runs.create_run(QUICK, runs_dir / "foreground"), _nice(os.getpid())
    assert runs.run_worker(directory) == "finished"  # what `python -m core train` runs, in-process
    assert _nice(os.getpid()) == ours
