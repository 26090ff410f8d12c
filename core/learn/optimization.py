"""The tutorial's Optimization section on real data: what the hyperparameters change, the loss function
taken apart (and its relatives), the optimizers torch.optim offers, and one training step at a time on a
fixed batch.

Nothing here trains for longer than one batch: these run in the page (milliseconds each).
"""

import inspect
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


def first_printed_loss(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int
) -> float:
    """The loss train_loop prints first (`batch % 100 == 0` at batch 0): the model before any step, on the
    first `batch_size` training images, which the tutorial's DataLoader (no shuffle) gives first."""
    x = images[:batch_size].unsqueeze(1).float().div(255)  # (B, 1, 28, 28), as ToTensor makes them
    model.eval()  # dropout's coin flips would make the number a draw; the tutorial's MLP has none
    with torch.no_grad():
        return F.cross_entropy(model(x), labels[:batch_size]).item()


def printed_loss_line(loss: float, batch_size: int) -> str:
    """train_loop's line for batch 0, in the tutorial's format."""
    current, size = min(batch_size, TRAIN_SIZE), TRAIN_SIZE
    return f"loss: {loss:>7f}  [{current:>5d}/{size:>5d}]"


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


@dataclass(frozen=True)
class OtherLosses:
    cross_entropy: float  # nn.CrossEntropyLoss()(logits, y)
    nll_of_log_softmax: float  # nn.NLLLoss()(nn.LogSoftmax(dim=1)(logits), y): the same number
    nll_of_logits: float  # nn.NLLLoss()(logits, y): the mistake of skipping LogSoftmax, -mean(logits[truth])
    mse: float  # nn.MSELoss()(softmax probabilities, one-hot targets)
    mse_by_hand: float  # ((probabilities - one_hot) ** 2).mean()
    log_probs_of_truth: list[float]  # LogSoftmax's value at each sample's true class: -(its loss)


def other_losses(logits: torch.Tensor, labels: torch.Tensor) -> OtherLosses:
    """The tutorial's other losses on the same logits (N, 10) and labels (N,): nn.CrossEntropyLoss is
    nn.LogSoftmax followed by nn.NLLLoss; nn.MSELoss wants targets of the prediction's shape."""
    logits = logits.detach().double()  # float64: the two ways agree to ~1e-15, not float32's ~1e-7
    log_probs = nn.LogSoftmax(dim=1)(logits)
    probabilities = log_probs.exp()
    one_hot = F.one_hot(labels, logits.shape[1]).double()  # (N, 10): 1 at the true class
    return OtherLosses(
        cross_entropy=nn.CrossEntropyLoss()(logits, labels).item(),
        nll_of_log_softmax=nn.NLLLoss()(log_probs, labels).item(),
        nll_of_logits=nn.NLLLoss()(logits, labels).item(),
        mse=nn.MSELoss()(probabilities, one_hot).item(),
        mse_by_hand=((probabilities - one_hot) ** 2).mean().item(),
        log_probs_of_truth=log_probs[torch.arange(len(labels)), labels].tolist(),
    )


# ---- 3. the optimizer ----------------------------------------------------------------------------------


def torch_optimizers() -> list[str]:
    """The optimizer classes this PyTorch's torch.optim holds (SGD, Adam, RMSprop, ...), by name."""
    return sorted(
        (
            name
            for name, value in vars(torch.optim).items()
            if inspect.isclass(value)
            and issubclass(value, torch.optim.Optimizer)
            and value is not torch.optim.Optimizer
        ),
        key=str.lower,
    )


# ---- 4. one step at a time -----------------------------------------------------------------------------


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
        self.summed = 0  # backward passes added up in .grad since the last zero_grad()
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
        before = total_norm(self.grad_norms())
        self.loss.backward()  # adds this loss's gradients to whatever .grad holds
        self.backed = True
        self.summed += 1
        norms = self.grad_norms()
        message = "gradients computed for every parameter"
        if self.summed > 1:
            message = (
                f"zero_grad() was skipped, so these gradients were added to the {before:.4f} already in "
                f".grad: the total norm is now {total_norm(norms):.4f}, {self.summed} backward passes "
                "summed"
            )
        return StepReport("backward", True, message, grad_norms=norms)

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
            if self.summed > 1:
                message += f", with {self.summed} backward passes summed in .grad (zero_grad() was skipped): "
                message += _summed_effect(self.optimizer, self.summed)
        return StepReport(
            "step", any(moved.values()), message, loss=loss_before, moved=moved, loss_after=loss_after
        )

    def zero_grad(self) -> StepReport:
        self.optimizer.zero_grad()  # set_to_none=True by default: .grad becomes None
        self.summed = 0
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


def _summed_effect(optimizer: torch.optim.Optimizer, summed: int) -> str:
    if isinstance(optimizer, torch.optim.SGD):
        return f"SGD moves lr × .grad, so this step went about {summed}× as far as one batch's gradient asks"
    return (
        "Adam and AdamW divide by the gradients' own running size, so a summed gradient moves them about as "
        "far as one; its harm is in the running averages the later steps use"
    )


def total_norm(norms: dict[str, float | None]) -> float:
    """The norm of all the gradients as one vector, from each parameter's ‖grad‖ (None counts as 0)."""
    return math.sqrt(sum((v or 0.0) ** 2 for v in norms.values()))


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
