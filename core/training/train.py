"""Training: TrainConfig, train_one_epoch, evaluate, and fit() as an iterator of typed events."""

import math
import re
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field

import torch
from torch import nn

from core.base.device import resolve_device
from core.base.errors import StudioError
from core.base.threads import CpuThreads
from core.data.fashion import CLASSES, TensorBatches, load_split
from core.model.networks import build_model
from core.training.config import TrainConfig
from core.training.ranks import Ranks, timeout_s

EVAL_BATCH_SIZE = 1000


@dataclass(frozen=True)
class Started:
    config: TrainConfig
    device: str
    steps_per_epoch: int
    total_steps: int
    num_train: int
    num_test: int
    num_params: int
    model: nn.Module = field(repr=False, compare=False)


@dataclass(frozen=True)
class LrChanged:
    """The learning rate was changed while training; it applies from `step` on."""

    epoch: int
    step: int
    lr: float  # the new base learning rate (a schedule still scales it)


@dataclass(frozen=True)
class BatchLogged:
    epoch: int
    step: int  # global step, counting from 1
    loss: float
    samples_per_s: float


@dataclass(frozen=True)
class EpochEnd:
    epoch: int  # counting from 1
    step: int
    train_loss: float
    train_acc: float
    test_loss: float
    test_acc: float
    per_class_acc: list[float]
    confusion: list[list[int]]  # [true][predicted] counts on the test set
    seconds: float


@dataclass(frozen=True)
class Finished:
    epochs: int
    step: int


@dataclass(frozen=True)
class Stopped:
    epoch: int
    step: int


@dataclass(frozen=True)
class Failed:
    error: str
    step: int
    peer_lost: bool = False  # another rank of a distributed run died or stopped answering
    detail: str = ""  # with peer_lost: what the backend said ("Timed out waiting 10000ms for recv ...")


Event = Started | BatchLogged | LrChanged | EpochEnd | Finished | Stopped | Failed


# Cross-entropy over 10 classes starts near ln(10) = 2.3; a batch loss above this has blown up even if
# it is still finite (a learning rate of 1000 gets there within a few steps).
DIVERGED_LOSS = 1000.0


class _Diverged(Exception):
    def __init__(self, step: int, loss: float, *, exact: bool = True):
        self.step = step
        shown = "NaN" if math.isnan(loss) else f"{loss:.3g}"
        when = f"at step {step}" if exact else f"by step {step} (checked at each logged step)"
        super().__init__(f"diverged: loss is {shown} {when}; lower the learning rate")


def _blew_up(mean_loss: torch.Tensor) -> torch.Tensor:
    """1 where a batch's mean loss is NaN, infinite or above DIVERGED_LOSS, on the loss's device."""
    return (~torch.isfinite(mean_loss) | (mean_loss > DIVERGED_LOSS)).long()


@dataclass
class EpochStats:
    loss: float
    acc: float
    batches: int
    stopped: bool


@dataclass(frozen=True)
class EvalResult:
    loss: float
    acc: float
    per_class_acc: list[float]
    confusion: list[list[int]]


# ---- the loops (the tutorial's train_loop / test_loop, returning numbers instead of printing) ---------


def train_one_epoch(
    model: nn.Module,
    batches: TensorBatches,
    optimizer: torch.optim.Optimizer,
    *,
    epoch: int = 1,
    first_step: int = 1,
    log_every: int = 50,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    threads: CpuThreads | None = None,
    new_lr: Callable[[], float | None] = lambda: None,
    ranks: Ranks | None = None,
) -> Generator[BatchLogged | LrChanged, None, EpochStats]:
    """Yield BatchLogged every `log_every` batches (and on the first); return the epoch's stats.

    `new_lr` is asked before every batch: a number it returns becomes the learning rate from that batch
    on (announced by LrChanged).

    With `ranks` (core.runs.launcher), this process is one of several that train `model` (wrapped in
    DistributedDataParallel) together: `batches` serves this rank's share of each global batch, the
    loss is scaled so that DDP's gradient average equals the gradient of the global batch's mean loss,
    and stop, learning rate and divergence are agreed by all ranks so that they leave together.

    Losses and correct counts stay on the device; the host reads them only at logged steps, so a GPU is
    never made to wait once per batch. On a CPU without ranks that read costs nothing, and every batch's
    loss is checked at once (a divergence is then reported at its exact step).
    """
    model.train()
    if threads is not None:
        threads.restart()
    loss_fn = nn.CrossEntropyLoss()
    device = batches.device
    eager = ranks is None and device.type == "cpu"
    total_loss = torch.zeros((), device=device)
    correct = torch.zeros((), dtype=torch.long, device=device)
    blown = torch.zeros((), dtype=torch.long, device=device)  # batches whose loss blew up, not yet read
    seen = done = 0
    mark_time, mark_seen = time.perf_counter(), 0
    for done, (x, y) in enumerate(batches, start=1):
        stop, lr = should_stop(), new_lr()
        if ranks is not None:
            stop, lr = ranks.agree(stop, lr)
        if stop:
            done -= 1
            return _epoch_stats(total_loss, correct, seen, done, True, ranks)
        step = first_step + done - 1
        if lr is not None:
            set_lr(optimizer, scheduler, lr)
            yield LrChanged(epoch, step, lr)
        n = batches.global_size(done - 1)  # images in the whole batch, over all ranks
        logits = model(x)  # (B, 10)
        if ranks is None:
            loss = loss_fn(logits, y)  # the tutorial's mean over the batch
            batch_sum = loss.detach() * len(y)
        else:  # this rank's share summed over the global batch, times world: DDP then divides by world
            batch_sum = nn.functional.cross_entropy(logits, y, reduction="sum")
            loss = batch_sum * (ranks.world / n)
            batch_sum = batch_sum.detach()
        if eager:
            value = loss.item()  # free on a CPU, and exact: the step where it blew up
            if not math.isfinite(value) or value > DIVERGED_LOSS:
                raise _Diverged(step, value)
        else:
            blown += _blew_up(batch_sum / max(len(y), 1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        total_loss += batch_sum
        correct += (logits.argmax(1) == y).sum()
        seen += n
        if threads is not None:
            threads.batch_done(len(y))
        if done == 1 or done % log_every == 0 or done == len(batches):
            if not eager:  # the one read of the device per logged step
                packed = torch.stack([batch_sum, blown.to(batch_sum.dtype)])
                if ranks is not None:
                    ranks.sum_(packed)
                batch_total, bad = packed.tolist()
                value = batch_total / n
                if bad:
                    raise _Diverged(step, value if math.isfinite(value) else math.nan, exact=False)
            now = time.perf_counter()
            rate = (seen - mark_seen) / max(now - mark_time, 1e-9)
            mark_time, mark_seen = now, seen
            yield BatchLogged(epoch, step, value, rate)
    return _epoch_stats(total_loss, correct, seen, done, False, ranks)


def _epoch_stats(
    total_loss: torch.Tensor, correct: torch.Tensor, seen: int, batches: int, stopped: bool, ranks
) -> EpochStats:
    if ranks is not None:  # every rank's share, summed: the numbers of the whole epoch
        ranks.sum_(total_loss)
        ranks.sum_(correct)
    return EpochStats(_mean(total_loss, seen), _frac(correct, seen), batches, stopped)


def set_lr(optimizer: torch.optim.Optimizer, scheduler, lr: float) -> None:
    """Make `lr` the base learning rate from the next step on; a schedule keeps scaling it (LambdaLR
    multiplies its base_lrs by the schedule's factor at every step)."""
    factor = 1.0
    if scheduler is not None:
        scheduler.base_lrs = [lr] * len(optimizer.param_groups)
        factor = scheduler.lr_lambdas[0](scheduler.last_epoch)
    for group in optimizer.param_groups:
        group["lr"] = lr * factor


def evaluate(model: nn.Module, batches: TensorBatches, ranks: Ranks | None = None) -> EvalResult:
    """Loss, accuracy, per-class accuracy and confusion matrix, in eval mode without gradients.

    With `ranks`, each rank scores its share of every batch and the sums are added over the ranks, so
    each image of the split is counted exactly once and every rank gets the same result."""
    model.eval()
    n = len(CLASSES)
    total_loss = torch.zeros((), device=batches.device)
    confusion = torch.zeros(n * n, dtype=torch.long, device=batches.device)
    with torch.no_grad():
        for x, y in batches:
            logits = model(x)
            total_loss += nn.functional.cross_entropy(logits, y, reduction="sum")
            confusion += torch.bincount(y * n + logits.argmax(1), minlength=n * n)
    if ranks is not None:
        ranks.sum_(total_loss)
        ranks.sum_(confusion)
    matrix = confusion.view(n, n).cpu()
    seen = int(matrix.sum())
    per_class = (matrix.diag() / matrix.sum(1).clamp(min=1)).tolist()
    acc = matrix.diag().sum().item() / max(seen, 1)
    return EvalResult(_mean(total_loss, seen), acc, per_class, matrix.tolist())


def _mean(total: torch.Tensor, count: int) -> float:
    return total.item() / count if count else float("nan")


def _frac(correct: torch.Tensor, count: int) -> float:
    return correct.item() / count if count else float("nan")


def build_optimizer(config: TrainConfig, params) -> torch.optim.Optimizer:
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
        )
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)


Splits = tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def make_batches(
    config: TrainConfig, device: torch.device, ranks: Ranks | None = None, splits: Splits | None = None
) -> tuple[TensorBatches, TensorBatches]:
    """The training and test batches; with `ranks`, each serves this rank's share of every batch.
    `splits`: ((train images, labels), (test images, labels)) as load_split gives them (a machine of a Ray
    cluster gets them from the keeper, core.runs.remote); None: read here."""
    share = {"rank": ranks.rank, "world": ranks.world} if ranks is not None else {}
    (train_x, train_y), (test_x, test_y) = splits or (load_split("train"), load_split("test"))
    train = TensorBatches(
        train_x,
        train_y,
        batch_size=config.batch_size,
        device=device,
        shuffle=True,
        seed=config.seed,
        limit_batches=config.limit_batches,
        augment=config.augment if config.augment.active else None,
        **share,
    )
    test = TensorBatches(test_x, test_y, batch_size=EVAL_BATCH_SIZE, device=device, **share)
    return train, test


# ---- fit ---------------------------------------------------------------------------------------------


def fit(
    config: TrainConfig,
    *,
    model: nn.Module | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    data: tuple[TensorBatches, TensorBatches] | None = None,
    adapt_threads: bool = True,
    new_lr: Callable[[], float | None] = lambda: None,
    ranks: Ranks | None = None,
    splits: Splits | None = None,
) -> Iterator[Event]:
    """Train `config.epochs` epochs, yielding events; the caller prints, plots and saves.

    Ends with exactly one of Finished, Stopped or Failed. Pass `model` to continue training it, and
    `new_lr` to let the learning rate change while it trains (see train_one_epoch).
    On a CPU, `adapt_threads` lets the thread count follow what else the machine runs (core.base.threads).
    With `ranks`, this process is one rank of a distributed run (core.runs.launcher): the model trains
    wrapped in DistributedDataParallel, and the events carry the numbers of the whole run. Started's
    model is the plain model either way (what a checkpoint saves, without DDP's `module.` prefix).
    """
    step = 0
    threads = None
    try:
        device = ranks.device if ranks is not None else resolve_device(config.device)
        if adapt_threads and device.type == "cpu":
            threads = CpuThreads()
        torch.manual_seed(config.seed)  # same seed -> same initial weights and dropout masks
        if model is None:
            model = build_model(config.model, **config.model_options())
        model.to(device)
        train, test = data or make_batches(config, device, ranks, splits)
        net = ranks.wrap(model) if ranks is not None else model  # what trains: the model, or DDP around it
        optimizer = build_optimizer(config, model.parameters())
        total_steps = len(train) * config.epochs
        scheduler = _scheduler(config, optimizer, total_steps)
        num_params = sum(p.numel() for p in model.parameters())
        yield Started(
            config,
            str(device),
            len(train),
            total_steps,
            train.num_samples,
            len(test.labels),
            num_params,
            model,
        )
        for epoch in range(1, config.epochs + 1):
            t0 = time.perf_counter()
            stats = yield from train_one_epoch(
                net,
                train,
                optimizer,
                epoch=epoch,
                first_step=step + 1,
                log_every=config.log_every,
                scheduler=scheduler,
                should_stop=should_stop,
                threads=threads,
                new_lr=new_lr,
                ranks=ranks,
            )
            step += stats.batches
            if stats.stopped:
                yield Stopped(epoch, step)
                return
            result = evaluate(model, test, ranks)
            yield EpochEnd(
                epoch,
                step,
                stats.loss,
                stats.acc,
                result.loss,
                result.acc,
                result.per_class_acc,
                result.confusion,
                time.perf_counter() - t0,
            )
        yield Finished(config.epochs, step)
    except _Diverged as exc:
        yield Failed(str(exc), exc.step)
    except torch.OutOfMemoryError:
        yield Failed("out of memory: lower the batch size (or choose a smaller model)", step)
    except StudioError as exc:
        yield Failed(str(exc), step)
    except RuntimeError as exc:  # with ranks, a collective whose peer is gone: another rank died
        if ranks is None or not _peer_lost(exc):
            raise
        yield Failed(lost_rank_message(exc), step, peer_lost=True, detail=backend_words(exc))
    finally:
        if threads is not None:
            threads.close()


def _scheduler(config: TrainConfig, optimizer, total_steps: int):
    if config.lr_schedule == "constant":
        return None
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total_steps) / total_steps))
    )


_TIMED_OUT = re.compile(r"timed out|timeout", re.I)
# What gloo and NCCL say when the other end of a collective is gone (they raise RuntimeError, or
# DistBackendError, a subclass of it).
_PEER_LOST = re.compile(
    rf"gloo|nccl|connection (reset|closed|refused)|broken pipe|{_TIMED_OUT.pattern}", re.I
)


def _peer_lost(exc: RuntimeError) -> bool:
    if torch.distributed.is_available() and isinstance(exc, torch.distributed.DistError):
        return True
    return bool(_PEER_LOST.search(str(exc)))


def backend_words(exc: BaseException) -> str:
    """The first line of a collective's error, without gloo's source location ("[.../pair.cc:545] ").
    A timeout is said plainly first: gloo words it several ways ("Timed out waiting 5000ms for recv",
    "Application timeout caused pair closure")."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    words = re.sub(r"^\[[^\]]*\]\s*", "", first)[:200]
    if _TIMED_OUT.search(words):
        return f"no answer within {timeout_s():g} s, STUDIO_DIST_TIMEOUT_S: {words}"
    return words


def lost_rank_message(exc: BaseException) -> str:
    return (
        "another process of this distributed run stopped answering (it failed or was killed), so every "
        f"process stopped; the last saved checkpoint is kept ({backend_words(exc)})"
    )
