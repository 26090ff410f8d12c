"""The Tensors page's snippets, and its whole file: running the code prints exactly what the page shows."""

import contextlib
import io
import re

import pytest
import torch

from core.data.fashion import PROJECT_ROOT, fashion_mnist
from core.learn import tensors
from core.learn.programs import tensors as programs
from core.learn.tensors import BadTensorInput, parse_shape
from tests.conftest import run_program


def _run(snippet: tensors.Snippet, monkeypatch) -> str:
    """Execute the snippet's code as a learner would paste it (the prelude first), from the project
    folder so `root="data"` finds the dataset; return what it printed."""
    monkeypatch.chdir(PROJECT_ROOT)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(tensors.PRELUDE + snippet.code, {})  # our own generated code, in a test: never user text
    return printed.getvalue()


@pytest.mark.parametrize(
    ("shape", "dtype", "seed"), [((2, 3), "float32", 0), ((4,), "float64", 7), ((2, 2, 2), "float16", 123)]
)
def test_initializing_prints_what_its_code_prints(shape, dtype, seed, monkeypatch):
    snippet = tensors.initializing(shape, dtype, seed)
    assert _run(snippet, monkeypatch) == snippet.output
    assert "Ones Tensor" in snippet.output and snippet.tensors["rand_tensor"].shape == shape


def test_the_seed_changes_the_random_values_and_only_them():
    a, b = tensors.initializing((2, 3), "float32", 0), tensors.initializing((2, 3), "float32", 1)
    assert a.output != b.output
    assert a.output.split("Random Tensor")[0] == b.output.split("Random Tensor")[0]


@pytest.mark.parametrize("move", [False, True])
def test_attributes_prints_what_its_code_prints(move, monkeypatch):
    snippet = tensors.attributes((3, 4), "bfloat16", move)
    assert _run(snippet, monkeypatch) == snippet.output
    assert "Shape of tensor: torch.Size([3, 4])" in snippet.output
    assert "Datatype of tensor: torch.bfloat16" in snippet.output
    assert snippet.output.count("Device tensor is stored on") == (2 if move else 1)


def test_image_slice_prints_what_its_code_prints_on_the_real_dataset(real_data, monkeypatch):
    image, label = fashion_mnist("train")[42]
    snippet = tensors.image_slice(image, label, 42, (10, 14), (3, 9))
    assert _run(snippet, monkeypatch) == snippet.output
    assert snippet.tensors["patch"].shape == (4, 6)
    assert snippet.output.startswith(f"Label: {label}, patch shape: (4, 6)")


@pytest.mark.parametrize("column", [1, 0, -1])
def test_zero_column_prints_what_its_code_prints(column, monkeypatch):
    snippet = tensors.zero_column(column)
    assert _run(snippet, monkeypatch) == snippet.output
    expected = torch.ones(4, 4)
    expected[:, column] = 0
    assert snippet.output.endswith(f"{expected}\n")


@pytest.mark.parametrize(("how", "dim", "count", "shape"), [
    ("cat", 0, 3, (6, 3)), ("cat", 1, 2, (2, 6)), ("cat", -1, 4, (2, 12)),
    ("stack", 0, 3, (3, 2, 3)), ("stack", 2, 2, (2, 3, 2)), ("stack", -3, 2, (2, 2, 3)),
])  # fmt: skip
def test_joining_prints_what_its_code_prints(how, dim, count, shape, monkeypatch):
    snippet = tensors.joining(how, dim, count)
    assert _run(snippet, monkeypatch) == snippet.output
    assert tuple(snippet.tensors["joined"].shape) == shape
    assert snippet.output.startswith(f"(2, 3) x {count} -> {shape}")


@pytest.mark.parametrize("operation", tensors.ARITHMETIC)
def test_arithmetic_prints_what_its_code_prints(operation, monkeypatch):
    snippet = tensors.arithmetic(operation, 3, 2, 5.0)
    assert _run(snippet, monkeypatch) == snippet.output


def test_arithmetic_results_are_the_tutorials():
    assert "True True" in tensors.arithmetic("matrix product", 2, 3, 0).output
    assert tensors.arithmetic("sum to a Python number", 2, 2, 0).output.endswith("10.0 <class 'float'>\n")
    assert "tensor([[6., 7.],\n        [8., 9.]])" in tensors.arithmetic("in-place add", 2, 2, 5.0).output


def test_numpy_bridge_prints_what_its_code_prints_and_memory_is_shared(monkeypatch):
    snippet = tensors.numpy_bridge(5, 2.0)
    assert _run(snippet, monkeypatch) == snippet.output
    lines = snippet.output.splitlines()
    assert lines[2] == "t: tensor([3., 3., 3., 3., 3.])" and lines[3] == "n: [3. 3. 3. 3. 3.]"
    assert lines[4] == "t: tensor([3., 3., 3., 3., 3.], dtype=torch.float64)"


@pytest.mark.parametrize(
    ("text", "shape"), [("2, 3", (2, 3)), ("(4,)", (4,)), ("2x3x4", (2, 3, 4)), (" 5 ", (5,))]
)
def test_shapes_are_read_from_plain_numbers(text, shape):
    assert parse_shape(text) == shape


@pytest.mark.parametrize(("text", "message"), [
    ("", "is not a shape"), ("2, three", "is not a shape"), ("__import__('os')", "is not a shape"),
    ("2, 0", "at least 1"), ("-1, 3", "at least 1"), ("100000, 100000", "keep it to 1,000"),
    ("1, 1, 1, 1, 1", "at most 4"), ("9" * 30, "is not a shape"),
])  # fmt: skip
def test_bad_shapes_say_what_to_type(text, message):
    with pytest.raises(BadTensorInput, match=re.escape(message)):
        parse_shape(text)


def test_bad_choices_are_refused_with_a_message():
    for call in (
        lambda: tensors.initializing((2,), "int64", 0),
        lambda: tensors.joining("cat", 2, 2),
        lambda: tensors.joining("stack", 0, 9),
        lambda: tensors.zero_column(4),
        lambda: tensors.arithmetic("matrix product", 0, 3, 1.0),
        lambda: tensors.arithmetic("in-place add", 2, 2, float("nan")),
        lambda: tensors.image_slice(torch.zeros(1, 28, 28), 0, 0, (5, 5), (0, 28)),
        lambda: tensors.numpy_bridge(11, 1.0),
    ):
        with pytest.raises(BadTensorInput):
            call()


@pytest.mark.parametrize(
    "choices",
    [
        programs.Choices(),
        programs.Choices(
            shape="2x2x2", dtype="float64", seed=7, attr_shape="5", attr_dtype="bfloat16", move=False,
            index=42, rows=(0, 28), cols=(3, 9), column=-1, join="stack", dim=-1, count=2,
            operation="in-place add", op_rows=2, op_cols=4, op_value=-1.5, np_length=3, np_value=0.25,
        ),
    ],
)  # fmt: skip
def test_the_pages_file_prints_every_panels_output_in_order(choices, real_data, tmp_path):
    printed = run_program(programs.program(choices), tmp_path)
    image, label = fashion_mnist("train")[choices.index]
    panels = [
        tensors.initializing(parse_shape(choices.shape), choices.dtype, choices.seed),
        tensors.attributes(parse_shape(choices.attr_shape), choices.attr_dtype, choices.move),
        tensors.image_slice(image, label, choices.index, choices.rows, choices.cols),
        tensors.zero_column(choices.column),
        tensors.joining(choices.join, choices.dim, choices.count),
        tensors.arithmetic(choices.operation, choices.op_rows, choices.op_cols, choices.op_value),
        tensors.numpy_bridge(choices.np_length, choices.np_value),
    ]
    # The same operations on the same seeded numbers, printed by the same print calls: the text is equal.
    assert printed == "".join(panel.output for panel in panels)


def test_the_file_refuses_what_the_panels_refuse():
    for bad in (
        programs.Choices(shape="2, 0"),
        programs.Choices(index=60_000),
        programs.Choices(rows=(5, 5)),
        programs.Choices(join="stack", dim=3),
        programs.Choices(op_value=float("inf")),
    ):
        with pytest.raises(BadTensorInput):
            programs.program(bad)
    source = programs.program(programs.Choices(op_value=0.1, operation="in-place add")).source()
    assert "tensor.add_(0.1)" in source and source.startswith('"""Tensors:')
