"""core.learn.autograd: the graph read from PyTorch, gradients against finite differences, backward twice,
stopping tracking; core.learn.graphs: leaves, a graph per forward pass, .grad of a non-leaf; the page's
file run as a learner would; core.model.attribution: maps that lie where the model looks."""

import ast
import contextlib
import io
import re

import pytest
import torch
from torch import nn

from core.learn import autograd as ag
from core.learn import graphs
from core.learn.programs import autograd as programs
from core.model.attribution import METHODS, attribute, input_gradient
from tests.conftest import run_program


def _labels(graph: ag.Graph) -> list[str]:
    return [node.label for node in graph.nodes]


def _edges_by_label(graph: ag.Graph) -> set[tuple[str, str]]:
    label = {node.id: node.label for node in graph.nodes}
    return {(label[a], label[b]) for a, b in graph.edges}


def test_the_tutorials_graph_has_its_known_nodes_leaves_and_edges():
    ex = ag.example(0)
    graph = ag.walk(ex.loss, {"w": ex.w, "b": ex.b})
    assert _labels(graph)[0] == "BinaryCrossEntropyWithLogitsBackward0"
    assert sorted(n.label for n in graph.nodes if n.kind == "leaf") == [
        "b  (AccumulateGrad)",
        "w  (AccumulateGrad)",
    ]
    assert sum(n.kind == "constant" for n in graph.nodes) == 2  # x and y do not require grad
    assert {
        ("BinaryCrossEntropyWithLogitsBackward0", "AddBackward0"),
        ("AddBackward0", "b  (AccumulateGrad)"),
        ("MmBackward0", "w  (AccumulateGrad)"),
    } <= _edges_by_label(graph)
    assert len(graph.edges) == len(graph.nodes) - 1  # a tree: every node but the root has one parent


def test_a_shared_leaf_is_one_node_with_two_edges():
    a = torch.rand(3, requires_grad=True)
    graph = ag.walk((a * a).sum(), {"a": a})
    assert _labels(graph) == ["SumBackward0", "MulBackward0", "a  (AccumulateGrad)"]
    assert [e for e in graph.edges if e[0] == graph.nodes[1].id] == [
        (graph.nodes[1].id, graph.nodes[2].id)
    ] * 2


def test_a_tensor_without_history_is_refused():
    with pytest.raises(ag.BadAutogradInput, match="no grad_fn"):
        ag.walk(torch.ones(2), {})


def test_the_dot_diagram_names_every_node():
    ex = ag.example(1)
    graph = ag.walk(ex.loss, {"w": ex.w, "b": ex.b})
    dot = ag.graph_dot(graph)
    assert dot.startswith("digraph") and all(f'label="{n.label}"' in dot for n in graph.nodes)


@pytest.mark.parametrize(("seed", "n_in", "n_out"), [(0, 5, 3), (1, 1, 1), (7, 8, 2), (123, 3, 8)])
def test_gradients_equal_finite_differences(seed, n_in, n_out):
    ex = ag.example(seed, n_in, n_out)
    result = ag.backward(ex)
    assert result.ok
    fd_w, fd_b = ag.finite_differences(ex)
    assert ag.largest_difference(result.w_grad, fd_w) < ag.AGREE
    assert ag.largest_difference(result.b_grad, fd_b) < ag.AGREE
    assert ag.largest_difference(result.w_grad, fd_w + 1e-3) > ag.AGREE  # the check can fail


def test_a_second_backward_gives_pytorchs_error_and_retain_graph_accumulates():
    ex = ag.example(0)
    first = ag.backward(ex)
    again = ag.backward(ex)
    assert not again.ok and "Trying to backward through the graph a second time" in again.error
    assert torch.equal(again.w_grad, first.w_grad)  # the failed call changed nothing
    ag.reset_grads(ex)
    assert ex.w.grad is None and ex.backward_calls == 0
    one = ag.backward(ex, retain_graph=True)
    two = ag.backward(ex, retain_graph=True)
    assert one.ok and two.ok and ex.backward_calls == 2
    assert torch.allclose(two.w_grad, 2 * one.w_grad) and torch.allclose(two.b_grad, 2 * one.b_grad)


def _printed(code: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(code, {})  # our own generated code, in a test: never user text
    return out.getvalue()


@pytest.mark.parametrize(("seed", "n_in", "n_out"), [(0, 5, 3), (42, 2, 6)])
def test_the_example_code_prints_what_the_page_shows(seed, n_in, n_out):
    ex = ag.example(seed, n_in, n_out)
    snippet = ag.grad_fn_names(ex)
    assert _printed(snippet.code) == snippet.output
    namespace: dict = {}
    exec(snippet.code.replace("print(", "(lambda *a: None)("), namespace)
    assert torch.equal(namespace["w"], ex.w) and torch.equal(namespace["b"], ex.b)


TUTORIAL_FIRST_CALL = torch.tensor([[4.0, 2, 2, 2, 2], [2, 4, 2, 2, 2], [2, 2, 4, 2, 2], [2, 2, 2, 4, 2]])


def test_the_jacobian_example_prints_the_tutorials_numbers_and_runs_as_shown():
    snippet = ag.jacobian_snippet("ones")
    assert _printed(snippet.code) == snippet.output
    one, two = str(TUTORIAL_FIRST_CALL), str(2 * TUTORIAL_FIRST_CALL)  # the tutorial's printed numbers
    assert (
        snippet.output == f"First call\n{one}\n\nSecond call\n{two}\n\nCall after zeroing gradients\n{one}\n"
    )


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_each_backward_adds_v_transposed_times_the_full_jacobian(seed):
    ex = ag.jacobian_example("random", seed)
    assert ex.v.shape == ex.out.shape == (5, 4) and ex.inp.shape == (4, 5)
    jac = ag.full_jacobian(ex)
    assert jac.shape == (5, 4, 4, 5)
    by_hand = ag.vjp_by_hand(ex, jac)
    # d out[i, j] / d inp[j, i] = 2 (inp[j, i] + 1): vᵀ·J written out elementwise
    assert torch.equal(by_hand, ex.v.t() * 2 * (ex.inp.detach() + 1))
    assert torch.equal(ag.jacobian_backward(ex), by_hand)
    assert torch.equal(ag.jacobian_backward(ex), 2 * by_hand) and ex.calls == 2
    ag.jacobian_zero(ex)
    assert ex.calls == 0 and not ex.inp.grad.any()
    assert _printed(ag.jacobian_snippet("random", seed).code) == ag.jacobian_snippet("random", seed).output


def test_a_jacobian_v_that_is_not_offered_is_refused():
    with pytest.raises(ag.BadAutogradInput, match="v is one of ones, random"):
        ag.jacobian_example("zeros")


@pytest.mark.parametrize("how", ["no_grad", "detach"])
def test_stopping_tracking_prints_what_its_code_prints(how):
    ex = ag.example(3)
    snippet = ag.no_grad_snippet(ex, how)
    assert snippet.output == "True\nFalse\n"
    assert _printed(ag.example_code(3, 5, 3).split("print(")[0] + snippet.code) == snippet.output


class OneRegion(nn.Module):
    """A linear model that looks only at rows 4-9, columns 6-11 of the image."""

    def __init__(self):
        super().__init__()
        self.mask = torch.zeros(28, 28)
        self.mask[4:10, 6:12] = 1
        self.linear = nn.Linear(784, 10)
        with torch.no_grad():
            self.linear.weight.mul_(self.mask.reshape(1, 784))

    def forward(self, x):
        return self.linear(x.reshape(len(x), 784))


def test_the_input_gradient_has_the_inputs_shape_and_is_zero_where_the_model_does_not_look():
    torch.manual_seed(0)
    model, x = OneRegion(), torch.rand(1, 1, 28, 28)
    for of_loss in (False, True):
        grad = input_gradient(model, x, 3, of_loss=of_loss)
        assert grad.shape == (28, 28)
        inside = grad[model.mask == 1].abs().max()
        assert inside > 0 and grad[model.mask == 0].abs().max() <= 1e-6 * inside
    assert all(p.grad is None for p in model.parameters())  # a shared model's grads stay untouched


@pytest.mark.parametrize("method", ["integrated_gradients", "occlusion"])
def test_captum_maps_lie_in_the_region_the_model_looks_at(method):
    torch.manual_seed(0)
    model, x = OneRegion(), torch.rand(1, 1, 28, 28) + 0.1
    heat = attribute(model, x, 5, method)
    near = torch.zeros(28, 28)
    near[1:13, 3:15] = 1  # the region and an occlusion window around it
    assert heat.shape == (28, 28)
    # Outside, at most float rounding: Occlusion's batched products round by the CPU's kernels (2.98e-08
    # on an AVX-512 Xeon, 0 where this was written), so "nothing" is relative to the largest value inside.
    inside = heat[model.mask == 1].abs().max()
    assert inside > 0 and heat[near == 0].abs().max() <= 1e-6 * inside
    assert set(METHODS) == {"gradient", "integrated_gradients", "occlusion"}


def test_the_overlay_paints_positive_orange_negative_blue_and_leaves_zero_gray():
    from core.model.attribution import LOWERS, RAISES, overlay

    image, heat = torch.full((28, 28), 0.5), torch.zeros(28, 28)
    heat[0, 0], heat[0, 1] = 2.0, -2.0
    rgb = overlay(image, heat)
    assert rgb.shape == (28, 28, 3) and rgb.dtype == torch.uint8
    assert rgb[0, 0].tolist() == RAISES.int().tolist() and rgb[0, 1].tolist() == LOWERS.int().tolist()
    assert rgb[5, 5].tolist() == [70, 70, 70]  # 0.5 x 0.55 x 255, untouched gray
    assert overlay(image, torch.zeros(28, 28))[3, 3].tolist() == [70, 70, 70]  # a zero map paints nothing


# ---- more on computational graphs (core.learn.graphs) ------------------------------------------------------

ADDRESS = re.compile(r" at 0x[0-9a-f]+")  # an object's address: differs from one process to the next


def test_leaf_objects_are_pytorchs_and_their_code_prints_the_same():
    ex = ag.example(0)
    snippet = graphs.leaf_objects(ex)
    lines = snippet.output.splitlines()
    assert lines[0] == "True True False False"  # w and b are leaves; z and loss are computed
    assert "<AccumulateGrad object at 0x" in lines[1] and lines[2].endswith("> True")
    assert ADDRESS.sub("", _printed(ag.example_code(0, 5, 3) + "\n" + snippet.code)).endswith(
        ADDRESS.sub("", snippet.output)
    )


@pytest.mark.parametrize(
    ("second", "node"), [("nothing", "AddBackward0"), ("relu", "ReluBackward0"), ("double", "MulBackward0")]
)
def test_every_forward_pass_builds_a_new_graph_and_control_flow_changes_it(second, node):
    ex = ag.example(0)
    passes = graphs.two_passes(ex, second)
    assert passes.same_grad_fn is False  # same leaves, same values: still two graphs
    first, other = (_labels(g) for g in passes.graphs)
    assert "ReluBackward0" not in first and node in other
    assert (first == other) == (second == "nothing")
    assert passes.snippet.output.splitlines()[1].endswith(f"<- {node}")
    assert _printed(ag.example_code(0, 5, 3) + "\n" + passes.snippet.code).endswith(passes.snippet.output)
    with pytest.raises(ag.BadAutogradInput, match="not offered for the second pass"):
        graphs.two_passes(ex, "sigmoid")


def test_reading_a_non_leafs_grad_gives_none_and_pytorchs_own_warning_every_time():
    ex = ag.example(0)
    z = torch.ones(2, requires_grad=True) * 2  # a non-leaf of our own, to hear PyTorch say it
    z.sum().backward()
    with pytest.warns(UserWarning) as heard:
        assert z.grad is None
    for _ in range(2):  # Python shows a warning once per place by default; core catches it every time
        result = graphs.leaf_grads(ex, retain=False)
        assert result.z_grad is None and result.warning == str(heard[0].message)
        assert "not a leaf Tensor is being accessed" in result.warning
    assert result.snippet.output == "False None\n"


def test_retain_grad_gives_z_its_gradient_the_chain_rule_confirms():
    ex = ag.example(5, 4, 6)
    result = graphs.leaf_grads(ex, retain=True)
    assert result.warning == "" and result.z_grad is not None and result.z_grad.shape == (6,)
    assert torch.allclose(result.z_grad, result.by_hand, atol=1e-6)
    assert "z.retain_grad()" in result.snippet.code
    assert _printed(ag.example_code(5, 4, 6) + "\n" + result.snippet.code).endswith(result.snippet.output)
    assert ex.w.grad is None  # the page's example keeps its own gradients


def test_requires_grad_later_makes_x_a_leaf_with_a_gradient():
    ex = ag.example(3, 4, 2)
    off, on = graphs.requires_grad_later(ex, False), graphs.requires_grad_later(ex, True)
    assert off.x_grad is None and off.snippet.output.startswith("False\nNone")
    assert "x  (AccumulateGrad)" not in _labels(off.graph) and "x  (AccumulateGrad)" in _labels(on.graph)
    assert on.snippet.output.startswith("False\nTrue\n") and "x.requires_grad_(True)" in on.snippet.code
    assert torch.allclose(on.x_grad, on.by_hand, atol=1e-6)
    assert not torch.allclose(on.x_grad, on.by_hand + 1e-3, atol=1e-6)  # the check can fail
    assert _printed(ag.example_code(3, 4, 2) + "\n" + on.snippet.code).endswith(on.snippet.output)


@pytest.mark.parametrize("v_kind", ag.JACOBIAN_VS)
def test_vjp_is_the_gradient_of_v_times_out_summed(v_kind):
    snippet = ag.vjp_snippet(v_kind)
    assert snippet.output == "torch.Size([5, 4, 4, 5])\nTrue\n"
    tutorial = ag.jacobian_snippet(v_kind)
    assert _printed(tutorial.code + "\n" + snippet.code) == tutorial.output + snippet.output


# ---- the page's file (core.learn.programs.autograd) ------------------------------------------------------

TENSOR = re.compile(r"tensor\((\[.*?\])\)", re.S)


def _tensors(text: str) -> list[torch.Tensor]:
    return [torch.tensor(ast.literal_eval(match)) for match in TENSOR.findall(text)]


def _tree(graph: ag.Graph) -> list[tuple[int, str]]:
    """(depth, name) of each node, as the file's show() prints them."""
    depth = {graph.nodes[0].id: 0}
    for parent, child in graph.edges:
        depth[child] = depth[parent] + 1
    names = {"function": "{}", "leaf": "AccumulateGrad -> {}.grad", "constant": "None (no grad needed)"}
    return sorted((depth[n.id], names[n.kind].format(n.label.split()[0])) for n in graph.nodes)


@pytest.mark.parametrize(
    ("seed", "n_in", "n_out", "choices"),
    [
        (0, 5, 3, {}),
        (42, 2, 6, {"how": "detach", "second": "relu", "retain": True, "later": False, "v_kind": "random"}),
    ],
)
def test_the_pages_file_prints_what_core_computes(seed, n_in, n_out, choices, tmp_path):
    program = programs.program(seed, n_in, n_out, **choices)
    lines = run_program(program, tmp_path).splitlines(keepends=True)
    ex = ag.example(seed, n_in, n_out)
    graph = ag.walk(ex.loss, {"w": ex.w, "b": ex.b})
    names, tree = lines[:2], lines[2 : 2 + len(graph.nodes)]
    assert "".join(names) == ag.grad_fn_names(ex).output
    assert sorted(((len(t) - len(t.lstrip())) // 4, t.strip()) for t in tree) == _tree(graph)
    rest = ADDRESS.sub("", "".join(lines[2 + len(graph.nodes) :]))

    # what core shows for the same controls, section by section
    defaults = dict(how="no_grad", second="nothing", retain=False, later=True, v_kind="ones") | choices
    grads = ag.backward(ag.example(seed, n_in, n_out))
    leaf = graphs.leaf_grads(ex, defaults["retain"])
    later = graphs.requires_grad_later(ex, defaults["later"])
    jac = ag.jacobian_snippet(defaults["v_kind"])
    expected = [grads.w_grad, grads.b_grad]
    expected += [t for t in (leaf.z_grad, later.x_grad) if t is not None] + _tensors(jac.output)
    shown = _tensors(rest)
    assert len(shown) == len(expected)
    for printed, value in zip(shown, expected, strict=True):  # printed with 4 decimals
        assert printed.shape == value.shape and torch.allclose(printed, value, atol=1e-4, rtol=0)
    text = "".join(
        [
            ADDRESS.sub("", graphs.leaf_objects(ex).output),
            f"{grads.w_grad}\n{grads.b_grad}\n",
            ag.no_grad_snippet(ex, defaults["how"]).output,
            graphs.two_passes(ex, defaults["second"]).snippet.output,
            leaf.snippet.output,
            later.snippet.output,
            jac.output,
        ]
    )
    assert TENSOR.sub("tensor", rest) == TENSOR.sub("tensor", text)  # the words, booleans and names


def test_the_file_refuses_what_the_page_refuses():
    for bad in ({"how": "stop"}, {"second": "sigmoid"}, {"v_kind": "zeros"}):
        with pytest.raises(ag.BadAutogradInput):
            programs.program(0, 5, 3, **bad)
    with pytest.raises(ag.BadAutogradInput, match="sizes go from 1"):
        programs.program(0, 9, 3)
    pieces = programs.program(0, 5, 3).pieces
    assert all(piece.anchor for piece in pieces)  # every piece links to the heading of what it makes
