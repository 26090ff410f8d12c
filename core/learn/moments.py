"""Moments to predict: a question a Learn page asks before it shows the answer, and how a guess is judged.

The answer is always computed by PyTorch from the page's current controls, like every number on these pages:
a guess is compared with it, never with a stored string. A guess is text the learner typed or an option
they picked; it is parsed, never executed.
"""

import math
import re
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.data import DataLoader

SHAPE_MAX_DIMS = 8


@dataclass(frozen=True)
class Moment:
    """One question. kind: "shape" (a guess like "6, 3"), "number" (within `tolerance`, relative, or
    `absolute`), or "choice" (one of `options`)."""

    id: str
    question: str
    kind: str
    why: str  # one sentence on why the answer is what it is
    options: tuple[str, ...] = ()
    tolerance: float = 0.0
    absolute: float = 0.0


class BadGuess(ValueError):
    """A guess that cannot be read as the kind of answer the moment asks for; the message says why."""


def parse_shape(text: str) -> tuple[int, ...]:
    """ "6, 3", "(6, 3)", "6x3", "[6, 3]" or "torch.Size([6, 3])" as (6, 3); "()" as a scalar's ()."""
    body = text.strip()
    body = re.sub(r"^torch\.Size\(\s*(.*)\s*\)$", r"\1", body)
    body = body.strip().strip("()[]").strip()
    if not body:
        return ()
    parts = [p.strip() for p in re.split(r"[,x×\s]+", body) if p.strip()]
    if len(parts) > SHAPE_MAX_DIMS or not all(p.isdigit() and len(p) <= 9 for p in parts):
        raise BadGuess(f"{text.strip()[:40]!r} is not a shape: write sizes like 6, 3")
    return tuple(int(p) for p in parts)


def parse_number(text: str) -> float:
    cleaned = text.strip().replace(",", "").replace("_", "")
    try:
        value = float(cleaned) if len(cleaned) <= 40 else math.nan
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise BadGuess(f"{text.strip()[:40]!r} is not a number")
    return value


def is_right(moment: Moment, guess: str, answer) -> bool:
    """Whether `guess` (as typed, or the option picked) is the answer; BadGuess if it cannot be read."""
    if moment.kind == "shape":
        return parse_shape(guess) == tuple(answer)
    if moment.kind == "number":
        value = parse_number(guess)
        return math.isclose(value, float(answer), rel_tol=moment.tolerance, abs_tol=moment.absolute)
    if guess not in moment.options:
        raise BadGuess(f"pick one of: {', '.join(moment.options)}")
    return guess == answer


def shown(moment: Moment, answer) -> str:
    """The answer as the page says it."""
    if moment.kind == "shape":
        return str(tuple(answer))
    if moment.kind == "number":
        return f"{answer:,}" if isinstance(answer, int) else f"{answer:.4g}"
    return str(answer)


# ---- the moments, and their answers from PyTorch ---------------------------------------------------------

JOIN_SHAPE = Moment(
    "tensors-join",
    "What shape will `joined` have?",
    "shape",
    "`torch.cat` lays the copies end to end along a dimension they already have, so that size adds up; "
    "`torch.stack` makes a new dimension of length the number of copies.",
)
NUMPY_SHARED = Moment(
    "tensors-numpy",
    "After `t.add_(…)`, what does `n` (made by `t.numpy()` before) hold?",
    "choice",
    "A CPU tensor and the NumPy array made from it share one block of memory: an in-place change to one "
    "is a change to both.",
    options=("ones, as before", "the added values, like t", "an error: n is out of date"),
)
FLATTEN_SHAPE = Moment(
    "build-flatten",
    "`flat_image = flatten(input_image)` on the minibatch above: what is `flat_image.size()`?",
    "shape",
    "Flatten keeps dimension 0, the minibatch, and lays out everything after it in one row: 28 × 28 = 784.",
)
LINEAR_PARAMETERS = Moment(
    "build-linear",
    "How many parameters, weights and biases, does `layer1 = nn.Linear(in_features=28*28, out_features=…)` "
    "above hold?",
    "number",
    "A weight for each input of each output (784 × out_features), and a bias for each output.",
)
TWO_BACKWARDS = Moment(
    "autograd-twice",
    "`loss.backward(retain_graph=True)` twice in a row, with no `zero_grad()`: what is `w.grad` then?",
    "choice",
    "`backward()` adds into `.grad` rather than replacing it, so a second call doubles it: that is why "
    "training loops call `optimizer.zero_grad()` before each one.",
    options=("the same as after one call", "twice as large", "zero", "an error"),
)


BATCHES_PER_EPOCH = Moment(
    "explorer-batches",
    "At the batch size above, how many batches does one epoch over this split take: `len(dataloader)`?",
    "number",
    "The loader serves full batches until the images run out, and then one last, smaller batch with what is "
    "left (unless `drop_last=True`): the number of images divided by the batch size, rounded up.",
)


MODEL_LOSS = Moment(
    "optimization-loss",
    "What will `loss_fn(pred, y)` print for the model picked above, on these samples? (within 10%)",
    "number",
    "Cross-entropy is the mean of −log p(truth): an untrained model gives each of the 10 classes about "
    "0.1, so its loss is near ln 10 ≈ 2.30; a trained one gives the truth most of it, and its loss falls "
    "towards 0.",
    tolerance=0.1,
    absolute=0.02,
)


def batches_per_epoch(images: int, batch_size: int) -> int:
    """`len(DataLoader(...))` for `images` samples at `batch_size`, as PyTorch counts it."""
    return len(DataLoader(range(images), batch_size=batch_size))


def join_shape(how: str, dim: int, count: int) -> tuple[int, ...]:
    """The shape of `torch.{how}` of `count` copies of `torch.arange(6).reshape(2, 3)` along `dim`."""
    tensor = torch.arange(6).reshape(2, 3)
    return tuple(getattr(torch, how)([tensor] * count, dim=dim).shape)


def numpy_after_add(length: int, value: float) -> str:
    """Which NUMPY_SHARED option PyTorch makes true: `n` read after `t.add_(value)`."""
    t = torch.ones(length)
    n = t.numpy()
    t.add_(value)
    if bool((torch.from_numpy(n) == t).all()):
        return NUMPY_SHARED.options[1]
    return NUMPY_SHARED.options[0]


def flatten_shape(batch: int = 3) -> tuple[int, ...]:
    return tuple(nn.Flatten()(torch.rand(batch, 28, 28)).shape)


def linear_parameters(inputs: int = 784, outputs: int = 512) -> int:
    return sum(p.numel() for p in nn.Linear(inputs, outputs).parameters())


def grad_after_two_backwards() -> str:
    """Which TWO_BACKWARDS option PyTorch makes true, on the tutorial's one-layer model."""
    torch.manual_seed(0)
    x, y = torch.ones(5), torch.zeros(3)
    w = torch.randn(5, 3, requires_grad=True)
    b = torch.randn(3, requires_grad=True)
    loss = nn.functional.binary_cross_entropy_with_logits(x @ w + b, y)
    loss.backward(retain_graph=True)
    once = w.grad.clone()
    loss.backward(retain_graph=True)
    if torch.allclose(w.grad, 2 * once):
        return TWO_BACKWARDS.options[1]
    return TWO_BACKWARDS.options[0] if torch.allclose(w.grad, once) else TWO_BACKWARDS.options[2]
