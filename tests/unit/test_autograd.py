"""core.learn.autograd: the graph read from PyTorch, gradients against finite differences, backward twice,
stopping tracking; core.model.attribution: maps that lie where the model looks."""

import contextlib
import io

import pytest
import torch
from torch import nn

from core.learn import autograd as ag
from core.model.attribution import METHODS, attribute, input_gradient


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
