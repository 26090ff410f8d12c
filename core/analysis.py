"""What the Train page shows about runs: test-set predictions, misclassified images, metrics as series/CSV."""

import csv
import io
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from core.checkpoint import load_checkpoint
from core.data import CLASSES, load_split
from core.runfiles import parse_row

NUM_CLASSES = len(CLASSES)
PREDICT_BATCH = 1000  # the test split in 10 batches: fast, and small enough for any device
CSV_COLUMNS = (
    "kind", "epoch", "step", "loss", "samples_per_s", "train_loss", "train_acc", "test_loss", "test_acc",
    "seconds", "time",
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
        """Counts [true][predicted], as core.train.evaluate reports them."""
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


def epoch_rows(rows: list) -> list[dict]:
    return _of_kind(rows, "epoch")


def _of_kind(rows: list, kind: str) -> list[dict]:
    # Rows come through core.runfiles.parse_row; a list built elsewhere may still hold non-objects.
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

    The confusion matrices are left out (100 numbers per epoch); the checkpoint recomputes the last one.
    """
    per_class = [f"test_acc_{name}" for name in CLASSES]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*CSV_COLUMNS, *per_class])
    for row in rows:
        accs = row.get("per_class_acc")
        if not (isinstance(accs, list) and len(accs) == NUM_CLASSES):  # absent, or not what a worker wrote
            accs = [None] * NUM_CLASSES
        writer.writerow([_cell(row.get(c)) for c in CSV_COLUMNS] + [_cell(a) for a in accs])
    return out.getvalue()


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
