"""What trains a run on a machine of a Ray cluster: the actor's class (core.runs.remote asks Ray for one).

It is a plain class, so this module imports no Ray: core.runs.remote wraps it with `ray.remote` in the
keeper, and Ray ships it by reference (module and name) to a machine that has the project's environment.
The run folder stays on the keeper's machine: the actor trains with `fit` (the loop a local worker
runs), on the splits the keeper put in Ray's object store, and hands each event back as a plain dict
(`take`), with the weights at every epoch's end and at a stop, for the keeper to save.
"""

import dataclasses
import queue
import threading

import torch

from core.training.config import TrainConfig
from core.training.train import BatchLogged, EpochEnd, Failed, Finished, LrChanged, Started, Stopped, fit

KINDS = {Started: "started", LrChanged: "lr", BatchLogged: "batch", EpochEnd: "epoch", Stopped: "stopped",
         Finished: "finished", Failed: "failed"}  # fmt: skip
ENDS = ("stopped", "finished", "failed")


def weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The model's state_dict on the CPU: what crosses to the keeper (Ray moves the tensors' bytes)."""
    return {name: value.detach().cpu() for name, value in model.state_dict().items()}


class RemoteTrainer:
    """One run on this machine: `start` trains it in a thread; `take` hands back what happened since the
    last call; `stop` and `set_lr` steer it before its next batch, as a local run's files do."""

    def __init__(self, config: dict, init_weights: dict | None, splits, threads: int = 1):
        self.config = TrainConfig.from_dict(config)
        self.init_weights = init_weights
        self.splits = splits  # ((train images, labels), (test images, labels)), from the object store
        self.threads = max(1, int(threads))
        self.events: queue.Queue = queue.Queue()
        self.stopping = threading.Event()
        self.lr_lock = threading.Lock()
        self.lr: float | None = None
        self.thread: threading.Thread | None = None

    def start(self) -> dict:
        """Begin training in a thread; where it trains (this machine's address, node id, its GPUs)."""
        import ray  # in the actor's process, which Ray started: Ray is there

        context = ray.get_runtime_context()
        where = {
            "ip": ray.util.get_node_ip_address(),
            "id": context.get_node_id(),
            "gpus": [str(g) for g in ray.get_gpu_ids()],
        }
        if self.thread is None:
            self.thread = threading.Thread(target=self._train, name="studio-remote-run", daemon=True)
            self.thread.start()
        return where

    def take(self, wait_s: float = 0.2) -> list[dict]:
        """The events since the last call, waiting up to `wait_s` for the first."""
        got = []
        try:
            got.append(self.events.get(timeout=wait_s))
            while True:
                got.append(self.events.get_nowait())
        except queue.Empty:
            pass
        return got

    def stop(self) -> None:
        self.stopping.set()

    def set_lr(self, lr: float) -> None:
        with self.lr_lock:
            self.lr = float(lr)

    def _new_lr(self) -> float | None:
        with self.lr_lock:
            lr, self.lr = self.lr, None
        return lr

    def _train(self) -> None:
        torch.set_num_threads(self.threads)  # the CPUs Ray gave this run, not every core of the machine
        try:
            model = None
            if self.init_weights is not None:
                from core.model.networks import build_model

                model = build_model(self.config.model, **self.config.model_options())
                model.load_state_dict(self.init_weights)
            events = fit(
                self.config,
                model=model,
                should_stop=self.stopping.is_set,
                new_lr=self._new_lr,
                adapt_threads=False,
                splits=self.splits,
            )
            for event in events:
                self.events.put(self._message(event))
        except Exception as exc:  # a bug: the keeper records it rather than waiting for nothing
            self.events.put({"kind": "failed", "error": f"unexpected error: {type(exc).__name__}: {exc}",
                             "step": 0})  # fmt: skip

    def _message(self, event) -> dict:
        fields = {f.name: getattr(event, f.name) for f in dataclasses.fields(event)}
        if isinstance(event, Started):
            self.model = fields.pop("model")
            fields.pop("config")
        if isinstance(event, EpochEnd | Stopped):
            fields["weights"] = weights(self.model)
        return {"kind": KINDS[type(event)], **fields}
