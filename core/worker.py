"""The process that trains one run: its entry point (`python -m core worker RUN_DIR`, started by
core.runs.start, or a spare that took a run), its exit codes and its signal handling."""

import contextlib
import os
import signal
import sys
from pathlib import Path
from typing import NoReturn

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


def stop_on_signals(directory: Path) -> None:
    """Ctrl-C or SIGTERM become a cooperative stop: the epoch's batch ends and a checkpoint is saved.

    The first asks; later ones are ignored. Asking again changes nothing, and a request that came after
    the run had stopped would be left behind in its folder."""
    from core.runs import STOP_FILE

    def request_stop(_signum, _frame):
        (directory / STOP_FILE).touch()
        _ignore_stop_signals()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)


def _ignore_stop_signals() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def work(
    directory: Path, *, lock_fds: list[int] = (), init_from: Path | None = None, nice: int | None = None
) -> int:
    """Train the queued run in `directory`, started by core.runs.start; RunError for any other folder.

    Started by core.distributed.launch (torchrun's environment is set), it is one rank of that run."""
    from core import distributed, runs

    # A background job by default: once it trains, clicks in the dashboard get the CPU first.
    nice = runs.WORKER_NICE if nice is None else nice
    if distributed.launched():
        return exit_code(distributed.rank_worker(directory, init_from=init_from, nice=nice))
    # The lock descriptors came from the parent; keeping them open keeps the devices reserved.
    for fd in lock_fds:
        os.set_inheritable(fd, False)
    runs.require_run(directory, fresh=True)  # before anything is written there
    stop_on_signals(directory)
    status = runs.run_worker(directory, init_from=init_from, echo=print, nice=nice)
    return exit_code(status)
