"""The tutorial's Optimization section on real data: what the hyperparameters change, the loss function
taken apart, and one training step at a time on a fixed batch.

Nothing here trains for longer than one batch: these run in the page (milliseconds each).
"""

import math
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from core.base.errors import StudioError
from core.data.fashion import CLASSES
from core.training.config import OPTIMIZERS

TRAIN_SIZE = 60_000  # FashionMNIST's training split
TEST_SIZE = 10_000

# The tutorial's train_loop, as the page shows it; each stage below points at its line.
TRAIN_LOOP = (
    "def train_loop(dataloader, model, loss_fn, optimizer):",
    "    model.train()",
    "    for batch, (X, y) in enumerate(dataloader):",
    "        # Compute prediction and loss",
    "        pred = model(X)",
    "        loss = loss_fn(pred, y)",
    "",
    "        # Backpropagation",
    "        loss.backward()",
    "        optimizer.step()",
    "        optimizer.zero_grad()",
)
STAGE_LINES = {"forward": (4, 5), "backward": (8,), "step": (9,), "zero_grad": (10,)}
HERE = "  # <- this step"


class BadOptimizationInput(StudioError):
    """A choice on the Optimization page that cannot work."""


# ---- 1. hyperparameters --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Budget:
    batch_size: int
    epochs: int
    steps_per_epoch: int  # optimizer steps: one per batch
    total_steps: int
    last_batch: int  # images in the last, smaller batch of an epoch (0: all batches are full)
    images_seen: int


def budget(batch_size: int, epochs: int) -> Budget:
    """What a batch size and an epoch count mean for FashionMNIST's 60,000 training images."""
    if not (1 <= batch_size <= TRAIN_SIZE and 1 <= epochs <= 1000):
        raise BadOptimizationInput(f"batch size goes from 1 to {TRAIN_SIZE:,}, epochs from 1 to 1000")
    steps = math.ceil(TRAIN_SIZE / batch_size)
    return Budget(batch_size, epochs, steps, steps * epochs, TRAIN_SIZE % batch_size, TRAIN_SIZE * epochs)


# ---- 2. the loss function ------------------------------------------------------------------------------


@dataclass(frozen=True)
class LossRow:
    index: int  # in the split
    truth: int
    predicted: int
    p_truth: float  # softmax probability of the true class
    nll: float  # -log(p_truth): this sample's loss


@dataclass(frozen=True)
class LossBreakdown:
    rows: list[LossRow]
    logits: torch.Tensor  # (N, 10)
    probabilities: torch.Tensor  # (N, 10), softmax of the logits
    mean_by_hand: float  # mean of the -log p(truth)
    from_pytorch: float  # nn.CrossEntropyLoss()(logits, y)


def loss_breakdown(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor, indices: list[int]
) -> LossBreakdown:
    """Cross-entropy taken apart for a few samples: logits, softmax, p(truth), -log, the mean."""
    if not 1 <= len(indices) <= 16 or any(not 0 <= i < len(labels) for i in indices):
        raise BadOptimizationInput(f"pick 1 to 16 samples with indices from 0 to {len(labels) - 1:,}")
    x = images[indices].unsqueeze(1).float().div(255)  # (N, 1, 28, 28), as ToTensor makes them
    y = labels[indices]
    model.eval()
    with torch.no_grad():
        logits = model(x)
        probabilities = F.softmax(logits, dim=1)
        from_pytorch = nn.CrossEntropyLoss()(logits, y).item()
    p_truth = probabilities[torch.arange(len(y)), y]
    nll = -torch.log(p_truth)
    rows = [
        LossRow(i, int(t), int(p), float(pt), float(n))
        for i, t, p, pt, n in zip(indices, y, logits.argmax(1), p_truth, nll, strict=True)
    ]
    return LossBreakdown(rows, logits, probabilities, float(nll.double().mean()), from_pytorch)


# ---- 3. one step at a time -----------------------------------------------------------------------------


@dataclass(frozen=True)
class StepReport:
    stage: str  # "forward", "backward", "step" or "zero_grad"
    ok: bool
    message: str  # what happened, or why it could not
    loss: float | None = None
    grad_norms: dict[str, float | None] = field(default_factory=dict)  # parameter -> ||grad|| (None: no grad)
    moved: dict[str, float] = field(default_factory=dict)  # parameter -> ||change|| made by step()
    loss_after: float | None = None  # the same batch's loss after step()


def build_optimizer(name: str, params, lr: float, momentum: float = 0.0) -> torch.optim.Optimizer:
    """The optimizers the Train page offers, as the tutorial builds its SGD."""
    if name not in OPTIMIZERS:
        raise BadOptimizationInput(f"optimizer must be one of {', '.join(OPTIMIZERS)}, not {name!r}")
    if not (math.isfinite(lr) and 0 < lr <= 10):
        raise BadOptimizationInput(
            f"learning rate {lr:g} is not usable here: pick one above 0 and at most 10"
        )
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum)
    return (torch.optim.Adam if name == "adam" else torch.optim.AdamW)(params, lr=lr)


class Stepper:
    """One fixed batch, a model and its optimizer, advanced by hand one line of train_loop at a time."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor):
        self.model, self.optimizer = model, optimizer
        self.x, self.y = x, y  # (B, 1, 28, 28) floats, (B,) labels
        self.loss: torch.Tensor | None = None  # the last forward pass, until backward frees its graph
        self.backed = False  # backward() ran on self.loss
        self.model.train()

    def forward(self) -> StepReport:
        self.loss = F.cross_entropy(self.model(self.x), self.y)
        self.backed = False
        return StepReport(
            "forward", True, f"loss = {self.loss.item():.4f} on this batch", loss=self.loss.item()
        )

    def backward(self) -> StepReport:
        if self.loss is None:
            return StepReport("backward", False, "there is no loss yet: run `pred = model(X)` first")
        if self.backed:
            return StepReport(
                "backward",
                False,
                "backward() already ran on this loss and freed its graph: run the forward pass again, "
                "as the next batch would",
            )
        self.loss.backward()
        self.backed = True
        norms = self.grad_norms()
        return StepReport("backward", True, "gradients computed for every parameter", grad_norms=norms)

    def step(self) -> StepReport:
        before = {name: p.detach().clone() for name, p in self.model.named_parameters()}
        loss_before = self._batch_loss()
        self.optimizer.step()
        moved = {name: float((p.detach() - before[name]).norm()) for name, p in self.model.named_parameters()}
        loss_after = self._batch_loss()
        if not any(moved.values()):
            message = "no parameter moved: there were no gradients (run backward first, or they were zeroed)"
        else:
            message = f"the loss on this batch went from {loss_before:.4f} to {loss_after:.4f}"
        return StepReport(
            "step", any(moved.values()), message, loss=loss_before, moved=moved, loss_after=loss_after
        )

    def zero_grad(self) -> StepReport:
        self.optimizer.zero_grad()  # set_to_none=True by default: .grad becomes None
        return StepReport("zero_grad", True, "every .grad is None again", grad_norms=self.grad_norms())

    def grad_norms(self) -> dict[str, float | None]:
        return {
            name: None if p.grad is None else float(p.grad.norm())
            for name, p in self.model.named_parameters()
        }

    def _batch_loss(self) -> float:
        """In eval mode: without dropout's coin flips, before and after compare the weights alone."""
        self.model.eval()
        try:
            with torch.no_grad():
                return F.cross_entropy(self.model(self.x), self.y).item()
        finally:
            self.model.train()


def fixed_batch(
    images: torch.Tensor, labels: torch.Tensor, size: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """`size` training images picked by `seed`: (B, 1, 28, 28) floats in [0, 1] and (B,) labels."""
    if not 1 <= size <= 512:
        raise BadOptimizationInput("a batch of 1 to 512 images, here")
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))[:size]
    return images[order].unsqueeze(1).float().div(255), labels[order]


def train_loop_code(stage: str | None) -> str:
    """The tutorial's train_loop with the line(s) of `stage` marked."""
    marked = STAGE_LINES.get(stage or "", ())
    return "\n".join(line + (HERE if i in marked else "") for i, line in enumerate(TRAIN_LOOP))


def class_name(index: int) -> str:
    return CLASSES[index]
