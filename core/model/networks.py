"""Models: the tutorial's NeuralNetwork (same parameter names), a small CNN, and a registry."""

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import torch
from torch import nn

NUM_CLASSES = 10
INPUT_SHAPE = (1, 1, 28, 28)  # (N, C, H, W) of one FashionMNIST image


class NeuralNetwork(nn.Module):
    """The quickstart's MLP. Layers sit at indices 0, 2, 4 of `linear_relu_stack`, so the
    state_dict keys are the tutorial's (`linear_relu_stack.0.weight`, ...). Dropout, when asked
    for, rides with the ReLUs and adds no parameters, so the keys never change."""

    def __init__(self, hidden: int = 512, dropout: float = 0.0):
        super().__init__()
        self.flatten = nn.Flatten()
        self.linear_relu_stack = nn.Sequential(
            nn.Linear(28 * 28, hidden),
            _activation(dropout),
            nn.Linear(hidden, hidden),
            _activation(dropout),
            nn.Linear(hidden, NUM_CLASSES),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.flatten(x)  # (N, 784)
        return self.linear_relu_stack(x)  # (N, 10) logits


class SmallCNN(nn.Module):
    """Two conv blocks and a small head: ~0.4 M parameters, above 91% in a few epochs."""

    def __init__(self, channels: int = 32, hidden: int = 128, dropout: float = 0.25):
        super().__init__()
        c1, c2 = channels, channels * 2
        self.features = nn.Sequential(
            nn.Conv2d(1, c1, 3, padding=1, bias=False),
            nn.BatchNorm2d(c1),
            nn.ReLU(),
            nn.MaxPool2d(2),  # (N, c1, 14, 14)
            nn.Conv2d(c1, c2, 3, padding=1, bias=False),
            nn.BatchNorm2d(c2),
            nn.ReLU(),
            nn.MaxPool2d(2),  # (N, c2, 7, 7)
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(c2 * 7 * 7, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, NUM_CLASSES),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))  # (N, 10) logits


def _activation(dropout: float) -> nn.Module:
    if dropout <= 0:
        return nn.ReLU()
    return nn.Sequential(nn.ReLU(), nn.Dropout(dropout))


@dataclass(frozen=True)
class ModelSpec:
    name: str
    title: str
    factory: Callable[..., nn.Module]
    defaults: dict


MODELS: dict[str, ModelSpec] = {
    "mlp": ModelSpec("mlp", "MLP (tutorial NeuralNetwork)", NeuralNetwork, {"hidden": 512, "dropout": 0.0}),
    "cnn": ModelSpec("cnn", "Small CNN", SmallCNN, {"channels": 32, "hidden": 128, "dropout": 0.25}),
}


# The widest each size option may be, checked before anything is allocated: a checkpoint's sidecar
# or a bare state_dict's shapes choose these numbers, and hidden=10_000_000 would ask for 400 TB.
# `hidden` matches what the Train form (TrainConfig) allows.
SIZE_LIMITS = {"hidden": 4096, "channels": 256}
# All of a model's float32 weights must fit one checkpoint (core.model.checkpoint.MAX_CHECKPOINT_BYTES, 64 MB)
# with room for the archive: an MLP with hidden=4096 (20 M parameters, 80 MB) could train but not load.
MAX_PARAMS = 15_000_000


def build_model(name: str, **cfg) -> nn.Module:
    """Create a registered model; unknown names or options raise ValueError naming the choices."""
    check_options(name, cfg)
    spec = MODELS[name]
    return spec.factory(**{**spec.defaults, **cfg})


def check_options(name: str, cfg: dict) -> None:
    """Raise ValueError, in one line, for an unknown model, an unknown option or a value out of range."""
    if not isinstance(name, str) or name not in MODELS:
        raise ValueError(f"unknown model {_shown(name)}: choose one of {sorted(MODELS)}")
    spec = MODELS[name]
    unknown = set(cfg) - set(spec.defaults)
    if unknown:
        shown = ", ".join(_shown(option) for option in sorted(unknown))
        raise ValueError(f"model {name!r} has no option(s) {shown}: it takes {sorted(spec.defaults)}")
    for option, value in cfg.items():
        _check_option(option, value)
    count = parameter_count(name, tuple(sorted(cfg.items())))
    if count > MAX_PARAMS:
        raise ValueError(
            f"this {name.upper()} would have {count:,} parameters ({count * 4 / 2**20:.0f} MB of weights), "
            f"more than a checkpoint can hold ({MAX_PARAMS:,}): choose a smaller size"
        )


@lru_cache(maxsize=256)
def parameter_count(name: str, options: tuple[tuple[str, object], ...] = ()) -> int:
    """How many parameters the model would have, counted on the meta device (nothing is allocated)."""
    spec = MODELS[name]
    with torch.device("meta"):
        model = spec.factory(**{**spec.defaults, **dict(options)})
    return sum(p.numel() for p in model.parameters())


def _check_option(option: str, value: object) -> None:
    # bool is an int subclass, and NaN fails every comparison, so both land in the refusals.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{option} must be a number, not {_shown(value)}")
    if option == "dropout" and not 0 <= value < 1:
        raise ValueError(f"dropout must be in [0, 1), not {_shown(value)}")
    if option in SIZE_LIMITS and not (isinstance(value, int) and 1 <= value <= SIZE_LIMITS[option]):
        raise ValueError(
            f"{option} must be a whole number from 1 to {SIZE_LIMITS[option]}, not {_shown(value)}"
        )


def _shown(value: object) -> str:
    text = repr(value) if isinstance(value, int | float | str) else type(value).__name__
    return text if len(text) <= 40 else text[:37] + "..."


def model_options(name: str, **cfg) -> dict:
    """The full option dict (defaults filled in) that rebuilds the same model."""
    build_model(name, **cfg)  # validates
    return {**MODELS[name].defaults, **cfg}


def flops_per_sample(model: nn.Module) -> int:
    """Forward-pass FLOPs (2 per multiply-add) of the Linear and Conv2d layers for one image."""
    total = 0
    hooks = []

    def linear_hook(mod, _inp, out):
        nonlocal total
        total += 2 * mod.in_features * mod.out_features

    def conv_hook(mod, _inp, out):
        nonlocal total
        k = mod.kernel_size[0] * mod.kernel_size[1] * (mod.in_channels // mod.groups)
        total += 2 * k * out.shape[1] * out.shape[2] * out.shape[3]

    for m in model.modules():
        if isinstance(m, nn.Linear):
            hooks.append(m.register_forward_hook(linear_hook))
        elif isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(conv_hook))
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        with torch.no_grad():
            model(torch.zeros(INPUT_SHAPE, device=device))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return total
