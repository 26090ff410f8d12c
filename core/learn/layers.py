"""Build Model's "Model Layers": nn.Flatten, nn.Linear, nn.ReLU, nn.Sequential and nn.Softmax one at a time.

The tutorial walks a minibatch of three 28x28 images through each layer on its own; here the images are
real FashionMNIST test images, and the sizes and seed are the page's controls.
"""

from dataclasses import dataclass

import torch
from torch import nn

from core.base.errors import BadConfig

MAX_IMAGES = 8  # enough to see a batch dimension, small enough to print
MAX_FEATURES = 64  # layer1's out_features; the tutorial's 20


@dataclass(frozen=True)
class LayerWalk:
    input_image: torch.Tensor  # (n, 28, 28), floats in [0, 1] as ToTensor gives them
    flat_image: torch.Tensor  # (n, 784)
    hidden1: torch.Tensor  # (n, features), before the ReLU
    relu: torch.Tensor  # (n, features), after it
    logits: torch.Tensor  # (n, 10), from seq_modules
    pred_probab: torch.Tensor  # (n, 10), each row sums to 1


def check_sizes(count: int, features: int) -> None:
    if not (isinstance(count, int) and 1 <= count <= MAX_IMAGES):
        raise BadConfig(f"the minibatch takes 1 to {MAX_IMAGES} images, not {count!r}")
    if not (isinstance(features, int) and 1 <= features <= MAX_FEATURES):
        raise BadConfig(f"layer1 takes 1 to {MAX_FEATURES} out_features, not {features!r}")


def walk(images: torch.Tensor, features: int, seed: int) -> LayerWalk:
    """`images`: uint8 (n, 28, 28). Seeded before layer1 is made, then nn.Linear(features, 10), as the
    tutorial's code makes them, so the code shown gives these same numbers. Not under no_grad: the
    tensors print with their grad_fn, as in the tutorial."""
    check_sizes(len(images), features)
    input_image = images.float().div(255)  # what ToTensor gives, without the channel dimension
    with torch.random.fork_rng(devices=[]):  # other sessions' random streams stay their own
        torch.manual_seed(seed)
        flatten = nn.Flatten()
        layer1 = nn.Linear(in_features=28 * 28, out_features=features)
        flat_image = flatten(input_image)
        hidden1 = layer1(flat_image)
        relu = nn.ReLU()(hidden1)
        seq_modules = nn.Sequential(flatten, layer1, nn.ReLU(), nn.Linear(features, 10))
    logits = seq_modules(input_image)
    return LayerWalk(input_image, flat_image, hidden1, relu, logits, nn.Softmax(dim=1)(logits))


def hook_calls(model: nn.Module, x: torch.Tensor) -> tuple[int, int]:
    """How often a forward hook on `model` itself runs for `model(x)` and for `model.forward(x)`.

    Calling the module goes through nn.Module.__call__, which runs the hooks around forward;
    calling forward directly skips them, which is why the tutorial says not to."""
    calls = []
    handle = model.register_forward_hook(lambda *_: calls.append(1))
    try:
        with torch.no_grad():
            model(x)
            via_call = len(calls)
            model.forward(x)
    finally:
        handle.remove()
    return via_call, len(calls) - via_call


def walk_code(first: int, count: int, features: int, seed: int) -> str:
    """The tutorial's Model Layers code, on `count` test images from index `first`."""
    first, last = int(first), int(first) + int(count)
    return f"""input_image = torch.stack([test_data[i][0][0] for i in range({first!r}, {last!r})])
print(input_image.size())  # a minibatch of {int(count)} images, 28x28

torch.manual_seed({int(seed)!r})
flatten = nn.Flatten()
flat_image = flatten(input_image)
print(flat_image.size())

layer1 = nn.Linear(in_features=28*28, out_features={int(features)!r})
hidden1 = layer1(flat_image)
print(hidden1.size())

print(f"Before ReLU: {{hidden1}}\\n\\n")
hidden1 = nn.ReLU()(hidden1)
print(f"After ReLU: {{hidden1}}")

seq_modules = nn.Sequential(
    flatten,
    layer1,
    nn.ReLU(),
    nn.Linear({int(features)!r}, 10)
)
logits = seq_modules(input_image)

softmax = nn.Softmax(dim=1)
pred_probab = softmax(logits)
print(pred_probab.sum(dim=1))  # each row sums to 1"""
