"""Autograd's "code you would write": the tutorial's "Automatic Differentiation with torch.autograd" as one
file, from the page's controls (seed, sizes, how tracking stops, the second pass, retain_grad, v)."""

from core.learn import autograd as ag
from core.learn import graphs
from core.learn.program import Piece, Program

# The page's headings that the pieces make (their anchors, set by the page)
EXAMPLE_ANCHOR = "tensors-functions-and-the-graph"
GRAPH_ANCHOR = "the-graph-autograd-recorded"
BACKWARD_ANCHOR = "computing-gradients"
NO_GRAD_ANCHOR = "disabling-gradient-tracking"
MORE_ANCHOR = "more-on-computational-graphs"
JACOBIAN_ANCHOR = "tensor-gradients-and-jacobian-products"

# loss's graph as text, the way the page draws it: each node below the one that feeds it its gradient.
GRAPH_CODE = '''def show(fn, depth=0):
    """A node, then the nodes it passes gradients to, one level further in."""
    name = "None (no grad needed)" if fn is None else type(fn).__name__
    if hasattr(fn, "variable"):  # AccumulateGrad: it adds into a leaf's .grad
        name += " -> w.grad" if fn.variable is w else " -> b.grad"
    print("    " * depth + name)
    for child, _ in getattr(fn, "next_functions", ()):
        show(child, depth + 1)


show(loss.grad_fn)
'''
BACKWARD_CODE = "loss.backward()\nprint(w.grad)\nprint(b.grad)\n"


def program(
    seed: int,
    n_in: int,
    n_out: int,
    *,
    how: str = "no_grad",
    second: str = "nothing",
    retain: bool = False,
    later: bool = True,
    v_kind: str = "ones",
) -> Program:
    """`how`: no_grad or detach; `second`: what pass 2 adds (graphs.SECOND_PASS); `retain`: z.retain_grad();
    `later`: x.requires_grad_(True); `v_kind`: the Jacobian section's v (autograd.JACOBIAN_VS)."""
    ex = ag.example(seed, n_in, n_out)  # checks the sizes; the snippets below check the rest
    graph = GRAPH_CODE + "\n" + graphs.leaf_objects(ex).code
    passes = graphs.two_passes(ex, second).snippet.code
    leaf = graphs.leaf_grads(ex, retain).snippet.code
    later_code = graphs.requires_grad_later(ex, later).snippet.code
    jacobian = ag.jacobian_body(ag.jacobian_example(v_kind))
    return Program(
        page="autograd",
        needs="torch",
        loads_data=False,
        summary="Automatic Differentiation with torch.autograd: the graph, gradients, stopping tracking.",
        pieces=(
            Piece("Tensors, functions and computational graph", ag.example_code(seed, n_in, n_out),
                  "grad_fn names", EXAMPLE_ANCHOR),
            Piece("The graph, its leaves and AccumulateGrad", graph, "graph", GRAPH_ANCHOR),
            Piece("Computing gradients", BACKWARD_CODE, "w.grad and b.grad", BACKWARD_ANCHOR),
            Piece("Disabling gradient tracking", ag.no_grad_snippet(ex, how).code, f"{how} example",
                  NO_GRAD_ANCHOR),
            Piece("A new graph at every forward pass", passes, "two forward passes", MORE_ANCHOR),
            Piece("Leaf and non-leaf tensors: .grad", leaf, "z.grad", MORE_ANCHOR),
            Piece("requires_grad_() on an existing tensor", later_code, "x.grad", MORE_ANCHOR),
            Piece("Tensor gradients and Jacobian products", jacobian, "inp.grad after three calls",
                  JACOBIAN_ANCHOR),
        ),
    )  # fmt: skip
