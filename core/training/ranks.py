"""The rank side of a distributed run: this process's place among the ranks (`Ranks`, `joined`), the
collective timeout, what a rank reports to its launcher, and the checks of how many processes this
machine can start. The training loop (core.training.train) uses it; core.runs.launcher launches the ranks.
"""

import contextlib
import ctypes
import math
import os
import signal
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn

from core.base.device import resolve_device
from core.base.errors import BadConfig, RunError

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
        from torch.nn.parallel import DistributedDataParallel  # loaded by distributed runs only

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
        # way here, 0 in 20 ending with os._exit): core.base.procs.leave ends a rank without that teardown.
        dist.destroy_process_group()


class RankFailed(Exception):
    """A rank's own error, written where torch's launcher reads it (TORCHELASTIC_ERROR_FILE)."""


def report_error(error: str) -> None:
    """Leave `error` for the agent that started this rank (nothing happens outside torchrun)."""
    from torch.distributed.elastic.multiprocessing.errors import ErrorHandler  # torch's agent: ranks only

    with contextlib.suppress(OSError):
        ErrorHandler().record_exception(RankFailed(error))


LOST_PEER = "lost contact: "  # marks a report_lost_peer text: what a rank saw, not what it caused


def report_lost_peer(detail: str) -> None:
    """Tell the launcher that this rank lost another (its collective failed with `detail`)."""
    report_error(f"{LOST_PEER}{detail}")
