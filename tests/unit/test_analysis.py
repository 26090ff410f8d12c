import csv
import io
import json
import math

import pytest
import torch

from core.data.fashion import CLASSES, load_split
from core.model.checkpoint import save_checkpoint
from core.training import analysis
from core.training.config import TrainConfig
from core.training.train import EpochEnd, Started, fit

QUICK = TrainConfig(epochs=1, limit_batches=20, log_every=100, device="cpu")


@pytest.fixture(scope="module")
def trained(real_data, tmp_path_factory):
    """A checkpoint of the MLP after 20 batches, and the trainer's own evaluation of it."""
    events = list(fit(QUICK))
    model = next(e for e in events if isinstance(e, Started)).model
    end = next(e for e in events if isinstance(e, EpochEnd))
    path = tmp_path_factory.mktemp("ckpt") / "model.pth"
    save_checkpoint(model, path, model_name="mlp", model_options=QUICK.model_options())
    return path, end, model


def test_checkpoint_predictions_agree_with_the_trainers_evaluation(trained):
    path, end, _model = trained
    preds = analysis.checkpoint_predictions(path)
    _images, labels = load_split("test")
    assert len(preds.predicted) == len(preds.confidence) == 10_000
    assert list(preds.labels) == labels.tolist()
    assert preds.confusion() == end.confusion
    assert preds.accuracy == pytest.approx(end.test_acc)
    assert preds.per_class_accuracy() == pytest.approx(end.per_class_acc)
    assert all(0.1 <= c <= 1.0 for c in preds.confidence)  # a softmax maximum over 10 classes


def test_misclassified_filters_one_confusion_cell_most_confident_first(trained):
    preds = analysis.checkpoint_predictions(trained[0])
    matrix = preds.confusion()
    wrong = preds.misclassified()
    assert len(wrong) == 10_000 - sum(matrix[i][i] for i in range(10))
    true, predicted, count = preds.most_confused(1)[0]
    assert count == max(matrix[t][p] for t in range(10) for p in range(10) if t != p) > 0
    cell = preds.misclassified(true, predicted)
    assert len(cell) == matrix[true][predicted]
    assert {(preds.labels[i], preds.predicted[i]) for i in cell} == {(true, predicted)}
    confidences = [preds.confidence[i] for i in cell]
    assert confidences == sorted(confidences, reverse=True)
    row = preds.misclassified(true=true)
    assert len(row) == sum(matrix[true]) - matrix[true][true]
    assert all(preds.labels[i] == true != preds.predicted[i] for i in row)


def test_predict_split_leaves_the_models_mode_as_it_was(trained):
    model = trained[2]
    model.train()
    images, labels = load_split("test")
    preds = analysis.predict_split(model, images[:5], labels[:5])
    assert model.training
    assert len(preds.predicted) == 5
    assert math.isnan(analysis.predict_split(model, images[:0], labels[:0]).accuracy)  # nothing to score


def test_thumbnails_enlarge_by_whole_pixels():
    images = torch.arange(2 * 28 * 28, dtype=torch.int32).remainder(256).to(torch.uint8).view(2, 28, 28)
    (thumb,) = analysis.thumbnails(images, [1], scale=3)
    assert thumb.shape == (84, 84)
    assert (thumb[3:6, 6:9] == images[1, 1, 2].item()).all()
    assert thumb[83, 83] == images[1, 27, 27].item()


def _line(row: dict) -> str:
    return json.dumps(row) + "\n"


def test_metrics_reader_reads_only_complete_new_lines(tmp_path):
    path = tmp_path / "metrics.jsonl"
    reader = analysis.MetricsReader(path)
    assert reader.update() == []  # no file yet
    path.write_text(_line({"kind": "batch", "step": 1}) + '{"kind": "batch", "st')
    assert [r["step"] for r in reader.update()] == [1]  # the half-written line waits
    with open(path, "a") as f:
        f.write('ep": 2}\n' + _line({"kind": "batch", "step": 3}))
    assert [r["step"] for r in reader.update()] == [1, 2, 3]
    assert [r["step"] for r in reader.update()] == [1, 2, 3]  # nothing new, nothing repeated
    path.write_text(_line({"kind": "batch", "step": 9}))  # replaced by a shorter file
    assert [r["step"] for r in reader.update()] == [9]


def test_metrics_csv_has_a_row_per_line_and_per_class_columns():
    rows = [
        {"kind": "batch", "epoch": 1, "step": 1, "loss": 2.3, "samples_per_s": 1000.0, "time": 1.5},
        {"kind": "epoch", "epoch": 1, "step": 10, "train_loss": 1.25, "train_acc": 0.5, "test_loss": 1.5,
         "test_acc": 0.625, "per_class_acc": [i / 10 for i in range(10)], "confusion": [[0] * 10] * 10,
         "seconds": 3.0, "time": 2.0},
    ]  # fmt: skip
    table = list(csv.DictReader(io.StringIO(analysis.metrics_csv(rows))))
    assert len(table) == 2
    assert table[0]["kind"] == "batch" and table[0]["loss"] == "2.3" and table[0]["test_acc"] == ""
    assert table[1]["test_acc"] == "0.625" and table[1]["loss"] == ""
    assert table[1][f"test_acc_{CLASSES[6]}"] == "0.6"
    assert table[0][f"test_acc_{CLASSES[6]}"] == ""
    assert "confusion" not in table[1]


def test_overlay_gives_one_curve_per_run_that_has_the_metric():
    metrics = {
        "a": [{"kind": "batch", "step": 1, "loss": 2.0}, {"kind": "epoch", "epoch": 1, "test_acc": 0.5}],
        "b": [{"kind": "batch", "step": 1, "loss": 1.0}],  # stopped before its first epoch ended
    }
    acc = analysis.overlay(metrics, "test_acc")
    assert [(c.name, c.x, c.y) for c in acc] == [("a", [1], [0.5])]
    loss = analysis.overlay(metrics, "loss", kind="batch")
    assert [(c.name, c.x, c.y) for c in loss] == [("a", [1], [2.0]), ("b", [1], [1.0])]


def test_thin_keeps_long_curves_short_with_both_ends():
    xs = list(range(5001))
    tx, ty = analysis.thin(xs, [x * 2 for x in xs], max_points=1000)
    assert len(tx) <= 1001 and tx[0] == 0 and tx[-1] == 5000
    assert ty == [x * 2 for x in tx]
    assert analysis.thin([1, 2], [3, 4]) == ([1, 2], [3, 4])
