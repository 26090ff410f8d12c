"""The Optimization page: the budget, the loss table against nn.CrossEntropyLoss, and each step button."""

import random

import pytest
import torch
from streamlit.testing.v1 import AppTest
from torch import nn

from core.data.fashion import PROJECT_ROOT, load_split
from core.learn import optimization as opt
from core.learn.build_model import untrained_model

PAGE = str(PROJECT_ROOT / "pages" / "Optimization.py")


@pytest.fixture
def at(real_data, run_store) -> AppTest:
    page = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=60).run().switch_page(PAGE).run()
    assert not page.exception
    return page


def _click(at: AppTest, key: str) -> AppTest:
    at.button(key=key).click().run()
    assert not at.exception
    return at


def _step_table(at: AppTest):
    """The one-step panel's table (parameter by parameter), whatever else the page shows."""
    return next(d.value for d in at.dataframe if "Parameter" in d.value.columns)


def test_the_budget_follows_the_batch_size(at):
    assert [m.value for m in at.metric][:3] == ["938", "4,690", "300,000"]
    at.select_slider(key="optimization_batch").set_value(256).run()
    assert at.metric[0].value == "235"
    assert any("the last batch is 96 images" in m.value for m in at.markdown)


def test_the_loss_table_matches_cross_entropy(at):
    table = at.dataframe[0].value
    images, labels = load_split("test")
    indices = random.Random(0).sample(range(len(labels)), 5)
    assert list(table["Sample"]) == [f"#{i}" for i in indices]
    x = images[indices].unsqueeze(1).float() / 255
    expected = nn.CrossEntropyLoss()(untrained_model("mlp")(x), labels[indices]).item()
    assert table["−log p(truth)"].mean() == pytest.approx(expected, abs=1e-5)
    assert any(f"**{expected:.6f}**: the same number" in m.value for m in at.markdown)
    _click(at, "optimization_loss_shuffle")
    assert list(at.dataframe[0].value["Sample"]) != [f"#{i}" for i in indices]


def test_each_step_button_does_its_line(at):
    at = _click(at, "optimization_do_backward")
    assert "there is no loss yet" in at.warning[0].value
    at = _click(at, "optimization_do_forward")
    assert "loss = 2.3" in at.success[0].value
    assert "pred = model(X)  # <- this step" in at.code[-1].value
    at = _click(at, "optimization_do_backward")
    norms = _step_table(at)
    assert list(norms.columns) == ["Parameter", "‖grad‖"] and (norms["‖grad‖"] > 0).all()
    at = _click(at, "optimization_do_step")
    moved = _step_table(at)
    assert (moved["‖change‖ made by step()"] > 0).all()
    before, after = (float(v) for v in at.success[0].value.split("went from ")[1].split(" to "))
    assert after < before
    at = _click(at, "optimization_do_zero_grad")
    assert "every .grad is None again" in at.success[0].value
    at = _click(at, "optimization_do_step")
    assert "no parameter moved" in at.warning[0].value


def test_the_steps_never_change_the_shared_model(at):
    shared = untrained_model("mlp")
    before = shared.linear_relu_stack[0].weight.detach().clone()
    for key in ("optimization_do_forward", "optimization_do_backward", "optimization_do_step"):
        at = _click(at, key)
    from ui.model_picker import _untrained

    assert torch.equal(_untrained("mlp").linear_relu_stack[0].weight, before)
    assert opt.HERE in at.code[-1].value


def test_a_ready_made_race_started_on_the_page_finishes_with_a_table(at, run_store):
    from core import runs

    at.slider(key="race_steps").set_value(20).run()
    at = _click(at, "race_start")
    assert not at.error
    race_id = at.session_state["race_shown"]
    race = runs.wait(race_id, timeout=120)
    assert race.status == "finished", race.error
    at.run()
    table = at.dataframe[-1].value
    assert list(table["Contender"]) == ["SGD", "SGD + momentum 0.9", "Adam", "AdamW"]
    assert table["Test accuracy"].between(0, 100).all()
    chart = [c for c in at.get("plotly_chart") if "Batch loss, every contender" in c.proto.spec]
    assert chart and all(name in chart[0].proto.spec for name in table["Contender"])


def test_a_race_on_a_busy_device_is_refused_with_a_message(at, run_store):
    from core import runs
    from core.training.config import TrainConfig

    run_id = runs.start(TrainConfig(epochs=1, limit_batches=2000, device="cpu"))
    try:
        at = _click(at, "race_start")
        assert any("already training on cpu" in e.value for e in at.error)
    finally:
        runs.stop(run_id)
        runs.wait(run_id, timeout=60)


def test_the_custom_race_table_starts_from_the_optimizers_race_and_bad_rows_are_refused():
    from ui.learn.race import _contender

    assert _contender({"label": " fast ", "optimizer": "adam", "lr": 0.01, "momentum": None,
                       "weight_decay": None, "batch_size": 32.0}).label == "fast"  # fmt: skip
    with pytest.raises((TypeError, ValueError)):
        _contender({"label": "x", "optimizer": "sgd", "lr": None, "batch_size": 64})
