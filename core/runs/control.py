"""Starting, stopping and steering runs from outside them: start (a worker, or the spare), stop, a new
learning rate, waiting for the end."""

import time
from pathlib import Path

from core.base.errors import BadConfig, RunError
from core.base.fsutil import atomic_write_json
from core.base.procs import reap_children
from core.base.runfiles import (
    is_run_id,
)
from core.runs import dispatch, queue, spare
from core.runs.locks import device_lock
from core.runs.owners import check_owner
from core.runs.places import places_of
from core.runs.store import (
    LR_FILE,
    STOP_FILE,
    RunInfo,
    _now,
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
    config: TrainConfig | RaceConfig,
    *,
    runs_dir: Path | None = None,
    init_from: Path | None = None,
    owner: str = "",
    owner_name: str = "",
    wait: bool = False,
) -> str:
    """Start a worker process training `config` (or running a race); returns the run id. A device holds
    as many runs at once as it has places (core.runs.places); RunError when they are all taken, or with
    `wait`, the run waits in the queue (core.runs.queue), "queued", until the dispatcher starts it
    (core.runs.dispatch)."""
    root = store_root(runs_dir)
    check_processes(config)
    parent = _parent_of(init_from, root)
    if wait:
        directory = queue.enqueue(
            config, root, owner=owner, owner_name=owner_name, init_from=init_from, parent=parent
        )
        dispatch.dispatch_once(root)
        dispatch.ensure_dispatcher(root)
        return directory.name
    keys = device_keys(config)
    with device_lock(keys, root, places=places_of(config, keys, root)) as fds:
        run_id = new_run_id()
        directory = create_run(config, root / run_id, parent=parent, owner=owner, owner_name=owner_name)
        dispatch.launch(root, directory, fds, init_from)
    return run_id


def _parent_of(init_from: Path | None, root: Path) -> str | None:
    """The run of this store whose checkpoint a new run starts from, if it is one."""
    if init_from is None or init_from.parent.parent.resolve() != root.resolve():
        return None
    parent = init_from.parent
    return parent.name if is_run_id(parent.name) and (parent / "config.json").is_file() else None


def prepare_worker(runs_dir: Path | None = None) -> int | None:
    """Have a spare worker warm up now (core.runs.spare), so the next start trains within a second; its pid.

    None, starting nothing, where the store cannot be written: a spare could never take a run there."""
    if store_problem(runs_dir) is not None:
        return None
    return spare.ensure(store_root(runs_dir))


def stop(run_id: str, runs_dir: Path | None = None, *, by: str | None = None) -> None:
    """Ask a run to stop; the worker sees it before its next batch and saves a checkpoint. RunError when
    `by` does not own it (core.runs.store.check_owner)."""
    directory = run_dir(run_id, runs_dir)
    if not directory.is_dir():
        raise RunError(f"there is no run {run_id!r}")
    check_owner(directory, by, "stop")
    (directory / STOP_FILE).touch()


def set_lr(run_id: str, lr: object, runs_dir: Path | None = None, *, by: str | None = None) -> float:
    """Ask a running run to train at `lr` from its next batch on; BadConfig for a value it cannot take,
    RunError when `by` does not own it."""
    limit = LIMITS["lr"]
    if not limit.allows(lr):
        raise BadConfig(
            f"the learning rate must be a number {limit.describe()}, not {shown_value(lr)}: the run goes on"
        )
    run = get_run(run_id, runs_dir)
    check_owner(run.dir, by, "change the learning rate of")
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
