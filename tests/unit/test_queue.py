"""The run queue (core.runs.queue, .dispatch) and device places (core.runs.places): the fair rule, places
on a GPU from a made-up memory, and real workers queued on the CPU, started by the dispatcher process as
places free, however they free."""

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from core import runs
from core.base.errors import BadConfig, RunError
from core.data.fashion import PROJECT_ROOT
from core.runs import dispatch, queue
from core.runs.locks import device_lock, free_places
from core.runs.places import CONTEXT_BYTES, PLACES_CAP, PLACES_ENV, places_for, run_bytes
from core.runs.queue import Waiting
from core.training.config import TrainConfig
from tests.conftest import wait_for

QUICK = TrainConfig(epochs=1, limit_batches=3, log_every=1, device="cpu")
LONG = TrainConfig(epochs=50, limit_batches=500, log_every=1, device="cpu", batch_size=16)


def _waiting(run_id: str, owner: str, asked: float, estimate: float = 60.0) -> Waiting:
    return Waiting(run_id, PROJECT_ROOT, owner, asked, ("cpu",), 1, estimate)


# ---- the fair rule ---------------------------------------------------------------------------------------


def test_one_learner_queueing_three_does_not_keep_another_waiting_behind_them():
    x1, x2, x3 = (_waiting(f"x{i}", "X", asked=i) for i in (1, 2, 3))
    y1 = _waiting("y1", "Y", asked=4)
    order = [w.id for w in queue.fair_order([x1, x2, x3, y1], used={})]
    assert order == ["x1", "y1", "x2", "x3"]  # Y's run before X's second
    assert [w.id for w in queue.fair_order([x1, x2, x3, y1], used={"X": 0.0})] == order


def test_the_share_counts_device_time_lately_then_first_come():
    a, b, c = _waiting("a", "A", 1), _waiting("b", "B", 2), _waiting("c", "C", 3)
    assert [w.id for w in queue.fair_order([a, b, c], used={"A": 300.0, "B": 10.0})] == ["c", "b", "a"]
    assert [w.id for w in queue.fair_order([c, b, a], used={})] == ["a", "b", "c"]
    long_b = _waiting("b", "B", 2, estimate=900.0)  # B's long run counts against B's next one
    b2 = _waiting("b2", "B", 3)
    assert [w.id for w in queue.fair_order([long_b, b2, a], used={"A": 100.0})] == ["b", "a", "b2"]


# ---- places ----------------------------------------------------------------------------------------------


def test_a_gpu_holds_as_many_runs_as_fit_its_memory_capped(monkeypatch):
    monkeypatch.delenv(PLACES_ENV, raising=False)
    gpu, mlp = torch.device("cuda:0"), TrainConfig(device="cuda")
    need = run_bytes(mlp)
    assert CONTEXT_BYTES < need < CONTEXT_BYTES + 100 * 2**20  # the MLP: weights, Adam-less state, a batch
    assert places_for(mlp, gpu, memory_bytes=3 * need + 1) == 3
    assert places_for(mlp, gpu, memory_bytes=80 * 2**30) == PLACES_CAP
    assert places_for(mlp, gpu, memory_bytes=need // 2) == 1  # never none: one run may still fit
    big = TrainConfig(device="cuda", model="cnn", batch_size=1024, optimizer="adam")
    assert run_bytes(big) > need
    assert places_for(big, gpu, memory_bytes=3 * need + 1) < 3
    assert places_for(mlp, torch.device("cpu")) == 1


def test_the_environment_sets_the_places(monkeypatch):
    monkeypatch.setenv(PLACES_ENV, "3")
    assert places_for(TrainConfig(device="cpu"), torch.device("cpu")) == 3
    assert places_for(TrainConfig(device="cuda"), torch.device("cuda:0"), memory_bytes=1) == 3
    for wrong in ("0", "two", "-1", "999"):
        monkeypatch.setenv(PLACES_ENV, wrong)
        with pytest.raises(BadConfig, match=PLACES_ENV):
            places_for(TrainConfig(device="cpu"), torch.device("cpu"))


def test_a_device_with_two_places_holds_two_runs_and_refuses_a_third(runs_dir):
    def place():
        return device_lock("cuda:0", runs_dir, grace=0, places=2)

    with place(), place():
        assert free_places(runs_dir, "cuda:0", 2) == 0
        with pytest.raises(RunError, match="2 runs are already training on cuda:0"), place():
            pass
    assert free_places(runs_dir, "cuda:0", 2) == 2


# ---- real runs through the queue -------------------------------------------------------------------------


def _status(run_id, runs_dir) -> str:
    return runs.get_run(run_id, runs_dir).status


def _finish(runs_dir) -> None:
    """Stop whatever still trains or waits, so no worker outlives the test."""
    for run in runs.list_runs(runs_dir):
        if queue.place_in_queue(run.id, runs_dir) is not None:
            queue.cancel(run.id, runs_dir)
        elif run.active:
            runs.stop(run.id, runs_dir)
    for run in runs.list_runs(runs_dir):
        runs.wait(run.id, runs_dir, timeout=60)


def test_a_busy_cpu_queues_runs_and_the_dispatcher_starts_the_next_as_one_ends(real_data, runs_dir):
    first = runs.start(LONG, runs_dir=runs_dir, wait=True)
    try:
        assert wait_for(lambda: _status(first, runs_dir) == "running", 60)
        second = runs.start(QUICK, runs_dir=runs_dir, wait=True)
        third = runs.start(QUICK, runs_dir=runs_dir, wait=True)
        assert _status(second, runs_dir) == _status(third, runs_dir) == "queued"
        assert queue.place_in_queue(second, runs_dir).position == 1
        place = queue.place_in_queue(third, runs_dir)
        assert (place.position, place.waiting) == (2, 2) and place.start_s is not None
        queue.cancel(third, runs_dir)
        assert _status(third, runs_dir) == "stopped" and queue.place_in_queue(third, runs_dir) is None
        with pytest.raises(RunError, match="not waiting"):
            queue.cancel(first, runs_dir)
        assert wait_for(lambda: dispatch.dispatcher_running(runs_dir), 30)  # started by the queued start
        runs.stop(first, runs_dir)
        assert runs.wait(first, runs_dir, timeout=30).status == "stopped"
        ended = time.monotonic()
        assert wait_for(lambda: runs.read_status(runs.run_dir(second, runs_dir)).get("pid") is not None, 10)
        assert time.monotonic() - ended < 2.0  # no page open: the dispatcher gave the place
        assert runs.wait(second, runs_dir, timeout=120).status == "finished"
        assert _status(third, runs_dir) == "stopped"  # cancelled: never trained
        assert not (runs.run_dir(third, runs_dir) / "metrics.jsonl").exists()
    finally:
        _finish(runs_dir)


def test_a_worker_killed_with_sigkill_gives_its_place_within_five_seconds(real_data, runs_dir):
    first = runs.start(LONG, runs_dir=runs_dir, wait=True)
    try:
        assert wait_for(lambda: _status(first, runs_dir) == "running", 60)
        second = runs.start(QUICK, runs_dir=runs_dir, wait=True)
        assert _status(second, runs_dir) == "queued"
        os.kill(runs.read_status(runs.run_dir(first, runs_dir))["pid"], signal.SIGKILL)
        killed = time.monotonic()
        assert wait_for(lambda: runs.read_status(runs.run_dir(second, runs_dir)).get("pid") is not None, 10)
        assert time.monotonic() - killed < 5.0
        assert _status(first, runs_dir) == "failed"
        assert runs.wait(second, runs_dir, timeout=120).status == "finished"
    finally:
        _finish(runs_dir)


def test_the_queue_outlives_its_dispatcher_and_goes_on_when_one_starts_again(real_data, runs_dir):
    """A server (and its dispatcher) gone while runs wait: the queue is in the store, and goes on."""
    with device_lock("cpu", runs_dir):  # the CPU busy, as if a run trained
        waiting = [queue.enqueue(QUICK, runs_dir).name for _ in range(2)]
        assert dispatch.dispatch_once(runs_dir) == []
    assert [w.id for w in queue.waiting_runs(runs_dir)] == waiting  # nothing started, nothing lost
    dispatch.ensure_dispatcher(runs_dir)  # what a restarted server does when it finds runs waiting
    try:
        for run_id in waiting:
            assert runs.wait(run_id, runs_dir, timeout=120).status == "finished"
    finally:
        _finish(runs_dir)


def _dispatch(root: str, out) -> None:
    out.put(dispatch.dispatch_once(Path(root)))


def test_two_dispatchers_at_once_never_start_a_run_twice(real_data, runs_dir, monkeypatch):
    monkeypatch.setenv(PLACES_ENV, "2")  # two runs at once on the CPU: two to give out
    waiting = [queue.enqueue(QUICK, runs_dir).name for _ in range(3)]
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    procs = [context.Process(target=_dispatch, args=(str(runs_dir), out)) for _ in range(2)]
    try:
        for proc in procs:
            proc.start()
        started = [run_id for _ in procs for run_id in out.get(timeout=120)]
        assert sorted(started) == sorted(waiting[:2])  # two places: each given once, the third waits
        assert [w.id for w in queue.waiting_runs(runs_dir)] == waiting[2:]
    finally:
        for proc in procs:
            proc.join(30)
        _finish(runs_dir)


def test_one_learner_may_queue_three_and_no_more(runs_dir):
    with device_lock("cpu", runs_dir):
        for _ in range(3):
            queue.enqueue(QUICK, runs_dir, owner="X")
        with pytest.raises(RunError, match="3 of your runs are waiting already"):
            queue.enqueue(QUICK, runs_dir, owner="X")
        queue.enqueue(QUICK, runs_dir, owner="Y")  # another learner's limit is their own
    for run in queue.waiting_runs(runs_dir):
        queue.cancel(run.id, runs_dir)


def test_the_command_line_waits_its_turn_and_says_its_place(real_data, runs_dir, monkeypatch):
    env = {**os.environ, "STUDIO_RUNS_DIR": str(runs_dir)}
    args = [sys.executable, "-m", "core", "train", "--epochs", "1", "--limit-batches", "3", "--device", "cpu"]
    with device_lock("cpu", runs_dir):  # the CPU busy, as if a dashboard run trained
        refused = subprocess.run(
            [*args, "--no-wait"], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120
        )
        assert refused.returncode != 0 and "already training on cpu" in refused.stderr
        proc = subprocess.Popen(args, cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, text=True)
        try:
            line = proc.stdout.readline()
            assert line.startswith("waiting: next in line for cpu (1 waiting)"), line
            assert len(queue.waiting_runs(runs_dir)) == 1
        except BaseException:
            proc.kill()
            raise
    out, _ = proc.communicate(timeout=180)
    assert proc.returncode == 0 and "its turn, training now" in out
    (run,) = runs.list_runs(runs_dir)
    assert run.status == "finished"
