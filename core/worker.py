"""The process that trains one run: its entry point (`python -m core worker RUN_DIR`, started by
core.runs.start, or a spare that took a run), its exit codes and its signal handling."""

import os
import signal
from pathlib import Path

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_STOPPED = 0, 1, 2, 3


def exit_code(status: str) -> int:
    """A run's final status as the process's exit code."""
    return {"finished": EXIT_OK, "stopped": EXIT_STOPPED}.get(status, EXIT_FAILED)


def stop_on_signals(directory: Path) -> None:
    """Ctrl-C or SIGTERM become a cooperative stop: the epoch's batch ends and a checkpoint is saved."""
    from core.runs import STOP_FILE

    def request_stop(_signum, _frame):
        (directory / STOP_FILE).touch()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)


def work(directory: Path, *, lock_fd: int | None = None, init_from: Path | None = None) -> int:
    """Train the queued run in `directory`, started by core.runs.start; RunError for any other folder."""
    from core import runs

    # The lock descriptor came from the parent; keeping it open keeps the device reserved.
    if lock_fd is not None:
        os.set_inheritable(lock_fd, False)
    runs.require_run(directory, fresh=True)  # before anything is written there
    stop_on_signals(directory)
    # A background job: once it trains, clicks in the dashboard get the CPU first.
    status = runs.run_worker(directory, init_from=init_from, echo=print, nice=runs.WORKER_NICE)
    return exit_code(status)
