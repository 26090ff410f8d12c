"""What runs inside a worker: one run trained and recorded (events, metrics, checkpoints, status)."""

import contextlib
import dataclasses
import errno
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from core.base.errors import RunError, StudioError
from core.base.fsutil import atomic_write_json, remove_stale_temps
from core.base.priority import lower_priority
from core.base.runfiles import (
    DamagedRunFile,
    is_number,
    last_row,
    read_object,
)
from core.model.checkpoint import load_checkpoint, save_checkpoint
from core.runs.board import open_board
from core.runs.store import (
    CHECKPOINT,
    LR_FILE,
    RESULTS,
    STOP_FILE,
    _now,
    _pid_fields,
    _write_status,
    read_config,
    require_run,
)
from core.training.config import LIMITS, TrainConfig
from core.training.race import RaceConfig, RaceFinished, RaceLogged, RaceStarted, run_race
from core.training.ranks import Ranks, launcher_watches, report_error, report_lost_peer
from core.training.train import (
    BatchLogged,
    EpochEnd,
    Event,
    Failed,
    Finished,
    LrChanged,
    Started,
    Stopped,
    fit,
)


class _LrRequests:
    """The worker's side of set_lr: a new value in LR_FILE is returned once, at the next batch."""

    def __init__(self, directory: Path):
        self.path = directory / LR_FILE
        # Nothing is taken as seen: a value written while the run was queued or starting (the page
        # acknowledged it) applies at the first batch. A worker only trains a fresh run (require_run).
        self._seen = None

    def _stamp(self):
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size, st.st_ino

    def __call__(self) -> float | None:
        stamp = self._stamp()
        if stamp is None or stamp == self._seen:
            return None
        self._seen = stamp
        try:
            lr = read_object(self.path).get("lr")
        except (OSError, DamagedRunFile):
            return None
        return float(lr) if LIMITS["lr"].allows(lr) else None  # the page checked it; a hand edit may not


def train_run(
    directory: Path,
    *,
    init_from: Path | None = None,
    echo: Callable[[str], None] = lambda _line: None,
    nice: int = 0,
    ranks: Ranks | None = None,
    source: Callable[..., Iterator[Event]] | None = None,
) -> str:
    """Train the run in `directory` in this process; returns its final status.

    Appends metrics.jsonl (flushed per line), saves the checkpoint after every epoch and on stop,
    and keeps status.json current. A failure leaves the last good checkpoint in place. With `nice`,
    the process lowers its CPU priority once its first loss is logged (a fast start, then it yields).
    With `ranks`, this process is one rank of a distributed run: all train, rank 0 alone writes.
    `source`: what yields the training's events, `fit` here (None), or the run on a Ray cluster
    (core.runs.remote.source): the run folder is written the same way from either.
    """
    source = source or fit  # looked up now, not when this module was read
    require_run(directory)
    home = _RunHome(directory)
    config = read_config(directory)
    model = None
    if init_from is not None:
        model = load_checkpoint(init_from).model
    stop_file = directory / STOP_FILE

    def should_stop() -> bool:
        return stop_file.exists() or home.gone()

    if ranks is not None and ranks.rank != 0:
        return _follow(fit(config, model=model, should_stop=should_stop, ranks=ranks), nice)

    remove_stale_temps(directory)
    # Under core.runs.launcher.launch the launcher's pid stays: it outlives the ranks and records their end.
    me = {} if launcher_watches() else _pid_fields(os.getpid())
    _write_status(directory, status="running", error=None, **me)
    if isinstance(config, RaceConfig):
        return _train_race(directory, config, home, echo, nice)
    board = open_board(directory, config)  # TensorBoard's event files beside metrics.jsonl (core.runs.board)
    status = None
    try:
        status = _train(directory, config, model, home, echo, nice, ranks, source, should_stop, board)
        return status
    finally:
        # The hyperparameters' file only for a run that ended as a run ends: an error out of the loop may be
        # its folder being deleted (files vanish first), and the new file would stop the deletion.
        if board is not None:
            board.close(status, hparams=status is not None and not home.gone())


def _train(directory, config, model, home, echo, nice, ranks, source, should_stop, board) -> str:
    """train_run's loop, rank 0's or a lone process's: each event written into the run folder (and its
    TensorBoard files, with `board`); the final status."""
    best = None
    lr_history: list[list[float]] = []  # [step, lr] for each change made while training
    with (
        open(directory / "metrics.jsonl", "a", buffering=1) as metrics,
        contextlib.closing(
            source(config, model=model, should_stop=should_stop, new_lr=_LrRequests(directory), ranks=ranks)
        ) as events,  # closed on return: its DDP object goes before the process group
    ):

        def record(row: dict) -> None:
            metrics.write(json.dumps(row) + "\n")
            if board is not None:
                board.row(row)

        for event in events:
            home.check()  # before anything is written: a deleted folder must not be recreated in part
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
            elif isinstance(event, LrChanged):
                record({"kind": "lr", **_fields(event), "time": time.time()})
                lr_history.append([event.step, event.lr])
                config = config.replace(lr=event.lr)  # saved with the next checkpoint, for a continuation
                _write_status(directory, lr=event.lr, lr_history=lr_history)
                echo(f"learning rate {event.lr:g} from step {event.step}")
            elif isinstance(event, BatchLogged):
                record({"kind": "batch", **_fields(event), "time": time.time()})
                if nice:
                    lower_priority(nice)
                    nice = 0
            elif isinstance(event, EpochEnd):
                _save(directory, model, config, event)  # first: a row is only written for saved weights
                record({"kind": "epoch", **_fields(event), "time": time.time()})
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
                if model is not None:  # None: it left before it trained (waiting for a machine of a cluster)
                    _save(directory, model, config, None)
                (directory / STOP_FILE).unlink(missing_ok=True)
                _write_status(directory, status="stopped", step=event.step)
                echo(f"stopped at step {event.step}; checkpoint saved")
                return "stopped"
            elif isinstance(event, Finished):
                _write_status(directory, status="finished", step=event.step)
                echo(f"finished: best test accuracy {best:.1%}; checkpoint {directory / CHECKPOINT}")
                return "finished"
            elif isinstance(event, Failed):
                echo(f"failed: {event.error}")
                if event.peer_lost and launcher_watches():
                    report_lost_peer(event.detail)  # context for the launcher, which names the culprit
                    return "failed"
                _write_status(directory, status="failed", error=event.error, step=event.step)
                return "failed"
    return "failed"


def record_pid(directory: Path) -> None:
    """Make this process the one whose life the run's status follows (a launcher of several ranks)."""
    _write_status(directory, **_pid_fields(os.getpid()))


def _follow(events, nice: int) -> str:
    """A rank other than 0: train along (the collectives are inside fit) and write nothing."""
    with contextlib.closing(events):
        for event in events:
            if isinstance(event, BatchLogged) and nice:
                lower_priority(nice)
                nice = 0
            elif isinstance(event, Finished | Stopped | Failed):
                if isinstance(event, Failed) and event.peer_lost:
                    report_lost_peer(event.detail)
                return {Finished: "finished", Stopped: "stopped", Failed: "failed"}[type(event)]
    return "failed"


def _train_race(directory: Path, config: RaceConfig, home, echo, nice: int) -> str:
    """A race in this worker: one metrics row per logged step (every contender's loss), then RESULTS."""
    stop_file = directory / STOP_FILE
    with open(directory / "metrics.jsonl", "a", buffering=1) as metrics:
        for event in run_race(config, should_stop=lambda: stop_file.exists() or home.gone()):
            home.check()
            if isinstance(event, RaceStarted):
                _write_status(directory, device=event.device, total_steps=config.steps)
                echo(f"race of {len(event.labels)} on {event.device}: {', '.join(event.labels)}")
            elif isinstance(event, RaceLogged):
                row = {"kind": "race", "step": event.step, "losses": event.losses, "time": time.time()}
                metrics.write(json.dumps(row) + "\n")
                if nice:
                    lower_priority(nice)
                    nice = 0
            elif isinstance(event, RaceFinished):
                results = [dataclasses.asdict(r) for r in event.results]
                atomic_write_json(directory / RESULTS, {"results": results, "stopped": event.stopped})
                status = "stopped" if event.stopped else "finished"
                stop_file.unlink(missing_ok=True)
                best = max((r.test_acc for r in event.results if r.test_acc is not None), default=None)
                _write_status(directory, status=status, step=_last_step(directory), best_test_acc=best)
                echo(f"race {status}")
                return status
    return "failed"


def _last_step(directory: Path) -> int:
    last = last_row(directory / "metrics.jsonl") or {}
    return int(last["step"]) if is_number(last.get("step")) else 0


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


class RunFolderGone(RunError):
    """The run's folder was deleted (or replaced) while its worker trained."""


class _RunHome:
    """The run folder as the worker found it; deleted or replaced mid-run, the worker stops writing."""

    def __init__(self, directory: Path):
        self.directory = directory
        self._identity = self._stat()

    def _stat(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.directory)
        except OSError:
            return None
        return st.st_dev, st.st_ino

    def gone(self) -> bool:
        return self._stat() != self._identity

    def check(self) -> None:
        if self.gone():
            raise RunFolderGone(f"the run folder {self.directory} was deleted while training: stopped")


def run_recorded(
    directory: Path,
    *,
    init_from: Path | None = None,
    echo=lambda _line: None,
    nice: int = 0,
    ranks: Ranks | None = None,
    source: Callable[..., Iterator[Event]] | None = None,
) -> str:
    """train_run in this process (or as one rank), with any unexpected error recorded in status.json
    instead of lost in a log. A folder that is not a run is refused (RunError) before anything is written
    to it. core.runs.launcher.run_worker decides whether a run trains here or in several processes."""
    require_run(directory)
    try:
        return train_run(directory, init_from=init_from, echo=echo, nice=nice, ranks=ranks, source=source)
    except RunFolderGone as exc:
        echo(f"failed: {exc}")  # nowhere to record it: writing would make the folder again
        return "failed"
    except OSError as exc:
        full = exc.errno == errno.ENOSPC
        error = "disk full while saving: free some space and start again" if full else str(exc)
    except DamagedRunFile as exc:
        error = f"{exc} (damaged while training, so training stopped; the last saved checkpoint is kept)"
    except StudioError as exc:
        error = str(exc)
    except Exception as exc:  # a bug: still tell the user rather than leave "running" behind
        error = f"unexpected error: {type(exc).__name__}: {exc}"
    if ranks is not None and ranks.rank != 0:
        echo(f"failed: {error}")
        report_error(error)  # for the launcher, which names this rank in the run's status
        return "failed"
    with contextlib.suppress(OSError):
        record_failure(directory, error)
    echo(f"failed: {error}")
    return "failed"


def record_failure(directory: Path, error: str) -> None:
    """The worker's last word; a damaged status.json is replaced by it (the worker owns that file)."""
    try:
        _write_status(directory, status="failed", error=error)
    except DamagedRunFile:
        fresh = {"status": "failed", "error": error, **_pid_fields(os.getpid()), "updated": _now()}
        atomic_write_json(directory / "status.json", fresh, make_parents=False)
