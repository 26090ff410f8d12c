"""The models' classes as a learner writes them: Python source that builds what core.model.networks builds.

The default MLP is the tutorial's `NeuralNetwork`, line for line. Other sizes put their numbers in as
literals (no constructor arguments to look up), so the class reads as one model, the one on the page.
Seeded the same way, the class built from this source has the same parameters, in the same order, with
the same initial values as `build_model(name, **options)` (a unit test holds that).
"""

from core.model.networks import MODELS, check_options

DEVICE_LINE = (  # the tutorial's line: CUDA, MPS, ... whatever accelerator there is, else the CPU
    'device = torch.accelerator.current_accelerator().type if torch.accelerator.is_available() else "cpu"'
)
IMPORTS = "import torch\nfrom torch import nn"


def class_name(name: str) -> str:
    return MODELS[name].factory.__name__


def class_code(name: str, options: dict | None = None) -> str:
    """The class definition of model `name` with `options` (a run's model options; None: the defaults)."""
    options = {**MODELS[name].defaults, **(options or {})}
    check_options(name, options)
    return _mlp(**options) if name == "mlp" else _cnn(**options)


def _relu(dropout: float) -> str:
    # Dropout rides with the ReLU and has no weights, so the state_dict keys stay the tutorial's.
    return "nn.ReLU()" if dropout <= 0 else f"nn.Sequential(nn.ReLU(), nn.Dropout({float(dropout)!r}))"


def _mlp(hidden: int, dropout: float) -> str:
    hidden = int(hidden)
    return f"""class NeuralNetwork(nn.Module):
    def __init__(self):
        super().__init__()
        self.flatten = nn.Flatten()
        self.linear_relu_stack = nn.Sequential(
            nn.Linear(28*28, {hidden!r}),
            {_relu(dropout)},
            nn.Linear({hidden!r}, {hidden!r}),
            {_relu(dropout)},
            nn.Linear({hidden!r}, 10),
        )

    def forward(self, x):
        x = self.flatten(x)
        logits = self.linear_relu_stack(x)
        return logits"""


def _cnn(channels: int, hidden: int, dropout: float) -> str:
    c1, c2, hidden = int(channels), 2 * int(channels), int(hidden)
    return f"""class SmallCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, {c1!r}, 3, padding=1, bias=False),  # (N, {c1}, 28, 28)
            nn.BatchNorm2d({c1!r}),
            nn.ReLU(),
            nn.MaxPool2d(2),  # (N, {c1}, 14, 14)
            nn.Conv2d({c1!r}, {c2!r}, 3, padding=1, bias=False),  # (N, {c2}, 14, 14)
            nn.BatchNorm2d({c2!r}),
            nn.ReLU(),
            nn.MaxPool2d(2),  # (N, {c2}, 7, 7)
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),  # (N, {c2 * 7 * 7})
            nn.Linear({c2 * 7 * 7!r}, {hidden!r}),
            nn.ReLU(),
            nn.Dropout({float(dropout)!r}),
            nn.Linear({hidden!r}, 10),
        )

    def forward(self, x):
        logits = self.classifier(self.features(x))
        return logits"""
