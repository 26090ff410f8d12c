"""The tutorial's Autograd section on real objects: its example, the graph autograd records, gradients
checked by finite differences, backward twice, and stopping tracking.

The graph is read from PyTorch itself (`grad_fn.next_functions`), never redrawn by hand.
"""

import math
from dataclasses import dataclass, field

import torch
from torch.nn import functional as F

from core.base.errors import StudioError
from core.learn.program import literal
from core.learn.tensors import Printed, Snippet

MAX_SIZE = 8  # x's length and z's length: enough to see, small enough for a finite-difference check
FD_EPS = 1e-6  # central differences in float64: error about eps**2 plus rounding, far below float32's
AGREE = 1e-5  # float32 gradients keep about 7 significant digits; values here are below 1


class BadAutogradInput(StudioError):
    """A choice on the Autograd page that cannot build the example."""


@dataclass
class Example:
    """The tutorial's one-layer network: z = x @ w + b, loss = BCE-with-logits(z, y)."""

    seed: int
    x: torch.Tensor  # (n_in,) ones, no grad
    y: torch.Tensor  # (n_out,) zeros, no grad: the expected output
    w: torch.Tensor  # (n_in, n_out), requires grad
    b: torch.Tensor  # (n_out,), requires grad
    z: torch.Tensor = field(init=False)
    loss: torch.Tensor = field(init=False)
    backward_calls: int = 0  # since the gradients were last reset

    def __post_init__(self):
        self.forward()

    def forward(self) -> None:
        """Build a new graph from the same leaves (what a new training step does)."""
        self.z = torch.matmul(self.x, self.w) + self.b
        self.loss = F.binary_cross_entropy_with_logits(self.z, self.y)


def example(seed: int, n_in: int = 5, n_out: int = 3) -> Example:
    """The tutorial's tensors, with `torch.manual_seed(seed)` numbers from a private generator."""
    if not (1 <= n_in <= MAX_SIZE and 1 <= n_out <= MAX_SIZE):
        raise BadAutogradInput(f"sizes go from 1 to {MAX_SIZE} here")
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(n_in, n_out, generator=g).requires_grad_()
    b = torch.randn(n_out, generator=g).requires_grad_()
    return Example(seed, torch.ones(n_in), torch.zeros(n_out), w, b)


def example_code(seed: int, n_in: int, n_out: int) -> str:
    return "\n".join(
        [
            "import torch",
            "",
            f"torch.manual_seed({literal(seed)})",
            f"x = torch.ones({literal(n_in)})  # input tensor",
            f"y = torch.zeros({literal(n_out)})  # expected output",
            f"w = torch.randn({literal(n_in)}, {literal(n_out)}, requires_grad=True)",
            f"b = torch.randn({literal(n_out)}, requires_grad=True)",
            "z = torch.matmul(x, w) + b",
            "loss = torch.nn.functional.binary_cross_entropy_with_logits(z, y)",
            'print(f"Gradient function for z = {z.grad_fn.name()}")',
            'print(f"Gradient function for loss = {loss.grad_fn.name()}")',
        ]
    )


def grad_fn_names(ex: Example) -> Snippet:
    out = Printed()
    out(f"Gradient function for z = {ex.z.grad_fn.name()}")
    out(f"Gradient function for loss = {ex.loss.grad_fn.name()}")
    return Snippet(example_code(ex.seed, len(ex.x), len(ex.y)) + "\n", out.text())


# ---- the graph ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Node:
    id: str
    label: str  # PyTorch's name for the backward function, or the leaf's name
    kind: str  # "function", "leaf" (AccumulateGrad of a named tensor) or "constant" (no grad)


@dataclass(frozen=True)
class Graph:
    nodes: tuple[Node, ...]
    edges: tuple[tuple[str, str], ...]  # (from, to): from the loss towards the leaves


def walk(root: torch.Tensor, leaves: dict[str, torch.Tensor]) -> Graph:
    """The backward graph of `root`, read from `grad_fn.next_functions`, breadth first.

    `leaves` names the tensors whose AccumulateGrad nodes end the walk (e.g. {"w": w}). An input that
    does not require grad has no node in PyTorch's graph (its next_functions entry is None); it is
    shown as a "constant" node so the picture says where it came in.
    """
    if root.grad_fn is None:
        raise BadAutogradInput("this tensor has no grad_fn: nothing that requires grad went into it")
    names = {id(t): name for name, t in leaves.items()}
    seen: dict[int, Node] = {id(root.grad_fn): _node(root.grad_fn, "n0", names)}
    nodes, edges = [seen[id(root.grad_fn)]], []
    queue = [root.grad_fn]
    while queue:
        fn = queue.pop(0)
        parent = seen[id(fn)].id
        for child, _index in fn.next_functions:
            if child is None:
                node = Node(f"n{len(nodes)}", "requires_grad=False", "constant")
                nodes.append(node)
            elif id(child) in seen:
                node = seen[id(child)]
            else:
                node = seen[id(child)] = _node(child, f"n{len(nodes)}", names)
                nodes.append(node)
                queue.append(child)
            edges.append((parent, node.id))
    return Graph(tuple(nodes), tuple(edges))


def _node(fn, node_id: str, names: dict[int, str]) -> Node:
    name = fn.name().removeprefix("torch::autograd::")
    variable = getattr(fn, "variable", None)  # AccumulateGrad holds the leaf it accumulates into
    if variable is not None:
        return Node(node_id, f"{names.get(id(variable), 'leaf')}  ({name})", "leaf")
    return Node(node_id, name, "function")


def graph_dot(graph: Graph, root_label: str = "loss") -> str:
    """Graphviz DOT for st.graphviz_chart: the loss on top, arrows the way backward goes."""
    style = {
        "function": 'shape=box, style="rounded,filled", fillcolor="#F4F1EC"',
        "leaf": 'shape=box, style="rounded,filled", fillcolor="#FBD9C6", color="#D9480F"',
        "constant": 'shape=box, style="dashed", fontcolor="#8C8A86", color="#8C8A86"',
    }
    lines = ["digraph autograd {", '  rankdir=TB; node [fontname="Helvetica", fontsize=11];']
    lines.append(f'  root [label="{root_label}", shape=plaintext, fontname="Helvetica-Bold"];')
    for node in graph.nodes:
        lines.append(f'  {node.id} [label="{node.label}", {style[node.kind]}];')
    lines.append(f"  root -> {graph.nodes[0].id};")
    lines += [f"  {a} -> {b};" for a, b in graph.edges]
    lines.append("}")
    return "\n".join(lines)


# ---- backward, checked ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Backward:
    ok: bool
    error: str  # PyTorch's own message when backward failed
    w_grad: torch.Tensor | None
    b_grad: torch.Tensor | None


def backward(ex: Example, retain_graph: bool = False) -> Backward:
    """`loss.backward(retain_graph=...)`; a second call on a freed graph returns PyTorch's error."""
    try:
        ex.loss.backward(retain_graph=retain_graph)
    except RuntimeError as exc:
        return Backward(False, str(exc), _copy(ex.w.grad), _copy(ex.b.grad))
    ex.backward_calls += 1
    return Backward(True, "", _copy(ex.w.grad), _copy(ex.b.grad))


def _copy(grad: torch.Tensor | None) -> torch.Tensor | None:
    return None if grad is None else grad.detach().clone()


def reset_grads(ex: Example) -> None:
    """`w.grad = None` (what `optimizer.zero_grad()` does by default), and a fresh graph."""
    ex.w.grad = None
    ex.b.grad = None
    ex.backward_calls = 0
    ex.forward()


def finite_differences(ex: Example, eps: float = FD_EPS) -> tuple[torch.Tensor, torch.Tensor]:
    """d loss / d w and d loss / d b by central differences, in float64, without autograd."""
    x, y = ex.x.double(), ex.y.double()
    w, b = ex.w.detach().double(), ex.b.detach().double()

    def loss(w_, b_) -> float:
        return F.binary_cross_entropy_with_logits(torch.matmul(x, w_) + b_, y).item()

    return _central(lambda t: loss(t, b), w, eps), _central(lambda t: loss(w, t), b, eps)


def _central(f, t: torch.Tensor, eps: float) -> torch.Tensor:
    grad = torch.empty_like(t)
    flat, out = t.view(-1), grad.view(-1)
    for i in range(flat.numel()):
        keep = flat[i].item()
        flat[i] = keep + eps
        up = f(t)
        flat[i] = keep - eps
        down = f(t)
        flat[i] = keep
        out[i] = (up - down) / (2 * eps)
    return grad


def largest_difference(autograd: torch.Tensor, estimate: torch.Tensor) -> float:
    return float((autograd.double() - estimate.double()).abs().max())


# ---- stopping tracking ---------------------------------------------------------------------------------


def no_grad_snippet(ex: Example, how: str) -> Snippet:
    """`requires_grad` of z before and after `torch.no_grad()` or `detach()`."""
    if how not in ("no_grad", "detach"):
        raise BadAutogradInput(f"{how!r} is not a way to stop tracking here: choose no_grad or detach")
    lines = ["z = torch.matmul(x, w) + b", "print(z.requires_grad)"]
    out = Printed()
    z = torch.matmul(ex.x, ex.w) + ex.b
    out(z.requires_grad)
    if how == "no_grad":
        lines += ["", "with torch.no_grad():", "    z = torch.matmul(x, w) + b", "print(z.requires_grad)"]
        with torch.no_grad():
            z = torch.matmul(ex.x, ex.w) + ex.b
        out(z.requires_grad)
    else:
        lines += ["", "z_det = z.detach()", "print(z_det.requires_grad)"]
        out(z.detach().requires_grad)
    return Snippet("\n".join(lines) + "\n", out.text())


def is_small(value: float) -> bool:
    return math.isfinite(value) and value < AGREE


# ---- optional reading: Jacobian products -----------------------------------------------------------------

JACOBIAN_VS = ("ones", "random")  # the tutorial's v = torch.ones_like(out), or a seeded random one


@dataclass
class JacobianExample:
    """The tutorial's optional reading: a tensor output, so backward needs a vector v of its shape.

    inp = torch.eye(4, 5, requires_grad=True); out = (inp + 1).pow(2).t(); out.backward(v) puts
    vᵀ·J (the vector-Jacobian product) into inp.grad, adding to what is there.
    """

    v_kind: str
    seed: int
    inp: torch.Tensor  # (4, 5), requires grad
    out: torch.Tensor  # (5, 4): a function of inp
    v: torch.Tensor  # (5, 4): out's shape
    calls: int = 0  # backward calls since inp.grad was last zeroed


def _jacobian_out(inp: torch.Tensor) -> torch.Tensor:
    return (inp + 1).pow(2).t()


def jacobian_example(v_kind: str = "ones", seed: int = 0) -> JacobianExample:
    if v_kind not in JACOBIAN_VS:
        raise BadAutogradInput(f"v is one of {', '.join(JACOBIAN_VS)}, not {v_kind!r}")
    inp = torch.eye(4, 5, requires_grad=True)
    out = _jacobian_out(inp)
    if v_kind == "ones":
        v = torch.ones_like(out)
    else:  # small whole numbers, so that vᵀ·J can be checked by eye
        v = torch.randint(-2, 3, out.shape, generator=torch.Generator().manual_seed(seed)).float()
    return JacobianExample(v_kind, seed, inp, out, v)


def jacobian_backward(ex: JacobianExample) -> torch.Tensor:
    """`out.backward(v, retain_graph=True)`: inp.grad += vᵀ·J. Returns a copy of inp.grad."""
    ex.out.backward(ex.v, retain_graph=True)
    ex.calls += 1
    return ex.inp.grad.detach().clone()


def jacobian_zero(ex: JacobianExample) -> None:
    """`inp.grad.zero_()`, as the tutorial does between calls."""
    if ex.inp.grad is not None:
        ex.inp.grad.zero_()
    ex.calls = 0


def full_jacobian(ex: JacobianExample) -> torch.Tensor:
    """Every ∂out[i, j] / ∂inp[k, l]: shape (5, 4, 4, 5), which backward never builds."""
    return torch.autograd.functional.jacobian(_jacobian_out, ex.inp.detach())


def vjp_by_hand(ex: JacobianExample, jacobian: torch.Tensor | None = None) -> torch.Tensor:
    """vᵀ·J from the full Jacobian, flattened to a (20,) x (20, 20) product: what one backward adds."""
    jac = full_jacobian(ex) if jacobian is None else jacobian
    return (ex.v.reshape(-1) @ jac.reshape(ex.out.numel(), ex.inp.numel())).reshape(ex.inp.shape)


def jacobian_code(ex: JacobianExample) -> str:
    return "import torch\n\n" + jacobian_body(ex)


def jacobian_body(ex: JacobianExample) -> str:
    """The tutorial's three calls, without the import."""
    v = (
        "torch.ones_like(out)"
        if ex.v_kind == "ones"
        else "torch.randint(-2, 3, out.shape, "
        f"generator=torch.Generator().manual_seed({literal(ex.seed)})).float()"
    )
    return "\n".join(
        [
            "inp = torch.eye(4, 5, requires_grad=True)",
            "out = (inp + 1).pow(2).t()",
            f"v = {v}",
            "out.backward(v, retain_graph=True)",
            'print(f"First call\\n{inp.grad}")',
            "out.backward(v, retain_graph=True)",
            'print(f"\\nSecond call\\n{inp.grad}")',
            "inp.grad.zero_()",
            "out.backward(v, retain_graph=True)",
            'print(f"\\nCall after zeroing gradients\\n{inp.grad}")',
        ]
    )


def jacobian_snippet(v_kind: str = "ones", seed: int = 0) -> Snippet:
    """The tutorial's three calls on a fresh example, with what they print."""
    ex = jacobian_example(v_kind, seed)
    out = Printed()
    out(f"First call\n{jacobian_backward(ex)}")
    out(f"\nSecond call\n{jacobian_backward(ex)}")
    jacobian_zero(ex)
    out(f"\nCall after zeroing gradients\n{jacobian_backward(ex)}")
    return Snippet(jacobian_code(ex) + "\n", out.text())


def vjp_snippet(v_kind: str = "ones", seed: int = 0) -> Snippet:
    """J in full, vᵀ·J from it, and the same numbers as the gradient of the scalar (v * out).sum()."""
    ex = jacobian_example(v_kind, seed)
    code = "\n".join(
        [
            "J = torch.autograd.functional.jacobian(lambda t: (t + 1).pow(2).t(), inp)  # all d out/d inp",
            "print(J.shape)  # out's shape (5, 4), then inp's (4, 5)",
            "vJ = (v.reshape(1, 20) @ J.reshape(20, 20)).reshape(4, 5)  # vᵀ·J",
            "print(torch.equal(vJ, torch.autograd.grad((v * out).sum(), inp)[0]))",
        ]
    )
    jac = full_jacobian(ex)
    scalar = torch.autograd.grad((ex.v * ex.out).sum(), ex.inp)[0]
    out = Printed()
    out(jac.shape)
    out(torch.equal(vjp_by_hand(ex, jac), scalar))
    return Snippet(code + "\n", out.text())
