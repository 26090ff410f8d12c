"""Starting, stopping and steering runs from outside them: start (a worker, or the spare), stop, a new
learning rate, waiting for the end."""

import subprocess
import sys
import time
from pathlib import Path

from core.base.errors import BadConfig, RunError
from core.base.fsutil import atomic_write_json
from core.base.procs import adopt_child, reap_children
from core.base.runfiles import (
    is_run_id,
)
from core.data.fashion import PROJECT_ROOT
from core.runs import spare
from core.runs.locks import device_lock
from core.runs.store import (
    LR_FILE,
    STOP_FILE,
    RunInfo,
    _now,
    _pid_fields,
    _write_status,
    create_run,
    device_keys,
    get_run,
    new_run_id,
    run_dir,
    store_problem,
    store_root,
)
from core.training.config import LIMITS, TrainConfig, shown_value
from core.training.race import RaceConfig
from core.training.ranks import check_processes


def start(
    config: TrainConfig | RaceConfig, *, runs_dir: Path | None = None, init_from: Path | None = None
) -> str:
    """Start a worker process training `config` (or running a race); returns the run id. One active run
    (or race) per device."""

    root = store_root(runs_dir)
    check_processes(config)
    with device_lock(device_keys(config), root) as fds:
        run_id = new_run_id()
        directory = create_run(config, root / run_id, parent=_parent_of(init_from, root))
        if len(fds) == 1 and _hand_to_spare(root, directory, init_from, fds[0]):
            return run_id
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
    return run_id


def _parent_of(init_from: Path | None, root: Path) -> str | None:
    """The run of this store whose checkpoint a new run starts from, if it is one."""
    if init_from is None or init_from.parent.parent.resolve() != root.resolve():
        return None
    parent = init_from.parent
    return parent.name if is_run_id(parent.name) and (parent / "config.json").is_file() else None


def _hand_to_spare(root: Path, directory: Path, init_from: Path | None, lock_fd: int) -> bool:
    """Give the new run to the store's spare worker (core.runs.spare), if it has one ready."""
    pid = spare.ready_pid(root)
    if pid is None:
        return False
    _write_status(directory, **_pid_fields(pid))  # first, so the worker's own "running" is never overwritten
    return spare.claim(root, pid, directory, init_from, lock_fd)


def prepare_worker(runs_dir: Path | None = None) -> int | None:
    """Have a spare worker warm up now (core.runs.spare), so the next start trains within a second; its pid.

    None, starting nothing, where the store cannot be written: a spare could never take a run there."""
    if store_problem(runs_dir) is not None:
        return None
    return spare.ensure(store_root(runs_dir))


def stop(run_id: str, runs_dir: Path | None = None) -> None:
    """Ask a run to stop; the worker sees it before its next batch and saves a checkpoint."""
    directory = run_dir(run_id, runs_dir)
    if not directory.is_dir():
        raise RunError(f"there is no run {run_id!r}")
    (directory / STOP_FILE).touch()


def set_lr(run_id: str, lr: object, runs_dir: Path | None = None) -> float:
    """Ask a running run to train at `lr` from its next batch on; BadConfig for a value it cannot take."""
    limit = LIMITS["lr"]
    if not limit.allows(lr):
        raise BadConfig(
            f"the learning rate must be a number {limit.describe()}, not {shown_value(lr)}: the run goes on"
        )
    run = get_run(run_id, runs_dir)
    if isinstance(run.config, RaceConfig):
        raise RunError(
            f"run {run_id} is an optimizer race: each contender trains at the learning rate it started "
            "with (Optimization page); a new learning rate applies only to a training run"
        )
    if not run.active or not isinstance(run.config, TrainConfig):
        raise RunError(f"run {run_id} is not training: a new learning rate applies only while it trains")
    atomic_write_json(run.dir / LR_FILE, {"lr": float(lr), "asked": _now()}, make_parents=False)
    return float(lr)


def wait(run_id: str, runs_dir: Path | None = None, timeout: float = 60.0) -> RunInfo:
    """Poll until the run is no longer active (for the CLI and tests)."""
    deadline = time.monotonic() + timeout
    while True:
        reap_children()
        run = get_run(run_id, runs_dir)
        if not run.active or time.monotonic() > deadline:
            return run
        time.sleep(0.1)
