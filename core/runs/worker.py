"""The process that trains one run, `python -m core worker RUN_DIR`: started by core.runs.control.start
(or a spare that took a run, core.runs.spare), or as one rank by core.runs.launcher.launch."""

import os
from pathlib import Path

from core.base.priority import WORKER_NICE
from core.base.procs import exit_code, stop_on_signals
from core.runs.launcher import rank_worker, run_worker
from core.runs.store import STOP_FILE, require_run
from core.training.ranks import launched


def work(
    directory: Path, *, lock_fds: list[int] = (), init_from: Path | None = None, nice: int | None = None
) -> int:
    """Train the queued run in `directory`, started by core.runs.start; RunError for any other folder.

    Started by core.runs.launcher.launch (torchrun's environment is set), it is one rank of that run."""
    # A background job by default: once it trains, clicks in the dashboard get the CPU first.
    nice = WORKER_NICE if nice is None else nice
    if launched():
        return exit_code(rank_worker(directory, init_from=init_from, nice=nice))
    # The lock descriptors came from the parent; keeping them open keeps the devices reserved.
    for fd in lock_fds:
        os.set_inheritable(fd, False)
    require_run(directory, fresh=True)  # before anything is written there
    stop_on_signals(directory / STOP_FILE)
    status = run_worker(directory, init_from=init_from, echo=print, nice=nice)
    return exit_code(status)
