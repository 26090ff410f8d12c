"""How many runs a device holds at once: its places. A CPU trains one run at a time by default; a GPU as
many as fit its memory for the model and batch asked for (capped); STUDIO_RUNS_PER_DEVICE overrides both."""

import os
from pathlib import Path

import torch

from core.base.device import describe_device, resolve_device
from core.base.errors import BadConfig
from core.model.networks import build_model
from core.runs.cluster import CLUSTER_KEY, cluster_places
from core.training.config import TrainConfig
from core.training.race import RaceConfig

PLACES_ENV = "STUDIO_RUNS_PER_DEVICE"
PLACES_CAP = 8  # a GPU's estimate never goes above this: runs also share its compute
PLACES_MAX = 64  # the most STUDIO_RUNS_PER_DEVICE may ask for
CONTEXT_BYTES = 500 * 2**20  # each process's CUDA context and allocator slack, measured ~300-500 MiB
FLOAT_BYTES = 4
ADAPTIVE = ("adam", "adamw")  # optimizers that keep two more tensors per parameter


def env_places() -> int | None:
    """STUDIO_RUNS_PER_DEVICE as a number, None when unset; BadConfig for anything else."""
    text = os.environ.get(PLACES_ENV, "").strip()
    if not text:
        return None
    if not text.isdigit() or not 1 <= int(text) <= PLACES_MAX:
        raise BadConfig(f"{PLACES_ENV} must be a whole number from 1 to {PLACES_MAX}, not {text[:20]!r}")
    return int(text)


def run_bytes(config: TrainConfig | RaceConfig) -> int:
    """An estimate of the device memory one run of `config` takes: weights, gradients and the optimizer's
    state, the activations of a batch kept for backward (twice, for their gradients), and a context."""
    name = config.model if isinstance(config, TrainConfig) else "mlp"
    options = config.model_options() if isinstance(config, TrainConfig) else {}
    model = build_model(name, **options)
    params = sum(p.numel() for p in model.parameters())
    sizes: list[int] = []
    hooks = [m.register_forward_hook(lambda _m, _i, out: sizes.append(out.numel())) for m in model.modules()]
    with torch.no_grad():
        model.eval()(torch.zeros(1, 1, 28, 28))
    for hook in hooks:
        hook.remove()
    optimizer = getattr(config, "optimizer", "sgd")
    per_param = 4 if optimizer in ADAPTIVE else 3  # weight, gradient, and momentum or two moments
    batch = getattr(config, "batch_size", 64)
    return FLOAT_BYTES * (params * per_param + 2 * batch * sum(sizes)) + CONTEXT_BYTES


def places_for(
    config: TrainConfig | RaceConfig, device: torch.device, memory_bytes: int | None = None
) -> int:
    """The runs like `config` that `device` holds at once. `memory_bytes`: the device's memory (tests give
    a made-up one; None: asked of the device)."""
    chosen = env_places()
    if chosen is not None:
        return chosen
    if device.type == "cpu":
        return 1  # its cores are shared by every run already: two runs would each go at half speed
    memory = memory_bytes if memory_bytes is not None else describe_device(device).memory_bytes
    if not memory:
        return 1
    return max(1, min(PLACES_CAP, memory // run_bytes(config)))


def places_of(config: TrainConfig | RaceConfig, keys: list[str] | tuple[str, ...], root: Path) -> int:
    """The places of the device a run's keys name (core.runs.store.device_keys): a device of this machine's
    (places_for), or the Ray cluster's (core.runs.cluster.cluster_places)."""
    if keys[0] == CLUSTER_KEY:
        return cluster_places(config, root)
    return places_for(config, resolve_device(keys[0]))
