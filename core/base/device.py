"""The only place that asks torch which accelerator exists."""

import os
from dataclasses import dataclass

import torch

from core.base.errors import BadConfig


@dataclass(frozen=True)
class DeviceInfo:
    type: str  # "cpu", "cuda", "mps", "xpu", ...
    name: str  # human-readable, e.g. "NVIDIA H100 80GB HBM3" or "CPU (2 threads)"
    memory_bytes: int | None  # total device memory where known


def accelerator_type() -> str | None:
    """The accelerator torch can use here, or None for CPU only."""
    acc = torch.accelerator.current_accelerator(check_available=True)
    return acc.type if acc is not None else None


def available_devices() -> list[str]:
    """Device names a user may pick: "auto", "cpu" and the accelerator if there is one."""
    acc = accelerator_type()
    return ["auto", "cpu"] + ([acc] if acc else [])


def resolve_device(name: str = "auto") -> torch.device:
    """Turn a user's choice ("auto", "cpu", "cuda", "cuda:1", "mps", ...) into a usable device."""
    if name == "auto":
        return torch.device(accelerator_type() or "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise BadConfig(f"unknown device {name!r}: choose one of {available_devices()}") from exc
    if device.type != "cpu" and device.type != accelerator_type():
        raise BadConfig(
            f"device {name!r} is not available on this machine: choose one of {available_devices()}"
        )
    count = 1 if device.type == "cpu" else torch.accelerator.device_count()  # torch counts the CPU as one
    if device.index is not None and device.index >= count:
        raise BadConfig(
            f"device {name!r} does not exist: this machine has {count} {device.type} device(s), "
            f"numbered from 0; choose one of {available_devices()}"
        )
    return device


def describe_device(device: torch.device) -> DeviceInfo:
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return DeviceInfo("cuda", props.name, props.total_memory)
    if device.type == "cpu":
        return DeviceInfo("cpu", f"CPU ({torch.get_num_threads()} threads)", _system_memory())
    return DeviceInfo(device.type, device.type.upper(), None)


def _system_memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None
