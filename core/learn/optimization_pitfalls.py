"""Three ways the tutorial's loops go wrong, each computed live: zero_grad() skipped, a learning rate too
large, and a test loop left in train mode (no eval()).

Each works on a copy of the model it is given and stays small enough to answer at once on a CPU: one
fixed batch of 64 images for a few steps, or a few hundred test images.
"""

import copy
import itertools
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from core.learn.optimization import BadOptimizationInput, build_optimizer, total_norm
from core.training.train import DIVERGED_LOSS

LOOP_STEPS = 20  # steps of the loop on one batch, with and without zero_grad()
LR_STEPS = 10  # SGD steps per learning rate
TEST_IMAGES = 512  # test images for train mode against eval mode
TEST_BATCH = 64  # the tutorial's DataLoader batch size
DROPOUT_SEED = 0  # every forward pass draws the same dropout mask: the runs differ only where we say


@contextmanager
def _same_draws() -> Iterator[None]:
    """Dropout's coin flips seeded the same for each pass, without touching anyone else's random stream."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(DROPOUT_SEED)
        yield


def _loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    with _same_draws():
        return F.cross_entropy(model(x), y)


def _norms(model: nn.Module) -> dict[str, float]:
    return {name: 0.0 if p.grad is None else float(p.grad.norm()) for name, p in model.named_parameters()}


def _flat(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def _eval_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """The batch's loss with the weights alone deciding: eval mode, no graph."""
    model.eval()
    try:
        with torch.no_grad():
            return F.cross_entropy(model(x), y).item()
    finally:
        model.train()


# ---- zero_grad() skipped ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class OneStep:
    grad_norms: dict[str, float]  # parameter -> ‖.grad‖ when step() ran
    moved: float  # ‖change‖ of all the weights together made by step()
    loss_after: float  # the batch's loss after step()

    @property
    def grad_norm(self) -> float:
        return total_norm(self.grad_norms)


@dataclass(frozen=True)
class ZeroGradExperiment:
    optimizer: str
    lr: float
    loss_before: float
    right: OneStep  # zero_grad(), forward, backward, step(): one backward pass in .grad
    skipped: OneStep  # no zero_grad(): a previous backward pass's gradients still in .grad, then step()
    loop_right: list[float | None]  # the batch's loss before each of LOOP_STEPS steps, the loop as written
    loop_skipped: list[float | None]  # the same loop with optimizer.zero_grad() left out

    @property
    def grad_ratio(self) -> float:
        """‖summed .grad‖ / ‖one pass's .grad‖: 2 for two passes over the same weights and batch."""
        return self.skipped.grad_norm / self.right.grad_norm


def _one_step(model: nn.Module, optimizer_name: str, lr: float, x, y, passes: int) -> OneStep:
    model = copy.deepcopy(model).train()
    optimizer = build_optimizer(optimizer_name, model.parameters(), lr)
    optimizer.zero_grad()
    for _ in range(passes):  # without zero_grad() in between, each backward() adds to .grad
        _loss(model, x, y).backward()
    norms = _norms(model)
    before = _flat(model)
    optimizer.step()
    return OneStep(norms, float((_flat(model) - before).norm()), _eval_loss(model, x, y))


def _loop(model: nn.Module, optimizer_name: str, lr: float, x, y, *, zero_grad: bool) -> list[float | None]:
    """The batch's loss before each step of the tutorial's loop body, run LOOP_STEPS times on one batch."""
    model = copy.deepcopy(model).train()
    optimizer = build_optimizer(optimizer_name, model.parameters(), lr)
    losses: list[float | None] = []
    for _ in range(LOOP_STEPS):
        loss = _loss(model, x, y)
        losses.append(_finite(loss.item()))
        if losses[-1] is None:
            return losses + [None] * (LOOP_STEPS - len(losses))
        loss.backward()
        optimizer.step()
        if zero_grad:
            optimizer.zero_grad()
    return losses


def skip_zero_grad(model: nn.Module, optimizer: str, lr: float, x: torch.Tensor, y: torch.Tensor):
    """The same weights, batch and optimizer, with and without zero_grad(): one step each (the gradients of
    one backward pass against two summed), and LOOP_STEPS steps of the loop each way."""
    return ZeroGradExperiment(
        optimizer,
        lr,
        loss_before=_eval_loss(copy.deepcopy(model), x, y),
        right=_one_step(model, optimizer, lr, x, y, passes=1),
        skipped=_one_step(model, optimizer, lr, x, y, passes=2),
        loop_right=_loop(model, optimizer, lr, x, y, zero_grad=True),
        loop_skipped=_loop(model, optimizer, lr, x, y, zero_grad=False),
    )


def rises(losses: list[float | None]) -> int:
    """Steps after which the loss went up; a blow-up (the first None after numbers) counts as one."""
    values = [v for v in losses if v is not None]
    return sum(b > a for a, b in itertools.pairwise(values)) + (len(values) < len(losses))


def _finite(value: float) -> float | None:
    """A loss as a number, or None once it has blown up (inf, nan, or past DIVERGED_LOSS)."""
    return value if math.isfinite(value) and value <= DIVERGED_LOSS else None


# ---- a learning rate too large -----------------------------------------------------------------------


@dataclass(frozen=True)
class LrCurve:
    lr: float
    losses: list[float | None]  # the batch's loss before each SGD step; None from where it blew up

    @property
    def climbed(self) -> bool:
        """The loss ended above where it started, or blew up."""
        last = self.losses[-1]
        return last is None or (self.losses[0] is not None and last > self.losses[0])


def lr_curves(model: nn.Module, rates: list[float], x: torch.Tensor, y: torch.Tensor) -> list[LrCurve]:
    """LR_STEPS steps of plain SGD on one batch from the same weights, once per learning rate."""
    if not 1 <= len(rates) <= 6:
        raise BadOptimizationInput("compare 1 to 6 learning rates")
    curves = []
    for lr in rates:
        model_copy = copy.deepcopy(model).train()
        optimizer = build_optimizer("sgd", model_copy.parameters(), lr)
        losses: list[float | None] = []
        for _ in range(LR_STEPS):
            loss = _loss(model_copy, x, y)
            losses.append(_finite(loss.item()))
            if losses[-1] is None:
                losses += [None] * (LR_STEPS - len(losses))
                break
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
        curves.append(LrCurve(lr, losses))
    return curves


# ---- train mode left on at test time --------------------------------------------------------------------


@dataclass(frozen=True)
class TestScore:
    loss: float  # the tutorial's test_loss: the mean of the batches' losses
    accuracy: float  # correct / size, in [0, 1]


@dataclass(frozen=True)
class ModeComparison:
    images: int
    mode_layers: list[str]  # the model's Dropout and BatchNorm layers: those that act differently in train()
    evaluated: TestScore  # the tutorial's test_loop: model.eval() and torch.no_grad()
    in_train_mode: TestScore  # the same loop with model.eval() left out
    evaluated_after: TestScore  # test_loop again, properly, after the train-mode pass
    grad_fn_with_no_grad: str | None  # pred.grad_fn inside torch.no_grad(): None, no graph recorded
    grad_fn_without: str | None  # pred.grad_fn without it: the graph autograd records for backward()

    @property
    def differ(self) -> bool:
        """Train mode gave other test numbers than eval mode."""
        return not _close(self.evaluated, self.in_train_mode)

    @property
    def changed_by_testing(self) -> bool:
        """The train-mode pass changed the model (BatchNorm's running statistics): eval() differs after."""
        return not _close(self.evaluated, self.evaluated_after)


def _close(a: TestScore, b: TestScore) -> bool:
    return math.isclose(a.loss, b.loss, rel_tol=1e-5, abs_tol=1e-6) and math.isclose(a.accuracy, b.accuracy)


def mode_layers(model: nn.Module) -> list[str]:
    kinds = (nn.Dropout, nn.modules.batchnorm._BatchNorm)
    return [f"{name}: {type(m).__name__}" for name, m in model.named_modules() if isinstance(m, kinds)]


def _test(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> TestScore:
    """The tutorial's test_loop body over batches of TEST_BATCH, in whatever mode `model` is in."""
    total, correct, batches = 0.0, 0.0, 0
    with _same_draws(), torch.no_grad():
        for start in range(0, len(y), TEST_BATCH):
            pred = model(x[start : start + TEST_BATCH])
            target = y[start : start + TEST_BATCH]
            total += F.cross_entropy(pred, target).item()
            correct += (pred.argmax(1) == target).float().sum().item()
            batches += 1
    return TestScore(total / batches, correct / len(y))


def compare_modes(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, n: int = TEST_IMAGES):
    """The first `n` test images through test_loop as written (eval(), no_grad()) and with eval() left out,
    on a copy of `model`: in train mode BatchNorm normalises with each batch's own statistics (and updates
    its running ones) and Dropout zeroes activations at random."""
    if not 1 <= n <= len(labels):
        raise BadOptimizationInput(f"test on 1 to {len(labels):,} images")
    model = copy.deepcopy(model)
    x = images[:n].unsqueeze(1).float().div(255)  # (n, 1, 28, 28), as ToTensor makes them
    y = labels[:n]
    evaluated = _test(model.eval(), x, y)
    in_train_mode = _test(model.train(), x, y)
    evaluated_after = _test(model.eval(), x, y)
    with torch.no_grad():
        quiet = model(x[:1]).grad_fn
    recorded = model(x[:1]).grad_fn
    return ModeComparison(
        n,
        mode_layers(model),
        evaluated,
        in_train_mode,
        evaluated_after,
        None if quiet is None else type(quiet).__name__,
        None if recorded is None else type(recorded).__name__,
    )
