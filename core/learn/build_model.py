"""Build Model: a model's layers, one image followed through them with forward hooks, and the code for it."""

import itertools
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from core.base.errors import BadConfig
from core.data.fashion import PROJECT_ROOT
from core.model.networks import INPUT_SHAPE, NeuralNetwork, build_model
from core.model.source import DEVICE_LINE, IMPORTS, class_code, class_name

UNTRAINED_SEED = 0  # torch.manual_seed(0) before building: the same untrained weights every time
SHOWN_VALUES = 2  # the tutorial prints param[:2]
# Hooks on a model that other sessions share would also fire for their forward passes: one trace at a time.
_HOOKS_LOCK = threading.Lock()


@dataclass(frozen=True)
class LayerOutput:
    name: str  # as in model.named_modules(): "linear_relu_stack.0"
    kind: str  # the module's class: "Linear"
    output: torch.Tensor  # for a batch of one: (1, 512) or (1, 32, 28, 28)
    negative_inputs: int  # inputs below 0: a ReLU sets exactly these to 0


@dataclass(frozen=True)
class Trace:
    """One image through the model, every leaf module's output in the order they ran."""

    input: torch.Tensor  # (1, 1, 28, 28)
    layers: list[LayerOutput]
    logits: torch.Tensor  # (1, 10)
    probs: torch.Tensor  # (1, 10): nn.Softmax(dim=1)(logits)

    @property
    def predicted(self) -> int:
        return int(self.probs.argmax(1))


@dataclass(frozen=True)
class LayerRow:
    name: str
    kind: str
    output_shape: tuple[int, ...]  # for one (1, 1, 28, 28) input
    params: int  # the layer's own parameters, not its children's
    share: float  # of all the model's parameters


# ---- models ------------------------------------------------------------------------------------------


def untrained_model(name: str, seed: int = UNTRAINED_SEED) -> nn.Module:
    """`torch.manual_seed(seed)` then build: the same initial weights every time, in eval mode.

    fork_rng keeps the seeding local: other users' random draws and training runs keep their streams."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_model(name).eval()


def leaf_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The modules that do the work (no children), named as in named_modules()."""
    return [(name, m) for name, m in model.named_modules() if name and not list(m.children())]


def total_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# ---- following one image -----------------------------------------------------------------------------


def to_input(image: torch.Tensor) -> torch.Tensor:
    """A uint8 (28, 28) FashionMNIST image as ToTensor makes it, batched: float (1, 1, 28, 28) in [0, 1]."""
    return image.reshape(INPUT_SHAPE).float().div(255)


def trace(model: nn.Module, x: torch.Tensor) -> Trace:
    """Run `x` (1, 1, 28, 28) through the model in eval mode under no_grad, keeping each leaf's output.

    The forward hooks are always removed, even when the forward pass fails, and the model's mode restored.
    """
    layers: list[LayerOutput] = []
    with _HOOKS_LOCK:
        handles = [m.register_forward_hook(_keep(name, layers)) for name, m in leaf_modules(model)]
        was_training = model.training
        try:
            model.eval()
            with torch.no_grad():
                logits = model(x)
        finally:
            for handle in handles:
                handle.remove()
            model.train(was_training)
    return Trace(x, layers, logits, nn.Softmax(dim=1)(logits))


def _keep(name: str, layers: list[LayerOutput]):
    def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        negative = int((inputs[0] < 0).sum())
        layers.append(LayerOutput(name, type(module).__name__, output.detach().clone(), negative))

    return hook


def layer_table(model: nn.Module) -> list[LayerRow]:
    """Each leaf layer with its output shape for one 1x28x28 image, its parameters and their share."""
    own = {name: sum(p.numel() for p in m.parameters(recurse=False)) for name, m in leaf_modules(model)}
    total = total_params(model)
    device = next(model.parameters()).device
    shapes = trace(model, torch.zeros(INPUT_SHAPE, device=device)).layers
    return [
        LayerRow(out.name, out.kind, tuple(out.output.shape), own[out.name], own[out.name] / total)
        for out in shapes
    ]


def check_index(value: object, count: int) -> int:
    """A sample index as an int in 0..count-1; anything else raises BadConfig saying what is allowed."""
    allowed = f"the test split has {count:,} images, numbered 0 to {count - 1:,}"
    try:
        index = int(str(value).strip())
    except ValueError:
        raise BadConfig(f"Sample {str(value)[:20]!r} is not a whole number: {allowed}.") from None
    if not 0 <= index < count:
        raise BadConfig(f"Sample {index:,} is out of range: {allowed}.")
    return index


# ---- parameters --------------------------------------------------------------------------------------


def parameters_printout(model: nn.Module) -> str:
    """Exactly what the tutorial's loop prints (PARAMETERS_CODE): each print adds a second line break."""
    return "".join(
        f"Layer: {name} | Size: {param.size()} | Values : {param[:SHOWN_VALUES]} \n\n"
        for name, param in model.named_parameters()
    )


@dataclass(frozen=True)
class UnitWeights:
    """One unit of the MLP's first Linear: its 784 weights as an image, and what it computes on x."""

    unit: int
    image: torch.Tensor  # (28, 28): linear_relu_stack.0.weight[unit].reshape(28, 28)
    bias: float
    by_hand: float  # (weight[unit] * x.flatten()).sum() + bias[unit]
    from_layer: float  # the same unit in the Linear layer's output


def unit_weights(model: nn.Module, x: torch.Tensor, unit: int) -> UnitWeights:
    """The weights of unit `unit` of the first layer, and its output on x (1, 1, 28, 28) computed two ways."""
    if not isinstance(model, NeuralNetwork):
        raise BadConfig("the first layer's weights are drawn as 28×28 images for the MLP only")
    layer = model.linear_relu_stack[0]
    if not 0 <= unit < layer.out_features:
        raise BadConfig(f"unit must be between 0 and {layer.out_features - 1}, not {unit}")
    with torch.no_grad():
        weight, bias = layer.weight[unit].detach(), layer.bias[unit].detach()  # (784,), ()
        by_hand = (weight * x.flatten()).sum() + bias
        from_layer = layer(model.flatten(x))[0, unit]
    return UnitWeights(unit, weight.reshape(28, 28).clone(), float(bias), float(by_hand), float(from_layer))


# ---- pictures ----------------------------------------------------------------------------------------


def feature_mosaic(maps: torch.Tensor, columns: int, scale: int) -> np.ndarray:
    """(C, H, W) feature maps as one uint8 grayscale picture, `columns` maps a row, each pixel `scale` px.

    One min-max for the whole layer, so brighter means larger across all its channels; a 1 px white
    line separates the maps."""
    c, h, w = maps.shape
    rows = -(-c // columns)
    low, high = float(maps.min()), float(maps.max())
    pixels = ((maps - low) / max(high - low, 1e-8) * 255).round().to(torch.uint8)
    pixels = pixels[:, :, None, :, None].expand(c, h, scale, w, scale).reshape(c, h * scale, w * scale)
    cells = torch.full((rows * columns, h * scale + 1, w * scale + 1), 255, dtype=torch.uint8)
    cells[:c, : h * scale, : w * scale] = pixels  # each map with its separator below and to the right
    grid = cells.reshape(rows, columns, h * scale + 1, w * scale + 1).permute(0, 2, 1, 3)
    return grid.reshape(rows * (h * scale + 1), columns * (w * scale + 1))[:-1, :-1].contiguous().numpy()


def diagram_dot(rows: list[LayerRow]) -> str:
    """Graphviz DOT of the layers top to bottom: the input, then every layer with its output shape."""
    lines = [
        "digraph model {",
        '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=11, '
        'color="#8C8A86", fillcolor="#F4F1EC"];',
        '  edge [color="#8C8A86", arrowsize=0.6];',
        f"  input [label={_quote('input' + _BREAK + _shape(INPUT_SHAPE))}, fillcolor=white];",
    ]
    for i, row in enumerate(rows):
        label = f"{row.name}: {row.kind}{_BREAK}→ {_shape(row.output_shape)}"
        if row.params:  # layers with weights stand out: they are what training changes
            label += f"{_BREAK}{row.params:,} parameters"
        fill = ', fillcolor="#FBE3D6"' if row.params else ""
        lines.append(f"  layer{i} [label={_quote(label)}{fill}];")
    chain = ["input", *(f"layer{i}" for i in range(len(rows)))]
    lines += [f"  {a} -> {b};" for a, b in itertools.pairwise(chain)]
    lines.append("}")
    return "\n".join(lines)


_BREAK = "\\n"  # a line break inside a DOT label


def _quote(label: str) -> str:
    # Labels carry DOT's own "\n" line breaks; only a double quote could end the string early.
    return '"' + label.replace('"', "'") + '"'


def _shape(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(n) for n in shape) + ")"


# ---- the code beside each result ---------------------------------------------------------------------


def model_code(name: str, options: dict | None = None, checkpoint: Path | None = None) -> str:
    """The class written out, the device, the model made (seeded, or with a run's weights) and printed,
    as the tutorial's "Define the Class" and "Get Device" do."""
    cls = class_name(name)
    device = [DEVICE_LINE, 'print(f"Using {device} device")']
    lines = [IMPORTS, "", *device, "", "", class_code(name, options), "", ""]
    if checkpoint is None:
        lines += [f"torch.manual_seed({UNTRAINED_SEED})  # the same untrained weights every time"]
        lines += [f"model = {cls}().to(device)"]
    else:
        lines += [
            f"model = {cls}().to(device)",
            f"model.load_state_dict(torch.load({_shown_path(checkpoint)!r}, weights_only=True))",
        ]
    return "\n".join([*lines, "print(model)"])


def _shown_path(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)


def sample_code(index: int) -> str:
    """One test image, as the tutorial's Dataset hands it out, made a batch of one."""
    return (
        "from torchvision import datasets\n"
        "from torchvision.transforms import ToTensor\n\n"
        'test_data = datasets.FashionMNIST(root="data", train=False, download=True, transform=ToTensor())\n'
        f"image, label = test_data[{int(index)}]  # image: (1, 28, 28), values in [0, 1]\n"
        "X = image.unsqueeze(0)  # (1, 1, 28, 28): a batch of one"
    )


def layers_code(rows: list[LayerRow]) -> str:
    """The forward pass spelled out: each leaf layer called in turn on x, with its output shape."""
    lines = ["model.eval()", "with torch.no_grad():", "    x = X  # (1, 1, 28, 28)"]
    lines += [f"    x = {module_expression(row.name)}(x)  # {_shape(row.output_shape)}" for row in rows]
    lines += [
        "logits = x",
        "pred_probab = nn.Softmax(dim=1)(logits)",
        "y_pred = pred_probab.argmax(1)",
        'print(f"Predicted class: {y_pred}")',
    ]
    return "\n".join(lines)


def module_expression(name: str) -> str:
    """Python reaching a module by its name: "linear_relu_stack.1.0" → model.linear_relu_stack[1][0]."""
    parts = ["model"]
    for part in name.split("."):
        parts.append(f"[{part}]" if part.isdigit() else f".{part}")
    return "".join(parts)


PREDICT_CODE = (
    "model.eval()\n"
    "with torch.no_grad():\n"
    "    logits = model(X)  # (1, 10)\n"
    "pred_probab = nn.Softmax(dim=1)(logits)\n"
    "y_pred = pred_probab.argmax(1)\n"
    'print(f"Predicted class: {y_pred}")'
)

PARAMETERS_CODE = (
    'print(f"Model structure: {model}\\n\\n")\n\n'
    "for name, param in model.named_parameters():\n"
    '    print(f"Layer: {name} | Size: {param.size()} | Values : {param[:2]} \\n")'
)


def unit_code(unit: int) -> str:
    return (
        f"w = model.linear_relu_stack[0].weight[{int(unit)}]  # (784,): one unit's weights\n"
        "image_of_w = w.reshape(28, 28)\n"
        f"by_hand = (w * X.flatten()).sum() + model.linear_relu_stack[0].bias[{int(unit)}]"
    )
