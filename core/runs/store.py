"""The run store on disk (data/runs/<id>/): folders, status, metrics, labels and listing. Reading starts
nothing: no process, no lock."""

import contextlib
import errno
import os
import secrets
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from core.base.device import resolve_device
from core.base.errors import BadConfig, RunError, StudioError
from core.base.fsutil import atomic_write_bytes, atomic_write_json, remove_orphaned_temps, remove_stale_temps
from core.base.procs import pid_alive, process_started, reap_children
from core.base.runfiles import (
    MARKER,
    RUN_ID_WORDS,
    DamagedRunFile,
    is_number,
    is_run_id,
    read_object,
    read_rows,
)
from core.data.fashion import DATA_DIR
from core.runs.cluster import CLUSTER_KEY, on_cluster, where_words
from core.training.config import TrainConfig
from core.training.race import RaceConfig

RUNS_DIR = Path(os.environ.get("STUDIO_RUNS_DIR", DATA_DIR / "runs"))


ACTIVE = ("queued", "running")


FINAL = ("finished", "stopped", "failed")


STATUSES = (*ACTIVE, *FINAL)


DAMAGED = "damaged"  # a run whose config.json or status.json is not what the store wrote; never active


STOP_FILE = "STOP"


LR_FILE = "lr.json"  # a new learning rate for a running run: written by the page, read by the worker


CHECKPOINT = "model.pth"


LABEL_FILE = "label.json"  # the user's name and note for a run; written by the page, never by the worker


NAME_MAX, NOTE_MAX = 80, 1000  # characters


QUEUED_GRACE_S = 30.0  # how long a run may be queued before its worker's pid is recorded


@dataclass(frozen=True)
class RunInfo:
    id: str
    dir: Path
    status: str  # queued / running / finished / stopped / failed / damaged
    error: str | None  # for failed and damaged runs: what went wrong
    pid: int | None
    config: TrainConfig | RaceConfig | None  # a RaceConfig only in lists asked for races (list_races)
    created: str | None
    epoch: int  # epochs completed
    step: int
    total_steps: int | None
    best_test_acc: float | None
    last_test_acc: float | None
    parent: str | None = None  # the run whose checkpoint this one continued
    name: str = ""  # the user's name for the run (label.json), "" when none
    note: str = ""
    owner: str = ""  # on a shared server, who started it: an owner id (a hash, core.runs.owners)
    owner_name: str = ""  # and the display name they gave
    where: str = ""  # a run on a Ray cluster: "on node 10.0.0.7 (3f2a9c1e), GPU 1" (core.runs.cluster)
    cluster_wait: str = ""  # and while no machine of it has taken the run yet, why

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    @property
    def checkpoint(self) -> Path | None:
        path = self.dir / CHECKPOINT
        return path if path.is_file() else None


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)


def store_root(runs_dir: Path | None = None) -> Path:
    """The run store: `runs_dir`, else RUNS_DIR (STUDIO_RUNS_DIR) as it is now (tests point it elsewhere)."""
    return Path(runs_dir or RUNS_DIR)


def run_dir(run_id: str, runs_dir: Path | None = None) -> Path:
    if not is_run_id(run_id):
        raise RunError(f"{str(run_id)[:100]!r} is not a run id ({RUN_ID_WORDS})")
    return store_root(runs_dir) / run_id


def create_run(
    config: TrainConfig | RaceConfig,
    directory: Path,
    *,
    parent: str | None = None,
    owner: str = "",
    owner_name: str = "",
) -> Path:
    """Lay out a new run in `directory` (config.json, a queued status.json, the marker).

    Only a new or empty folder becomes a run, so nothing already there is overwritten, appended to or
    deleted as a stale temp file. If writing fails (a full disk), the half-made run is removed again.
    """
    if not is_run_id(directory.name):
        raise RunError(f"{directory.name[:100]!r} cannot name a run: a run folder's name is {RUN_ID_WORDS}")
    made = _claim_folder(directory)
    try:
        atomic_write_bytes(directory / MARKER, directory.name.encode())
        atomic_write_json(directory / "config.json", config.to_dict())
        extra = {"parent": parent} if parent else {}
        extra |= {"owner": owner, "owner_name": owner_name} if owner else {}
        _write_status(directory, status="queued", created=_now(), **extra)
    except OSError as exc:
        _unmake(directory, made)
        raise RunError(f"could not create the run in {directory}: {_reason(exc)}") from None
    return directory


def _claim_folder(directory: Path) -> bool:
    """Make `directory` (True), or accept it as it is, an empty folder (False); RunError otherwise."""
    try:
        directory.parent.mkdir(parents=True, exist_ok=True)
        directory.mkdir()
        return True
    except FileExistsError:
        pass
    except OSError as exc:
        raise RunError(f"cannot create the run folder {directory}: {_reason(exc)}") from None
    if (directory / "config.json").exists():
        raise RunError(f"{directory} already holds a run: choose another --run-dir")
    try:
        empty = directory.is_dir() and not any(directory.iterdir())
    except OSError as exc:
        raise RunError(f"cannot use {directory} for a run: {_reason(exc)}") from None
    if not empty:
        what = "a folder that is not empty" if directory.is_dir() else "not a folder"
        raise RunError(f"{directory} is {what}: a run is only written into a new or empty folder")
    return False


def _unmake(directory: Path, made: bool) -> None:
    """Undo a create_run that failed half-way: its own files only, then the folder if it made it."""
    for name in (MARKER, "config.json", "status.json"):
        with contextlib.suppress(OSError):
            (directory / name).unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        remove_stale_temps(directory, pid=os.getpid())
        if made:
            directory.rmdir()


def _reason(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return "the disk is full: free some space and try again"
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return f"{exc.strerror}: set STUDIO_RUNS_DIR (or --run-dir) to a folder you can write to"
    return exc.strerror or str(exc)


def require_run(directory: Path, *, fresh: bool = False) -> None:
    """RunError unless `directory` is a run create_run made (with `fresh`: one nobody has trained yet).

    Checked before a worker writes anything, so a worker pointed at any other folder leaves it as it is.
    """
    if not (directory / MARKER).is_file():
        raise RunError(f"{directory} is not a run folder made by the run store: nothing was written there")
    if fresh and read_status(directory).get("status") != "queued":
        raise RunError(f"the run in {directory} has been trained already: start a new run instead")


# The type each status.json field must have when it is there; None stands for "not known yet".
_STATUS_FIELDS = {"status": str, "error": str, "pid": int, "pid_started": float, "created": str,
                  "updated": str, "device": str, "epoch": int, "step": int, "total_steps": int,
                  "steps_per_epoch": int, "num_params": int, "best_test_acc": float,
                  "last_test_acc": float, "lr": float, "parent": str, "owner": str, "asked": float,
                  "started": float, "init_from": str, "keeper": str, "keeper_pid": int, "owner_name": str,
                  "urgent": float}  # fmt: skip


_TYPE_WORDS = {str: "text", int: "a whole number", float: "a number"}


def read_status(directory: Path) -> dict:
    """status.json; {} while there is none, DamagedRunFile when it is not one the store wrote."""
    try:
        status = read_object(directory / "status.json")
    except FileNotFoundError:
        return {}
    for name, kind in _STATUS_FIELDS.items():
        value = status.get(name)
        if value is not None and not _has_type(value, kind):
            raise DamagedRunFile(f"status.json: {name} is {value!r:.40}, not {_TYPE_WORDS[kind]}")
    if status.get("status", "queued") not in STATUSES:
        raise DamagedRunFile(f"status.json: {status['status']!r:.40} is not a run status")
    return status


def _has_type(value, kind: type) -> bool:
    if kind is float:
        return is_number(value)
    return isinstance(value, kind) and not isinstance(value, bool)


def _write_status(directory: Path, **changes) -> dict:
    current = read_status(directory)
    # One owner: once the status is final, only the process it names (pid: the worker, or the launcher of
    # several ranks, whose rank 0 writes for it until then) may change it. A process that outlived its
    # owner (a rank whose launcher was killed) cannot turn a reader's "failed" back into anything else.
    if current.get("status") in FINAL and current.get("pid") != os.getpid():
        return current
    status = {**current, **changes, "updated": _now()}
    atomic_write_json(directory / "status.json", status, make_parents=False)  # never remake a deleted run
    return status


def read_metrics(run_id: str, runs_dir: Path | None = None) -> list[dict]:
    """Every good row of metrics.jsonl; a partial last line (writer killed mid-line) or a damaged one is
    skipped (core.base.runfiles.parse_row)."""
    return read_rows(run_dir(run_id, runs_dir) / "metrics.jsonl")


def get_run(run_id: str, runs_dir: Path | None = None) -> RunInfo:
    """One run as its files describe it; a run whose files are damaged comes back with status "damaged"."""
    directory = run_dir(run_id, runs_dir)
    if not (directory / "config.json").is_file():
        raise RunError(f"there is no run {run_id!r} in {directory.parent}")
    try:
        config = read_config(directory)
        status = _current_status(directory)
    except DamagedRunFile as exc:
        return _damaged(directory, str(exc))
    return RunInfo(
        id=directory.name,
        dir=directory,
        status=status.get("status", "failed"),
        error=status.get("error"),
        pid=status.get("pid"),
        config=config,
        created=status.get("created"),
        epoch=status.get("epoch") or 0,
        step=status.get("step") or 0,
        total_steps=status.get("total_steps"),
        best_test_acc=status.get("best_test_acc"),
        last_test_acc=status.get("last_test_acc"),
        parent=status.get("parent"),
        owner=status.get("owner") or "",
        owner_name=status.get("owner_name") or "",
        where=where_words(status.get("node"), status.get("device")),
        cluster_wait=str(status.get("cluster_wait") or "") if status.get("status") in ACTIVE else "",
        **_read_label(directory),
    )


def _read_label(directory: Path) -> dict:
    """The name and note the user gave the run; a missing or damaged label.json means none (never damaged)."""
    try:
        label = read_object(directory / LABEL_FILE)
    except (FileNotFoundError, DamagedRunFile):
        return {}
    return {
        k: label[k][:limit]
        for k, limit in (("name", NAME_MAX), ("note", NOTE_MAX))
        if isinstance(label.get(k), str)
    }


def lineage_offset(run: RunInfo, runs_dir: Path | None = None) -> tuple[int, int]:
    """(epochs, steps) trained before this run by the runs it continues: its curves carry on from theirs."""
    epochs = steps = 0
    seen = {run.id}
    parent = run.parent
    while parent and parent not in seen:  # a hand-edited status.json could make a loop
        seen.add(parent)
        try:
            ancestor = get_run(parent, runs_dir)
        except (RunError, OSError):
            break
        epochs, steps = epochs + ancestor.epoch, steps + ancestor.step
        parent = ancestor.parent
    return epochs, steps


def read_config(directory: Path) -> TrainConfig | RaceConfig:
    try:
        data = read_object(directory / "config.json")
        if data.get("kind") == "race":
            return RaceConfig.from_dict(data)
        return TrainConfig.from_dict(data)
    except FileNotFoundError:
        raise DamagedRunFile("config.json is missing") from None
    except (BadConfig, TypeError, ValueError, ArithmeticError) as exc:  # whatever the file's values cause
        raise DamagedRunFile(f"config.json is not a training configuration: {exc}") from None


def _current_status(directory: Path) -> dict:
    """status.json, marking an active run whose worker died as failed (and tidying after it)."""
    status = read_status(directory)
    if status.get("status") in ACTIVE and _worker_gone(status):
        failed = {"status": "failed", "error": _gone_message(status)}
        try:
            status = _write_status(directory, **failed)
        except OSError:  # a read-only store: still say what happened; a writer records it later
            return {**status, **failed}
        # Killed mid-write (SIGKILL, the OOM killer): tidy after it, and after any rank that died with it.
        remove_orphaned_temps(directory)
    return status


def _damaged(directory: Path, why: str) -> RunInfo:
    """A run the store cannot read: listed with what is wrong, and its files left as they are."""
    return RunInfo(directory.name, directory, DAMAGED, f"damaged run: {why}", None, None, None, 0, 0,
                   None, None, None)  # fmt: skip


def list_runs(runs_dir: Path | None = None, *, races: bool = False) -> list[RunInfo]:
    """All training runs, newest first (with `races`, optimizer races too); one that cannot be read is
    listed as damaged, never hides the others."""
    reap_children()
    root = store_root(runs_dir)
    try:
        names = [p.name for p in root.iterdir() if is_run_id(p.name)]  # any other folder is no run
        ids = sorted((name for name in names if (root / name / "config.json").is_file()), reverse=True)
    except OSError:  # no store yet, or one this user cannot list
        return []
    listed = (_listed(i, root) for i in ids)
    return [run for run in listed if run is not None and (races or not isinstance(run.config, RaceConfig))]


def list_races(runs_dir: Path | None = None) -> list[RunInfo]:
    """The optimizer races in the store (core.training.race), newest first."""
    return [run for run in list_runs(runs_dir, races=True) if isinstance(run.config, RaceConfig)]


def _listed(run_id: str, root: Path) -> RunInfo | None:
    try:
        return get_run(run_id, root)
    except RunError:  # deleted since the folder was listed, or a name that is no run id (".x")
        return None
    except OSError as exc:  # e.g. status.json unwritable while marking a dead worker's run failed
        return _damaged(root / run_id, f"cannot be read: {exc.strerror or exc}")


def active_run(
    device: str | None = None, runs_dir: Path | None = None, *, races: bool = False
) -> RunInfo | None:
    for run in list_runs(runs_dir, races=races):
        if run.active and (device is None or device in _device_keys_of(run)):
            return run
    return None


def device_keys(config: TrainConfig | RaceConfig) -> list[str]:
    """One lock per physical device the run uses: ["cpu"], ["cuda:0"], or ["cuda:0", "cuda:1", ...] for
    a run whose processes each train on a GPU of their own (core.runs.launcher); ["cluster"] for a run that
    trains on a Ray cluster (core.runs.cluster)."""
    if on_cluster(config):
        return [CLUSTER_KEY]
    device = resolve_device(config.device)
    if device.type == "cpu":  # "cpu:0" is the same CPU, and CPU ranks share it
        return ["cpu"]
    processes = getattr(config, "processes", 1)
    if processes > 1:
        return [f"{device.type}:{i}" for i in range(processes)]
    if device.index is None:
        return [f"{device.type}:0"]
    return [str(device)]


def device_key(config: TrainConfig | RaceConfig) -> str:
    """The first (for most runs the only) device a run uses: "cpu", "cuda:0", ..."""
    return device_keys(config)[0]


def _device_keys_of(run: RunInfo) -> list[str]:
    try:
        return device_keys(run.config) if run.config else []
    except StudioError:
        return []


def store_problem(runs_dir: Path | None = None) -> str | None:
    """Why no run can be started in the store, in words (a read-only folder, a full disk); None when
    one can. A file is made and removed there: permission bits alone say nothing for root."""
    root = store_root(runs_dir)
    try:
        root.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=root, prefix=".writable-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        return f"the run store {root} cannot be written ({_reason(exc)}): runs can be looked at, not started"
    return None


def stop_asked(run: RunInfo) -> bool:
    """Whether someone asked this run to stop (it is active until its worker has saved and left)."""
    return (run.dir / STOP_FILE).exists()


def lr_history(run: RunInfo) -> list[tuple[int, float]]:
    """(step, learning rate) for each change made while the run trained; [] when none, or unreadable."""
    try:
        history = read_status(run.dir).get("lr_history")
    except (OSError, DamagedRunFile):
        return []
    if not isinstance(history, list):
        return []
    pairs = [h for h in history if isinstance(h, list) and len(h) == 2 and all(is_number(v) for v in h)]
    return [(int(step), float(lr)) for step, lr in pairs]


def current_lr(run: RunInfo) -> float | None:
    """The learning rate the run trained with last: its last change, else its configuration's."""
    history = lr_history(run)
    if history:
        return history[-1][1]
    return run.config.lr if isinstance(run.config, TrainConfig) else None


def _worker_gone(status: dict) -> bool:
    """An active run whose worker died; a queued one is given a moment to get its pid recorded, and one
    waiting in the queue (core.runs.queue) is gone only when the command that queued it to train it has
    ended."""
    if status.get("pid") is None and status.get("asked") is not None:
        return status.get("keeper_pid") is not None and not _pid_alive(status["keeper_pid"])
    if status.get("pid") is None and status.get("status") == "queued":
        try:
            age = (datetime.now(UTC) - datetime.fromisoformat(status["created"])).total_seconds()
        except (KeyError, TypeError, ValueError):
            return True
        return age > QUEUED_GRACE_S
    return not _pid_alive(status.get("pid"), status.get("pid_started"))


def _pid_fields(pid: int) -> dict:
    """The pid and when that process started: after a reboot the same pid may be another process."""
    return {"pid": pid, "pid_started": process_started(pid)}


def _gone_message(status: dict) -> str:
    pid = status.get("pid")
    if pid is None and status.get("keeper_pid") is not None:
        return "the command that queued it ended before its turn came"
    if pid is None:
        return "the training process never started (was the server stopped while launching it?): start again"
    return (
        f"the training process (pid {pid}) ended unexpectedly; "
        "any checkpoint it saved is kept: continue from it or start a new run"
    )


def _pid_alive(pid, started: float | None = None) -> bool:
    reap_children()  # a worker this process started is a zombie until collected
    return pid_alive(pid, started=started)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


RESULTS = "results.json"  # a race's final table


def read_results(directory: Path) -> dict | None:
    """A race's results.json ({"results": [...], "stopped": bool}), or None before the race ends."""
    try:
        data = read_object(directory / RESULTS)
    except FileNotFoundError:
        return None
    if not isinstance(data.get("results"), list) or not all(isinstance(r, dict) for r in data["results"]):
        raise DamagedRunFile(f"{RESULTS} does not hold a list of results")
    return data
