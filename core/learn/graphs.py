"""The Autograd page's "More on computational graphs": leaves and AccumulateGrad read from PyTorch, the
graph rebuilt at every forward pass, `.grad` of a non-leaf (PyTorch's warning, `.retain_grad()`), and
`requires_grad_()` on an existing tensor.

Each function builds fresh tensors from the example's seed and sizes (`autograd.example`), so nothing it
does touches the gradients the page accumulates with its backward buttons.
"""

import warnings
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from core.learn.autograd import BadAutogradInput, Example, Graph, example, walk
from core.learn.program import literal
from core.learn.tensors import Printed, Snippet

# What the second forward pass adds to z, the tutorial's "control flow": the code, and what it computes.
SECOND_PASS = {
    "nothing": ("", None),
    "relu": ("z = torch.relu(z)", torch.relu),
    "tanh": ("z = torch.tanh(z)", torch.tanh),
    "double": ("z = z * 2", lambda z: z * 2),
}
_BCE = "torch.nn.functional.binary_cross_entropy_with_logits(z, y)"


def _fresh(ex: Example) -> Example:
    return example(ex.seed, len(ex.x), len(ex.y))


# ---- leaves and AccumulateGrad, on the example's own graph ---------------------------------------------


def leaf_objects(ex: Example) -> Snippet:
    """`is_leaf` of the example's tensors, and b's AccumulateGrad found in z.grad_fn.next_functions."""
    code = "\n".join(
        [
            "print(w.is_leaf, b.is_leaf, z.is_leaf, loss.is_leaf)",
            "print(z.grad_fn.next_functions)",
            "accumulate = z.grad_fn.next_functions[1][0]  # the node that ends b's branch",
            "print(accumulate, accumulate.variable is b)",
        ]
    )
    out = Printed()
    out(ex.w.is_leaf, ex.b.is_leaf, ex.z.is_leaf, ex.loss.is_leaf)
    out(ex.z.grad_fn.next_functions)
    accumulate = ex.z.grad_fn.next_functions[1][0]
    out(accumulate, accumulate.variable is ex.b)
    return Snippet(code + "\n", out.text())


# ---- the graph is rebuilt at every forward pass -----------------------------------------------------------


@dataclass(frozen=True)
class Passes:
    snippet: Snippet
    graphs: tuple[Graph, Graph]  # each pass's graph, read from its loss
    same_grad_fn: bool  # `losses[0].grad_fn is losses[1].grad_fn`: never, a new graph each pass


def two_passes(ex: Example, second: str) -> Passes:
    """Two forward passes from the same leaves; the second adds SECOND_PASS[second] to z (control flow)."""
    if second not in SECOND_PASS:
        raise BadAutogradInput(
            f"{second!r} is not offered for the second pass: choose {', '.join(SECOND_PASS)}"
        )
    line, op = SECOND_PASS[second]
    fresh = _fresh(ex)
    lines = ["losses = []", "for step in range(2):", "    z = torch.matmul(x, w) + b"]
    if op is not None:
        lines += ["    if step == 1:  # control flow: only the second pass records this", f"        {line}"]
    lines += [
        f"    loss = {_BCE}",
        "    losses.append(loss)",
        "    made_z = loss.grad_fn.next_functions[0][0]  # the node that made z",
        '    print(f"pass {step + 1}: {loss.grad_fn.name()} <- {made_z.name()}")',
        "print(losses[0].grad_fn is losses[1].grad_fn)",
    ]
    out, losses = Printed(), []
    for step in range(2):
        z = torch.matmul(fresh.x, fresh.w) + fresh.b
        if step == 1 and op is not None:
            z = op(z)
        loss = F.binary_cross_entropy_with_logits(z, fresh.y)
        losses.append(loss)
        made_z = loss.grad_fn.next_functions[0][0]
        out(f"pass {step + 1}: {loss.grad_fn.name()} <- {made_z.name()}")
    same = losses[0].grad_fn is losses[1].grad_fn
    out(same)
    leaves = {"w": fresh.w, "b": fresh.b}
    graphs = (walk(losses[0], leaves), walk(losses[1], leaves))
    return Passes(Snippet("\n".join(lines) + "\n", out.text()), graphs, same)


# ---- .grad of a leaf and of a non-leaf ---------------------------------------------------------------------


@dataclass(frozen=True)
class LeafGrads:
    snippet: Snippet
    warning: str  # PyTorch's UserWarning on reading z.grad, word for word; "" when none was raised
    z_grad: torch.Tensor | None  # z.grad after backward: None unless z.retain_grad() was called
    by_hand: torch.Tensor  # d loss / d z written out: (sigmoid(z) - y) / len(z), the mean's derivative


def leaf_grads(ex: Example, retain: bool) -> LeafGrads:
    """backward() from a new forward pass, then `z.grad`: None (and PyTorch's warning) for a non-leaf,
    unless `z.retain_grad()` asked autograd to keep it."""
    fresh = _fresh(ex)
    lines = ["z = torch.matmul(x, w) + b"]
    if retain:
        lines.append("z.retain_grad()  # keep z's gradient, though z is not a leaf")
    lines += [f"loss = {_BCE}", "loss.backward()", "print(z.is_leaf, z.grad)"]
    z = torch.matmul(fresh.x, fresh.w) + fresh.b
    if retain:
        z.retain_grad()
    F.binary_cross_entropy_with_logits(z, fresh.y).backward()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # Python shows a warning once per place; we want it every time
        z_grad = z.grad
    message = next((str(w.message) for w in caught if issubclass(w.category, UserWarning)), "")
    out = Printed()
    out(z.is_leaf, z_grad)
    by_hand = (torch.sigmoid(z.detach()) - fresh.y) / len(fresh.y)
    return LeafGrads(Snippet("\n".join(lines) + "\n", out.text()), message, _copy(z_grad), by_hand)


def _copy(grad: torch.Tensor | None) -> torch.Tensor | None:
    return None if grad is None else grad.detach().clone()


# ---- requires_grad_() on an existing tensor -------------------------------------------------------------


@dataclass(frozen=True)
class LaterGrad:
    snippet: Snippet
    graph: Graph  # loss's graph: x is a leaf with an AccumulateGrad once it requires grad
    x_grad: torch.Tensor | None
    by_hand: torch.Tensor  # d loss / d x written out: w @ (sigmoid(z) - y) / len(z)


def requires_grad_later(ex: Example, on: bool) -> LaterGrad:
    """The tutorial's `x.requires_grad_(True)`: x made with `torch.ones`, then asked to require grad."""
    fresh = _fresh(ex)
    lines = [f"x = torch.ones({literal(len(fresh.x))})", "print(x.requires_grad)"]
    if on:
        lines += ["x.requires_grad_(True)  # the trailing _: changes x itself", "print(x.requires_grad)"]
    lines += ["z = torch.matmul(x, w) + b", f"loss = {_BCE}", "loss.backward()", "print(x.grad)"]
    out = Printed()
    x = torch.ones(len(fresh.x))
    out(x.requires_grad)
    if on:
        x.requires_grad_(True)
        out(x.requires_grad)
    z = torch.matmul(x, fresh.w) + fresh.b
    loss = F.binary_cross_entropy_with_logits(z, fresh.y)
    graph = walk(loss, {"x": x, "w": fresh.w, "b": fresh.b})
    loss.backward()
    out(x.grad)
    by_hand = fresh.w.detach() @ ((torch.sigmoid(z.detach()) - fresh.y) / len(fresh.y))
    return LaterGrad(Snippet("\n".join(lines) + "\n", out.text()), graph, _copy(x.grad), by_hand)
