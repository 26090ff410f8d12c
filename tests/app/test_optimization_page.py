"""The Optimization page: the budget, the loss table against nn.CrossEntropyLoss, and each step button."""

import random

import pytest
import torch
from streamlit.testing.v1 import AppTest
from torch import nn

from core import optimization as opt
from core.build_model import untrained_model
from core.data import PROJECT_ROOT, load_split

PAGE = str(PROJECT_ROOT / "pages" / "8_Optimization.py")


@pytest.fixture
def at(real_data, run_store) -> AppTest:
    page = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=60).switch_page(PAGE).run()
    assert not page.exception
    return page


def _click(at: AppTest, key: str) -> AppTest:
    at.button(key=key).click().run()
    assert not at.exception
    return at


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
    norms = at.dataframe[-1].value
    assert list(norms.columns) == ["Parameter", "‖grad‖"] and (norms["‖grad‖"] > 0).all()
    at = _click(at, "optimization_do_step")
    moved = at.dataframe[-1].value
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
