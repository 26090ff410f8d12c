"""The Optimization page: the budget, the loss table against nn.CrossEntropyLoss, each step button, the three
experiments (zero_grad() skipped, a learning rate too large, train mode at test time), the races, and the
code you would write."""

import os
import random
import re

import pytest
import torch
from streamlit.testing.v1 import AppTest
from torch import nn

from core.data.fashion import PROJECT_ROOT, load_split
from core.learn import optimization as opt
from core.learn import optimization_pitfalls as pit
from core.learn.build_model import untrained_model
from core.learn.programs import optimization as programs
from tests.app.conftest import answers_shown

PAGE = str(PROJECT_ROOT / "pages" / "Optimization.py")


@pytest.fixture
def at(real_data, run_store) -> AppTest:
    page = (
        answers_shown(AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=60))
        .run()
        .switch_page(PAGE)
        .run()
    )
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
    images, labels = load_split("test")
    indices = random.Random(0).sample(range(len(labels)), 5)
    x = images[indices].unsqueeze(1).float() / 255
    expected = nn.CrossEntropyLoss()(untrained_model("mlp")(x), labels[indices]).item()
    at.toggle(key="moments_on").set_value(True).run()  # the sidebar's switch: predictions asked
    assert not any("Mean of −log p(truth)" in m.value for m in at.markdown)  # asked first (ui.learn.moment)
    at.text_input(key="moment_optimization-loss_guess").input(f"{expected * 1.05:.3f}")  # within 10%
    _click(at, "moment_optimization-loss_commit")
    assert any(s.value.startswith("Right: you said") for s in at.success)
    table = at.dataframe[0].value
    assert list(table["Sample"]) == [f"#{i}" for i in indices]
    assert table["−log p(truth)"].mean() == pytest.approx(expected, abs=1e-5)
    assert any(f"**{expected:.6f}**: the same number" in m.value for m in at.markdown)
    _click(at, "optimization_loss_shuffle")  # other samples: the question again
    assert not any("Mean of −log p(truth)" in m.value for m in at.markdown)
    _click(at, "moment_optimization-loss_show")
    assert list(at.dataframe[0].value["Sample"]) != [f"#{i}" for i in indices]


def test_each_step_button_does_its_line(at):
    at = _click(at, "optimization_do_backward")
    assert "there is no loss yet" in at.warning[0].value
    at = _click(at, "optimization_do_forward")
    assert "loss = 2.3" in at.success[0].value
    assert opt.train_loop_code("forward") in [c.value for c in at.code]
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
    assert opt.train_loop_code("step") in [c.value for c in at.code]


def test_a_ready_made_race_started_on_the_page_finishes_with_a_table(at, run_store):
    from core import runs

    at.slider(key="race_steps").set_value(20).run()
    at.segmented_control(key="race_choice").set_value("Optimizers").run()
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


def test_a_race_on_a_busy_device_waits_in_the_queue(at, run_store):
    from core import runs
    from core.training.config import TrainConfig

    run_id = runs.start(TrainConfig(epochs=1, limit_batches=2000, device="cpu"))
    try:
        at.segmented_control(key="race_choice").set_value("Optimizers").run()
        at = _click(at, "race_start")
        assert not at.error
        (race,) = runs.list_races()
        assert race.status == "queued" and runs.place_in_queue(race.id).position == 1
        runs.cancel(race.id)
    finally:
        runs.stop(run_id)
        runs.wait(run_id, timeout=60)


def test_the_custom_race_table_starts_from_the_optimizers_race_and_bad_rows_are_refused():
    from ui.learn.race import _contender

    assert _contender({"label": " fast ", "optimizer": "adam", "lr": 0.01, "momentum": None,
                       "weight_decay": None, "batch_size": 32.0}).label == "fast"  # fmt: skip
    with pytest.raises((TypeError, ValueError)):
        _contender({"label": "x", "optimizer": "sgd", "lr": None, "batch_size": 64})


def _numbers(text: str) -> list[float]:
    return [float(n) for n in re.findall(r"\*\*(-?[0-9.]+)\*\*", text)]


def test_skipping_zero_grad_shows_the_doubled_gradients_and_the_longer_step(at):
    images, labels = load_split("train")
    x, y = opt.fixed_batch(images, labels, 64, 0)  # the page's batch: seed 0
    expected = pit.skip_zero_grad(untrained_model("mlp"), "sgd", 0.1, x, y)
    said = next(m.value for m in at.markdown if m.value.startswith("**What happened**"))
    before, right, skipped = _numbers(said)
    assert before == pytest.approx(expected.loss_before, abs=2e-4)  # 2.3127
    assert right == pytest.approx(expected.right.loss_after, abs=2e-4)  # 2.2643
    assert skipped == pytest.approx(expected.skipped.loss_after, abs=2e-4)  # 2.2216
    assert "(×2.000)" in said
    table = next(d.value for d in at.dataframe if "zero_grad() skipped" in d.value.columns)
    norms = table[table[""].str.contains("grad")]
    assert len(norms) == 7 and norms["skipped / right"].between(1.999, 2.001).all()  # 6 tensors and all
    assert any("What to expect" in m.value and "twice" in m.value for m in at.markdown)


def test_the_stepper_says_so_when_zero_grad_is_skipped(at):
    for key in ("forward", "backward", "forward", "backward"):
        at = _click(at, f"optimization_do_{key}")
    assert "zero_grad() was skipped" in at.success[0].value
    at = _click(at, "optimization_do_step")
    said = at.success[0].value
    before, after = (float(v) for v in re.search(r"went from ([0-9.]+) to ([0-9.]+)", said).groups())
    assert before == pytest.approx(2.3127, abs=2e-3) and after == pytest.approx(2.2216, abs=2e-3)
    assert "2 backward passes summed" in said and "2×" in said


def test_a_learning_rate_too_large_climbs_on_the_page(at):
    table = next(d.value for d in at.dataframe if "lr = 3" in d.value.columns)
    assert table["lr = 0.001"].iloc[-1] < table["lr = 0.001"].iloc[0]
    assert table["lr = 3"].iloc[1] > table["lr = 3"].iloc[0]
    assert any("at lr 3 the loss climbed" in m.value for m in at.markdown)
    at.select_slider(key="optimization_big_lr").set_value(10.0).run()
    assert not at.exception and any("lr = 10" in d.value.columns for d in at.dataframe)


def test_train_mode_at_test_time_changes_the_cnn_and_not_the_mlp(at):
    table = next(d.value for d in at.dataframe if "test loop" in d.value.columns)
    evaluated, train_mode, _after = table["Avg loss"]
    assert abs(evaluated - train_mode) > 1e-3  # the untrained CNN, picked by default
    said = next(m.value for m in at.markdown if "gives the same in both modes" in m.value)
    mlp = [float(v) for v in re.findall(r"avg loss ([0-9.]+) with eval\(\), ([0-9.]+) without", said)[0]]
    assert mlp[0] == pytest.approx(mlp[1], abs=1e-6)
    assert "`None`" in said and "`AddmmBackward0`" in said


def test_the_other_losses_and_optimizers_are_named(at):
    metrics = {m.label: float(m.value) for m in at.metric if m.label.startswith("nn.")}
    assert metrics["nn.NLLLoss(LogSoftmax(pred), y)"] == pytest.approx(
        metrics["nn.CrossEntropyLoss(pred, y)"], abs=2e-6
    )
    assert "nn.MSELoss(probs, one-hot)" in metrics
    named = next(m.value for m in at.markdown if "torch.optim` holds" in m.value)
    assert all(f"`{name}`" in named for name in ("SGD", "Adam", "RMSprop"))


def test_the_race_section_opens_with_the_optimizers_race_chosen_and_its_table_filled(at):
    from core.training.race import READY

    assert at.segmented_control(key="race_choice").value == "Optimizers"
    table = next(d.value for d in at.dataframe if "contender" in d.value.columns)
    assert list(table["contender"]) == [c.label for c in READY["Optimizers"]]
    assert not any("Pick a race above" in i.value for i in at.info)
    assert not at.button(key="race_start").disabled
    at.segmented_control(key="race_choice").set_value("Learning rates").run()
    table = next(d.value for d in at.dataframe if "contender" in d.value.columns)
    assert len(table) == 5 and not at.button(key="race_start").disabled
    at.segmented_control(key="race_choice").set_value(None).run()  # unselected: the note, Start off
    assert any("Pick a race above" in i.value for i in at.info)
    assert at.button(key="race_start").disabled


def test_a_queued_race_reads_queued_on_the_page_and_in_the_sidebar(at, run_store):
    from core import runs
    from core.base.procs import process_started
    from core.runs import store as runstore
    from core.training.race import READY, RaceConfig

    directory = runs.create_run(RaceConfig(READY["Optimizers"], steps=50), run_store / "20260101-000000-9ace")
    me = os.getpid()  # a worker that is alive (this test) and has not taken the race yet
    runstore._write_status(directory, pid=me, pid_started=process_started(me))
    at.session_state["race_shown"] = directory.name
    at.run()
    assert not at.exception
    texts = [p.text for p in at.get("progress")]
    assert "queued, waiting for its worker · step 0 of 50" in texts
    side = [c.value for c in at.sidebar.caption]
    assert "Optimizer race queued, waiting for its worker" in side and "Optimizer race running" not in side
    runstore._write_status(directory, status="running")  # its worker took it
    at.run()
    assert "Optimizer race running" in [c.value for c in at.sidebar.caption]
    assert any(p.text.startswith("running · step 0 of 50") for p in at.get("progress"))


def test_every_race_line_has_its_own_colour_and_dash():
    from ui.learn.race import LEGEND_HELP, race_figure

    labels = ["SGD", "SGD + momentum 0.9", "Adam", "AdamW", "a", "b"]
    rows = [{"step": s, "losses": [2.3 - 0.01 * s] * 6} for s in (1, 10, 20)]
    figure = race_figure(rows, labels)
    styles = [(t["line"]["color"], t["line"]["dash"]) for t in figure["data"]]
    assert len({c for c, _ in styles}) == len({d for _, d in styles}) == 6
    assert figure["layout"]["legend"]["itemclick"] == "toggle"
    assert figure["layout"]["legend"]["itemdoubleclick"] == "toggleothers"
    assert "double-click" in LEGEND_HELP


def test_the_code_you_would_write_follows_the_controls(at):
    at.select_slider(key="optimization_lr").set_value(0.1).run()
    at.select_slider(key="optimization_batch").set_value(128).run()
    source = at.code[-1].value
    assert "learning_rate = 0.1\nbatch_size = 128\nepochs = 5" in source
    assert "def test_loop(dataloader, model, loss_fn):" in source
    first = next(c.value for c in at.code if c.value.startswith("loss: "))
    assert first.endswith("[  128/60000]")
    links = next(m.value for m in at.markdown if "](#train-mode-at-test-time)" in m.value)
    assert all(f"](#{a})" in links for a in ("hyperparameters", "the-loss-function", "the-optimizer"))
    anchors = {h.proto.anchor for h in at.subheader}
    assert all(piece.anchor in anchors for piece in programs.program(0.1, 128, 5).pieces if piece.anchor)
    assert not at.exception
