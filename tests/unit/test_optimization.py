"""core.learn.optimization: budgets, the loss taken apart against nn.CrossEntropyLoss, one step at a time."""

import pytest
import torch
from torch import nn

from core.data.fashion import load_split
from core.learn import optimization as opt
from core.model.networks import build_model


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
