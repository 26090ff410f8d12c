"""Starting what waits in the run queue (core.runs.queue): a run's worker launched as its places free, a
command's run given its turn, and the dispatcher process that does it while nobody watches.

One dispatcher per store (`python -m core.runs.dispatch STORE`, kept single by `.dispatcher.lock`) polls
every DISPATCH_EVERY_S while runs wait: a place freed by a worker that ended, however it ended (its lock
files close with it), is given within a second. Every start holds the store's queue lock, so two
dispatchers never start the same run.
"""

import contextlib
import fcntl
import os
import subprocess
import sys
import time
from pathlib import Path

from core.base.errors import RunError, StudioError
from core.base.procs import adopt_child
from core.data.fashion import PROJECT_ROOT
from core.runs import cluster, remote, spare
from core.runs.locks import device_lock, free_places, is_held
from core.runs.queue import fair_order, queue_lock, usage, waiting_runs
from core.runs.store import _pid_fields, _write_status, list_runs, store_root

DISPATCHER_LOCK = ".dispatcher.lock"
DISPATCH_EVERY_S = 0.5
DISPATCHER_IDLE_S = 15.0  # a dispatcher with nothing waiting for this long ends


def dispatch_once(root: Path) -> list[str]:
    """Start every waiting run that has a place now, in the fair order; the ids started."""
    with queue_lock(root):
        return _dispatch(root)[0]


def _dispatch(root: Path) -> tuple[list[str], int]:
    """dispatch_once, the queue lock held: (the ids started, how many runs still wait)."""
    runs = list_runs(root, races=True)
    waiting = waiting_runs(root, runs)
    wanted = {(w.keys, w.places) for w in waiting}
    if not any(all(free_places(root, key, places) for key in keys) for keys, places in wanted):
        return [], len(waiting)  # no place free for any of them: the usual answer while runs train
    started, kept = [], set()  # kept: devices a command waits to take itself (CLI_KEEPER)
    for run in fair_order(waiting, usage(root, runs=runs)):
        if kept & set(run.keys):
            continue  # a run ahead in line is kept by a command: nothing jumps it
        if run.keeper:
            if all(free_places(root, key, run.places) for key in run.keys):
                kept |= set(run.keys)
            continue
        try:
            with device_lock(list(run.keys), root, grace=0, places=run.places) as fds:
                launch(root, run.dir, fds, Path(run.init_from) if run.init_from else None)
        except RunError:
            continue  # no place on one of its devices yet
        started.append(run.id)
    return started, len(waiting) - len(started)


def take_turn(directory: Path, root: Path):
    """For `python -m core train` waiting in the queue: the device places, held (a context manager), once
    this run is next in the fair order and a place is free; None until then."""
    with queue_lock(root):
        runs = list_runs(root, races=True)
        waiting = waiting_runs(root, runs)
        mine = next((w for w in waiting if w.dir == directory), None)
        if mine is None:
            raise RunError(f"run {directory.name} is no longer waiting (cancelled?)")
        line = [w for w in fair_order(waiting, usage(root, runs=runs)) if set(w.keys) & set(mine.keys)]
        if line[0].id != mine.id:
            return None
        held = contextlib.ExitStack()
        try:
            held.enter_context(device_lock(list(mine.keys), root, grace=0, places=mine.places))
        except RunError:
            held.close()
            return None
        _write_status(directory, started=time.time(), **_pid_fields(os.getpid()))
        return held


def launch(root: Path, directory: Path, fds: list[int], init_from: Path | None) -> None:
    """Start the worker that trains the run in `directory`, holding the places `fds` (a spare takes it if
    one is ready)."""
    _write_status(directory, started=time.time())
    if len(fds) == 1 and _hand_to_spare(root, directory, init_from, fds[0]):
        return
    args = [sys.executable, "-m", "core", "worker", str(directory)]
    for fd in fds:
        args += ["--lock-fd", str(fd)]
    if init_from is not None:
        args += ["--init-from", str(init_from)]
    with open(directory / "worker.log", "ab") as log:
        proc = subprocess.Popen(
            args,
            cwd=PROJECT_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            pass_fds=tuple(fds),
            start_new_session=True,  # survives the server's reruns and its Ctrl-C
        )
    adopt_child(proc)
    _write_status(directory, **_pid_fields(proc.pid))


def _hand_to_spare(root: Path, directory: Path, init_from: Path | None, lock_fd: int) -> bool:
    """Give the new run to the store's spare worker (core.runs.spare), if it has one ready."""
    pid = spare.ready_pid(root)
    if pid is None:
        return False
    _write_status(directory, **_pid_fields(pid))  # first, so the worker's own "running" is never overwritten
    return spare.claim(root, pid, directory, init_from, lock_fd)


# ---- the dispatcher ------------------------------------------------------------------------------------


def dispatcher_running(root: Path) -> bool:
    """Whether a dispatcher holds the store's dispatcher lock."""
    return is_held(root / DISPATCHER_LOCK) is True


def ensure_dispatcher(root: Path | None = None) -> None:
    """Start the store's dispatcher if none runs and runs wait (two at once: one of them leaves)."""
    root = store_root(root)
    if dispatcher_running(root) or not waiting_runs(root):
        return
    with open(os.devnull, "wb") as devnull:
        proc = subprocess.Popen(
            [sys.executable, "-m", "core.runs.dispatch", str(root)],
            cwd=PROJECT_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=devnull,
            stderr=devnull,
            start_new_session=True,  # outlives the server: the queue goes on without it
        )
    adopt_child(proc)


def serve(root: Path, idle_s: float = DISPATCHER_IDLE_S, every_s: float = DISPATCH_EVERY_S) -> int:
    """The dispatcher's loop: start what has a place, every `every_s`, until nothing waits for `idle_s`.
    Returns 0; at once when another dispatcher has the store."""
    fd = os.open(root / DISPATCHER_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return 0
    idle_since = time.monotonic()
    surveyed = -remote.SURVEY_EVERY_S
    while True:
        if cluster.address():  # runs go to a Ray cluster: its places follow its machines (core.runs.cluster)
            surveyed = remote.keep_surveying(root, surveyed)
        try:
            with queue_lock(root):
                _, still = _dispatch(root)
            if still:
                idle_since = time.monotonic()
        except StudioError:  # a damaged run, a full disk: try again on the next round
            pass
        if time.monotonic() - idle_since > idle_s:
            return 0
        time.sleep(every_s)


if __name__ == "__main__":
    sys.exit(serve(Path(sys.argv[1])))
