"""TrainConfig: everything that defines a run, with the range of every number (LIMITS) that the form,
the command line and the worker all check against, and the presets."""

import dataclasses
import math
from dataclasses import asdict, dataclass, field

from core.base.errors import BadConfig
from core.data.augment import Augment
from core.model.networks import MODELS, SIZE_LIMITS, check_options

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "cosine")


@dataclass(frozen=True)
class Limit:
    """The values a numeric TrainConfig field may take; the form and the CLI check against these too."""

    low: float
    high: float
    whole: bool = False  # a whole number (int) rather than any number
    low_open: bool = False  # `low` itself is excluded
    high_open: bool = False

    def allows(self, value) -> bool:
        if isinstance(value, bool) or not isinstance(value, int if self.whole else int | float):
            return False
        if isinstance(value, float) and not math.isfinite(value):  # an int is finite, and may be too
            return False  # long for a float (10**400 overflows math.isfinite): the comparisons take it
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return above and below

    def describe(self) -> str:
        """ "between 1 and 1000", "above 0 and at most 1e+06", ..."""
        low, high = self._show(self.low), self._show(self.high)
        if not (self.low_open or self.high_open):
            return f"between {low} and {high}"
        low = f"above {low}" if self.low_open else f"at least {low}"
        high = f"below {high}" if self.high_open else f"at most {high}"
        return f"{low} and {high}"

    def _show(self, bound: float) -> str:
        return str(int(bound)) if self.whole else f"{bound:g}"


# One source for every range: TrainConfig, `python -m core train`'s arguments and the Train form.
# lr and weight_decay reach float32 optimizer state; far below its 3.4e38 limit, any value that trains.
LIMITS: dict[str, Limit] = {
    "epochs": Limit(1, 1000, whole=True),
    "batch_size": Limit(1, 65536, whole=True),
    "lr": Limit(0, 1e6, low_open=True),
    "momentum": Limit(0, 1, high_open=True),
    "weight_decay": Limit(0, 1),
    "seed": Limit(0, 2**32 - 1, whole=True),  # what numpy accepts too; torch overflows past 2**63
    "limit_batches": Limit(1, 10**9, whole=True),
    "log_every": Limit(1, 10**9, whole=True),
    "hidden": Limit(1, SIZE_LIMITS["hidden"], whole=True),
    "dropout": Limit(0, 1, high_open=True),
    "processes": Limit(
        1, 256, whole=True
    ),  # the machine's own limit is checked at start (core.runs.launcher)
}
OPTIONAL = ("limit_batches", "hidden", "dropout")  # None: no cap, or the model's own default


def shown_value(value) -> str:
    """`value` for an error message, cut short: a whole number of thousands of digits has no repr."""
    if isinstance(value, int) and value.bit_length() > 64:
        return f"a number of {len(str(value)) if value.bit_length() < 14000 else 'thousands of'} digits"
    return f"{value!r:.40}"


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a run; flows unchanged from the form to the worker to the sidecar."""

    model: str = "mlp"
    hidden: int | None = None  # None: the model's own default (512 for the tutorial MLP)
    dropout: float | None = None  # None: the model's own default
    epochs: int = 5
    batch_size: int = 64
    lr: float = 1e-3
    optimizer: str = "sgd"
    momentum: float = 0.0
    weight_decay: float = 0.0
    lr_schedule: str = "constant"
    seed: int = 0
    device: str = "auto"
    limit_batches: int | None = None  # cap on training batches per epoch (tests, smoke runs)
    augment: Augment = field(default_factory=Augment)
    log_every: int = 50  # batches between BatchLogged events
    processes: int = 1  # DistributedDataParallel ranks that train it together (core.runs.launcher)

    def __post_init__(self):
        checks = [
            (self.model in MODELS, f"model must be one of {sorted(MODELS)}, not {self.model!r}"),
            (self.optimizer in OPTIMIZERS, f"optimizer must be one of {OPTIMIZERS}"),
            (self.lr_schedule in SCHEDULES, f"lr_schedule must be one of {SCHEDULES}"),
            (isinstance(self.device, str), "device must be a device name such as cpu or cuda"),
            (isinstance(self.augment, Augment), "augment must be an augmentation setting"),
        ]
        for name, limit in LIMITS.items():
            value = getattr(self, name)
            if not (value is None and name in OPTIONAL) and not limit.allows(value):
                kind = "a whole number" if limit.whole else "a number"
                checks.append((False, f"{name} must be {kind} {limit.describe()}, not {shown_value(value)}"))
        if isinstance(self.batch_size, int) and isinstance(self.processes, int):
            checks.append(
                (
                    self.batch_size >= self.processes,
                    f"batch_size ({self.batch_size}) must be at least the number of processes "
                    f"({self.processes}): each process takes its share of every batch",
                )
            )
        for ok, message in checks:
            if not ok:
                raise BadConfig(message)
        try:  # the options together, e.g. a hidden size whose weights would not fit a checkpoint
            check_options(self.model, self.model_options())
        except ValueError as exc:
            raise BadConfig(str(exc)) from exc

    def model_options(self) -> dict:
        """Options for build_model: the model's defaults, overridden by what this config sets."""
        options = dict(MODELS[self.model].defaults)
        if self.hidden is not None:
            options["hidden"] = self.hidden
        if self.dropout is not None:
            options["dropout"] = self.dropout
        return options

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise BadConfig(f"unknown config field(s): {sorted(unknown)}")
        values = dict(data)
        if isinstance(values.get("augment"), dict):
            values["augment"] = Augment(**values["augment"])
        return cls(**values)

    def replace(self, **changes) -> "TrainConfig":
        return dataclasses.replace(self, **changes)


PRESETS: dict[str, TrainConfig] = {
    # Exactly the quickstart: SGD, lr 1e-3, batch 64, 5 epochs, no momentum.
    "tutorial": TrainConfig(),
    # AdamW with a cosine decay reaches ~89% (MLP) and ~92% (CNN) in 5 epochs on a CPU.
    "recommended": TrainConfig(
        optimizer="adamw", lr=2e-3, batch_size=128, weight_decay=1e-4, lr_schedule="cosine", dropout=0.1
    ),
}


def preset(name: str, **overrides) -> TrainConfig:
    if name not in PRESETS:
        raise BadConfig(f"preset must be one of {sorted(PRESETS)}, not {name!r}")
    return PRESETS[name].replace(**overrides)


# ---- events -------------------------------------------------------------------------------------
