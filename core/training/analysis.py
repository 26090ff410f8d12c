"""What the Train page shows about runs: test-set predictions, misclassified images, metrics as series/CSV,
and what sets runs apart."""

import csv
import io
import math
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path

import torch
from torch import nn

from core.base.runfiles import is_number, parse_row
from core.data.augment import Augment
from core.data.fashion import CLASSES, load_split
from core.model.checkpoint import load_checkpoint
from core.training.config import PRESETS, TrainConfig

NUM_CLASSES = len(CLASSES)
PREDICT_BATCH = 1000  # the test split in 10 batches: fast, and small enough for any device
CSV_COLUMNS = (
    "kind", "epoch", "step", "loss", "samples_per_s", "train_loss", "train_acc", "test_loss", "test_acc",
    "seconds", "time", "elapsed_s",
)  # fmt: skip


# ---- test-set predictions of a checkpoint --------------------------------------------------------------


@dataclass(frozen=True)
class TestPredictions:
    """The model's answer for every test image; index i is test image i."""

    __test__ = False  # a data class, not a pytest test class

    labels: tuple[int, ...]
    predicted: tuple[int, ...]
    confidence: tuple[float, ...]  # softmax probability of the predicted class

    @property
    def accuracy(self) -> float:
        right = sum(t == p for t, p in zip(self.labels, self.predicted, strict=True))
        return right / len(self.labels) if self.labels else float("nan")

    def confusion(self) -> list[list[int]]:
        """Counts [true][predicted], as core.training.train.evaluate reports them."""
        matrix = [[0] * NUM_CLASSES for _ in range(NUM_CLASSES)]
        for t, p in zip(self.labels, self.predicted, strict=True):
            matrix[t][p] += 1
        return matrix

    def per_class_accuracy(self) -> list[float]:
        matrix = self.confusion()
        return [row[i] / max(sum(row), 1) for i, row in enumerate(matrix)]

    def misclassified(self, true: int | None = None, predicted: int | None = None) -> list[int]:
        """Indices of wrong answers (optionally one confusion cell), most confident mistakes first."""
        wrong = [
            i
            for i, (t, p) in enumerate(zip(self.labels, self.predicted, strict=True))
            if t != p and (true is None or t == true) and (predicted is None or p == predicted)
        ]
        return sorted(wrong, key=lambda i: -self.confidence[i])

    def most_confused(self, n: int = 3) -> list[tuple[int, int, int]]:
        """The n largest off-diagonal cells as (true, predicted, count)."""
        matrix = self.confusion()
        cells = [(t, p, matrix[t][p]) for t in range(NUM_CLASSES) for p in range(NUM_CLASSES) if t != p]
        return sorted((c for c in cells if c[2]), key=lambda c: -c[2])[:n]


def predict_split(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> TestPredictions:
    """Run `model` over uint8 images (N, 28, 28) in eval mode; labels (N,) are carried along."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    predicted, confidence = [], []
    try:
        with torch.no_grad():
            for start in range(0, len(images), PREDICT_BATCH):
                x = images[start : start + PREDICT_BATCH].unsqueeze(1).float().div(255)  # (B, 1, 28, 28)
                probs = torch.softmax(model(x.to(device)), dim=1)  # (B, 10)
                best = probs.max(dim=1)
                predicted.append(best.indices.cpu())
                confidence.append(best.values.cpu())
    finally:
        model.train(was_training)
    if not predicted:
        return TestPredictions((), (), ())
    return TestPredictions(
        tuple(labels.tolist()), tuple(torch.cat(predicted).tolist()), tuple(torch.cat(confidence).tolist())
    )


def checkpoint_predictions(path: str | Path) -> TestPredictions:
    """Load a checkpoint (safely, on the CPU) and predict the whole FashionMNIST test split."""
    model = load_checkpoint(path).model
    images, labels = load_split("test")
    return predict_split(model, images, labels)


def thumbnails(images: torch.Tensor, indices: Iterable[int], scale: int = 3) -> list:
    """uint8 (N, 28, 28) images at `indices`, enlarged by whole pixels (no blur), as numpy arrays."""
    out = []
    for i in indices:
        img = images[i]  # (28, 28)
        out.append(img.repeat_interleave(scale, 0).repeat_interleave(scale, 1).numpy())  # (28s, 28s)
    return out


# ---- metrics.jsonl rows -------------------------------------------------------------------------------


class MetricsReader:
    """Reads a growing metrics.jsonl incrementally: each update parses only the lines added since."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.rows: list[dict] = []
        self._offset = 0

    def update(self) -> list[dict]:
        """All complete rows so far; a line still being written waits for the next update."""
        try:
            size = os.path.getsize(self.path)
        except FileNotFoundError:
            return self.rows
        if size < self._offset:  # the file was replaced by a shorter one: start over
            self.rows, self._offset = [], 0
        if size == self._offset:
            return self.rows
        with open(self.path, "rb") as f:
            f.seek(self._offset)
            chunk = f.read(size - self._offset)
        end = chunk.rfind(b"\n") + 1  # only whole lines; 0 when none is complete yet
        rows = (parse_row(line) for line in chunk[:end].splitlines())
        self.rows.extend(row for row in rows if row is not None)  # damaged lines skipped, like read_metrics
        self._offset += end
        return self.rows


def batch_rows(rows: list) -> list[dict]:
    return _of_kind(rows, "batch")


def lr_rows(rows: list) -> list[dict]:
    """The learning-rate changes made while the run trained (core.runs.set_lr), in order."""
    return [r for r in _of_kind(rows, "lr") if isinstance(r.get("step"), int) and _finite(r.get("lr"))]


def epoch_rows(rows: list) -> list[dict]:
    return _of_kind(rows, "epoch")


def _of_kind(rows: list, kind: str) -> list[dict]:
    # Rows come through core.base.runfiles.parse_row; a list built elsewhere may still hold non-objects.
    return [r for r in rows if isinstance(r, dict) and r.get("kind") == kind]


def series(rows: list[dict], x: str, y: str) -> tuple[list, list]:
    """The (x, y) columns of the rows that have both."""
    pairs = [(r[x], r[y]) for r in rows if r.get(x) is not None and r.get(y) is not None]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def thin(xs: list, ys: list, max_points: int = 2000) -> tuple[list, list]:
    """Every k-th point (and always the last) so a long curve stays cheap to redraw each second."""
    if len(xs) <= max_points:
        return xs, ys
    k = -(-len(xs) // max_points)  # ceiling division
    keep = list(range(0, len(xs), k))
    if keep[-1] != len(xs) - 1:
        keep.append(len(xs) - 1)
    return [xs[i] for i in keep], [ys[i] for i in keep]


def metrics_csv(rows: list[dict]) -> str:
    """Rows as CSV text: one line per logged step or epoch, per-class test accuracy in its own columns.

    `time` is the UTC time of the row (ISO 8601) and `elapsed_s` the seconds since the first row: the
    Unix time the worker logs read 1.7961e+09 on every line once written to six digits.
    The confusion matrices are left out (100 numbers per epoch); the checkpoint recomputes the last one.
    """
    per_class = [f"test_acc_{name}" for name in CLASSES]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*CSV_COLUMNS, *per_class])
    start = next((r["time"] for r in rows if _finite(r.get("time"))), None)
    for row in rows:
        accs = row.get("per_class_acc")
        if not (isinstance(accs, list) and len(accs) == NUM_CLASSES):  # absent, or not what a worker wrote
            accs = [None] * NUM_CLASSES
        cells = {c: row.get(c) for c in CSV_COLUMNS} | _times(row.get("time"), start)
        writer.writerow([_cell(cells[c]) for c in CSV_COLUMNS] + [_cell(a) for a in accs])
    return out.getvalue()


def _finite(value) -> bool:
    return is_number(value) and math.isfinite(value)


def _times(when, start: float | None) -> dict:
    if not (_finite(when) and start is not None):
        return {"time": None, "elapsed_s": None}
    try:
        iso = datetime.fromtimestamp(when, UTC).isoformat(timespec="milliseconds")
    except (OverflowError, OSError, ValueError):  # a number no clock reaches
        return {"time": None, "elapsed_s": None}
    return {"time": iso, "elapsed_s": round(when - start, 3)}


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


@dataclass(frozen=True)
class Series:
    name: str  # legend entry: the run
    x: list
    y: list


def overlay(metrics_by_run: dict[str, list[dict]], y: str, *, kind: str = "epoch") -> list[Series]:
    """One curve per run of metric `y` against epoch (kind "epoch") or step (kind "batch")."""
    x = "epoch" if kind == "epoch" else "step"
    out = []
    for name, rows in metrics_by_run.items():
        xs, ys = series([r for r in rows if r.get("kind") == kind], x, y)
        if xs:
            out.append(Series(name, *thin(xs, ys)))
    return out


def shift(rows: list[dict], epochs: int, steps: int) -> list[dict]:
    """Rows of a continued run, numbered on from the `epochs` and `steps` its parents trained."""
    if not (epochs or steps):
        return rows
    moved = []
    for row in rows:
        row = dict(row)
        if isinstance(row.get("epoch"), int):
            row["epoch"] += epochs
        if isinstance(row.get("step"), int):
            row["step"] += steps
        moved.append(row)
    return moved


# ---- what sets runs apart ------------------------------------------------------------------------------

_AUGMENT_WORDS = {  # Augment field: how one reads it
    "hflip": lambda v: f"flip {v:.0%}",
    "rotate": lambda v: f"rotate ±{v:g}°",
    "translate": lambda v: f"shift ±{v:.0%}",
    "scale": lambda v: f"zoom ±{v:.0%}",
    "erase": lambda v: f"erase {v:.0%}",
}
_PRESET_FIELDS = tuple(f.name for f in fields(TrainConfig) if f.name not in ("model", "device", "augment"))


def augment_words(augment: Augment) -> str:
    """ "flip 50% · rotate ±10°", or "none": an augmentation as a person reads it."""
    parts = [_AUGMENT_WORDS[name](value) for name, value in asdict(augment).items() if value]
    return " · ".join(parts) or "none"


def preset_of(config: TrainConfig) -> str | None:
    """The preset `config` holds (whatever its model, device and augmentation), or None."""
    for name, preset in PRESETS.items():
        if all(getattr(config, f) == getattr(preset, f) for f in _PRESET_FIELDS):
            return name
    return None


def config_columns(config: TrainConfig) -> dict:
    """Every TrainConfig field as one column value (augmentation in words), and the preset it holds."""
    values = {f.name: getattr(config, f.name) for f in fields(TrainConfig)}
    values["augment"] = augment_words(config.augment)
    values["preset"] = preset_of(config) or "custom"
    return values


def differing(configs: list[TrainConfig | None]) -> list[str]:
    """The config_columns that are not the same for every config (unreadable ones left out)."""
    columns = [config_columns(c) for c in configs if c is not None]
    if len(columns) < 2:
        return []
    return [name for name in columns[0] if any(c[name] != columns[0][name] for c in columns[1:])]


def config_words(config: TrainConfig, names: list[str]) -> str:
    """ "lr 0.002 · optimizer adamw": the config's value of each of `names`, for a legend."""
    columns = config_columns(config)
    return " · ".join(f"{_SHORT.get(n, n)} {_word(columns[n])}" for n in names)


_SHORT = {"batch_size": "batch", "limit_batches": "cap", "lr_schedule": "schedule", "weight_decay": "wd"}


def _word(value) -> str:
    if value is None:
        return "default"
    return f"{value:g}" if isinstance(value, float) else str(value)
