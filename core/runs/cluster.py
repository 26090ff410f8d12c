"""Whether runs train on a Ray cluster, and what the store knows of that cluster, without importing Ray.

`RAY_ADDRESS` set (Ray's own convention: "HEAD:6379", or "auto" on a machine of the cluster) sends every
training run of one process to the cluster (core.runs.remote); unset, runs train here and Ray is never
imported. A run on the cluster holds a place of the device key "cluster", and the cluster's places are
as many runs as its machines hold at once, from the last survey the keepers and the dispatcher wrote in
the store (CLUSTER_FILE): so the fair queue (core.runs.queue) hands runs to Ray as the cluster frees.
"""

import json
import math
import os
from pathlib import Path

from core.base.errors import BadConfig
from core.base.runfiles import DamagedRunFile, read_object
from core.training.config import TrainConfig

ADDRESS_ENV = "RAY_ADDRESS"
RESOURCES_ENV = "STUDIO_RAY_RESOURCES"  # JSON: custom resources every run asks for ({"big-node": 1})
CPUS_ENV = "STUDIO_RAY_CPUS"  # CPUs (and threads) each run asks for; 1 by default
CLUSTER_KEY = "cluster"  # the device key (core.runs.store.device_keys) of every run on the cluster
CLUSTER_FILE = ".cluster.json"  # the last survey of the cluster's machines (core.runs.remote.survey)
CPUS_MAX = 256


def address() -> str | None:
    """The cluster runs train on (RAY_ADDRESS), None to train on this machine."""
    return os.environ.get(ADDRESS_ENV, "").strip() or None


def on_cluster(config) -> bool:
    """Whether `config` trains on the Ray cluster: RAY_ADDRESS is set and it is a one-process training run.
    (An optimizer race, or a run of several processes through torch's launcher, trains on this machine.)"""
    return address() is not None and isinstance(config, TrainConfig) and config.processes == 1


def cpus() -> int:
    text = os.environ.get(CPUS_ENV, "").strip() or "1"
    if not text.isdigit() or not 1 <= int(text) <= CPUS_MAX:
        raise BadConfig(f"{CPUS_ENV} must be a whole number from 1 to {CPUS_MAX}, not {text[:20]!r}")
    return int(text)


def custom_resources() -> dict[str, float]:
    text = os.environ.get(RESOURCES_ENV, "").strip()
    if not text:
        return {}
    try:
        asked = json.loads(text)
    except ValueError:
        asked = None
    if not isinstance(asked, dict) or not all(
        isinstance(k, str) and isinstance(v, int | float) and not isinstance(v, bool) and 0 < v < 1e6
        for k, v in asked.items()
    ):
        raise BadConfig(f'{RESOURCES_ENV} must be a JSON object of positive numbers, like {{"big-node": 1}}')
    return {k: float(v) for k, v in asked.items()}


def wants_gpu(config: TrainConfig, cluster_has_gpus: bool) -> bool:
    """A run on "cuda" asks the cluster for a GPU; on "auto", when some machine of the cluster has one."""
    return config.device.startswith("cuda") or (config.device == "auto" and cluster_has_gpus)


def request(config: TrainConfig, cluster_has_gpus: bool) -> dict[str, float]:
    """What one run asks of a machine, in Ray's resource names: {"CPU": 1, "GPU": 1, "big-node": 1}."""
    need = {"CPU": float(cpus()), **custom_resources()}
    if wants_gpu(config, cluster_has_gpus):
        need["GPU"] = 1.0
    return need


def describe_need(name: str, amount: float) -> str:
    count = f"{amount:g}"
    if name in ("CPU", "GPU"):
        return f"{count} {name}{'' if amount == 1 else 's'}"
    return f"the resource {name!r} ({count})"


def missing(need: dict[str, float], nodes: list[dict]) -> str | None:
    """Why no machine of the cluster can ever take a run asking `need` (in words), None when one can.
    `nodes`: the alive machines, each {"resources": {...}} as Ray gives its totals."""
    if any(all(n["resources"].get(k, 0.0) >= v for k, v in need.items()) for n in nodes):
        return None
    if not nodes:
        return "the cluster has no machine"
    lacking = [k for k, v in need.items() if not any(n["resources"].get(k, 0.0) >= v for n in nodes)]
    if lacking:
        return f"no machine of the cluster has {describe_need(lacking[0], need[lacking[0]])}"
    together = " and ".join(describe_need(k, v) for k, v in need.items())
    return f"no machine of the cluster has {together} together"


def holds(need: dict[str, float], nodes: list[dict]) -> int:
    """How many runs asking `need` the machines hold at once."""
    total = 0
    for node in nodes:
        fits = [math.floor(node["resources"].get(k, 0.0) / v + 1e-9) for k, v in need.items() if v > 0]
        total += min(fits) if fits else 0
    return total


def read_survey(root: Path) -> dict | None:
    try:
        survey = read_object(root / CLUSTER_FILE)
    except (OSError, DamagedRunFile):
        return None
    return survey if isinstance(survey.get("nodes"), list) else None


def cluster_places(config: TrainConfig, root: Path) -> int:
    """The runs like `config` the cluster holds at once, from the store's last survey; 1 before any (the
    run's keeper then says what the cluster lacks, if it lacks anything)."""
    survey = read_survey(root)
    if survey is None:
        return 1
    nodes = [n for n in survey["nodes"] if isinstance(n, dict) and isinstance(n.get("resources"), dict)]
    has_gpus = any(n["resources"].get("GPU", 0) for n in nodes)
    return max(1, holds(request(config, has_gpus), nodes))


def summary(root: Path) -> str:
    """ "Ray cluster at 10.0.0.7:6379 · 3 machines · 24 CPUs · 2 GPUs", from the store's last survey."""
    said = f"Ray cluster at {address()}"
    survey = read_survey(root)
    if survey is None:
        return f"{said} (not reached yet)"
    nodes = [n for n in survey["nodes"] if isinstance(n, dict) and isinstance(n.get("resources"), dict)]
    cpus = sum(float(n["resources"].get("CPU", 0)) for n in nodes)
    gpus = sum(float(n["resources"].get("GPU", 0)) for n in nodes)
    said += f" · {len(nodes)} machine{'' if len(nodes) == 1 else 's'} · {cpus:g} CPUs"
    return said + (f" · {gpus:g} GPUs" if gpus else "")


def where_words(node: dict | None, device: str | None) -> str:
    """ "on node 10.0.0.7 (3f2a9c1e), GPU 1": where a run on the cluster trains, for the pages."""
    if not isinstance(node, dict):
        return ""
    name = f"node {node.get('ip', '?')} ({str(node.get('id', ''))[:8]})"
    gpus = [str(g) for g in node.get("gpus") or []]
    if gpus:
        return f"on {name}, GPU {', '.join(gpus)}"
    return f"on {name}, {device or 'CPU'}".replace(", cpu", ", CPU")
