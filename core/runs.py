"""The run store on disk (data/runs/<id>/) and the worker process that trains one run."""

import contextlib
import errno
import fcntl
import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from core.checkpoint import save_checkpoint
from core.data import DATA_DIR, PROJECT_ROOT
from core.device import resolve_device
from core.errors import RunError, StudioError
from core.fsutil import atomic_write_json, remove_stale_temps
from core.priority import lower_priority
from core.procs import pid_alive
from core.train import BatchLogged, EpochEnd, Failed, Finished, Started, Stopped, TrainConfig, fit

RUNS_DIR = Path(os.environ.get("STUDIO_RUNS_DIR", DATA_DIR / "runs"))
ACTIVE = ("queued", "running")
STOP_FILE = "STOP"
CHECKPOINT = "model.pth"
WORKER_NICE = int(os.environ.get("STUDIO_WORKER_NICE", "10"))  # dashboard runs yield the CPU to it
QUEUED_GRACE_S = 30.0  # how long a run may be queued before its worker's pid is recorded
LOCK_GRACE_S = 10.0  # how long a start waits for a finished worker to release the device
_children: list[subprocess.Popen] = []  # workers this process started; polled so none stays a zombie


@dataclass(frozen=True)
class RunInfo:
    id: str
    dir: Path
    status: str  # queued / running / finished / stopped / failed
    error: str | None
    pid: int | None
    config: TrainConfig | None
    created: str | None
    epoch: int  # epochs completed
    step: int
    total_steps: int | None
    best_test_acc: float | None
    last_test_acc: float | None

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    @property
    def checkpoint(self) -> Path | None:
        path = self.dir / CHECKPOINT
        return path if path.is_file() else None


# ---- the store ---------------------------------------------------------------------------------------


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)


def run_dir(run_id: str, runs_dir: Path | None = None) -> Path:
    if not run_id or "/" in run_id or run_id.startswith("."):
        raise RunError(f"{run_id!r} is not a run id")
    return Path(runs_dir or RUNS_DIR) / run_id


def create_run(config: TrainConfig, directory: Path) -> Path:
    """Lay out a new run directory holding config.json and a queued status.json."""
    if (directory / "config.json").exists():
        raise RunError(f"{directory} already holds a run: choose another --run-dir")
    directory.mkdir(parents=True, exist_ok=True)
    atomic_write_json(directory / "config.json", config.to_dict())
    _write_status(directory, status="queued", created=_now())
    return directory


def read_status(directory: Path) -> dict:
    try:
        return json.loads((directory / "status.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def _write_status(directory: Path, **changes) -> dict:
    status = {**read_status(directory), **changes, "updated": _now()}
    atomic_write_json(directory / "status.json", status)
    return status


def read_metrics(run_id: str, runs_dir: Path | None = None) -> list[dict]:
    """Every complete line of metrics.jsonl; a partial last line (writer killed mid-line) is skipped."""
    path = run_dir(run_id, runs_dir) / "metrics.jsonl"
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    rows = []
    for line in text.splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


@dataclass(frozen=True)
class Progress:
    epoch: int  # the epoch being trained, counting from 1
    step: int
    total_steps: int | None
    samples_per_s: float | None
    eta_s: float | None  # seconds left at the current speed

    @property
    def fraction(self) -> float:
        return min(self.step / self.total_steps, 1.0) if self.total_steps else 0.0


def progress(run: RunInfo) -> Progress:
    """Where a run is, from the tail of metrics.jsonl: cheap enough to call every second."""
    last = _last_row(run.dir / "metrics.jsonl")
    step = last.get("step", run.step) if last else run.step
    speed = last.get("samples_per_s") if last else None
    eta = None
    if speed and run.total_steps and run.config:
        eta = (run.total_steps - step) * run.config.batch_size / speed
    epoch = last.get("epoch", run.epoch) if last else max(run.epoch, 1)
    return Progress(epoch, step, run.total_steps, speed, eta)


def _last_row(path: Path, window: int = 4096) -> dict | None:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(f.tell() - window, 0))
            lines = f.read().decode(errors="replace").splitlines()
    except FileNotFoundError:
        return None
    for line in reversed(lines):
        try:
            return json.loads(line)
        except json.JSONDecodeError:
            continue
    return None


def get_run(run_id: str, runs_dir: Path | None = None) -> RunInfo:
    directory = run_dir(run_id, runs_dir)
    if not (directory / "config.json").is_file():
        raise RunError(f"there is no run {run_id!r} in {directory.parent}")
    status = read_status(directory)
    if status.get("status") in ACTIVE and _worker_gone(status):
        status = _write_status(directory, status="failed", error=_gone_message(status.get("pid")))
        if isinstance(status.get("pid"), int):  # killed mid-write (SIGKILL, the OOM killer): tidy after it
            remove_stale_temps(directory, pid=status["pid"])
    try:
        config = TrainConfig.from_dict(json.loads((directory / "config.json").read_text()))
    except (json.JSONDecodeError, StudioError, TypeError):
        config = None
    return RunInfo(
        id=directory.name,
        dir=directory,
        status=status.get("status", "failed"),
        error=status.get("error"),
        pid=status.get("pid"),
        config=config,
        created=status.get("created"),
        epoch=status.get("epoch", 0),
        step=status.get("step", 0),
        total_steps=status.get("total_steps"),
        best_test_acc=status.get("best_test_acc"),
        last_test_acc=status.get("last_test_acc"),
    )


def list_runs(runs_dir: Path | None = None) -> list[RunInfo]:
    """All runs, newest first."""
    _reap_children()
    root = Path(runs_dir or RUNS_DIR)
    if not root.is_dir():
        return []
    ids = sorted((p.name for p in root.iterdir() if (p / "config.json").is_file()), reverse=True)
    return [get_run(i, root) for i in ids]


def active_run(device: str | None = None, runs_dir: Path | None = None) -> RunInfo | None:
    for run in list_runs(runs_dir):
        if run.active and (device is None or _device_key_of(run) == device):
            return run
    return None


# ---- starting and stopping ----------------------------------------------------------------------------


def device_key(config: TrainConfig) -> str:
    """One lock per physical device: "cpu", "cuda:0", ..."""
    device = resolve_device(config.device)
    if device.type != "cpu" and device.index is None:
        return f"{device.type}:0"
    return str(device)


def _device_key_of(run: RunInfo) -> str | None:
    try:
        return device_key(run.config) if run.config else None
    except StudioError:
        return None


@contextlib.contextmanager
def device_lock(key: str, runs_dir: Path | None = None):
    """Hold the device's lock file (flock) or raise RunError; yields the open file descriptor.

    The lock belongs to the open file, so a worker that inherits the descriptor keeps it for its
    whole life and the kernel releases it when the worker dies, however it dies.
    """
    root = Path(runs_dir or RUNS_DIR)
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root / f".lock-{key.replace(':', '-')}", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if not _try_lock(fd, key, root):
            busy = active_run(key, root)
            which = f" (run {busy.id})" if busy else ""
            raise RunError(f"a run is already training on {key}{which}: stop it or wait for it to finish")
        yield fd
    finally:
        os.close(fd)


def _try_lock(fd: int, key: str, root: Path, grace: float = LOCK_GRACE_S) -> bool:
    """Take the lock; while no run is active, its holder is a worker that is exiting: wait for it."""
    deadline = time.monotonic() + grace
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if active_run(key, root) is not None or time.monotonic() > deadline:
                return False
            time.sleep(0.05)


def start(config: TrainConfig, *, runs_dir: Path | None = None, init_from: Path | None = None) -> str:
    """Start a worker process training `config`; returns the run id. One active run per device."""
    root = Path(runs_dir or RUNS_DIR)
    with device_lock(device_key(config), root) as fd:
        run_id = new_run_id()
        directory = create_run(config, root / run_id)
        if _hand_to_spare(root, directory, init_from, fd):
            return run_id
        args = [sys.executable, "-m", "core", "worker", str(directory), "--lock-fd", str(fd)]
        if init_from is not None:
            args += ["--init-from", str(init_from)]
        with open(directory / "worker.log", "ab") as log:
            proc = subprocess.Popen(
                args,
                cwd=PROJECT_ROOT,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                pass_fds=(fd,),
                start_new_session=True,  # survives the server's reruns and its Ctrl-C
            )
        _children.append(proc)
        _write_status(directory, pid=proc.pid)
    return run_id


def _hand_to_spare(root: Path, directory: Path, init_from: Path | None, lock_fd: int) -> bool:
    """Give the new run to the store's spare worker (core.spare), if it has one ready."""
    from core import spare

    pid = spare.ready_pid(root)
    if pid is None:
        return False
    _write_status(directory, pid=pid)  # first, so the worker's own "running" is never overwritten
    return spare.claim(root, pid, directory, init_from, lock_fd)


def prepare_worker(runs_dir: Path | None = None) -> int | None:
    """Have a spare worker warm up now (core.spare), so the next start trains within a second; its pid."""
    from core import spare

    return spare.ensure(Path(runs_dir or RUNS_DIR))


def adopt_child(proc: subprocess.Popen) -> None:
    """Reap `proc` (a process this one started) with the workers, so it never stays a zombie."""
    _children.append(proc)


def stop(run_id: str, runs_dir: Path | None = None) -> None:
    """Ask a run to stop; the worker sees it before its next batch and saves a checkpoint."""
    directory = run_dir(run_id, runs_dir)
    if not directory.is_dir():
        raise RunError(f"there is no run {run_id!r}")
    (directory / STOP_FILE).touch()


def wait(run_id: str, runs_dir: Path | None = None, timeout: float = 60.0) -> RunInfo:
    """Poll until the run is no longer active (for the CLI and tests)."""
    deadline = time.monotonic() + timeout
    while True:
        _reap_children()
        run = get_run(run_id, runs_dir)
        if not run.active or time.monotonic() > deadline:
            return run
        time.sleep(0.1)


def _worker_gone(status: dict) -> bool:
    """An active run whose worker died; a queued one is given a moment to get its pid recorded."""
    if status.get("pid") is None and status.get("status") == "queued":
        try:
            age = (datetime.now(UTC) - datetime.fromisoformat(status["created"])).total_seconds()
        except (KeyError, TypeError, ValueError):
            return True
        return age > QUEUED_GRACE_S
    return not _pid_alive(status.get("pid"))


def _gone_message(pid) -> str:
    if pid is None:
        return "the training process never started (was the server stopped while launching it?): start again"
    return (
        f"the training process (pid {pid}) ended unexpectedly; "
        "any checkpoint it saved is kept: continue from it or start a new run"
    )


def _reap_children() -> None:
    _children[:] = [p for p in _children if p.poll() is None]


def _pid_alive(pid) -> bool:
    _reap_children()  # a worker this process started is a zombie until collected
    return pid_alive(pid)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# ---- the worker -------------------------------------------------------------------------------------


def train_run(
    directory: Path,
    *,
    init_from: Path | None = None,
    echo: Callable[[str], None] = lambda _line: None,
    nice: int = 0,
) -> str:
    """Train the run in `directory` in this process; returns its final status.

    Appends metrics.jsonl (flushed per line), saves the checkpoint after every epoch and on stop,
    and keeps status.json current. A failure leaves the last good checkpoint in place. With `nice`,
    the process lowers its CPU priority once its first loss is logged (a fast start, then it yields).
    """
    remove_stale_temps(directory)
    config = TrainConfig.from_dict(json.loads((directory / "config.json").read_text()))
    _write_status(directory, status="running", pid=os.getpid(), error=None)
    model = None
    if init_from is not None:
        from core.checkpoint import load_checkpoint

        model = load_checkpoint(init_from).model
    stop_file = directory / STOP_FILE
    best = None
    with open(directory / "metrics.jsonl", "a", buffering=1) as metrics:
        for event in fit(config, model=model, should_stop=stop_file.exists):
            if isinstance(event, Started):
                model = event.model
                _write_status(
                    directory,
                    device=event.device,
                    total_steps=event.total_steps,
                    steps_per_epoch=event.steps_per_epoch,
                    num_params=event.num_params,
                )
                echo(
                    f"training {config.model} on {event.device}: {config.epochs} epoch(s) of "
                    f"{event.steps_per_epoch} batches, run dir {directory}"
                )
            elif isinstance(event, BatchLogged):
                metrics.write(json.dumps({"kind": "batch", **_fields(event), "time": time.time()}) + "\n")
                if nice:
                    lower_priority(nice)
                    nice = 0
            elif isinstance(event, EpochEnd):
                _save(directory, model, config, event)  # first: a row is only written for saved weights
                metrics.write(json.dumps({"kind": "epoch", **_fields(event), "time": time.time()}) + "\n")
                best = max(best or 0.0, event.test_acc)
                _write_status(
                    directory,
                    epoch=event.epoch,
                    step=event.step,
                    best_test_acc=best,
                    last_test_acc=event.test_acc,
                )
                echo(
                    f"epoch {event.epoch}/{config.epochs}: train loss {event.train_loss:.4f}, "
                    f"train acc {event.train_acc:.1%}, test loss {event.test_loss:.4f}, "
                    f"test acc {event.test_acc:.1%} ({event.seconds:.1f} s)"
                )
            elif isinstance(event, Stopped):
                _save(directory, model, config, None)
                stop_file.unlink(missing_ok=True)
                _write_status(directory, status="stopped", step=event.step)
                echo(f"stopped at step {event.step}; checkpoint saved")
                return "stopped"
            elif isinstance(event, Finished):
                _write_status(directory, status="finished", step=event.step)
                echo(f"finished: best test accuracy {best:.1%}; checkpoint {directory / CHECKPOINT}")
                return "finished"
            elif isinstance(event, Failed):
                _write_status(directory, status="failed", error=event.error, step=event.step)
                echo(f"failed: {event.error}")
                return "failed"
    return "failed"


def _fields(event) -> dict:
    return {k: v for k, v in vars(event).items() if k != "model"}


def _save(directory: Path, model, config: TrainConfig, event: EpochEnd | None) -> None:
    metrics = None
    if event is not None:
        metrics = {
            k: getattr(event, k) for k in ("epoch", "train_loss", "train_acc", "test_loss", "test_acc")
        }
    save_checkpoint(
        model,
        directory / CHECKPOINT,
        model_name=config.model,
        model_options=config.model_options(),
        train_config=config.to_dict(),
        metrics=metrics,
    )


def run_worker(
    directory: Path, *, init_from: Path | None = None, echo=lambda _line: None, nice: int = 0
) -> str:
    """train_run, with any unexpected error recorded in status.json instead of lost in a log."""
    try:
        return train_run(directory, init_from=init_from, echo=echo, nice=nice)
    except OSError as exc:
        full = exc.errno == errno.ENOSPC
        error = "disk full while saving: free some space and start again" if full else str(exc)
    except StudioError as exc:
        error = str(exc)
    except Exception as exc:  # a bug: still tell the user rather than leave "running" behind
        error = f"unexpected error: {type(exc).__name__}: {exc}"
    with contextlib.suppress(OSError):
        _write_status(directory, status="failed", error=error)
    echo(f"failed: {error}")
    return "failed"
