"""core.learn.save_load and its program: the state_dict round trip, eval() against train(), the whole model
refused by weights_only=True, and the page's file run as a learner runs it."""

import ast
import io
import os
import pickle
import re
import tempfile
import zipfile

import pytest
import torch

from core.data.fashion import load_split
from core.learn import build_model as bm
from core.learn import save_load as sl
from core.learn.programs.save_load import program
from core.model.networks import build_model
from tests.conftest import run_program

ALLOWED = {
    "collections.OrderedDict",
    "torch._utils._rebuild_tensor_v2",
    "torch.FloatStorage",
    "torch.LongStorage",
}


@pytest.fixture
def x() -> torch.Tensor:
    """Eight inputs in [0, 1], shaped like a batch of ToTensor images: (8, 1, 28, 28)."""
    return torch.rand((sl.SHOWN_IMAGES, 1, 28, 28), generator=torch.Generator().manual_seed(0))


@pytest.fixture
def temp_dir(tmp_path, monkeypatch):
    """tempfile's folder moved where a test can see what is left in it."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_loaded_weights_give_the_same_predictions_and_a_fresh_model_does_not(name, x, temp_dir):
    model, model2, fresh = sl.seeded_models(name)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trip = sl.round_trip(model, model2, fresh, x)
    assert trip.load_result == "<All keys matched successfully>"
    torch.testing.assert_close(trip.loaded, trip.original)
    assert trip.loaded_gap == pytest.approx(0.0, abs=1e-6)
    assert torch.equal(trip.loaded.argmax(1), trip.original.argmax(1))
    assert trip.fresh_gap > 1e-2  # other random weights: the load is what made model2 answer as model
    torch.testing.assert_close(trip.fresh, sl.logits(fresh, x))
    assert [e.key for e in trip.entries] == list(model.state_dict())
    assert [e.shape for e in trip.entries] == [tuple(v.shape) for v in model.state_dict().values()]
    assert trip.size > 4 * sum(p.numel() for p in model.parameters())  # float32, plus the archive
    assert torch.load(io.BytesIO(trip.data), weights_only=True).keys() == model.state_dict().keys()
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items()) and not model.training
    assert not list(temp_dir.iterdir())  # the file lived in a temporary folder, now gone


def test_the_seeded_models_are_the_untrained_model_then_two_others():
    model, model2, fresh = sl.seeded_models("mlp")
    reference = bm.untrained_model("mlp")
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), reference.parameters(), strict=True))
    first = [next(m.parameters()) for m in (model, model2, fresh)]
    assert not torch.equal(first[0], first[1]) and not torch.equal(first[1], first[2])
    again = sl.seeded_models("mlp")
    assert all(torch.equal(a, next(b.parameters())) for a, b in zip(first, again, strict=True))


def test_train_mode_changes_the_cnns_outputs_and_between_calls(x):
    model = bm.untrained_model("cnn")
    means = [m.running_mean.clone() for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    modes = sl.compare_modes(model, x)
    assert modes.batch_norms == 2 and modes.dropouts == (0.25,) and modes.changes_with_mode
    assert modes.train_gap > 1e-2  # batch statistics and dropout
    assert modes.call_gap > 1e-2  # dropout's new coin flips
    torch.testing.assert_close(modes.evaluated, sl.logits(model, x))
    assert modes.stats_moved > 0
    after = [m.running_mean for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert all(torch.equal(a, b) for a, b in zip(means, after, strict=True)) and not model.training
    again = sl.compare_modes(model, x)  # the dropout draws are seeded: the page shows the same each time
    torch.testing.assert_close(again.first, modes.first)


def test_train_mode_changes_nothing_in_the_tutorials_mlp_but_a_dropout_mlp_changes(x):
    modes = sl.compare_modes(bm.untrained_model("mlp"), x)
    assert modes.batch_norms == 0 and modes.dropouts == () and not modes.changes_with_mode
    torch.testing.assert_close(modes.first, modes.evaluated)
    torch.testing.assert_close(modes.second, modes.first)
    assert modes.train_gap == pytest.approx(0.0, abs=1e-6) and modes.stats_moved == 0.0
    dropping = sl.compare_modes(build_model("mlp", dropout=0.2).eval(), x)  # a run trained with dropout
    assert dropping.dropouts == (0.2, 0.2) and dropping.call_gap > 1e-3


@pytest.mark.parametrize(("name", "cls"), [("mlp", "NeuralNetwork"), ("cnn", "SmallCNN")])
def test_the_whole_model_is_refused_by_weights_only_true_with_pytorchs_error(name, cls, x, temp_dir):
    model = bm.untrained_model(name)
    trip = sl.round_trip(model, *sl.seeded_models(name)[1:], x)
    whole = sl.whole_model(model, trip.data)
    assert whole.error is not None and "Weights only load failed" in whole.error
    assert "\x1b[" not in whole.error  # the terminal's bold is gone
    assert sl.refusal_line(whole.error).startswith("WeightsUnpickler error: Unsupported global: GLOBAL ")
    assert whole.refused == f"core.model.networks.{cls}" and whole.names[0] == whole.refused
    assert "torch.nn.modules.linear.Linear" in whole.names
    assert set(whole.weights_names) <= ALLOWED  # what a state_dict needs is all allowed
    assert "whole pickled model" in whole.app_message  # what the Predict page says of such an upload
    assert whole.size > trip.size
    assert not list(temp_dir.iterdir())
    path = temp_dir / "model.pth"  # and PyTorch itself, without the page's helpers
    torch.save(model, path)
    with pytest.raises(pickle.UnpicklingError, match="Unsupported global"):
        torch.load(path, weights_only=True)


class _Payload:
    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_listing_a_pickles_names_runs_none_of_them(tmp_path):
    marker = tmp_path / "ran"
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("archive/data.pkl", pickle.dumps(_Payload(str(marker)), protocol=2))
    names = sl.pickle_names(archive.getvalue())
    assert names == [f"{os.system.__module__}.system"] and not marker.exists()
    with zipfile.ZipFile(archive, "w") as z:  # protocol 4 names a global with STACK_GLOBAL
        z.writestr("archive/data.pkl", pickle.dumps(_Payload(str(marker)), protocol=4))
    assert sl.pickle_names(archive.getvalue()) == names and not marker.exists()


# ---- the page's file, run as a learner runs it ----------------------------------------------------------


def _list(out: str, label: str) -> list[int]:
    return ast.literal_eval(re.search(rf"^{re.escape(label)}:\s+(\[.*\])$", out, re.M).group(1))


def _number(out: str, label: str) -> float:
    return float(re.search(rf"^{re.escape(label)}: (\S+)$", out, re.M).group(1))


def _page(name: str, start: int, model: torch.nn.Module | None = None, options: dict | None = None):
    """What the page computes for these controls: the round trip and the modes, on the real test images."""
    images, labels = load_split("test")
    x = sl.batch(images, start)
    seeded = sl.seeded_models(name, options)
    model = model if model is not None else seeded[0]
    return (
        sl.round_trip(model, *seeded[1:], x),
        sl.compare_modes(model, x),
        labels[start : start + 8].tolist(),
    )


def _check(out: str, trip: sl.RoundTrip, modes: sl.Modes, labels: list[int]) -> None:
    size = int(re.search(r"^model_weights\.pth: (\d+) bytes$", out, re.M).group(1))
    assert abs(size - trip.size) <= 1024  # the same tensors; the archive's records may differ by a few bytes
    for entry in trip.entries:
        assert f"\n{entry.key} {entry.shape}\n" in out
    assert _list(out, "true labels") == labels
    assert _list(out, "model") == _list(out, "model2, loaded") == trip.original.argmax(1).tolist()
    assert _list(out, "fresh, never loaded") == trip.fresh.argmax(1).tolist()
    assert _number(out, "largest |model(X) - model2(X)|") == pytest.approx(0.0, abs=1e-6)
    assert _number(out, "largest |model(X) - fresh(X)|") == pytest.approx(trip.fresh_gap, abs=1e-4)
    if torch.accelerator.is_available():  # the file runs there: other Dropout draws than the page's CPU
        assert (_number(out, "largest |train - eval|") > 1e-6) == modes.changes_with_mode
        return
    assert _list(out, "train mode") == modes.first.argmax(1).tolist()
    assert _number(out, "largest |train - eval|") == pytest.approx(modes.train_gap, abs=1e-4)
    assert _number(out, "largest |train - train|") == pytest.approx(modes.call_gap, abs=1e-4)


def test_the_mlp_file_prints_what_the_page_shows(real_data, tmp_path):
    out = run_program(program("mlp", 0), tmp_path)
    trip, modes, labels = _page("mlp", 0)
    _check(out, trip, modes, labels)
    assert _number(out, "largest |train - eval|") == pytest.approx(0.0, abs=1e-6)  # no BatchNorm, no Dropout
    refused = "weights_only=True refused it: WeightsUnpickler error: Unsupported global: GLOBAL __main__."
    assert refused + "NeuralNetwork was not an allowed global" in out


def test_a_runs_cnn_file_loads_its_weights_and_prints_what_the_page_shows(real_data, tmp_path):
    trained = bm.untrained_model("cnn", seed=1)  # other weights than the file's own seeded model
    path = tmp_path / "run" / "model.pth"
    path.parent.mkdir()
    torch.save(trained.state_dict(), path)
    options = {"channels": 32, "hidden": 128, "dropout": 0.25}
    source = program("cnn", 100, options, path).source()
    assert f"model.load_state_dict(torch.load({str(path)!r}, weights_only=True))" in source
    assert all("weights_only=True" in line for line in source.splitlines() if "torch.load(" in line)
    out = run_program(program("cnn", 100, options, path), tmp_path)
    trip, modes, labels = _page("cnn", 100, trained, options)
    _check(out, trip, modes, labels)
    assert modes.train_gap > 1e-2
    assert "Unsupported global: GLOBAL __main__.SmallCNN was not an allowed global" in out
