"""Processes: is one still running, the children to reap, and how a training process takes signals and
leaves (its exit codes). Kept free of PyTorch: the spare worker and the CLI use it before importing it."""

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import NoReturn

import psutil

START_TOLERANCE_S = 1.0  # psutil derives the start time from boot time and clock ticks: tiny jitter


def pid_alive(pid, *, started: float | None = None) -> bool:
    """True while `pid` is a running process of this user: not exited, and not a zombie (exited,
    waiting for its parent to collect it). The workers and the spare are this user's processes, so
    a pid that belongs to another user has been reused: it counts as gone. With `started` (what
    process_started said when the pid was recorded), a process that started at another time is
    another process that got the same pid (after a reboot, say): gone too."""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError, OverflowError):
        return False
    if started is not None:
        now = process_started(pid)
        if now is not None and abs(now - started) > START_TOLERANCE_S:
            return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc here: the signal check is all there is
    return state != "Z"


def process_started(pid: int) -> float | None:
    """When process `pid` started (seconds since the epoch), or None if it cannot be told."""
    try:
        return psutil.Process(pid).create_time()
    except (psutil.Error, OSError, ValueError):
        return None


_children: list[subprocess.Popen] = []  # processes this one started; polled so none stays a zombie


def adopt_child(proc: subprocess.Popen) -> None:
    """Reap `proc` (a worker or a spare this process started) with the others, so it never stays a zombie."""
    _children.append(proc)


def reap_children() -> None:
    """Collect the children that have exited: until then each is a zombie that pid_alive counts as gone."""
    _children[:] = [p for p in _children if p.poll() is None]


EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_STOPPED = 0, 1, 2, 3


def exit_code(status: str) -> int:
    """A run's final status as the process's exit code."""
    return {"finished": EXIT_OK, "stopped": EXIT_STOPPED}.get(status, EXIT_FAILED)


def leave(code: int) -> NoReturn:
    """End a training process at once with `code`, once its run is over (files saved, status final).

    The interpreter's own teardown of torch takes seconds on a busy machine (measured up to ~10 s at a
    load of 8 on 2 cores), and the device lock, held until the process is gone, would keep the next
    start waiting or refused for that long; nothing of the run is left to write by then. For the ranks
    of a distributed run, that teardown also crashed now and then (SIGABRT in gloo's threads, 1 run in
    20 of a minimal 2-rank script here; 0 in 20 when it ended with os._exit).

    A Ctrl-C or SIGTERM from now on is ignored: the run's end is recorded, and a second Ctrl-C (the
    first asked the run to stop) must not turn exit 3 into death by SIGINT. The interpreter's teardown
    would even restore the default handlers, which is how that happened (exit -2)."""
    _ignore_stop_signals()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def stop_on_signals(stop_file: Path) -> None:
    """Ctrl-C or SIGTERM become a cooperative stop (`stop_file`, the run's STOP): the epoch's batch ends
    and a checkpoint is saved.

    The first asks; later ones are ignored. Asking again changes nothing, and a request that came after
    the run had stopped would be left behind in its folder."""

    def request_stop(_signum, _frame):
        stop_file.touch()
        _ignore_stop_signals()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)


def _ignore_stop_signals() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
