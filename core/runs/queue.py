"""The run queue, kept in the run store: runs waiting for a place on their devices and the fair order they
start in (core.runs.dispatch starts them as places free).

A waiting run is a run folder whose status is "queued" with `asked` (when it was queued) and no pid. The
queue is nothing but those folders, so a server restart keeps it. One store-wide lock (`.queue.lock`)
is held while a run is queued, started or cancelled, so two dispatchers never start the same run.

The fair rule: the next run is that of the owner who has had the least device time lately (runs started
in the last FAIR_WINDOW_S, and the runs ahead of it in this order), earliest queued first among equals.
"""

import contextlib
import fcntl
import os
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from core.base.errors import RunError, StudioError
from core.base.fsutil import atomic_write_json
from core.base.runfiles import read_object
from core.runs.cluster import CLUSTER_KEY
from core.runs.owners import check_owner
from core.runs.places import places_of
from core.runs.progress import progress
from core.runs.store import (
    FINAL,
    STOP_FILE,
    RunInfo,
    _write_status,
    create_run,
    device_keys,
    list_runs,
    new_run_id,
    read_status,
    run_dir,
    store_root,
)
from core.training.config import TrainConfig
from core.training.race import RaceConfig

QUEUE_LOCK = ".queue.lock"
LIMIT_ENV = "STUDIO_QUEUE_LIMIT"
DEFAULT_LIMIT = 3  # runs one owner may have waiting at once
FAIR_WINDOW_S = 3600.0  # "lately": device time in the last hour counts toward the fair share
EPOCH_GUESS_S = 30.0  # an epoch's length before the store has a finished run like it to time
CLI_KEEPER = "cli"  # queued by `python -m core train`: that process takes its place (core.runs.dispatch)


@dataclass(frozen=True)
class Waiting:
    """A run waiting in the queue."""

    id: str
    dir: Path
    owner: str
    asked: float  # time.time() when it was queued
    keys: tuple[str, ...]  # its devices (core.runs.store.device_keys)
    places: int  # the places each of its devices has for a run like it
    estimate_s: float  # how long it should train, for the fair share and the estimated start
    keeper: str = ""  # CLI_KEEPER: a command waits to train it itself; "": the dispatcher starts a worker
    init_from: str = ""  # the checkpoint a Continue starts from
    urgent: float = 0.0  # when the teacher moved it to the front (promote); 0: never


@contextlib.contextmanager
def queue_lock(root: Path):
    """The store-wide lock held while the queue changes (queue, start, cancel)."""
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root / QUEUE_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing lets the lock go


SETTINGS = ".queue.json"  # the teacher's settings of a store's queue: {"limit": N}
LIMIT_MAX = 100


def queue_limit(root: Path | None = None) -> int:
    """Runs one owner may have waiting: the teacher's setting, else STUDIO_QUEUE_LIMIT, else 3."""
    with contextlib.suppress(OSError, ValueError, TypeError, AttributeError):
        limit = read_object(store_root(root) / SETTINGS).get("limit")
        if isinstance(limit, int) and 1 <= limit <= LIMIT_MAX:
            return limit
    text = os.environ.get(LIMIT_ENV, "").strip()
    return int(text) if text.isdigit() and 1 <= int(text) <= LIMIT_MAX else DEFAULT_LIMIT


def set_limit(limit: int, root: Path | None = None) -> None:
    """The teacher's: how many runs each learner may have waiting (1 to LIMIT_MAX)."""
    if not 1 <= int(limit) <= LIMIT_MAX:
        raise RunError(f"the limit of waiting runs per learner is 1 to {LIMIT_MAX}, not {limit}")
    atomic_write_json(store_root(root) / SETTINGS, {"limit": int(limit)})


# ---- reading the queue ---------------------------------------------------------------------------------


def waiting_runs(root: Path, runs: list[RunInfo] | None = None) -> list[Waiting]:
    """The runs waiting in the queue, earliest queued first (`runs`: the store's list, when read already)."""
    runs = runs if runs is not None else list_runs(root, races=True)
    paces, found = _paces(runs), []
    for run in runs:
        if run.status != "queued" or run.config is None:
            continue
        status = read_status(run.dir)
        if status.get("pid") is not None or status.get("asked") is None:
            continue  # a worker has it, or it is being made
        found.append(_waiting(run, status, paces, root))
    return sorted(found, key=lambda w: w.asked)


def _waiting(run: RunInfo, status: dict, paces: dict, root: Path) -> Waiting:
    config = run.config
    keys = tuple(device_keys(config))
    return Waiting(
        run.id, run.dir, status.get("owner", ""), float(status["asked"]), keys, places_of(config, keys, root),
        estimate_s(config, paces), status.get("keeper", ""), status.get("init_from", ""),
        float(status.get("urgent") or 0.0),
    )  # fmt: skip


def _paces(runs: list[RunInfo]) -> dict[tuple[str, int], float]:
    """Seconds an epoch took, by (model, batch size), from the newest finished run of each in the store."""
    paces: dict[tuple[str, int], float] = {}
    for run in runs:  # newest first
        done = run.config
        if run.status != "finished" or not isinstance(done, TrainConfig) or not done.epochs:
            continue
        if (done.model, done.batch_size) not in paces and (took := _duration(read_status(run.dir))):
            paces[(done.model, done.batch_size)] = took / done.epochs
    return paces


def estimate_s(config: TrainConfig | RaceConfig, paces: dict[tuple[str, int], float]) -> float:
    """How long a run of `config` should train: its epochs at the pace of the newest finished run of the
    same model and batch size (`paces`: _paces of the store), or EPOCH_GUESS_S an epoch."""
    if isinstance(config, RaceConfig):
        return EPOCH_GUESS_S
    return paces.get((config.model, config.batch_size), EPOCH_GUESS_S) * config.epochs


def _duration(status: dict, now: float | None = None) -> float | None:
    """Seconds a run has trained: from `started` to its last update (to now while it trains)."""
    started = status.get("started")
    if started is None:
        return None
    if status.get("status") in FINAL:
        try:
            end = datetime.fromisoformat(status["updated"]).timestamp()
        except (KeyError, TypeError, ValueError):
            return None
    else:
        end = now if now is not None else time.time()
    return max(end - float(started), 0.0)


def usage(root: Path, now: float | None = None, runs: list[RunInfo] | None = None) -> dict[str, float]:
    """Each owner's device time lately: seconds trained by their runs started in the last FAIR_WINDOW_S."""
    now = now if now is not None else time.time()
    used: dict[str, float] = {}
    for run in runs if runs is not None else list_runs(root, races=True):
        status = read_status(run.dir)
        started = status.get("started")
        if started is None or now - float(started) > FAIR_WINDOW_S:
            continue
        took = _duration(status, now) or 0.0
        used[status.get("owner", "")] = used.get(status.get("owner", ""), 0.0) + took
    return used


def fair_order(waiting: list[Waiting], used: dict[str, float]) -> list[Waiting]:
    """The order the waiting runs start in: each next one is the run of the owner with the least device
    time so far (what they used lately, plus their runs already ahead in this order), earliest first."""
    used = dict(used)
    # Moved to the front by the teacher: first, the last one moved first.
    order = sorted((w for w in waiting if w.urgent), key=lambda w: -w.urgent)
    pending = sorted((w for w in waiting if not w.urgent), key=lambda w: w.asked)
    while pending:
        pick = min(pending, key=lambda w: (used.get(w.owner, 0.0), w.asked))
        order.append(pick)
        pending.remove(pick)
        used[pick.owner] = used.get(pick.owner, 0.0) + pick.estimate_s
    return order


@dataclass(frozen=True)
class Place:
    """Where a waiting run is: its place in the line for its devices, and an estimated start."""

    position: int  # 1: next
    waiting: int  # runs waiting for the same devices
    start_s: float | None  # seconds until it should start; None: not known
    keys: tuple[str, ...] = ()  # its devices

    @property
    def words(self) -> str:
        """ "2nd in line for cpu (3 waiting), about 4 min": the CLI and every view of the run say it so."""
        line = "next in line" if self.position == 1 else f"{_ordinal(self.position)} in line"
        when = f", about {_about(self.start_s)}" if self.start_s else ""
        where = ", ".join("the Ray cluster" if key == CLUSTER_KEY else key for key in self.keys)
        return f"{line} for {where} ({self.waiting} waiting){when}"


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _about(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


def place_in_queue(run_id: str, root: Path | None = None) -> Place | None:
    """A waiting run's place in the line for its devices; None when it is not waiting."""
    return places_in_queue(root).get(run_id)


def places_in_queue(root: Path | None = None) -> dict[str, Place]:
    """Every waiting run's place in the line for its devices, by run id (a table of runs asks once)."""
    root = store_root(root)
    runs = list_runs(root, races=True)
    waiting = waiting_runs(root, runs)
    if not waiting:
        return {}
    order, queued, paces = fair_order(waiting, usage(root, runs=runs)), {w.id for w in waiting}, _paces(runs)
    left = {r.id: _left_s(r, paces) for r in runs if r.active and r.id not in queued}
    places = {}
    for mine in waiting:
        line = [w for w in order if set(w.keys) & set(mine.keys)]
        # Each place frees when the run in it ends; then the runs ahead take the earliest free place.
        training = [r for r in runs if r.id in left and set(_keys(r)) & set(mine.keys)]
        free_at = sorted(left[r.id] for r in training)
        free_at = ([0.0] * max(mine.places - len(free_at), 0) + free_at)[: mine.places] or [0.0]
        for position, ahead in enumerate(line, start=1):
            if ahead.id == mine.id:
                places[mine.id] = Place(position, len(line), min(free_at), mine.keys)
                break
            soonest = free_at.index(min(free_at))
            free_at[soonest] += ahead.estimate_s
    return places


def _keys(run: RunInfo) -> list[str]:
    try:
        return device_keys(run.config) if run.config is not None else []
    except StudioError:
        return []


def _left_s(run: RunInfo, paces: dict) -> float:
    where = progress(run)
    if where.eta_s is not None:
        return where.eta_s
    estimate = estimate_s(run.config, paces) if run.config is not None else EPOCH_GUESS_S
    return max(estimate * (1 - where.fraction), 0.0)


# ---- changing the queue ----------------------------------------------------------------------------------


def enqueue(
    config: TrainConfig | RaceConfig,
    root: Path,
    *,
    owner: str = "",
    owner_name: str = "",
    init_from: Path | None = None,
    parent: str | None = None,
    keeper: str = "",
) -> Path:
    """Make a run that waits in the queue; RunError beyond the owner's limit of waiting runs."""
    with queue_lock(root):
        mine = [w for w in waiting_runs(root) if w.owner == owner]
        if len(mine) >= queue_limit(root):
            raise RunError(
                f"{len(mine)} of your runs are waiting already, the most one learner may queue: "
                "cancel one or wait for one to start"
            )
        directory = create_run(config, root / new_run_id(), parent=parent, owner=owner, owner_name=owner_name)
        extra = {"init_from": str(init_from)} if init_from is not None else {}
        if keeper:
            extra |= {"keeper": keeper, "keeper_pid": os.getpid()}
        _write_status(directory, asked=time.time(), **extra)
    return directory


def cancel(run_id: str, root: Path | None = None, *, by: str | None = None) -> None:
    """Take a waiting run out of the queue: it ends "stopped", having never trained. RunError when it
    does not wait, or `by` does not own it."""
    if _cluster_waits(run_id, root, by):
        return
    with _waiting_run(run_id, root, by, "cancel") as directory:
        _write_status(directory, status="stopped", error="cancelled while waiting in the queue")


def _cluster_waits(run_id: str, root: Path | None, by: str | None) -> bool:
    """A run whose keeper waits for a machine of the Ray cluster (core.runs.remote) is cancelled through its
    keeper, which leaves the cluster's line and ends the run "stopped"; False for any other run."""
    directory = run_dir(run_id, root)
    try:
        status = read_status(directory)
    except (OSError, StudioError):
        return False
    if status.get("status") != "running" or not status.get("cluster_wait"):
        return False
    check_owner(directory, by, "cancel")
    (directory / STOP_FILE).touch()
    return True


def promote(run_id: str, root: Path | None = None) -> None:
    """The teacher's: move a waiting run to the front of the line."""
    with _waiting_run(run_id, root, None, "move") as directory:
        _write_status(directory, urgent=time.time())


def clear(root: Path | None = None) -> int:
    """The teacher's: cancel every waiting run; how many."""
    waiting = waiting_runs(store_root(root))
    for run in waiting:
        with contextlib.suppress(RunError):  # started meanwhile
            cancel(run.id, root)
    return len(waiting)


@contextlib.contextmanager
def _waiting_run(run_id: str, root: Path | None, by: str | None, doing: str):
    """The folder of waiting run `run_id`, the queue lock held; RunError when it does not wait."""
    root = store_root(root)
    with queue_lock(root):
        directory = root / run_id
        status = read_status(directory) if directory.is_dir() else {}
        if status.get("status") != "queued" or status.get("pid") is not None or status.get("asked") is None:
            raise RunError(f"run {run_id} is not waiting in the queue: only a waiting run can be {doing}ed")
        check_owner(directory, by, doing)
        yield directory
