"""Optimizer races: 2 to 6 contenders trained from the same initial weights on the same images in the same
order, taking turns one step each, so that only the chosen difference (optimizer, learning rate, batch
size) separates their curves.

`run_race` yields events like core.training.train.fit does; the worker writes them to the run directory.
"""

import copy
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from core.base.device import resolve_device
from core.base.errors import BadConfig
from core.data.fashion import TensorBatches, load_split
from core.model.networks import MODELS, build_model
from core.training.config import OPTIMIZERS
from core.training.train import DIVERGED_LOSS, EVAL_BATCH_SIZE, evaluate

MAX_CONTENDERS = 6
MAX_STEPS = 2000
LOG_EVERY = 10  # steps between logged losses: 200 points a curve at the most
SMOOTH = 20  # the final loss is the mean of each contender's last SMOOTH batch losses


@dataclass(frozen=True)
class Contender:
    label: str
    optimizer: str = "sgd"
    lr: float = 1e-3
    momentum: float = 0.0
    weight_decay: float = 0.0
    batch_size: int = 64

    def check(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise BadConfig(f"{self.label}: optimizer must be one of {', '.join(OPTIMIZERS)}")
        if not (math.isfinite(self.lr) and 0 < self.lr <= 10):
            raise BadConfig(f"{self.label}: the learning rate must be above 0 and at most 10")
        if not 0 <= self.momentum < 1:
            raise BadConfig(f"{self.label}: momentum must be in [0, 1)")
        if not (math.isfinite(self.weight_decay) and 0 <= self.weight_decay <= 1):
            raise BadConfig(f"{self.label}: weight decay must be between 0 and 1")
        if not 1 <= self.batch_size <= 4096:
            raise BadConfig(f"{self.label}: the batch size must be between 1 and 4096")


@dataclass(frozen=True)
class RaceConfig:
    contenders: tuple[Contender, ...]
    model: str = "mlp"
    steps: int = 500  # optimizer steps per contender
    seed: int = 0
    device: str = "auto"
    kind: str = field(default="race", init=False)  # how a run directory tells a race from a training run

    def __post_init__(self):
        if self.model not in MODELS:
            raise BadConfig(f"model must be one of {sorted(MODELS)}, not {self.model!r}")
        if not 2 <= len(self.contenders) <= MAX_CONTENDERS:
            raise BadConfig(f"a race needs 2 to {MAX_CONTENDERS} contenders, not {len(self.contenders)}")
        if not 1 <= self.steps <= MAX_STEPS:
            raise BadConfig(f"steps must be between 1 and {MAX_STEPS:,}")
        labels = [c.label for c in self.contenders]
        if len(set(labels)) != len(labels):
            raise BadConfig("each contender needs a label of its own")
        for contender in self.contenders:
            contender.check()

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "RaceConfig":
        if not isinstance(data, dict) or data.get("kind") != "race":
            raise BadConfig("not a race configuration")
        values = {k: v for k, v in data.items() if k != "kind"}
        try:
            contenders = tuple(Contender(**c) for c in values.pop("contenders"))
            return cls(contenders=contenders, **values)
        except (TypeError, KeyError, AttributeError) as exc:
            raise BadConfig(f"a damaged race configuration ({exc})") from exc


def _sgd(lr: float, momentum: float = 0.0) -> Contender:
    return Contender(f"SGD lr={lr:g}" + (f" momentum={momentum:g}" if momentum else ""), "sgd", lr, momentum)


# Ready-made races: each changes one thing.
READY: dict[str, tuple[Contender, ...]] = {
    "Optimizers": (
        Contender("SGD", "sgd", 0.05),
        Contender("SGD + momentum 0.9", "sgd", 0.05, momentum=0.9),
        Contender("Adam", "adam", 1e-3),
        Contender("AdamW", "adamw", 1e-3, weight_decay=1e-2),
    ),
    "Learning rates": tuple(_sgd(lr, 0.9) for lr in (1e-4, 1e-3, 1e-2, 1e-1, 1.0)),
    "Batch sizes": tuple(
        Contender(f"batch {b}", "sgd", 0.05, momentum=0.9, batch_size=b) for b in (16, 64, 256)
    ),
}


# ---- events ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RaceStarted:
    device: str
    labels: list[str]


@dataclass(frozen=True)
class RaceLogged:
    step: int
    losses: list[float | None]  # per contender, this step's batch loss; None once it has diverged


@dataclass(frozen=True)
class RaceResult:
    label: str
    final_loss: float | None  # the mean of its last SMOOTH batch losses; None if it diverged
    test_acc: float | None
    test_loss: float | None
    diverged_at: int | None  # the step whose loss blew up, if any
    seconds: float  # its own training time


@dataclass(frozen=True)
class RaceFinished:
    results: list[RaceResult]
    stopped: bool  # stopped early by the user: the results are for the steps done


Event = RaceStarted | RaceLogged | RaceFinished


# ---- the race --------------------------------------------------------------------------------------------


class _Runner:
    """One contender: its copy of the initial model, its optimizer and its own walk through the images."""

    def __init__(self, contender: Contender, model: nn.Module, order: torch.Tensor, images, labels):
        self.contender, self.model = contender, model
        self.optimizer = _optimizer(contender, model)
        self.order, self.images, self.labels = order, images, labels  # one shared permutation
        self.position = 0
        self.losses: list[float] = []
        self.diverged_at: int | None = None
        self.seconds = 0.0

    def batch_indices(self) -> torch.Tensor:
        """The next batch_size indices of the shared permutation, wrapping around at its end."""
        size, n = self.contender.batch_size, len(self.order)
        idx = (torch.arange(self.position, self.position + size) % n).to(self.order.device)
        self.position = (self.position + size) % n
        return self.order[idx]

    def step(self, step: int) -> float | None:
        if self.diverged_at is not None:
            return None
        start = time.perf_counter()
        index = self.batch_indices()
        x = self.images[index].unsqueeze(1).float().div_(255)  # (B, 1, 28, 28)
        loss = F.cross_entropy(self.model(x), self.labels[index])
        value = loss.item()
        if not math.isfinite(value) or value > DIVERGED_LOSS:
            self.diverged_at = step
            return None
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        self.losses.append(value)
        self.seconds += time.perf_counter() - start
        return value


def _optimizer(c: Contender, model: nn.Module) -> torch.optim.Optimizer:
    if c.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay)
    cls = torch.optim.Adam if c.optimizer == "adam" else torch.optim.AdamW
    return cls(model.parameters(), lr=c.lr, weight_decay=c.weight_decay)


def prepare_runners(config: RaceConfig, device: torch.device) -> list[_Runner]:
    """Every contender gets a copy of one seeded model and the same permutation of the training images."""
    images, labels = load_split("train")
    images, labels = images.to(device), labels.to(device)
    torch.manual_seed(config.seed)
    initial = build_model(config.model).to(device)
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(config.seed)).to(device)
    runners = []
    for contender in config.contenders:
        model = copy.deepcopy(initial)
        model.train()
        runners.append(_Runner(contender, model, order, images, labels))
    return runners


def run_race(config: RaceConfig, *, should_stop: Callable[[], bool] = lambda: False) -> Iterator[Event]:
    """Advance every contender one step in turn, `config.steps` times; log every LOG_EVERY steps."""
    device = resolve_device(config.device)
    runners = prepare_runners(config, device)
    yield RaceStarted(str(device), [r.contender.label for r in runners])
    stopped = False
    for step in range(1, config.steps + 1):
        if should_stop():
            stopped = True
            break
        losses = [runner.step(step) for runner in runners]
        if step == 1 or step % LOG_EVERY == 0 or step == config.steps:
            yield RaceLogged(step, losses)
        if all(r.diverged_at is not None for r in runners):
            break
    yield RaceFinished([_result(r, device) for r in runners], stopped)


def _result(runner: _Runner, device: torch.device) -> RaceResult:
    c = runner.contender
    if runner.diverged_at is not None:
        return RaceResult(c.label, None, None, None, runner.diverged_at, runner.seconds)
    test_x, test_y = load_split("test")
    result = evaluate(runner.model, TensorBatches(test_x, test_y, batch_size=EVAL_BATCH_SIZE, device=device))
    recent = runner.losses[-SMOOTH:]
    final = sum(recent) / len(recent) if recent else None
    return RaceResult(c.label, final, result.acc, result.loss, None, runner.seconds)
