"""Moments to predict (core.learn.moments): each answer against PyTorch itself, and how guesses are read."""

import numpy as np
import pytest
import torch
from torch import nn

from core.learn import moments
from core.learn.moments import BadGuess


@pytest.mark.parametrize("how", ["cat", "stack"])
@pytest.mark.parametrize("count", [2, 3, 4])
def test_the_join_shape_is_pytorchs(how, count):
    tensor = torch.arange(6).reshape(2, 3)
    for dim in range(-2, 2) if how == "cat" else range(-3, 3):
        expected = tuple(getattr(torch, how)([tensor] * count, dim=dim).shape)
        assert moments.join_shape(how, dim, count) == expected
    assert moments.join_shape("cat", 1, 3) == (2, 9) and moments.join_shape("stack", 0, 3) == (3, 2, 3)


def test_a_numpy_array_follows_its_tensor_as_pytorch_shares_them():
    t = torch.ones(4)
    n = t.numpy()
    t.add_(2.5)
    assert np.array_equal(n, np.full(4, 3.5))  # what the moment's answer rests on
    assert moments.numpy_after_add(4, 2.5) == "the added values, like t"
    assert moments.numpy_after_add(4, 0.0) == "the added values, like t"  # adding 0 changes both alike


def test_flatten_and_linear_answers_are_pytorchs():
    assert moments.flatten_shape(3) == tuple(nn.Flatten()(torch.rand(3, 28, 28)).shape) == (3, 784)
    layer = nn.Linear(784, 512)
    assert moments.linear_parameters() == layer.weight.numel() + layer.bias.numel() == 401_920


def test_two_backward_calls_add_up():
    assert moments.grad_after_two_backwards() == "twice as large"


@pytest.mark.parametrize(
    ("text", "shape"),
    [("6, 3", (6, 3)), ("(6, 3)", (6, 3)), ("6x3", (6, 3)), ("[6,3]", (6, 3)), ("torch.Size([6, 3])", (6, 3)),
     ("3 × 784", (3, 784)), ("()", ()), (" 12 ", (12,))],
)  # fmt: skip
def test_shapes_are_read_as_people_write_them(text, shape):
    assert moments.parse_shape(text) == shape


@pytest.mark.parametrize("text", ["six by three", "6, -3", "6.5, 3", "1e9, 3", "__import__('os')", "1," * 9])
def test_anything_else_is_not_a_shape_and_is_never_run(text):
    with pytest.raises(BadGuess, match="is not a shape"):
        moments.parse_shape(text)


def test_a_guess_is_judged_against_the_computed_answer():
    assert moments.is_right(moments.JOIN_SHAPE, "2, 9", moments.join_shape("cat", 1, 3))
    assert not moments.is_right(moments.JOIN_SHAPE, "6, 3", moments.join_shape("cat", 1, 3))
    assert moments.is_right(moments.LINEAR_PARAMETERS, "401,920", moments.linear_parameters())
    assert not moments.is_right(moments.LINEAR_PARAMETERS, "401408", moments.linear_parameters())  # no bias
    with pytest.raises(BadGuess, match="is not a number"):
        moments.is_right(moments.LINEAR_PARAMETERS, "lots", 401_920)
    with pytest.raises(BadGuess, match="pick one of"):
        moments.is_right(moments.TWO_BACKWARDS, "doubled", "twice as large")
    assert moments.shown(moments.LINEAR_PARAMETERS, 401_920) == "401,920"
    assert moments.shown(moments.JOIN_SHAPE, (2, 9)) == "(2, 9)"


@pytest.mark.parametrize(("images", "batch"), [(60_000, 64), (10_000, 64), (60_000, 100), (7, 8), (8, 3)])
def test_batches_per_epoch_are_the_loaders_own_count(images, batch):
    from torch.utils.data import DataLoader

    loader = DataLoader(range(images), batch_size=batch)
    assert moments.batches_per_epoch(images, batch) == len(loader) == sum(1 for _ in loader)
    assert moments.batches_per_epoch(60_000, 64) == 938  # 937 full batches and one of 32


def test_a_loss_is_right_within_ten_percent():
    untrained = moments.MODEL_LOSS
    assert moments.is_right(untrained, "2.3", 2.41) and moments.is_right(untrained, "2.3", 2.12)
    assert not moments.is_right(untrained, "2.3", 0.45)  # a trained model's loss is far below ln 10
    assert moments.is_right(untrained, "0.01", 0.02)  # near 0: within 0.02


@pytest.mark.parametrize(
    ("images", "batch"), [(60_000, 64), (10_000, 64), (60_000, 100), (7, 8), (8, 3), (5, 1)]
)
def test_the_last_batch_is_the_one_the_loader_serves_last(images, batch):
    from torch.utils.data import DataLoader

    *_, last = DataLoader(torch.arange(images), batch_size=batch)
    assert moments.last_batch_size(images, batch) == len(last)
    assert moments.last_batch_size(60_000, 64) == 32 and moments.last_batch_size(60_000, 100) == 100


def test_the_value_range_is_read_from_what_the_pipeline_gives():
    from PIL import Image
    from torchvision import transforms as T

    image = Image.fromarray(np.array([[0, 128], [255, 3]], dtype=np.uint8))
    to_tensor = T.ToTensor()(image)
    options = moments.VALUE_RANGE.options
    assert moments.value_range(image) == options[0]  # no ToTensor: the PIL image's 0..255
    assert moments.value_range(to_tensor) == options[1]
    assert moments.value_range(T.Normalize(0.5, 0.5)(to_tensor)) == options[2]
    assert moments.value_range(T.Normalize(0.2860, 0.3530)(to_tensor)) == options[3]  # FashionMNIST's own


def test_the_one_hot_answer_is_what_the_tutorials_lambda_gives():
    from core.data.transforms import target_transform

    for label in (0, 3, 9):
        question = moments.one_hot_moment(label, "x")
        assert moments.one_hot_answer(question, target_transform()(label), label) == question.options[1]
        assert moments.one_hot_answer(question, torch.tensor(label), label) == question.options[0]
        assert moments.one_hot_answer(question, torch.ones(label), label) == question.options[2]
    assert "index 3" in moments.one_hot_moment(3, "Dress").options[1]


@pytest.mark.parametrize("how", ["no_grad", "detach"])
def test_tracking_stops_as_pytorch_prints_it(how):
    from core.learn import autograd as ag

    assert moments.requires_grad_after(how) == "False"
    printed = ag.no_grad_snippet(ag.example(0), how).output.split()  # what the page prints
    assert printed == ["True", moments.requires_grad_after(how)]


def test_the_optimization_and_save_load_answers_follow_what_was_measured():
    assert moments.big_rate_answer(True) == "above where it started, or blown up"
    assert moments.big_rate_answer(False) == "below where it started"
    assert moments.train_calls_answer(0.0) == "the same, to the last digit"
    assert moments.train_calls_answer(1e-7) == "different"
    assert moments.whole_load_answer(None) == "returns the model, ready to use"
    assert moments.whole_load_answer("Weights only load failed") == "refuses it: an error"
    assert moments.is_right(moments.GRAD_RATIO, "2", 2.0000003) and not moments.is_right(
        moments.GRAD_RATIO, "1", 2.0
    )
