"""core.learn.build_model: the layer table, one image traced through the layers by hooks, the diagram,
the code."""

import contextlib
import io
import itertools
import re

import pytest
import torch
from torch import nn

from core.base.errors import BadConfig
from core.learn import build_model as bm
from core.model.networks import INPUT_SHAPE, build_model

MODEL_NAMES = ("mlp", "cnn")


@pytest.fixture
def x() -> torch.Tensor:
    """A (1, 1, 28, 28) input with structure and values in [0, 1], like a ToTensor image."""
    g = torch.Generator().manual_seed(0)
    return torch.rand(INPUT_SHAPE, generator=g)


def _by_hand(model: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """Every leaf module called in turn: both models are plain chains of their leaves."""
    outputs = []
    with torch.no_grad():
        for _name, module in bm.leaf_modules(model):
            x = module(x)
            outputs.append(x)
    return outputs


def _hooks_left(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def test_the_tutorial_mlp_has_669706_parameters_and_the_table_counts_them_all():
    model = bm.untrained_model("mlp")
    rows = bm.layer_table(model)
    assert bm.total_params(model) == sum(p.numel() for p in model.parameters()) == 669_706
    assert sum(row.params for row in rows) == 669_706
    assert [(r.name, r.kind, r.output_shape, r.params) for r in rows] == [
        ("flatten", "Flatten", (1, 784), 0),
        ("linear_relu_stack.0", "Linear", (1, 512), 784 * 512 + 512),
        ("linear_relu_stack.1", "ReLU", (1, 512), 0),
        ("linear_relu_stack.2", "Linear", (1, 512), 512 * 512 + 512),
        ("linear_relu_stack.3", "ReLU", (1, 512), 0),
        ("linear_relu_stack.4", "Linear", (1, 10), 512 * 10 + 10),
    ]
    assert rows[1].share == pytest.approx(401_920 / 669_706)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_layer_table_agrees_with_running_the_model_and_counting_its_parameters(name, x):
    model = bm.untrained_model(name)
    rows = bm.layer_table(model)
    modules = dict(model.named_modules())
    by_hand = _by_hand(model.eval(), x)
    assert [r.output_shape for r in rows] == [tuple(out.shape) for out in by_hand]
    assert rows[-1].output_shape == (1, 10)
    for row in rows:
        assert row.kind == type(modules[row.name]).__name__
        assert row.params == sum(p.numel() for p in modules[row.name].parameters())
    assert sum(r.params for r in rows) == sum(p.numel() for p in model.parameters())
    assert sum(r.share for r in rows) == pytest.approx(1.0)


def test_trace_of_the_mlp_matches_the_tutorials_forward_written_out(x):
    model = bm.untrained_model("mlp")
    traced = bm.trace(model, x)
    stack = model.linear_relu_stack
    with torch.no_grad():
        flat_image = nn.Flatten()(x)
        hidden1 = stack[0](flat_image)
        relu1 = nn.ReLU()(hidden1)
        hidden2 = stack[2](relu1)
        relu2 = nn.ReLU()(hidden2)
        logits = stack[4](relu2)
    expected = [flat_image, hidden1, relu1, hidden2, relu2, logits]
    assert [layer.name for layer in traced.layers] == [name for name, _ in bm.leaf_modules(model)]
    for layer, tensor in zip(traced.layers, expected, strict=True):
        assert torch.equal(layer.output, tensor), layer.name
    assert torch.equal(traced.logits, logits)
    assert torch.allclose(traced.probs, logits.exp() / logits.exp().sum())
    assert traced.predicted == int(logits.argmax(1))
    # A ReLU zeroes exactly the units that came in negative.
    assert traced.layers[2].negative_inputs == int((hidden1 < 0).sum()) == int((relu1 == 0).sum())
    assert 0 < traced.layers[2].negative_inputs < 512


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_trace_matches_a_manual_forward_and_the_model_itself(name, x):
    model = bm.untrained_model(name)
    traced = bm.trace(model, x)
    for layer, tensor in zip(traced.layers, _by_hand(model, x), strict=True):
        assert torch.equal(layer.output, tensor), layer.name
    with torch.no_grad():
        assert torch.equal(traced.logits, model(x))


def test_hooks_are_removed_and_the_mode_restored_even_when_the_forward_pass_fails(x):
    model = build_model("cnn").train()  # training mode: Dropout and BatchNorm would change the outputs
    bm.trace(model, x)
    bm.layer_table(model)
    assert _hooks_left(model) == 0 and model.training
    with pytest.raises(RuntimeError):
        bm.trace(model, torch.zeros(1, 1, 27, 27))  # 27x27 does not fit the classifier's 3136 inputs
    assert _hooks_left(model) == 0 and model.training
    mlp = bm.untrained_model("mlp")
    with pytest.raises(RuntimeError):
        bm.trace(mlp, torch.zeros(1, 3, 28, 28))
    assert _hooks_left(mlp) == 0 and not mlp.training


def test_trace_runs_in_eval_mode_without_gradients(x):
    model = build_model("cnn").train()
    traced = bm.trace(model, x)
    with torch.no_grad():
        expected = model.eval()(x)
    assert torch.equal(traced.logits, expected)  # eval: BatchNorm's running stats, Dropout off
    assert not traced.logits.requires_grad and all(not layer.output.requires_grad for layer in traced.layers)


def test_the_untrained_model_is_the_same_every_time_and_the_global_stream_is_untouched():
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    first = bm.untrained_model("mlp")
    assert torch.equal(torch.rand(3), expected_next)
    torch.manual_seed(bm.UNTRAINED_SEED)
    tutorial = build_model("mlp")  # the code shown: torch.manual_seed(0), then the model
    for a, b in zip(first.parameters(), tutorial.parameters(), strict=True):
        assert torch.equal(a, b)
    assert not first.training


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_the_diagram_names_every_layer_with_its_shape_and_chains_them(name):
    rows = bm.layer_table(bm.untrained_model(name))
    dot = bm.diagram_dot(rows)
    assert dot.startswith("digraph model {") and dot.endswith("}")
    labels = re.findall(r'layer\d+ \[label="([^"]*)"', dot)
    assert len(labels) == len(rows)
    for label, row in zip(labels, rows, strict=True):
        assert label.startswith(f"{row.name}: {row.kind}\\n→ ({', '.join(map(str, row.output_shape))})")
        assert (f"{row.params:,} parameters" in label) == (row.params > 0)
    nodes = ["input", *(f"layer{i}" for i in range(len(rows)))]
    assert re.findall(r"(\w+) -> (\w+);", dot) == list(itertools.pairwise(nodes))


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_the_layer_by_layer_code_computes_the_same_logits(name, x):
    model = bm.untrained_model(name)
    code = bm.layers_code(bm.layer_table(model))
    namespace = {"torch": torch, "nn": nn, "model": model, "X": x}
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        exec(compile(code, "<layers_code>", "exec"), namespace)
    assert torch.equal(namespace["logits"], bm.trace(model, x).logits)
    assert printed.getvalue() == f"Predicted class: {torch.tensor([bm.trace(model, x).predicted])}\n"


def test_module_expression_indexes_sequentials():
    assert bm.module_expression("flatten") == "model.flatten"
    assert bm.module_expression("linear_relu_stack.1.0") == "model.linear_relu_stack[1][0]"
    mlp = build_model("mlp", dropout=0.1)  # ReLU and Dropout nested in a Sequential of their own
    for name, module in bm.leaf_modules(mlp):
        assert eval(bm.module_expression(name), {"model": mlp}) is module


def test_the_parameters_printout_is_what_the_tutorials_loop_prints():
    model = bm.untrained_model("mlp")
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        for name, param in model.named_parameters():
            print(f"Layer: {name} | Size: {param.size()} | Values : {param[:2]} \n")
    assert bm.parameters_printout(model) == printed.getvalue()
    assert (
        "Layer: linear_relu_stack.0.weight | Size: torch.Size([512, 784]) | Values : tensor([["
        in printed.getvalue()
    )
    assert "for name, param in model.named_parameters():" in bm.PARAMETERS_CODE


def test_a_units_weights_as_an_image_and_its_output_two_ways(x):
    model = bm.untrained_model("mlp")
    unit = bm.unit_weights(model, x, 7)
    weight = model.linear_relu_stack[0].weight.detach()
    assert unit.image.shape == (28, 28) and torch.equal(unit.image.flatten(), weight[7])
    assert unit.by_hand == pytest.approx(unit.from_layer, abs=1e-5)
    assert unit.from_layer == pytest.approx(float(bm.trace(model, x).layers[1].output[0, 7]))
    with pytest.raises(BadConfig, match="between 0 and 511"):
        bm.unit_weights(model, x, 512)
    with pytest.raises(BadConfig, match="MLP only"):
        bm.unit_weights(bm.untrained_model("cnn"), x, 0)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (10_000, "Sample 10,000 is out of range"),
        (-1, "Sample -1 is out of range"),
        ("abc", "'abc' is not a whole"),
    ],
)
def test_a_bad_sample_index_is_refused_in_words(value, message):
    assert bm.check_index("42", 10_000) == 42 and bm.check_index(9_999, 10_000) == 9_999
    with pytest.raises(BadConfig, match=message) as refused:
        bm.check_index(value, 10_000)
    assert "numbered 0 to 9,999" in str(refused.value)


def test_feature_mosaic_lays_maps_out_in_rows_on_one_scale():
    maps = torch.stack([torch.full((2, 3), float(i)) for i in range(5)])  # 5 maps of 2x3, values 0..4
    mosaic = bm.feature_mosaic(maps, columns=2, scale=2)
    assert mosaic.shape == (3 * 5 - 1, 2 * 7 - 1)  # 3 rows of 4+1 px, 2 columns of 6+1 px
    assert mosaic[0, 0] == 0 and mosaic[10, 0] == 255  # map 0 is the minimum, map 4 the maximum
    assert mosaic[5, 7] == round(3 / 4 * 255)  # map 3: second row, second column
    assert mosaic[4, 0] == 255 and mosaic[10, 7] == 255  # the separating lines and the empty sixth cell


def test_to_input_is_what_the_tutorials_to_tensor_dataset_gives(real_data):
    from core.data.fashion import fashion_mnist, load_split

    images, labels = load_split("test")
    image, label = fashion_mnist("test")[17]
    assert torch.equal(bm.to_input(images[17]), image.unsqueeze(0)) and label == int(labels[17])
    assert "image, label = test_data[17]" in bm.sample_code(17)


def test_model_code_builds_the_shown_model_and_names_a_runs_options_and_file(tmp_path):
    code = bm.model_code("mlp")
    assert "torch.manual_seed(0)" in code and "model = NeuralNetwork().to(device)\n" in code
    assert "class NeuralNetwork(nn.Module):" in code and "super().__init__()" in code
    assert "class SmallCNN(nn.Module):" in bm.model_code("cnn") and "core." not in bm.model_code("cnn")
    code = bm.model_code("mlp", {"hidden": 512, "dropout": 0.1}, tmp_path / "model.pth")
    assert "nn.Sequential(nn.ReLU(), nn.Dropout(0.1))" in code
    assert f"torch.load({str(tmp_path / 'model.pth')!r}, weights_only=True)" in code
    assert code.endswith("print(model)")
