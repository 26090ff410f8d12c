"""TensorBoard event files in every run's folder, written with PyTorch's `torch.utils.tensorboard`.

`tensorboard --logdir data/runs` then shows every run side by side, each under its folder's name. One
mapping from a metrics.jsonl row to scalars (`Board.row`) serves both the worker, as it writes each row,
and `python -m core tensorboard`, which writes the files of runs made before this from their rows:

- `train/loss_per_step`: each logged batch's loss, by global step;
- `train/learning_rate`: the learning rate from the first step on, and at each change made mid-run;
- `epoch/{train,test}_{loss,accuracy}`: each epoch's scores, by epoch;
- the run's hyperparameters with its best and last test accuracy and last test loss (`add_hparams`),
  when it ends, for TensorBoard's HParams tab.

A continued run's steps and epochs carry on from its parent's (core.runs.store.lineage_offset), as the
Train page's curves do. STUDIO_TENSORBOARD=0 turns the files off (bench.speed measures both).
"""

import math
import os
from pathlib import Path

from core.runs.store import get_run, lineage_offset, read_metrics, read_status
from core.training.config import TrainConfig

ENV = "STUDIO_TENSORBOARD"
EVENTS_PREFIX = "events.out.tfevents."
HPARAMS = ("model", "epochs", "batch_size", "lr", "optimizer", "momentum", "weight_decay", "lr_schedule",
           "seed", "device", "limit_batches", "hidden", "dropout", "processes")  # fmt: skip


def enabled() -> bool:
    return os.environ.get(ENV, "1").strip() != "0"


def has_events(directory: Path) -> bool:
    return any(p.name.startswith(EVENTS_PREFIX) for p in directory.iterdir())


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


class Board:
    """The event files of one run: rows in, scalars out; `close` adds the hyperparameters."""

    def __init__(self, directory: Path, config: TrainConfig, offset: tuple[int, int] = (0, 0)):
        from torch.utils.tensorboard import SummaryWriter  # only in the processes that write

        self.config = config
        self.epochs, self.steps = offset
        # Written out every 5 s, not every 10 scalars (its default): TensorBoard's file layer reopens the file
        # by name to write, so each write out is a moment it could make a file in a folder being deleted.
        self.writer = SummaryWriter(log_dir=str(directory), flush_secs=5, max_queue=10_000)
        self.lr_said = False
        self.best: float | None = None
        self.last: dict[str, float] = {}

    def row(self, row: dict) -> None:
        """One metrics.jsonl row (core.runs.execute writes them): its scalars, where it says them."""
        kind, step = row.get("kind"), _number(row.get("step"))
        if step is None:
            return
        step = int(step) + self.steps
        if not self.lr_said and kind in ("batch", "lr"):
            self.lr_said = True
            first = self.config.lr if kind == "batch" else None
            if first is not None:
                self.writer.add_scalar("train/learning_rate", first, self.steps + 1)
        if kind == "batch" and (loss := _number(row.get("loss"))) is not None:
            self.writer.add_scalar("train/loss_per_step", loss, step)
        elif kind == "lr" and (lr := _number(row.get("lr"))) is not None:
            self.writer.add_scalar("train/learning_rate", lr, step)
        elif kind == "epoch" and (epoch := _number(row.get("epoch"))) is not None:
            epoch = int(epoch) + self.epochs
            for name, tag in (("train_loss", "train_loss"), ("train_acc", "train_accuracy"),
                              ("test_loss", "test_loss"), ("test_acc", "test_accuracy")):  # fmt: skip
                value = _number(row.get(name))
                if value is not None:
                    self.writer.add_scalar(f"epoch/{tag}", value, epoch)
                    self.last[name] = value
            if "test_acc" in self.last:
                self.best = max(self.best or 0.0, self.last["test_acc"])

    def close(self, status: str | None = None, *, hparams: bool = True) -> None:
        """The hyperparameters, with the final scores the run has (none before its first epoch's), then the
        files closed. `hparams=False`: only closed (the run's folder was deleted: add_hparams would make it
        again)."""
        try:
            if not hparams:
                return
            values = {k: getattr(self.config, k) for k in HPARAMS}
            params = {k: v for k, v in values.items() if isinstance(v, int | float | str)}
            params["status"] = status or "unknown"
            metrics = {}
            if self.best is not None:
                metrics["hparam/best_test_accuracy"] = self.best
            if "test_acc" in self.last:
                metrics["hparam/last_test_accuracy"] = self.last["test_acc"]
            if "test_loss" in self.last:
                metrics["hparam/last_test_loss"] = self.last["test_loss"]
            self.writer.add_hparams(params, metrics, run_name=".")  # ".": this run's own folder
        finally:
            self.writer.close()


def open_board(directory: Path, config) -> Board | None:
    """The run's Board, or None: files turned off (STUDIO_TENSORBOARD=0), an optimizer race (no epochs),
    or TensorBoard not installed (a run must not fail for its event files)."""
    if not enabled() or not isinstance(config, TrainConfig):
        return None
    try:
        offset = lineage_offset(get_run(directory.name, directory.parent), directory.parent)
        return Board(directory, config, offset)
    except ImportError:
        return None


def why_not(directory: Path) -> str:
    """Why backfill wrote nothing for a run, in words."""
    run = get_run(directory.name, directory.parent)
    if has_events(directory):
        return "has its event files already"
    if not isinstance(run.config, TrainConfig):
        return "an optimizer race or a damaged run: no event files"
    return "still training: its worker writes them"


def backfill(directory: Path) -> bool:
    """Write the event files of a run made before they existed, from its metrics.jsonl; False (nothing
    written) when it has them already, is not a training run, or is still training."""
    run = get_run(directory.name, directory.parent)
    if has_events(directory) or not isinstance(run.config, TrainConfig) or run.active:
        return False
    board = Board(directory, run.config, lineage_offset(run, directory.parent))
    try:
        for row in read_metrics(run.id, directory.parent):
            board.row(row)
    finally:
        board.close(read_status(directory).get("status"))
    return True
