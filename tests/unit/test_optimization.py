"""core.learn.optimization: budgets, the loss taken apart against nn.CrossEntropyLoss, one step at a time;
the experiments (zero_grad() skipped, a learning rate too large, train mode at test time) and the page's
program, run as a learner would."""

import re

import pytest
import torch
from torch import nn

from core.data.fashion import load_split
from core.learn import optimization as opt
from core.learn import optimization_pitfalls as pit
from core.learn.build_model import untrained_model
from core.learn.programs.optimization import program
from core.model.networks import build_model
from tests.conftest import run_program


def test_a_budget_counts_steps_and_the_last_partial_batch():
    tutorial = opt.budget(64, 5)
    assert tutorial.steps_per_epoch == 938 and tutorial.total_steps == 4690
    assert tutorial.last_batch == 60_000 - 937 * 64 == 32
    assert opt.budget(60_000, 1).steps_per_epoch == 1 and opt.budget(100, 2).last_batch == 0
    with pytest.raises(opt.BadOptimizationInput):
        opt.budget(0, 1)


def test_the_loss_taken_apart_equals_cross_entropy(real_data):
    torch.manual_seed(0)
    images, labels = load_split("test")
    model = build_model("mlp")
    parts = opt.loss_breakdown(model, images, labels, [0, 1, 2, 3, 4])
    assert len(parts.rows) == 5 and parts.logits.shape == (5, 10)
    assert parts.mean_by_hand == pytest.approx(parts.from_pytorch, abs=1e-6)
    x = images[[0, 1, 2, 3, 4]].unsqueeze(1).float() / 255
    assert parts.from_pytorch == pytest.approx(nn.CrossEntropyLoss()(model(x), labels[:5]).item(), abs=1e-6)
    assert all(row.truth == int(labels[row.index]) for row in parts.rows)
    assert torch.allclose(parts.probabilities.sum(1), torch.ones(5))
    with pytest.raises(opt.BadOptimizationInput):
        opt.loss_breakdown(model, images, labels, [10_000])


def _stepper(optimizer: str = "sgd", lr: float = 0.1) -> opt.Stepper:
    torch.manual_seed(0)
    images, labels = load_split("train")
    x, y = opt.fixed_batch(images, labels, 64, seed=1)
    model = build_model("mlp")
    return opt.Stepper(model, opt.build_optimizer(optimizer, model.parameters(), lr), x, y)


def test_each_stage_does_what_its_line_does(real_data):
    s = _stepper()
    assert not s.backward().ok  # no loss yet
    forward = s.forward()
    assert forward.ok and forward.loss == pytest.approx(2.3, abs=0.2)  # ln 10 for an untrained model
    backward = s.backward()
    assert backward.ok and all(v is not None and v > 0 for v in backward.grad_norms.values())
    assert not s.backward().ok  # the graph is freed
    step = s.step()
    assert step.ok and all(v > 0 for v in step.moved.values())
    assert step.loss_after < step.loss  # the same batch, after one step downhill
    zero = s.zero_grad()
    assert all(v is None for v in zero.grad_norms.values())
    still = s.step()
    assert not still.ok and not any(still.moved.values())  # no gradients: nothing moves


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw"])
def test_every_optimizer_lowers_the_batch_loss_in_one_step(real_data, optimizer):
    s = _stepper(optimizer, lr=1e-3 if optimizer != "sgd" else 0.1)
    s.forward()
    s.backward()
    report = s.step()
    assert report.ok and report.loss_after < report.loss


def test_the_train_loop_marks_the_stage_line():
    code = opt.train_loop_code("backward").splitlines()
    assert [line for line in code if line.endswith(opt.HERE)] == ["        loss.backward()" + opt.HERE]
    assert sum(line.endswith(opt.HERE) for line in opt.train_loop_code("forward").splitlines()) == 2
    assert opt.HERE not in opt.train_loop_code(None)


def test_bad_optimizer_choices_are_refused():
    params = [nn.Parameter(torch.zeros(1))]
    for name, lr in (("rmsprop", 0.1), ("sgd", 0.0), ("adam", float("nan")), ("adamw", 100.0)):
        with pytest.raises(opt.BadOptimizationInput):
            opt.build_optimizer(name, params, lr)


# ---- zero_grad() skipped, a learning rate too large, train mode at test time -------------------------------


def _batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = load_split("train")
    return opt.fixed_batch(images, labels, 64, seed)


def test_skipping_zero_grad_doubles_the_gradients_and_the_sgd_step(real_data):
    x, y = _batch()
    found = pit.skip_zero_grad(untrained_model("mlp"), "sgd", 0.1, x, y)
    assert found.grad_ratio == pytest.approx(2.0, rel=1e-4)
    for name, norm in found.right.grad_norms.items():
        assert found.skipped.grad_norms[name] == pytest.approx(2 * norm, rel=1e-4, abs=1e-9)
    assert found.skipped.moved == pytest.approx(2 * found.right.moved, rel=1e-4)  # SGD: lr × the summed .grad
    # The numbers: 2.3127 -> 2.2643 done right, -> 2.2216 with the gradients doubled.
    assert found.loss_before == pytest.approx(2.3127, abs=2e-3)
    assert found.right.loss_after == pytest.approx(2.2643, abs=2e-3)
    assert found.skipped.loss_after == pytest.approx(2.2216, abs=2e-3)
    # In the loop the sum keeps growing: done right the loss falls at every step, without zero_grad it climbs.
    assert pit.rises(found.loop_right) == 0 and pit.rises(found.loop_skipped) >= 1


def test_adam_takes_the_same_first_step_from_a_doubled_gradient(real_data):
    x, y = _batch()
    found = pit.skip_zero_grad(untrained_model("mlp"), "adam", 1e-3, x, y)
    assert found.grad_ratio == pytest.approx(2.0, rel=1e-4)
    assert found.skipped.moved == pytest.approx(found.right.moved, rel=1e-2)  # m / √v is scale-free


def test_the_stepper_says_when_zero_grad_was_skipped(real_data):
    s = _stepper()
    s.forward()
    once = s.backward()
    s.forward()
    twice = s.backward()
    assert "zero_grad() was skipped" in twice.message and "2 backward passes summed" in twice.message
    assert opt.total_norm(twice.grad_norms) == pytest.approx(2 * opt.total_norm(once.grad_norms), rel=1e-4)
    step = s.step()
    assert step.ok and "zero_grad() was skipped" in step.message and "2×" in step.message
    s.zero_grad()
    s.forward()
    assert "zero_grad() was skipped" not in s.backward().message


def test_a_learning_rate_too_large_makes_the_loss_climb(real_data):
    x, y = _batch()
    small, large = pit.lr_curves(untrained_model("mlp"), [1e-3, 3.0], x, y)
    assert len(small.losses) == len(large.losses) == pit.LR_STEPS
    assert not small.climbed and small.losses[-1] < small.losses[0]
    assert large.climbed and large.losses[1] > large.losses[0]  # the first step already lands higher
    assert small.losses[0] == pytest.approx(large.losses[0], abs=1e-6)  # the same weights to start


def test_cross_entropy_is_log_softmax_then_nll(real_data):
    images, labels = load_split("test")
    x, y = images[:64].unsqueeze(1).float() / 255, labels[:64]
    with torch.no_grad():
        logits = untrained_model("mlp")(x)
    other = opt.other_losses(logits, y)
    assert other.nll_of_log_softmax == pytest.approx(other.cross_entropy, abs=1e-9)
    assert other.cross_entropy == pytest.approx(nn.CrossEntropyLoss()(logits, y).item(), abs=1e-5)
    assert abs(other.nll_of_logits - other.cross_entropy) > 0.5  # logits are no log-probabilities
    assert other.mse == pytest.approx(other.mse_by_hand, abs=1e-12) and 0 < other.mse < 1
    assert -sum(other.log_probs_of_truth) / 64 == pytest.approx(other.cross_entropy, abs=1e-9)


def test_train_mode_at_test_time_changes_the_cnn_not_the_mlp(real_data):
    images, labels = load_split("test")
    mlp = pit.compare_modes(untrained_model("mlp"), images, labels, n=256)
    assert not mlp.mode_layers and not mlp.differ and not mlp.changed_by_testing
    assert mlp.in_train_mode.loss == pytest.approx(mlp.evaluated.loss, abs=1e-6)
    model = untrained_model("cnn")
    before = [b.clone() for b in model.buffers()]
    cnn = pit.compare_modes(model, images, labels, n=256)
    assert any("BatchNorm2d" in layer for layer in cnn.mode_layers) and any(
        "Dropout" in x for x in cnn.mode_layers
    )
    assert cnn.differ and abs(cnn.in_train_mode.loss - cnn.evaluated.loss) > 1e-3
    assert cnn.changed_by_testing  # the train-mode pass moved BatchNorm's running statistics...
    assert all(torch.equal(a, b) for a, b in zip(before, model.buffers(), strict=True))  # ...of a copy only
    assert (cnn.grad_fn_with_no_grad, cnn.grad_fn_without) == (None, "AddmmBackward0")


def test_torch_optim_is_listed_from_torch_itself():
    names = opt.torch_optimizers()
    assert {"SGD", "Adam", "AdamW", "RMSprop"} <= set(names) and "Optimizer" not in names


# ---- the code you would write ------------------------------------------------------------------------------


def test_the_first_printed_line_is_the_tutorials_format(real_data):
    images, labels = load_split("train")
    loss = opt.first_printed_loss(untrained_model("mlp"), images, labels, 64)
    assert loss == pytest.approx(2.3053, abs=2e-3)
    assert opt.printed_loss_line(loss, 64) == f"loss: {loss:>7f}  [   64/60000]"


def test_the_program_takes_the_controls_as_literals():
    source = program(0.3, 128, 2).source()
    assert "learning_rate = 0.3\nbatch_size = 128\nepochs = 2\nmax_batches = None" in source
    assert "optimizer = torch.optim.SGD(model.parameters(), lr=learning_rate)" in source
    assert (
        "model.eval()" in source and "with torch.no_grad():" in source and "optimizer.zero_grad()" in source
    )
    assert "max_batches = 3" in program(0.3, 128, 2, max_batches=3).source()
    compile(source, "optimization.py", "exec")


def test_the_program_prints_what_the_page_shows(real_data, tmp_path):
    out = run_program(program(1e-3, 64, 1, max_batches=3), tmp_path)
    lines = re.findall(r"loss: +([0-9.]+)  \[ *(\d+)/60000\]", out)
    assert [int(n) for _, n in lines] == [64]  # batch 0 only: 3 batches, printed every 100
    images, labels = load_split("train")
    page = opt.first_printed_loss(untrained_model("mlp"), images, labels, 64)
    assert float(lines[0][0]) == pytest.approx(page, abs=1e-4)  # the page's "first printed line"
    test = re.search(r"Test Error: \n Accuracy: ([0-9.]+)%, Avg loss: ([0-9.]+) \n", out)
    assert test and 0 <= float(test[1]) <= 100 and 1.5 < float(test[2]) < 2.5
    assert out.rstrip().endswith("Done!") and "Epoch 1\n" in out
