"""Moments to predict: a question a Learn page asks before it shows the answer, and how a guess is judged.

The answer is always computed by PyTorch from the page's current controls, like every number on these pages:
a guess is compared with it, never with a stored string. A guess is text the learner typed or an option
they picked; it is parsed, never executed.
"""

import math
import re
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.utils.data import BatchSampler, DataLoader, SequentialSampler

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


LAST_BATCH = Moment(
    "explorer-last-batch",
    "And the epoch's last batch, at that batch size: how many images does it hold?",
    "number",
    "What is left once the full batches are served: the number of images minus the batch size times the "
    "full batches, or a whole batch when the batch size divides the images exactly.",
)


def last_batch_size(images: int, batch_size: int) -> int:
    """The size of the last batch a `DataLoader` of `images` samples serves, drop_last=False, as PyTorch's
    own BatchSampler cuts them."""
    *_, last = BatchSampler(SequentialSampler(range(images)), batch_size, drop_last=False)
    return len(last)


# ---- Transforms ------------------------------------------------------------------------------------------

VALUE_RANGE = Moment(
    "transforms-range",
    "What range will the values of `transform(image)` fall in, for the first sample, with the pipeline "
    "above?",
    "choice",
    "`ToTensor` turns a PIL image's whole numbers 0–255 into floats divided by 255; `Normalize(mean, std)` "
    "then subtracts the mean and divides by the std, which moves that range: (0.5, 0.5) makes it −1 to 1, "
    "FashionMNIST's own (0.2860, 0.3530) about −0.81 to 2.02.",
    options=("0 to 255, whole numbers", "0 to 1", "−1 to 1, with negatives", "another range"),
)


def value_range(output) -> str:
    """Which VALUE_RANGE option holds every value of a pipeline's output: a tensor, or a PIL image when the
    pipeline has no ToTensor. The narrowest option that holds them all."""
    values = output if isinstance(output, torch.Tensor) else torch.from_numpy(np.array(output))
    low, high = float(values.min()), float(values.max())
    whole = not values.is_floating_point()
    if whole and low >= 0 and high <= 255:
        return VALUE_RANGE.options[0]
    if not whole and low >= 0 and high <= 1:
        return VALUE_RANGE.options[1]
    if not whole and low >= -1 and high <= 1:
        return VALUE_RANGE.options[2]
    return VALUE_RANGE.options[3]


def one_hot_moment(label: int, name: str) -> Moment:
    """The one-hot question for one label: its options name that label's numbers."""
    return Moment(
        "transforms-one-hot",
        f"The first sample's label is y = {label} ({name}). What does `target_transform(y)` return?",
        "choice",
        "`torch.zeros(10)` makes one place per class; `scatter_(0, torch.tensor(y), value=1)` writes a 1 at "
        "index y, counted from 0: the one-hot vector the loss compares with the model's 10 outputs.",
        options=(
            f"tensor({label}): the label itself, as a tensor",
            f"10 floats: 1. at index {label}, 0. elsewhere",
            f"{label} ones: tensor([1., …]) of length {label}",
        ),
    )


def one_hot_answer(moment: Moment, target: torch.Tensor, label: int) -> str:
    """Which of `one_hot_moment(label)`'s options `target` (the page's target_transform(label)) is."""
    if target.dim() == 0:
        return moment.options[0]
    if target.shape == (10,) and float(target[label]) == 1 and float(target.sum()) == 1:
        return moment.options[1]
    return moment.options[2]


# ---- Autograd --------------------------------------------------------------------------------------------

STOP_TRACKING = Moment(
    "autograd-stop-tracking",
    "What does the last `print(… .requires_grad)` above print?",
    "choice",
    "Inside `torch.no_grad()` nothing is recorded, and `detach()` returns the same numbers cut off from the "
    "graph: either way the result no longer requires a gradient, though `w` and `b` still do.",
    options=("True", "False"),
)


def requires_grad_after(how: str) -> str:
    """What `print(z.requires_grad)` shows for z = x @ w + b (w, b requiring gradients) made under
    `torch.no_grad()`, or detached: as PyTorch prints it."""
    x, w, b = torch.ones(5), torch.randn(5, 3, requires_grad=True), torch.randn(3, requires_grad=True)
    if how == "no_grad":
        with torch.no_grad():
            z = torch.matmul(x, w) + b
    else:
        z = (torch.matmul(x, w) + b).detach()
    return str(z.requires_grad)


# ---- Optimization ----------------------------------------------------------------------------------------

GRAD_RATIO = Moment(
    "optimization-zero-grad",
    "Leave out `optimizer.zero_grad()` and run the same batch's `backward()` twice from the same weights: "
    "how many times as large as done right is `‖.grad‖` then? (within 5%)",
    "number",
    "`backward()` adds each new gradient to what `.grad` holds, and only `zero_grad()` empties it: the same "
    "gradient twice is twice the gradient.",
    tolerance=0.05,
)

BIG_RATE = Moment(
    "optimization-big-lr",
    "SGD on this batch at the learning rate too large, step after step from the same weights as at the "
    "page's rate: where does its loss end?",
    "choice",
    "SGD's step is lr × the gradient: too large, it jumps over the valley to a higher point on the other "
    "side, where the gradient is steeper, so the next jump is longer still.",
    options=("below where it started", "above where it started, or blown up"),
)


def big_rate_answer(climbed: bool) -> str:
    """The BIG_RATE option for an SGD curve that climbed (optimization_pitfalls.LrCurve.climbed) or not."""
    return BIG_RATE.options[1] if climbed else BIG_RATE.options[0]


# ---- Save & Load -----------------------------------------------------------------------------------------

TRAIN_CALLS = Moment(
    "save-load-train-calls",
    "The model picked above, left in `train()` mode and called twice on the same 8 images: do the two calls "
    "give the same logits?",
    "choice",
    "Only Dropout and BatchNorm act differently in train mode: Dropout draws new units to zero at every "
    "call, BatchNorm uses the batch's own statistics. A model with neither gives the same answer twice.",
    options=("the same, to the last digit", "different"),
)


def train_calls_answer(call_gap: float) -> str:
    """The TRAIN_CALLS option for the largest difference between two train-mode calls (save_load.Modes)."""
    return TRAIN_CALLS.options[0] if call_gap == 0 else TRAIN_CALLS.options[1]


WHOLE_LOAD = Moment(
    "save-load-whole",
    "The whole model saved with `torch.save(model, 'model.pth')`: what does "
    "`torch.load('model.pth', weights_only=True)` do with it?",
    "choice",
    "A whole model is a pickle naming its class; `weights_only=True` unpickles only tensors, dicts and a few "
    "safe types, so it refuses a class it was not told to allow rather than run what the file asks for.",
    options=(
        "returns the model, ready to use",
        "returns only its weights, a state_dict",
        "refuses it: an error",
    ),
)


def whole_load_answer(error: str | None) -> str:
    """The WHOLE_LOAD option for what torch.load said (save_load.WholeModel.error): None when it loaded."""
    return WHOLE_LOAD.options[0] if error is None else WHOLE_LOAD.options[2]
