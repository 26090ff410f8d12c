"""One run on several processes, with PyTorch's own engine: torchrun's elastic launch and
DistributedDataParallel (gloo on CPUs, NCCL when every rank has a GPU of its own).

Two ways in, one code path:
- `torchrun --nproc-per-node N -m core train ...` (one machine or several): torchrun starts every rank;
  each rank joins the process group, rank 0 makes the run folder, and all train it (`torchrun_train`).
- `python -m core train --nproc N`, or a dashboard run whose config asks for N processes: this process
  creates the run and calls torch's launcher API (`launch`), which starts N ranks of
  `python -m core worker RUN_DIR`; each joins the group and trains that run (`rank_worker`).

The rank side (joining the group, the collectives, the timeout, what a rank reports) is
core.training.ranks; this module starts the ranks and says how the run ended, and decides for every
worker whether a run trains in its process or in several (`run_worker`).

Every rank trains its share of every global batch (core.data.fashion.TensorBatches), the maths equals one
process's (core.training.train), and rank 0 alone writes the run folder (core.runs.execute.train_run).
"""

import contextlib
import logging
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from core.base.device import resolve_device
from core.base.errors import RunError, StudioError
from core.base.fsutil import remove_orphaned_temps
from core.base.procs import stop_on_signals
from core.base.runfiles import DamagedRunFile
from core.runs import cluster, remote
from core.runs.execute import record_failure, record_pid, run_recorded
from core.runs.locks import device_lock
from core.runs.store import (
    STOP_FILE,
    create_run,
    device_keys,
    new_run_id,
    read_config,
    read_status,
    require_run,
    store_root,
)
from core.training.config import TrainConfig
from core.training.ranks import (
    LAUNCHER_ENV,
    LOST_PEER,
    RankFailed,
    die_with_launcher,
    joined,
    timeout_s,
)

# ---- torchrun -m core train ---------------------------------------------------------------------------


def torchrun_train(config, run_dir: Path | None, echo: Callable[[str], None] = print) -> str:
    """`torchrun ... -m core train`: this process is one rank; rank 0 makes the run, all train it."""
    with joined(config.device) as ranks:
        config = config.replace(processes=ranks.world)  # the config records the world size
        with contextlib.ExitStack() as held:
            if ranks.rank == 0:
                try:  # this machine's devices, as the dashboard's runs lock them
                    local = config.replace(processes=ranks.local_world)
                    held.enter_context(device_lock(device_keys(local)))
                    directory = run_dir or store_root() / new_run_id()
                    create_run(config, directory)
                    told = {"dir": str(directory)}
                except StudioError as exc:
                    told = {"error": str(exc)}
                ranks.share(told)
                if "error" in told:
                    raise RunError(told["error"])
            else:
                told = ranks.share(None)
                if "error" in told:
                    return "failed"  # rank 0 says why
            directory = Path(told["dir"])
            stop_on_signals(directory / STOP_FILE)
            quiet = echo if ranks.rank == 0 else (lambda _line: None)
            return run_recorded(directory, echo=quiet, ranks=ranks)


# ---- python -m core train --nproc N, and the dashboard's distributed runs ------------------------------


def run_worker(
    directory: Path, *, init_from: Path | None = None, echo=lambda _line: None, nice: int = 0
) -> str:
    """What a worker runs: the run in `directory` trained here (core.runs.execute.run_recorded), or
    launched on the processes its config asks for. Returns its final status."""
    require_run(directory)
    try:
        config = read_config(directory)
    except DamagedRunFile:  # run_recorded reads it again and records why the run failed
        config = None
    if cluster.on_cluster(config):  # RAY_ADDRESS: an actor on the cluster trains it, this process keeps it
        return run_recorded(
            directory, init_from=init_from, echo=echo, nice=nice, source=remote.source(directory, echo)
        )
    if isinstance(config, TrainConfig) and config.processes > 1:
        try:
            return launch(directory, config, init_from=init_from, nice=nice, echo=echo)
        except StudioError as exc:  # before any rank started (a bad STUDIO_DIST_TIMEOUT_S, ...)
            return _record(directory, echo, str(exc))
    return run_recorded(directory, init_from=init_from, echo=echo, nice=nice)


def rank_worker(directory: Path, *, init_from: Path | None, nice: int) -> str:
    """`python -m core worker RUN_DIR` started by `launch`: one rank of the run in `directory`."""
    die_with_launcher()  # first: an orphan must not write to the run
    require_run(directory)
    config = read_config(directory)
    with joined(config.device) as ranks:
        if ranks.world != config.processes:
            raise RunError(f"the run asks for {config.processes} processes, but {ranks.world} were started")
        stop_on_signals(directory / STOP_FILE)
        echo = print if ranks.rank == 0 else (lambda _line: None)
        return run_recorded(directory, init_from=init_from, echo=echo, nice=nice, ranks=ranks)


def launch(directory: Path, config, *, init_from: Path | None, nice: int, echo: Callable[[str], None]) -> str:
    """Start the run's `config.processes` ranks on this machine through torch's launcher API and wait.

    Returns the run's final status. A rank that died (a signal, a crash) fails the run with a message
    that names it; the agent stops the other ranks, and the last checkpoint rank 0 saved is kept."""
    # torch's elastic agent, heavy and needed by multi-process runs only:
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    timeout_s()  # a bad STUDIO_DIST_TIMEOUT_S fails the run here, in words, before any rank starts
    _quiet_agent()
    settings = LaunchConfig(
        min_nodes=1,
        max_nodes=1,
        nproc_per_node=config.processes,
        run_id=directory.name,
        rdzv_backend="c10d",
        rdzv_endpoint="127.0.0.1:0",  # a free port on this machine, as torchrun --standalone
        max_restarts=0,  # a failed run is reported, not restarted from scratch
        monitor_interval=0.2,
        shutdown_timeout=10,  # the ranks' time to stop cleanly (a batch, a checkpoint) before they are killed
        # Ctrl-C and SIGTERM stay with this process's stop_on_signals: the ranks stop as the dashboard's
        # Stop makes them (core.STOP_FILE), and a second Ctrl-C asks again rather than raising
        # inside the agent's shutdown and leaving the ranks mid-save. Other signals still end the ranks.
        signals_to_handle="SIGHUP,SIGQUIT",
    )
    args = ["-m", "core", "worker", str(directory), "--nice", str(nice)]
    if init_from is not None:
        args += ["--init-from", str(init_from)]
    backend = "gloo" if resolve_device(config.device).type == "cpu" else "nccl"
    echo(f"launching {config.processes} processes (torch.distributed, {backend})")
    failure = None
    record_pid(directory)  # alive until the ranks are done and their end is recorded
    try:
        with _environ(**{LAUNCHER_ENV: str(os.getpid())}):  # the ranks inherit it from the agent
            elastic_launch(settings, sys.executable)(*args)
    except ChildFailedError as exc:
        failure = exc
    except SignalException as exc:  # SIGHUP or SIGQUIT here: the agent stopped the ranks too
        echo(f"interrupted ({signal.Signals(exc.sigval).name}); the processes were stopped")
    remove_orphaned_temps(directory)  # a rank killed inside a save leaves its temp file (2.7 MB for the MLP)
    status = _final_status(directory)
    if failure is None:
        return status if status in ("finished", "stopped", "failed") else _record(directory, echo)
    culprit = _culprit(failure.failures)
    if status in ("finished", "stopped"):  # the run ended as asked; a rank's trouble leaving goes to the log
        if culprit:
            echo(f"warning: after the run had ended, {culprit}")
        return status
    if culprit is None:
        if status == "failed":
            return status  # the ranks left on their own after rank 0 recorded why (a divergence, ...)
        rank, first = failure.get_first_failure()
        culprit = f"process rank {rank} (pid {first.pid}) {_how(first.exitcode)}"
    return _record(
        directory,
        echo,
        f"{culprit}, so every process of the run was stopped; the last saved checkpoint is kept: "
        "continue from it or start again",
    )


# Signals the agent (or a user's Ctrl-C) sends to stop ranks: a rank that got one did not cause a failure.
_STOPPING = (signal.SIGTERM, signal.SIGINT)


def _culprit(failures: dict) -> str | None:
    """The rank that made the run fail, in words: one that reported its own error (report_error), else
    one that a signal killed or crashed (not the agent's SIGTERM to the others); None if none did."""

    def first(ranks: list[int]) -> int:
        return min(ranks, key=lambda r: (failures[r].timestamp, r))

    said = {
        r: _reported(f) for r, f in failures.items() if f.exitcode > 0 and os.path.isfile(f.error_file or "")
    }
    lost = {r: text[len(LOST_PEER) :] for r, text in said.items() if text.startswith(LOST_PEER)}
    reported = [r for r in said if r not in lost]
    if reported:
        rank = first(reported)
        return f"process rank {rank} (pid {failures[rank].pid}) failed: {said[rank]}"
    killed = [r for r, f in failures.items() if f.exitcode < 0 and -f.exitcode not in _STOPPING]
    if killed:
        rank = first(killed)
        how = f"process rank {rank} (pid {failures[rank].pid}) {_how(failures[rank].exitcode)}"
        if lost:  # e.g. a rank that hung: the others timed out on it, then the agent killed it
            witness = first(list(lost))
            how += f" (rank {witness} had lost contact with it: {lost[witness]})"
        return how
    if lost:  # nobody died: the ranks could not reach each other (a network between machines, ...)
        witness = first(list(lost))
        return f"the processes lost contact with each other (rank {witness}: {lost[witness]})"
    return None


def _reported(failure) -> str:
    message = failure.message  # the error file's text, or its {"message": text, "extraInfo": ...}
    if isinstance(message, dict):
        message = str(message.get("message", ""))
    prefix = f"{RankFailed.__name__}: "
    return message[len(prefix) :] if message.startswith(prefix) else message


@contextlib.contextmanager
def _environ(**values: str):
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _quiet_agent() -> None:
    """The agent's warnings ("Received 2 death signal, shutting down workers", ...) repeat what this
    module says in one line; its errors (a rank's traceback) still reach the log."""
    for name in list(logging.root.manager.loggerDict):
        if name.startswith("torch.distributed"):
            logging.getLogger(name).setLevel(logging.ERROR)


def _how(exitcode: int) -> str:
    if exitcode < 0:
        try:
            return f"was killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"was killed by signal {-exitcode}"
    return f"exited with code {exitcode}"


def _final_status(directory: Path) -> str:
    try:
        return read_status(directory).get("status", "queued")
    except (OSError, StudioError):
        return "failed"


def _record(directory: Path, echo, error: str | None = None) -> str:
    error = error or "the processes of this run ended without a result: start again"
    with contextlib.suppress(OSError, StudioError):
        record_failure(directory, error)
    echo(f"failed: {error}")
    return "failed"
