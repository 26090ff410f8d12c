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


def layer_lines(name: str, options: dict | None = None) -> dict[str, str]:
    """Each module of the class by its name in named_modules(), and the expression in `__init__` making it
    ("linear_relu_stack.0" → "nn.Linear(28*28, 512)"). A module inside one of these (the ReLU and Dropout
    of an activation with dropout) is found by `line_for`."""
    options = {**MODELS[name].defaults, **(options or {})}
    check_options(name, options)
    return dict(_mlp_layers(**options) if name == "mlp" else _cnn_layers(**options))


def line_for(lines: dict[str, str], module: str) -> str | None:
    """The `__init__` expression that makes `module` or the module that holds it."""
    while module:
        if module in lines:
            return lines[module]
        module = module.rpartition(".")[0]
    return None


def _relu(dropout: float) -> str:
    # Dropout rides with the ReLU and has no weights, so the state_dict keys stay the tutorial's.
    return "nn.ReLU()" if dropout <= 0 else f"nn.Sequential(nn.ReLU(), nn.Dropout({float(dropout)!r}))"


def _mlp_layers(hidden: int, dropout: float) -> list[tuple[str, str]]:
    hidden = int(hidden)
    return [
        ("flatten", "nn.Flatten()"),
        ("linear_relu_stack.0", f"nn.Linear(28*28, {hidden!r})"),
        ("linear_relu_stack.1", _relu(dropout)),
        ("linear_relu_stack.2", f"nn.Linear({hidden!r}, {hidden!r})"),
        ("linear_relu_stack.3", _relu(dropout)),
        ("linear_relu_stack.4", f"nn.Linear({hidden!r}, 10)"),
    ]


def _mlp(hidden: int, dropout: float) -> str:
    layers = dict(_mlp_layers(hidden, dropout))
    stack = "".join(f"            {layers[f'linear_relu_stack.{i}']},\n" for i in range(5))
    return f"""class NeuralNetwork(nn.Module):
    def __init__(self):
        super().__init__()
        self.flatten = {layers["flatten"]}
        self.linear_relu_stack = nn.Sequential(
{stack}        )

    def forward(self, x):
        x = self.flatten(x)
        logits = self.linear_relu_stack(x)
        return logits"""


def _cnn_layers(channels: int, hidden: int, dropout: float) -> list[tuple[str, str]]:
    c1, c2, hidden = int(channels), 2 * int(channels), int(hidden)
    features = [
        f"nn.Conv2d(1, {c1!r}, 3, padding=1, bias=False)",
        f"nn.BatchNorm2d({c1!r})",
        "nn.ReLU()",
        "nn.MaxPool2d(2)",
        f"nn.Conv2d({c1!r}, {c2!r}, 3, padding=1, bias=False)",
        f"nn.BatchNorm2d({c2!r})",
        "nn.ReLU()",
        "nn.MaxPool2d(2)",
    ]
    classifier = [
        "nn.Flatten()",
        f"nn.Linear({c2!r} * 7 * 7, {hidden!r})",
        "nn.ReLU()",
        f"nn.Dropout({float(dropout)!r})",
        f"nn.Linear({hidden!r}, 10)",
    ]
    return [(f"features.{i}", line) for i, line in enumerate(features)] + [
        (f"classifier.{i}", line) for i, line in enumerate(classifier)
    ]


def _cnn(channels: int, hidden: int, dropout: float) -> str:
    layers = dict(_cnn_layers(channels, hidden, dropout))
    c1, c2 = int(channels), 2 * int(channels)
    shapes = {
        0: f"(N, {c1}, 28, 28)",
        3: f"(N, {c1}, 14, 14)",
        4: f"(N, {c2}, 14, 14)",
        7: f"(N, {c2}, 7, 7)",
    }
    features = "".join(
        f"            {layers[f'features.{i}']},{f'  # {shapes[i]}' if i in shapes else ''}\n"
        for i in range(8)
    )
    classifier = "".join(f"            {layers[f'classifier.{i}']},\n" for i in range(5))
    return f"""class SmallCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
{features}        )
        self.classifier = nn.Sequential(
{classifier}        )

    def forward(self, x):
        logits = self.classifier(self.features(x))
        return logits"""
