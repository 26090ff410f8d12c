"""core.model.source: the classes written out build what core.model.networks builds."""

import pytest
import torch
from torch import nn

from core.model.networks import build_model
from core.model.source import DEVICE_LINE, class_code, class_name, layer_lines, line_for

CASES = [
    ("mlp", {}),
    ("mlp", {"hidden": 64, "dropout": 0.2}),
    ("cnn", {}),
    ("cnn", {"channels": 8, "hidden": 16, "dropout": 0.0}),
]


def _from_source(name: str, options: dict) -> nn.Module:
    namespace = {"torch": torch, "nn": nn}
    exec(class_code(name, options), namespace)  # our own generated code, in a test: never user text
    return namespace[class_name(name)]()


@pytest.mark.parametrize(("name", "options"), CASES)
def test_the_written_class_has_the_same_parameters_and_initial_values(name, options):
    torch.manual_seed(3)
    written = _from_source(name, options)
    torch.manual_seed(3)
    ours = build_model(name, **options)
    assert str(written) == str(ours)
    mine, theirs = written.state_dict(), ours.state_dict()
    assert list(mine) == list(theirs)
    for key in mine:
        torch.testing.assert_close(mine[key], theirs[key], rtol=0, atol=0)


def test_the_default_mlp_is_the_tutorials_class_line_for_line():
    code = class_code("mlp")
    first_lines = "class NeuralNetwork(nn.Module):\n    def __init__(self):\n        super().__init__()"
    assert code.startswith(first_lines)
    assert "nn.Linear(28*28, 512)," in code and "nn.Linear(512, 10)," in code
    assert "logits = self.linear_relu_stack(x)\n        return logits" in code


def test_options_are_checked_before_they_become_code():
    with pytest.raises(ValueError, match="hidden"):
        class_code("mlp", {"hidden": "512); import os; os.system('x')"})
    with pytest.raises(ValueError, match="dropout"):
        class_code("cnn", {"dropout": float("nan")})


def test_the_device_line_runs():
    namespace = {"torch": torch}
    exec(DEVICE_LINE, namespace)
    if not torch.accelerator.is_available():
        assert namespace["device"] == "cpu"
    torch.zeros(1, device=namespace["device"])  # a device PyTorch can use


@pytest.mark.parametrize(("name", "options"), CASES)
def test_every_layer_has_the_init_line_that_makes_it(name, options):
    lines = layer_lines(name, options)
    model = build_model(name, **options)
    for module_name, module in model.named_modules():
        if not module_name or list(module.children()):
            continue
        line = line_for(lines, module_name)
        assert line is not None, module_name
        made = eval(line, {"nn": nn})  # our own generated code, in a test: never user text
        held = dict(made.named_modules()).get(
            module_name.removeprefix(_holder(lines, module_name)).lstrip(".")
        )
        assert str(held) == str(module), (module_name, line)
    assert line_for(lines, "no_such_module") is None


def _holder(lines: dict, module_name: str) -> str:
    while module_name not in lines:
        module_name = module_name.rpartition(".")[0]
    return module_name
