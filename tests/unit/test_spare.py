"""The spare worker (core.runs.spare): a warmed-up process that takes the next run, or steps aside."""

import fcntl
import os
import shutil
import socket
import subprocess
import sys
import threading

import pytest

from core import runs
from core.base.errors import RunError
from core.base.procs import pid_alive, process_started
from core.runs import spare
from core.runs import store as runstore
from core.training.config import TrainConfig
from tests.conftest import wait_for

QUICK = TrainConfig(epochs=1, limit_batches=3, log_every=1, device="cpu")
LONG = TrainConfig(epochs=50, limit_batches=500, log_every=1, device="cpu", batch_size=16)

# Long enough for every exchange of a test on a loaded 2-core machine: a CI run once took over 4 s
# between two connections (the in-process warm-up held the interpreter), and the spare had left.
IDLE_S = 12.0


def _ready(root, pid, timeout=60.0) -> bool:
    return wait_for(lambda: (root / f".spare-{pid}.sock").exists(), timeout=timeout)


def _gone(pid, timeout=20.0) -> bool:
    return wait_for(lambda: not pid_alive(pid), timeout=timeout)


def test_a_spare_takes_the_next_run_and_holds_the_device_lock(real_data, runs_dir):
    pid = runs.prepare_worker(runs_dir)
    assert pid is not None and runs.prepare_worker(runs_dir) == pid  # one spare per store
    assert _ready(runs_dir, pid)
    run_id = runs.start(LONG, runs_dir=runs_dir)
    try:
        assert runs.get_run(run_id, runs_dir).pid == pid
        assert wait_for(lambda: len(runs.read_metrics(run_id, runs_dir)) >= 2)
        assert not (runs_dir / spare.PID_FILE).exists()  # taken: the next start needs another
        with pytest.raises(RunError, match="already training on cpu"):
            runs.start(QUICK, runs_dir=runs_dir)  # the lock went with the run to the spare
    finally:
        runs.stop(run_id, runs_dir)
    run = runs.wait(run_id, runs_dir, timeout=60)
    assert run.status == "stopped", run.error
    assert "stopped at step" in (run.dir / "worker.log").read_text()  # its output is in the run's log
    assert _gone(pid)
    again = runs.start(QUICK, runs_dir=runs_dir)  # the lock died with it
    assert runs.wait(again, runs_dir, timeout=120).status == "finished"


def test_a_spare_continues_a_run_from_a_checkpoint(real_data, runs_dir):
    first = runs.start(QUICK, runs_dir=runs_dir)
    checkpoint = runs.wait(first, runs_dir, timeout=120).checkpoint
    pid = runs.prepare_worker(runs_dir)
    assert _ready(runs_dir, pid)
    second = runs.start(QUICK, runs_dir=runs_dir, init_from=checkpoint)
    run = runs.wait(second, runs_dir, timeout=120)
    assert run.status == "finished" and run.pid == pid, run.error


def test_a_stale_spare_record_falls_back_to_a_new_worker(real_data, runs_dir):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (runs_dir / spare.PID_FILE).write_text(str(dead.pid))
    run_id = runs.start(QUICK, runs_dir=runs_dir)
    run = runs.wait(run_id, runs_dir, timeout=120)
    assert run.status == "finished" and run.pid != dead.pid, run.error


def test_an_unclaimed_spare_exits_with_its_server(runs_dir):
    code = (
        "import sys, time; from core import runs; "
        "print(runs.prepare_worker(sys.argv[1]), flush=True); time.sleep(600)"
    )
    server = subprocess.Popen([sys.executable, "-c", code, str(runs_dir)], stdout=subprocess.PIPE, text=True)
    try:
        pid = int(server.stdout.readline())
        assert _ready(runs_dir, pid)
    finally:
        server.kill()
        server.wait()
    assert _gone(pid)
    assert not (runs_dir / spare.PID_FILE).exists()
    assert not list(runs_dir.glob(".spare-*.sock"))


def _spare_for(store, server_pid: int) -> subprocess.Popen:
    """A spare as ensure() starts it, for `server_pid`."""
    return subprocess.Popen([sys.executable, "-m", "core.runs.spare", str(store), "10", str(server_pid)])


def test_a_spare_whose_server_died_before_it_looked_exits_at_once(runs_dir):
    """The server is told to the spare, not read by it: one that died first leaves no spare behind."""
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # a server pid that no longer exists: the spare is an orphan from its first instant
    spare_proc = subprocess.Popen(
        [sys.executable, "-m", "core.runs.spare", str(runs_dir), "10", str(gone.pid)]
    )
    assert spare_proc.wait(timeout=30) == 0


def test_a_spare_leaves_when_its_run_store_is_removed(tmp_path):
    store = tmp_path / "store"
    store.mkdir()
    spare_proc = subprocess.Popen(
        [sys.executable, "-m", "core.runs.spare", str(store), "10", str(os.getpid())]
    )
    assert wait_for(lambda: list(store.glob(".spare-*.sock")), 30)  # listening
    shutil.rmtree(store)  # a test's temporary folder, cleaned away
    assert spare_proc.wait(timeout=30) == 0


def test_the_spare_ignores_a_claim_that_is_not_a_run_and_times_out(runs_dir, tmp_path, monkeypatch):
    thread, result = _serve_in_thread(runs_dir, IDLE_S, monkeypatch)
    not_a_run = tmp_path / "elsewhere"
    not_a_run.mkdir()
    read, write = os.pipe()
    try:
        assert not spare.claim(runs_dir, os.getpid(), not_a_run, None, read)  # no config.json there
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:  # garbage instead of JSON
            conn.connect(str(runs_dir / f".spare-{os.getpid()}.sock"))
            conn.sendall(b"\xff not json")
            assert conn.recv(16) == b""
    finally:
        os.close(read)
        os.close(write)
    thread.join(timeout=30)
    assert result == {"job": None}  # nobody claimed it: it gave up
    assert not list(runs_dir.glob(".spare-*.sock"))


def test_no_spare_when_turned_off(runs_dir, monkeypatch):
    monkeypatch.setenv("STUDIO_SPARE_WORKER", "0")
    assert runs.prepare_worker(runs_dir) is None
    assert not (runs_dir / spare.PID_FILE).exists()


# ---- claims the spare must refuse, and what it must never keep: a copy of the device lock ------------


def _serve_in_thread(runs_dir, idle_s: float, monkeypatch):
    """serve() in this process (its pid is this test's), as a spare runs it; returns (thread, result).

    Without the warm-up: a real spare warms up in its own process; here, in a thread, importing PyTorch's
    compiler would hold this test's interpreter for seconds. These tests are about the socket's protocol.
    """
    monkeypatch.setattr(spare, "_warm_up", lambda: None)
    result = {}
    thread = threading.Thread(target=lambda: result.update(job=spare.serve(runs_dir, nice=0, idle_s=idle_s)))
    thread.start()
    assert _ready(runs_dir, os.getpid())
    return thread, result


def _held_lock(runs_dir) -> int:
    fd = os.open(runs_dir / ".lock-test", os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fd


def _lock_is_free(runs_dir) -> bool:
    """Once the claimant closed its own descriptor, the lock is free unless the spare kept a copy."""
    fd = os.open(runs_dir / ".lock-test", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


def _handed_to_us(directory):
    """What runs.start writes before it claims the spare: this (test) process is the spare."""
    runstore._write_status(directory, pid=os.getpid())
    return directory


def test_a_run_outside_the_run_store_is_refused_and_the_lock_copy_closed(runs_dir, tmp_path, monkeypatch):
    thread, result = _serve_in_thread(runs_dir, IDLE_S, monkeypatch)
    elsewhere = _handed_to_us(runs.create_run(QUICK, tmp_path / "elsewhere" / "r1"))  # a run, elsewhere
    lock = _held_lock(runs_dir)
    try:
        assert not spare.claim(runs_dir, os.getpid(), elsewhere, None, lock)
    finally:
        os.close(lock)
    assert _lock_is_free(runs_dir)
    thread.join(timeout=30)
    assert result == {"job": None}
    assert "worker.log" not in {p.name for p in elsewhere.iterdir()}


def test_a_refused_claim_leaves_no_copy_of_the_lock(runs_dir, tmp_path, monkeypatch):
    thread, result = _serve_in_thread(runs_dir, IDLE_S, monkeypatch)
    not_a_run = runs_dir / "not-a-run"
    not_a_run.mkdir()
    lock = _held_lock(runs_dir)
    try:
        assert not spare.claim(runs_dir, os.getpid(), not_a_run, None, lock)
    finally:
        os.close(lock)
    assert _lock_is_free(runs_dir)
    thread.join(timeout=30)
    assert result == {"job": None}


def test_a_claim_answered_after_the_claimant_gave_up_is_dropped(runs_dir, monkeypatch):
    monkeypatch.setattr(spare, "CLAIM_WAIT_S", 0.5)
    thread, result = _serve_in_thread(runs_dir, IDLE_S, monkeypatch)
    directory = _handed_to_us(runs.create_run(QUICK, runs_dir / "r1"))
    path = str(runs_dir / f".spare-{os.getpid()}.sock")
    silent = [socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) for _ in range(2)]
    lock = _held_lock(runs_dir)
    try:
        for conn in silent:  # connected, saying nothing: the spare waits on them first
            conn.connect(path)
        assert not spare.claim(runs_dir, os.getpid(), directory, None, lock)  # gave up: starts a worker
    finally:
        os.close(lock)
    assert wait_for(lambda: _lock_is_free(runs_dir), timeout=15)  # the late claim was read and let go
    for conn in silent:
        conn.close()
    thread.join(timeout=30)
    assert result == {"job": None}
    assert runs.read_status(directory)["status"] == "queued"  # the spare never took it


def _answer(conn: socket.socket) -> bytes:
    """The spare's reply; closed without one (a reset, when it left part of a long message unread) is b""."""
    try:
        return conn.recv(16)
    except ConnectionResetError:
        return b""


def test_junk_on_the_socket_never_kills_the_spare(runs_dir, monkeypatch):
    thread, result = _serve_in_thread(runs_dir, IDLE_S, monkeypatch)
    path = str(runs_dir / f".spare-{os.getpid()}.sock")
    lock = _held_lock(runs_dir)
    try:
        for junk in (b"[" * 16_000, b"\xff not json", b'{"run_dir": 5}', b"[]", b'{"run_dir": "\\u0000"}'):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
                conn.settimeout(10.0)  # a spare that died mid-warm-up would leave this waiting
                conn.connect(path)  # refused, if the spare had died of the one before
                socket.send_fds(conn, [junk], [lock])
                assert _answer(conn) == b""
    finally:
        os.close(lock)
    assert _lock_is_free(runs_dir)
    assert thread.is_alive()
    thread.join(timeout=30)
    assert result == {"job": None}


def test_a_spare_record_whose_pid_now_belongs_to_another_process_is_stale(runs_dir):
    (runs_dir / spare.PID_FILE).write_text(f"{os.getpid()} 1000000.0")  # alive and ours, started another time
    assert spare.ready_pid(runs_dir) is None
    (runs_dir / spare.PID_FILE).write_text(f"{os.getpid()} {process_started(os.getpid())}")
    assert spare.ready_pid(runs_dir) == os.getpid()
