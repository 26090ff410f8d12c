"""One run on several processes, with PyTorch's own engine: torchrun's elastic launch and
DistributedDataParallel (gloo on CPUs, NCCL when every rank has a GPU of its own).

Two ways in, one code path:
- `torchrun --nproc-per-node N -m core train ...` (one machine or several): torchrun starts every rank;
  each rank joins the process group, rank 0 makes the run folder, and all train it (`torchrun_train`).
- `python -m core train --nproc N`, or a dashboard run whose config asks for N processes: this process
  creates the run and calls torch's launcher API (`launch`), which starts N ranks of
  `python -m core worker RUN_DIR`; each joins the group and trains that run (`rank_worker`).

Every rank trains its share of every global batch (core.data.TensorBatches), the maths equals one
process's (core.train), and rank 0 alone writes the run folder (core.runs.train_run).
"""

import contextlib
import ctypes
import logging
import math
import os
import signal
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

from core import runs
from core.device import resolve_device
from core.errors import BadConfig, RunError, StudioError
from core.fsutil import remove_orphaned_temps

# A collective that waits longer than this for another rank fails instead of hanging (a rank that
# was stopped with SIGSTOP, a machine that went away); a rank that died is noticed at once.
TIMEOUT_ENV = "STUDIO_DIST_TIMEOUT_S"
DEFAULT_TIMEOUT_S = 120.0
MIN_TIMEOUT_S = 1.0  # torch counts whole milliseconds: at 0 ms the ranks' first meeting fails at once
MAX_TIMEOUT_S = 86_400.0  # a collective that waits a day for another rank is hung, not slow


def timeout_s() -> float:
    """The collective timeout, from STUDIO_DIST_TIMEOUT_S; BadConfig for a value that is not one.

    Read when a run needs it, not at import: a bad value is one line for the person who set it, not an
    import error in every process that touches this module."""
    text = os.environ.get(TIMEOUT_ENV, "").strip()
    if not text:
        return DEFAULT_TIMEOUT_S
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not MIN_TIMEOUT_S <= value <= MAX_TIMEOUT_S:  # also refuses nan, which compares false with all
        raise BadConfig(
            f"{TIMEOUT_ENV}={text!r:.40} is not a timeout: set it to a number of seconds from "
            f"{MIN_TIMEOUT_S:g} to {MAX_TIMEOUT_S:g} (default {DEFAULT_TIMEOUT_S:g}), or unset it"
        )
    return value


def __getattr__(name: str):
    # core.train names the timeout in its messages as TIMEOUT_S; it is read when asked for.
    if name == "TIMEOUT_S":
        return timeout_s()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


LAUNCHER_ENV = "STUDIO_LAUNCHER_PID"  # set for the ranks that `launch` starts


def launcher_watches() -> bool:
    """True in a rank that `launch` started: the launcher records how the run ended if a rank dies."""
    return bool(os.environ.get(LAUNCHER_ENV))


PR_SET_PDEATHSIG = 1  # prctl option, <linux/prctl.h>


def die_with_launcher() -> None:
    """In a rank that `launch` started: be killed (SIGKILL) the moment the launcher dies; RunError if it
    is gone already.

    Killed with SIGKILL, the launcher can neither stop its ranks nor record the run's end: the ranks
    trained on as orphans, beside the next run that took the device lock the launcher had held, and
    overwrote the status a reader had marked failed. The kernel sends the signal when the thread that
    started this process ends: torch's agent starts the ranks with subprocess.Popen from the thread that
    called `launch` (the main one of `python -m core train` or of a worker), which lives until the run's
    end is recorded."""
    launcher = os.environ.get(LAUNCHER_ENV, "")
    if not launcher.isdigit() or not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise RunError(f"could not tie this process to its launcher: {os.strerror(ctypes.get_errno())}")
    if os.getppid() != int(launcher):  # it died before the signal was set: nobody would stop this rank
        raise RunError(f"the launcher of this run (pid {launcher}) is gone, so this process stops too")


def launched() -> bool:
    """True in a process that torchrun (or `launch`) started as one rank of a distributed run."""
    return all(name in os.environ for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR"))


def most_processes(device_name: str = "auto") -> int:
    """How many processes a run on this device may have here: one per GPU, or one per CPU core."""
    device = resolve_device(device_name)
    if device.type == "cuda":
        return torch.cuda.device_count()
    if device.type == "cpu":
        return os.cpu_count() or 1
    return 1


def check_processes(config) -> None:
    """BadConfig unless this machine can start `config.processes` ranks on `config.device`."""
    count = getattr(config, "processes", 1)
    if count == 1:
        return
    device = resolve_device(config.device)
    if device.type not in ("cpu", "cuda"):
        raise BadConfig(
            f"more than one process needs CUDA GPUs or the CPU; on {device.type} a run trains in one "
            "process: set processes to 1"
        )
    if device.type == "cuda" and device.index is not None:
        raise BadConfig(
            "with more than one process each takes a GPU of its own: choose the device cuda (or auto), "
            f"not {config.device!r}"
        )
    most = most_processes(config.device)
    if count > most:
        what = f"{most} GPU(s)" if device.type == "cuda" else f"{most} CPU core(s)"
        raise BadConfig(f"{count} processes, but this machine has {what}: choose at most {most}")


@dataclass
class Ranks:
    """This process's place in a distributed run, and the few collectives the training loop uses."""

    rank: int
    world: int
    local_rank: int
    local_world: int
    device: torch.device
    control: object  # a gloo group for the per-batch agreement, on the CPU even when training on GPUs

    def agree(self, stop: bool, lr: float | None) -> tuple[bool, float | None]:
        """Stop if any rank was asked to; take a new learning rate if one was given (rank 0 reads it).

        Over the CPU group, so a GPU rank answers without waiting for its device."""
        flags = torch.tensor([1.0 if stop else 0.0, lr or 0.0], dtype=torch.float64)
        dist.all_reduce(flags, op=dist.ReduceOp.MAX, group=self.control)
        stop_all, new = flags.tolist()
        return stop_all > 0, (new if new > 0 else None)

    def sum_(self, tensor: torch.Tensor) -> torch.Tensor:
        """Add `tensor` over all ranks, in place (on the training device); returns it."""
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def share(self, value: object) -> object:
        """Rank 0's `value`, on every rank (a small picklable object)."""
        box = [value if self.rank == 0 else None]
        dist.broadcast_object_list(box, src=0, group=self.control)
        return box[0]

    def wrap(self, model: nn.Module) -> nn.Module:
        """`model` in DistributedDataParallel; the caller keeps the plain model for saving."""
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)


def _env_int(name: str, default: int | None = None) -> int:
    value = os.environ.get(name)
    if value is None:
        if default is None:
            raise RunError(f"{name} is not set: start this process with torchrun")
        return default
    return int(value)


@contextlib.contextmanager
def joined(device_name: str) -> Iterator[Ranks]:
    """Join the process group that torchrun described in the environment; leave it cleanly.

    NCCL when the run trains on CUDA (each rank on the GPU numbered by its local rank), gloo on the
    CPU, where the ranks share the cores instead of each starting a thread per core."""
    rank, world = _env_int("RANK"), _env_int("WORLD_SIZE")
    local_rank = _env_int("LOCAL_RANK", 0)
    local_world = _env_int("LOCAL_WORLD_SIZE", world)
    wanted = resolve_device(device_name)
    if wanted.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise BadConfig(
                f"local rank {local_rank} has no GPU of its own ({torch.cuda.device_count()} here): start "
                "at most one process per GPU on each machine, or train with --device cpu"
            )
        device, backend = torch.device("cuda", local_rank), "nccl"
        torch.cuda.set_device(device)
    elif wanted.type == "cpu":
        device, backend = torch.device("cpu"), "gloo"
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // local_world))
    else:
        raise BadConfig(f"more than one process needs CUDA GPUs or the CPU, not {wanted.type}")
    timeout = timedelta(seconds=timeout_s())
    dist.init_process_group(backend, timeout=timeout, **({"device_id": device} if backend == "nccl" else {}))
    try:
        control = dist.new_group(backend="gloo", timeout=timeout) if backend != "gloo" else None
        yield Ranks(rank, world, local_rank, local_world, device, control)
    finally:
        # fit() has released its DDP object by now (train_run closes it), so nothing still uses the group.
        # What crashed gloo ranks with SIGABRT ("terminate called without an active exception") was the
        # interpreter's teardown after this, whichever the order (1 in 20 minimal 2-rank runs either
        # way here, 0 in 20 ending with os._exit): core.worker.leave ends a rank without that teardown.
        dist.destroy_process_group()


# ---- torchrun -m core train ---------------------------------------------------------------------------


def torchrun_train(config, run_dir: Path | None, echo: Callable[[str], None] = print) -> str:
    """`torchrun ... -m core train`: this process is one rank; rank 0 makes the run, all train it."""
    from core.worker import stop_on_signals

    with joined(config.device) as ranks:
        config = config.replace(processes=ranks.world)  # the config records the world size
        with contextlib.ExitStack() as held:
            if ranks.rank == 0:
                try:  # this machine's devices, as the dashboard's runs lock them
                    local = config.replace(processes=ranks.local_world)
                    held.enter_context(runs.device_lock(runs.device_keys(local)))
                    directory = run_dir or runs.RUNS_DIR / runs.new_run_id()
                    runs.create_run(config, directory)
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
            stop_on_signals(directory)
            quiet = echo if ranks.rank == 0 else (lambda _line: None)
            return runs.run_worker(directory, echo=quiet, ranks=ranks)


# ---- python -m core train --nproc N, and the dashboard's distributed runs ------------------------------


def rank_worker(directory: Path, *, init_from: Path | None, nice: int) -> str:
    """`python -m core worker RUN_DIR` started by `launch`: one rank of the run in `directory`."""
    from core.worker import stop_on_signals

    die_with_launcher()  # first: an orphan must not write to the run
    runs.require_run(directory)
    config = runs.read_config(directory)
    with joined(config.device) as ranks:
        if ranks.world != config.processes:
            raise RunError(f"the run asks for {config.processes} processes, but {ranks.world} were started")
        stop_on_signals(directory)
        echo = print if ranks.rank == 0 else (lambda _line: None)
        return runs.run_worker(directory, init_from=init_from, echo=echo, nice=nice, ranks=ranks)


def launch(directory: Path, config, *, init_from: Path | None, nice: int, echo: Callable[[str], None]) -> str:
    """Start the run's `config.processes` ranks on this machine through torch's launcher API and wait.

    Returns the run's final status. A rank that died (a signal, a crash) fails the run with a message
    that names it; the agent stops the other ranks, and the last checkpoint rank 0 saved is kept."""
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
        # Stop makes them (core.runs.STOP_FILE), and a second Ctrl-C asks again rather than raising
        # inside the agent's shutdown and leaving the ranks mid-save. Other signals still end the ranks.
        signals_to_handle="SIGHUP,SIGQUIT",
    )
    args = ["-m", "core", "worker", str(directory), "--nice", str(nice)]
    if init_from is not None:
        args += ["--init-from", str(init_from)]
    backend = "gloo" if resolve_device(config.device).type == "cpu" else "nccl"
    echo(f"launching {config.processes} processes (torch.distributed, {backend})")
    failure = None
    runs.record_pid(directory)  # alive until the ranks are done and their end is recorded
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


class RankFailed(Exception):
    """A rank's own error, written where torch's launcher reads it (TORCHELASTIC_ERROR_FILE)."""


def report_error(error: str) -> None:
    """Leave `error` for the agent that started this rank (nothing happens outside torchrun)."""
    from torch.distributed.elastic.multiprocessing.errors import ErrorHandler

    with contextlib.suppress(OSError):
        ErrorHandler().record_exception(RankFailed(error))


LOST_PEER = "lost contact: "  # marks a report_lost_peer text: what a rank saw, not what it caused


def report_lost_peer(detail: str) -> None:
    """Tell the launcher that this rank lost another (its collective failed with `detail`)."""
    report_error(f"{LOST_PEER}{detail}")


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
        return runs.read_status(directory).get("status", "queued")
    except (OSError, StudioError):
        return "failed"


def _record(directory: Path, echo, error: str | None = None) -> str:
    error = error or "the processes of this run ended without a result: start again"
    with contextlib.suppress(OSError, StudioError):
        runs.record_failure(directory, error)
    echo(f"failed: {error}")
    return "failed"
