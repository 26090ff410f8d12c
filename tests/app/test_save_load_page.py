"""The Save & Load page: the round trip's predictions side by side, eval() against train(), the whole model
refused, a run's weights from a link."""

import re

import pytest
from streamlit.testing.v1 import AppTest

from core import runs
from core.data.fashion import CLASSES, PROJECT_ROOT, load_split
from core.learn import build_model as bm
from core.learn import save_load as sl
from core.model.checkpoint import save_checkpoint
from core.model.networks import MODELS
from core.runs import store as runstore
from core.training.config import TrainConfig
from tests.app.conftest import answers_shown

PAGE = str(PROJECT_ROOT / "pages" / "Save_Load.py")
RUN_ID = "20260101-000000-save"
START = 100  # the first of the eight test images in the link test


def _page(**query: str) -> AppTest:
    at = answers_shown(AppTest.from_file(PAGE, default_timeout=60))
    for key, value in query.items():
        at.query_params[key] = value
    return at.run()


def _texts(at: AppTest, kind: str) -> list[str]:
    return [element.value for element in at.get(kind)]


def _classes(logits) -> list[str]:
    return [CLASSES[int(i)] for i in logits.argmax(1)]


def _gaps(line: str) -> list[float]:
    """The bold numbers of a line: **0.739388**."""
    return [float(n) for n in re.findall(r"\*\*(\d+\.\d+)\*\*", line)]


def _expected(name: str, start: int, model=None, options=None):
    images, _ = load_split("test")
    x = sl.batch(images, start)
    seeded = sl.seeded_models(name, options)
    model = model if model is not None else seeded[0]
    return sl.round_trip(model, *seeded[1:], x), x


@pytest.fixture
def cnn_run(run_store):
    """A finished CNN run whose weights are seed 1's: other than the page's seeded untrained CNN."""
    directory = runs.create_run(TrainConfig(model="cnn"), run_store / RUN_ID)
    weights = bm.untrained_model("cnn", seed=1)
    save_checkpoint(
        weights, directory / runs.CHECKPOINT, model_name="cnn", model_options=MODELS["cnn"].defaults
    )
    runstore._write_status(directory, status="finished", best_test_acc=0.9)
    return weights


def test_the_loaded_model_answers_as_the_saved_one_and_a_fresh_one_does_not(real_data, run_store):
    at = _page()
    assert not at.exception and not at.error and not at.warning
    assert at.title[0].value.endswith(" Save & Load")
    assert dict(at.query_params) == {"model": "untrained:mlp", "from": "0"}
    trip, _ = _expected("mlp", 0)
    keys = at.dataframe[0].value
    assert list(keys["key"]) == [e.key for e in trip.entries]
    assert list(keys["shape"]) == ["(512, 784)", "(512,)", "(512, 512)", "(512,)", "(10, 512)", "(10,)"]
    assert any(f"({trip.size:,} bytes)" in m for m in _texts(at, "markdown"))
    table = at.dataframe[1].value
    assert list(table.loc["model"]) == list(table.loc["model2, loaded"]) == _classes(trip.original)
    assert list(table.loc["fresh, never loaded"]) == _classes(trip.fresh) != _classes(trip.original)
    assert list(table.loc["true class"]) == [CLASSES[i] for i in load_split("test")[1][:8].tolist()]
    loaded = next(m for m in _texts(at, "markdown") if "**model2, loaded**" in m)
    assert "**8 of 8**" in loaded and _gaps(loaded) == [pytest.approx(0.0, abs=1e-6)]
    fresh = next(m for m in _texts(at, "markdown") if "never loaded, agrees" in m)
    assert _gaps(fresh)[0] == pytest.approx(trip.fresh_gap, abs=1e-5)
    assert any(
        "model2.load_state_dict(torch.load('model_weights.pth', weights_only=True))" in c.value
        for c in at.code
    )
    assert at.get("download_button")[0].proto.label == "Download model_weights.pth"


def test_train_mode_changes_the_cnns_answers_and_not_the_mlps(real_data, run_store):
    at = _page()
    assert not at.exception
    assert any(m.startswith("**What to expect**") for m in _texts(at, "markdown"))
    _, x = _expected("mlp", 0)
    cnn = sl.compare_modes(bm.untrained_model("cnn"), x)
    cnn_table, mlp_table = at.dataframe[2].value, at.dataframe[3].value
    assert list(cnn_table.loc["model.eval()"]) == _classes(cnn.evaluated)
    assert list(cnn_table.loc["model.train(), 1st call"]) == _classes(cnn.first)
    assert list(cnn_table.loc["model.eval()"]) != list(cnn_table.loc["model.train(), 1st call"])
    cnn_line = next(m for m in _texts(at, "markdown") if m.startswith(":red[:material/warning:]"))
    train_gap, call_gap = _gaps(cnn_line)
    assert train_gap == pytest.approx(cnn.train_gap, abs=1e-5) and train_gap > 1e-2
    assert call_gap == pytest.approx(cnn.call_gap, abs=1e-5) and call_gap > 1e-2
    assert "2 BatchNorm layers" in cnn_line and "Dropout p=0.25" in cnn_line
    rows = mlp_table.loc[["model.eval()", "model.train(), 1st call", "model.train(), 2nd call"]]
    assert all(list(rows.iloc[i]) == list(rows.iloc[0]) for i in range(3))
    mlp_line = next(m for m in _texts(at, "markdown") if "no BatchNorm and no Dropout" in m)
    assert _gaps(mlp_line) == [pytest.approx(0.0, abs=1e-6), pytest.approx(0.0, abs=1e-6)]


def test_the_whole_model_is_shown_refused_by_weights_only_true(real_data, run_store):
    at = _page()
    assert not at.exception
    codes = [c.value for c in at.code]
    assert any("model = torch.load('model.pth', weights_only=False)" in c for c in codes)  # shown, as text
    refusal = next(c for c in codes if c.startswith("Weights only load failed"))
    assert "Unsupported global: GLOBAL core.model.networks.NeuralNetwork was not an allowed global" in refusal
    markdown = _texts(at, "markdown")
    assert any("refused: `core.model.networks.NeuralNetwork` is not an allowed global" in m for m in markdown)
    assert any("this file holds a whole pickled model, not a state_dict" in m for m in markdown)
    assert "core.model.networks.NeuralNetwork\n__builtin__.set" in "\n".join(codes)  # the pickle's names
    assert any(
        c.startswith('"""Save and Load the Model') and "except pickle.UnpicklingError" in c for c in codes
    )


def test_a_cnn_run_opens_from_a_link_and_its_weights_go_round_trip(real_data, cnn_run):
    at = _page(model=f"run:{RUN_ID}", **{"from": str(START)})
    assert not at.exception and not at.error
    assert at.selectbox(key="save_load_model").value == f"run:{RUN_ID}"
    assert at.number_input(key="save_load_start").value == START
    trip, x = _expected("cnn", START, cnn_run, MODELS["cnn"].defaults)
    table = at.dataframe[1].value
    assert list(table.columns) == [f"#{i}" for i in range(START, START + 8)]
    assert list(table.loc["model"]) == list(table.loc["model2, loaded"]) == _classes(trip.original)
    assert list(table.loc["fresh, never loaded"]) == _classes(trip.fresh)
    assert "features.1.running_mean" in list(at.dataframe[0].value["key"])  # buffers are saved too
    modes = sl.compare_modes(cnn_run, x)
    assert list(at.dataframe[2].value.loc["model.train(), 1st call"]) == _classes(modes.first)
    assert any(m.startswith("**Small CNN** · the model picked above") for m in _texts(at, "markdown"))
    program = next(c.value for c in at.code if c.value.startswith('"""Save and Load the Model'))
    assert "class SmallCNN(nn.Module):" in program and f"indices = {list(range(START, START + 8))}" in program
    assert f"{RUN_ID}/model.pth', weights_only=True))  # the run's weights" in program
    assert at.query_params["model"] == f"run:{RUN_ID}" and at.query_params["from"] == str(START)


def test_a_link_to_a_run_that_is_gone_shows_the_untrained_mlp(real_data, run_store):
    at = _page(model="run:20260101-000000-gone")
    assert not at.exception and not at.error
    assert any("From the link" in c.value for c in at.caption)
    assert at.selectbox(key="save_load_model").value == "untrained:mlp"
