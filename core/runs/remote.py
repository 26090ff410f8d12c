"""The Ray executor: a run's worker process keeps the run on this machine while an actor on a machine of
the Ray cluster (RAY_ADDRESS) trains it.

The keeper (this module, inside `python -m core worker RUN_DIR`) connects to the cluster, puts
FashionMNIST in Ray's object store once (about 55 MB: a machine needs the project's environment, not the
dataset), asks Ray for an actor with the run's resources (core.runs.cluster.request), and turns what the
actor hands back (core.runs.remote_actor) into the same events `fit` yields here. core.runs.execute then
writes them into the run folder as it does for a local run, so the live view, the runs table, Predict,
export and the queue work unchanged, and no filesystem is shared. Stop and a new learning rate go to the
actor before its next batch; Continue sends the starting weights.

Ray is imported here only, and only when a run goes to the cluster.
"""

import contextlib
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

from core.base.errors import RunError
from core.base.fsutil import atomic_write_json
from core.data.fashion import load_split
from core.model.networks import build_model
from core.runs import cluster
from core.runs.remote_actor import ENDS, RemoteTrainer, weights
from core.runs.store import _write_status
from core.training.config import TrainConfig
from core.training.train import BatchLogged, EpochEnd, Event, Failed, Finished, LrChanged, Started, Stopped

NAMESPACE = "fashionmnist-studio"
REACH_S = 3.0  # how long the cluster's address may take to answer before the run fails in words
TAKE_S = 0.2  # the actor answers `take` at least this often: Stop and a new lr reach it within that
PLACE_CHECK_S = 2.0  # while the actor waits for a machine, how often the cluster is looked at again
SURVEY_EVERY_S = 5.0
KEPT = "the last saved checkpoint is kept: continue from it or start again"
_EVENTS = {"batch": BatchLogged, "lr": LrChanged, "epoch": EpochEnd, "stopped": Stopped, "finished": Finished,
           "failed": Failed}  # fmt: skip


def _check_reachable(addr: str) -> None:
    """RunError in one line when nothing answers at `addr` (ray.init would retry for minutes)."""
    if addr in ("auto", "local"):
        return
    parts = urlsplit(addr if "://" in addr else f"gcs://{addr}")
    host, port = parts.hostname, parts.port or (10001 if parts.scheme == "ray" else 6379)
    hint = (
        f"check that `ray start --head` runs on {host} and that port {port} is open from this machine, "
        f"or unset {cluster.ADDRESS_ENV} to train here"
    )
    if not host:
        raise RunError(f"{cluster.ADDRESS_ENV}={addr!r} names no machine: give HOST:PORT, like 10.0.0.7:6379")
    try:
        socket.create_connection((host, port), timeout=REACH_S).close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        if isinstance(exc, TimeoutError | socket.timeout):
            reason = f"no answer within {REACH_S:g} s"
        where = f"the Ray cluster at {addr} ({cluster.ADDRESS_ENV})"
        raise RunError(f"{where} cannot be reached ({reason}): {hint}") from None


def connect():
    """Ray, connected to the cluster at RAY_ADDRESS (once per process); RunError when it cannot be."""
    addr = cluster.address()
    if addr is None:
        raise RunError(f"{cluster.ADDRESS_ENV} is not set: there is no cluster to train on")
    _check_reachable(addr)
    try:
        import ray  # the only import of Ray: runs on this machine never pay for it
    except ImportError:
        raise RunError(
            f"{cluster.ADDRESS_ENV} is set but Ray is not installed here: `make run` installs it when "
            f"{cluster.ADDRESS_ENV} is set (or pip install -r requirements-test.txt)"
        ) from None

    if not ray.is_initialized():
        try:
            ray.init(address=addr, namespace=NAMESPACE, logging_level="ERROR", log_to_driver=False)
        except Exception as exc:  # Ray raises ConnectionError, RuntimeError, ValueError... for a bad address
            where = f"the Ray cluster at {addr} ({cluster.ADDRESS_ENV})"
            raise RunError(f"{where} refused the connection: {_first_line(exc)}") from None
    return ray


_dataset = []  # this process's FashionMNIST in the object store, put once: [ObjectRef]


def dataset(ray):
    """FashionMNIST's two splits in Ray's object store (about 55 MB), put once per process: the machine
    that trains fetches them from there, so it needs no copy of the dataset."""
    if not _dataset:
        _dataset.append(ray.put((load_split("train"), load_split("test"))))
    return _dataset[0]


def warm_up() -> None:
    """For a spare worker (core.runs.spare) while RAY_ADDRESS is set: Ray imported, the cluster connected
    and the dataset put before a run is handed over (about 0.5 s of its start). A failure is left for the
    run to report, in words."""
    with contextlib.suppress(Exception):
        dataset(connect())


def alive_nodes(ray) -> list[dict]:
    """The cluster's machines that are up: {"ip", "id", "resources"} each (Ray's totals)."""
    return [
        {"ip": n["NodeManagerAddress"], "id": n["NodeID"], "resources": dict(n["Resources"])}
        for n in ray.nodes()
        if n.get("Alive")
    ]


def survey(root: Path, ray=None) -> list[dict]:
    """Write the cluster's machines in the store (core.runs.cluster.CLUSTER_FILE), for its places."""
    nodes = alive_nodes(ray or connect())
    atomic_write_json(root / cluster.CLUSTER_FILE, {"address": cluster.address(), "nodes": nodes,
                                                    "time": time.time()})  # fmt: skip
    return nodes


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return (lines[0] if lines else type(exc).__name__)[:300]


def _ray_words(exc: BaseException) -> str:
    """What Ray said of a dead actor, in one line: the sentence that says why, not its traceback."""
    text = " ".join(str(exc).split())
    for marker in ("The actor died because", "The actor is dead because", "died because"):
        at = text.find(marker)
        if at >= 0:
            return text[at : at + 300]
    return _first_line(exc)


def source(
    directory: Path, echo: Callable[[str], None] = lambda _line: None
) -> Callable[..., Iterator[Event]]:
    """What core.runs.execute.train_run trains from for the run in `directory`: `fit`'s events, from the
    cluster. `echo`: the worker's log (a terminal's, for `python -m core train`)."""

    def events(config: TrainConfig, *, model=None, should_stop=lambda: False, new_lr=lambda: None, **_):
        return cluster_events(
            directory, config, model=model, should_stop=should_stop, new_lr=new_lr, echo=echo
        )

    return events


def cluster_events(
    directory: Path,
    config: TrainConfig,
    *,
    model=None,
    should_stop: Callable[[], bool] = lambda: False,
    new_lr: Callable[[], float | None] = lambda: None,
    echo: Callable[[str], None] = lambda _line: None,
) -> Iterator[Event]:
    """Train `config` on the cluster, yielding `fit`'s events. A run waiting for a machine says why in its
    status (`cluster_wait`); one that leaves while waiting ends Stopped with no model."""
    ray = connect()
    root = directory.parent
    nodes = survey(root, ray)
    need = cluster.request(config, any(n["resources"].get("GPU") for n in nodes))
    custom = {k: v for k, v in need.items() if k not in ("CPU", "GPU")}
    splits = dataset(ray)
    start = weights(model) if model is not None else None
    options = {"num_cpus": need["CPU"], "num_gpus": need.get("GPU", 0.0), "resources": custom}
    actor = (
        ray.remote(RemoteTrainer)
        .options(**options, max_concurrency=4, max_restarts=0)
        .remote(config.to_dict(), start, splits, threads=options["num_cpus"])
    )
    try:
        where = yield from _placed(ray, directory, actor, need, should_stop, echo)
        if where is None:
            return
        echo(f"on the Ray cluster at {cluster.address()}: {cluster.where_words(where, None)[3:]}")
        local = model or build_model(config.model, **config.model_options())  # holds what the actor sends
        step = 0
        while True:
            if should_stop():
                actor.stop.remote()
            lr = new_lr()
            if lr is not None:
                actor.set_lr.remote(lr)
            try:
                messages = ray.get(actor.take.remote(TAKE_S))
            except ray.exceptions.RayActorError as exc:  # its process, or its whole machine, is gone
                node = f"the cluster's machine {where['ip']} (node {where['id'][:8]})"
                yield Failed(f"{node} was lost while training ({_ray_words(exc)}); {KEPT}", step)
                return
            except ray.exceptions.RayError as exc:  # anything else Ray raised: said as it said it
                yield Failed(f"the run on the cluster failed ({_first_line(exc)}); {KEPT}", step)
                return
            for message in messages:
                kind = message.pop("kind")
                state = message.pop("weights", None)
                if state is not None:
                    local.load_state_dict(state)
                step = message.get("step", step)
                if kind == "started":
                    yield Started(config, model=local, **message)
                else:
                    yield _EVENTS[kind](**message)
                if kind in ENDS:
                    return
    finally:
        with contextlib.suppress(Exception):
            ray.kill(actor, no_restart=True)


def _placed(ray, directory: Path, actor, need: dict, should_stop, echo) -> Iterator[Event]:
    """Wait until Ray has placed the actor on a machine; where it is, recorded in status.json. While it
    waits, the run's status says why; None when the run left meanwhile (Stop, Cancel)."""
    asked = actor.start.remote()
    said = None
    checked = 0.0
    while True:
        ready, _ = ray.wait([asked], timeout=0.25)
        if ready:
            where = ray.get(asked)
            _write_status(directory, node=where, cluster=cluster.address(), cluster_wait=None)
            return where
        if should_stop():
            _write_status(directory, error="cancelled while waiting for a machine of the cluster",
                          cluster_wait=None)  # fmt: skip
            yield Stopped(0, 0)
            return None
        if time.monotonic() - checked >= PLACE_CHECK_S:
            checked = time.monotonic()
            lacking = cluster.missing(need, alive_nodes(ray))
            words = (
                f"{lacking}: waiting for one to join"
                if lacking
                else "every machine of the cluster that can take it is busy: waiting for one to free"
            )
            if words != said:
                said = words
                _write_status(directory, cluster_wait=words)
                echo(f"waiting for the cluster: {words}")


def keep_surveying(root: Path, last: float) -> float:
    """For the dispatcher under RAY_ADDRESS: the cluster surveyed again every SURVEY_EVERY_S; when it was."""
    if time.monotonic() - last < SURVEY_EVERY_S:
        return last
    with contextlib.suppress(RunError, OSError):
        survey(root)
    return time.monotonic()
