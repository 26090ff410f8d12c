"""Streamlit pieces of the Autograd page: the example, its graph, backward checked, stopping tracking,
more on computational graphs, the pixels' gradient, the optional Jacobian products, and the whole file."""

import streamlit as st
import torch
from PIL import Image

from core.base.errors import StudioError
from core.data.fashion import CLASSES
from core.learn import autograd as ag
from core.learn import graphs, moments
from core.learn.programs import autograd as programs
from core.model.attribution import input_gradient, overlay
from core.model.networks import parameter_count
from ui import link
from ui.cache import split_tensors
from ui.layout import cells
from ui.learn import moment
from ui.learn import program as program_view
from ui.learn.tensors import code_and_output
from ui.model_picker import pick_model
from ui.predict.page import upscale

EXAMPLE_KEY = "autograd_example"  # the session's Example: its tensors and gradients live across clicks
RESULT_KEY = "autograd_result"  # the last backward's Backward
MAX_SEED = 2**31 - 1
TEST_IMAGES = 10_000  # the test split, where the real-model section picks its image
# What a copied link keeps.
LINK = [
    link.whole("seed", "autograd_seed", 0, MAX_SEED, fallback="seed 0"),
    link.whole("x", "autograd_n_in", 1, ag.MAX_SIZE, fallback="5"),
    link.whole("z", "autograd_n_out", 1, ag.MAX_SIZE, fallback="3"),
    link.whole("sample", "autograd_sample", 0, TEST_IMAGES - 1, fallback="test image 0"),
]


def example_controls() -> ag.Example | None:
    """Seed and sizes; the session keeps one Example until they change (so .grad can accumulate)."""
    link.notify(link.adopt(LINK))
    row = st.container(horizontal=True, vertical_alignment="bottom")
    seed = int(row.number_input("Seed", 0, MAX_SEED, 0, key="autograd_seed", width=150))
    n_in = int(row.slider("Length of x", 1, ag.MAX_SIZE, 5, key="autograd_n_in", width=200))
    n_out = int(row.slider("Length of z", 1, ag.MAX_SIZE, 3, key="autograd_n_out", width=200))
    current = st.session_state.get(EXAMPLE_KEY)
    if current is None or (current.seed, len(current.x), len(current.y)) != (seed, n_in, n_out):
        try:
            current = ag.example(seed, n_in, n_out)
        except StudioError as exc:
            st.error(str(exc))
            return None
        st.session_state[EXAMPLE_KEY] = current
        st.session_state.pop(RESULT_KEY, None)
    return current


def example(ex: ag.Example) -> None:
    code_and_output(ag.grad_fn_names(ex))
    st.caption(
        "`grad_fn` is the function PyTorch will run backwards to compute gradients: each operation on a "
        "tensor that requires grad records one."
    )


def graph(ex: ag.Example) -> None:
    st.graphviz_chart(ag.graph_dot(ag.walk(ex.loss, {"w": ex.w, "b": ex.b})), width="content")
    st.caption(
        "Read from PyTorch: each box is a `grad_fn`, reached from `loss.grad_fn` through "
        "`next_functions`; arrows point the way `backward()` travels. Orange: the leaves `w` and `b`, whose "
        "`AccumulateGrad` adds into `.grad`. Dashed: inputs that do not require grad (`x` and `y`), for "
        "which autograd keeps no node."
    )
    st.markdown(
        "A **leaf** is a tensor you made yourself rather than computed from others: it has no `grad_fn`, "
        "and only leaves that require grad get a `.grad`. **`AccumulateGrad`** is the node at the end of "
        "each such leaf's branch: it holds the leaf (`.variable`) and adds the gradient that reaches it into "
        "the leaf's `.grad`. Here they are, found from `z`:"
    )
    code_and_output(graphs.leaf_objects(ex))


def backward_controls(ex: ag.Example) -> None:
    moment.ask(moments.TWO_BACKWARDS, moments.grad_after_two_backwards(), page="autograd")
    row = st.container(horizontal=True, vertical_alignment="center")
    row.toggle("retain_graph=True", key="autograd_retain", help="Keep the graph for another call")
    # Callbacks: a click counts even when the script reruns before reaching the button.
    row.button(
        "loss.backward()", icon=":material/undo:", type="primary", key="autograd_backward", on_click=_backward
    )
    reset_help = "Reset the gradients (what optimizer.zero_grad() does) and build a new graph"
    row.button("w.grad = None; b.grad = None", key="autograd_reset", help=reset_help, on_click=_reset)


def _backward() -> None:
    ex = st.session_state.get(EXAMPLE_KEY)
    if ex is not None:
        retain = bool(st.session_state.get("autograd_retain"))
        st.session_state[RESULT_KEY] = ag.backward(ex, retain_graph=retain)


def _reset() -> None:
    ex = st.session_state.get(EXAMPLE_KEY)
    if ex is not None:
        ag.reset_grads(ex)
    st.session_state.pop(RESULT_KEY, None)


def backward_result(ex: ag.Example) -> None:
    result: ag.Backward | None = st.session_state.get(RESULT_KEY)
    if result is None:
        st.info("Press `loss.backward()`: autograd walks the graph above and fills `w.grad` and `b.grad`.")
        return
    if not result.ok:
        st.error(f"RuntimeError: {result.error}")
        st.markdown(
            "That is PyTorch's own error: after `backward()` the graph's saved values are freed to save "
            "memory. To call it twice, reset the gradients (which also builds a new graph, as each training "
            "step does), turn on `retain_graph=True`, and call `loss.backward()` again: each call then "
            "**adds** its gradient to `.grad`."
        )
        return
    calls = ex.backward_calls
    st.markdown(f"`backward()` has run **{calls}** time{'s' if calls > 1 else ''} since the last reset.")
    fd_w, fd_b = ag.finite_differences(ex)
    columns = st.columns(2, gap="medium")
    pairs = (("w", result.w_grad, fd_w), ("b", result.b_grad, fd_b))
    for column, (name, grad, estimate) in zip(columns, pairs, strict=True):
        with column:
            st.caption(f"`print({name}.grad)`: autograd")
            st.code(str(grad), language="text")
            st.caption(f"{name}: finite differences{f', times {calls}' if calls > 1 else ''}")
            st.code(str((estimate * calls).float()), language="text")
    _agreement(result, fd_w, fd_b, calls)


def _agreement(result: ag.Backward, fd_w, fd_b, calls: int) -> None:
    largest = max(
        ag.largest_difference(result.w_grad, fd_w * calls), ag.largest_difference(result.b_grad, fd_b * calls)
    )
    verdict = "they agree" if ag.is_small(largest) else "they do NOT agree"
    text = (
        f"Largest difference: **{largest:.1e}**: {verdict}. Finite differences nudge each weight by "
        f"±{ag.FD_EPS:g} and watch the loss (in float64); autograd computes in float32, which keeps about 7 "
        f"significant digits, so anything below {ag.AGREE:g} here is rounding."
    )
    if calls > 1:
        text += f" With `retain_graph=True` each call **added** its gradient: `.grad` holds {calls} of them."
    (st.success if ag.is_small(largest) else st.error)(text)


def stop_tracking(ex: ag.Example) -> str:
    how = st.segmented_control("Stop tracking with", ["no_grad", "detach"], default="no_grad", key="ag_how")
    how = how or "no_grad"  # clicking the chosen option again clears it

    def predict() -> bool:
        answer = moments.requires_grad_after(how)
        return moment.ask(moments.STOP_TRACKING, answer, page="autograd", signature=how)

    try:
        code_and_output(ag.no_grad_snippet(ex, how), predict)
    except StudioError as exc:
        st.error(str(exc))
    st.markdown(
        "Why stop tracking, in the tutorial's words:\n"
        "- to mark some parameters of a network as **frozen parameters** (to fine-tune a pretrained "
        "network);\n"
        "- to **speed up computations** when you only do the forward pass: operations on tensors that do "
        "not track gradients are more efficient."
    )
    return how


def real_model() -> None:
    """d loss / d pixels for one test image and the chosen model, drawn over the image."""
    images, labels = split_tensors("test")
    row = st.container(horizontal=True, vertical_alignment="bottom")
    picked = pick_model("autograd_model", row)
    index = int(row.number_input("Test image", min_value=0, value=0, key="autograd_sample", width=150))
    if picked is None:
        return
    if not 0 <= index < len(labels):
        st.error(f"there is no test image {index:,}: the test split holds 0 to {len(labels) - 1:,}")
        return
    model, _label = picked
    x, label = images[index].float().div(255), int(labels[index])  # (28, 28) in [0, 1], as ToTensor gives
    grad = input_gradient(model, x, label, of_loss=True)
    st.code(
        f"X, y = test_data[{index}]  # a {CLASSES[label]}\n"
        "X = X.unsqueeze(0).requires_grad_()  # (1, 1, 28, 28): the pixels become leaves too\n"
        "loss = loss_fn(model(X), torch.tensor([y]))\n"
        "loss.backward()\n"
        "X.grad  # (1, 1, 28, 28): how the loss changes with each pixel",
        language="python",
        wrap_lines=True,
    )
    cols = cells(2, 240)
    cols[0].image(
        upscale(Image.fromarray(images[index].numpy()), 224), caption=f"Test image #{index}: {CLASSES[label]}"
    )
    cols[1].image(upscale(Image.fromarray(overlay(x, -grad).numpy()), 224), caption="−X.grad over the image")
    st.caption(
        "Orange: brightening the pixel would lower the loss (the model would be surer of the right class); "
        "blue: it would raise it. The same autograd that fills `w.grad` fills `X.grad`: for the network, "
        "pixels and weights are just leaves of the graph. Predict shows this map, and two from Captum, for "
        "any image."
    )


# ---- optional reading: Jacobian products -----------------------------------------------------------------

JACOBIAN_KEY = "autograd_jacobian"  # the session's JacobianExample: inp.grad accumulates across clicks


def jacobian() -> str:
    """What vᵀ·J is; the tutorial's tensor-output example, its code and print-out, vᵀ·J checked two ways;
    then one call at a time beside vᵀ·J. Returns the v chosen."""
    v_kind = st.segmented_control(
        "v, the vector given to backward", ag.JACOBIAN_VS, default="ones", required=True,
        key="autograd_jac_v",
        format_func=lambda k: {"ones": "torch.ones_like(out)", "random": "random whole numbers"}[k],
    ) or "ones"  # fmt: skip
    ex = st.session_state.get(JACOBIAN_KEY)
    if ex is None or ex.v_kind != v_kind:
        ex = st.session_state[JACOBIAN_KEY] = ag.jacobian_example(v_kind)
    jac = ag.full_jacobian(ex)
    st.markdown(
        "**J**, the Jacobian, holds the derivative of every number of `out` with respect to every number of "
        f"`inp`: here a tensor of shape {tuple(jac.shape)}. **vᵀ·J** weights those derivatives by `v` and "
        "adds them up over `out`: it is the gradient of the scalar `(v * out).sum()`, which is why a scalar "
        "loss needs no `v` (there it is just 1)."
    )
    code_and_output(ag.jacobian_snippet(v_kind))
    st.caption("vᵀ·J two ways, after the code above: from the full J, and as the gradient of (v * out).sum()")
    code_and_output(ag.vjp_snippet(v_kind))
    row = st.container(horizontal=True, vertical_alignment="center")
    row.button("out.backward(v, retain_graph=True)", icon=":material/undo:", key="autograd_jac_backward",
               on_click=lambda: ag.jacobian_backward(st.session_state[JACOBIAN_KEY]))  # fmt: skip
    row.button("inp.grad.zero_()", key="autograd_jac_zero",
               on_click=lambda: ag.jacobian_zero(st.session_state[JACOBIAN_KEY]))  # fmt: skip
    by_hand = ag.vjp_by_hand(ex, jac)
    left, right = st.columns(2, gap="medium")
    left.caption(f"`inp.grad` after {ex.calls} call{'' if ex.calls == 1 else 's'} since it was zeroed")
    grad = ex.inp.grad
    left.code("None" if grad is None else str(grad), language="text")
    right.caption(f"vᵀ·J from the full Jacobian{f', times {ex.calls}' if ex.calls > 1 else ''}")
    right.code(str(by_hand * max(ex.calls, 1)), language="text")
    if grad is not None and ex.calls:
        same = bool(torch.allclose(grad, by_hand * ex.calls, rtol=0, atol=1e-6))
        (st.success if same else st.error)(
            f"{'Equal' if same else 'NOT equal'}: each `backward(v)` added vᵀ·J to `inp.grad`."
        )
    weights = parameter_count("mlp")
    st.caption(
        f"J holds every ∂out[i, j] / ∂inp[k, l]: shape {tuple(jac.shape)}, {jac.numel():,} numbers for "
        "20 outputs and 20 inputs. `backward(v)` never builds it; it computes vᵀ·J directly, in one pass "
        "back through the graph. A training loss is a scalar, so there v is just 1. The Jacobian of the "
        f"tutorial's MLP's logits for a batch of 64 with respect to its {weights:,} weights would hold "
        f"{64 * 10 * weights:,} numbers."
    )
    return v_kind


# ---- more on computational graphs ----------------------------------------------------------------------

PASS_LABELS = {"nothing": "nothing more", "relu": "torch.relu", "tanh": "torch.tanh", "double": "z * 2"}


def more_on_graphs(ex: ag.Example) -> dict:
    """The graph rebuilt each forward pass, .grad of a non-leaf, requires_grad_(); returns the choices."""
    st.markdown(
        "Autograd keeps a record of tensors and operations in a directed acyclic graph (DAG) of "
        "`Function` objects: its **leaves** are the input tensors, its **roots** the outputs, and "
        "`backward()` goes from a root to the leaves by the chain rule. The graph is **rebuilt from scratch "
        "at every forward pass**, so plain Python control flow (an `if`, a loop) may change it from one "
        "iteration to the next; and `backward()` frees it unless `retain_graph=True` (see "
        f"[Computing gradients](#{programs.BACKWARD_ANCHOR}))."
    )
    second = st.segmented_control(
        "In pass 2, z also goes through", list(graphs.SECOND_PASS), default="relu", required=True,
        key="autograd_second", format_func=PASS_LABELS.get,
    ) or "relu"  # fmt: skip
    passes = graphs.two_passes(ex, second)
    code_and_output(passes.snippet)
    for column, number, drawn in zip(st.columns(2), (1, 2), passes.graphs, strict=True):
        column.caption(f"Pass {number}'s graph, read from `losses[{number - 1}]`")
        column.graphviz_chart(ag.graph_dot(drawn), width="content")
    st.caption(
        "Same leaves, same values, two graphs: `losses[0].grad_fn is losses[1].grad_fn` is "
        f"`{passes.same_grad_fn}`. A training step calls `backward()` once on the graph its forward pass "
        "just built, so it never needs `retain_graph`."
    )
    return {"second": second, "retain": _non_leaf(ex), "later": _requires_grad_later(ex)}


def _non_leaf(ex: ag.Example) -> bool:
    st.markdown(
        "**Leaf and non-leaf tensors.** Only leaves that require grad get a `.grad`; `z` is computed, so "
        "after `backward()` its `.grad` is `None`, and PyTorch warns when it is read. `z.retain_grad()` "
        "asks autograd to keep it."
    )
    retain = st.toggle("z.retain_grad()", key="autograd_retain_grad")
    result = graphs.leaf_grads(ex, retain)
    code_and_output(result.snippet)
    if result.warning:
        st.warning(f"UserWarning: {result.warning}")
        st.caption("PyTorch's own warning, raised as the code read `z.grad` (caught here, word for word).")
    if result.z_grad is not None:
        largest = ag.largest_difference(result.z_grad, result.by_hand)
        (st.success if ag.is_small(largest) else st.error)(
            f"`z.grad` against d loss / d z written out, `(torch.sigmoid(z) - y) / {len(ex.y)}` (the "
            f"derivative of the mean binary cross-entropy): largest difference **{largest:.1e}**."
        )
    return retain


def _requires_grad_later(ex: ag.Example) -> bool:
    st.markdown(
        "**`requires_grad_()`.** `requires_grad` can be set when a tensor is made, or later, on the tensor "
        "itself, with the tutorial's `x.requires_grad_(True)`: `x` then becomes a leaf of the graph too."
    )
    later = st.toggle("x.requires_grad_(True)", True, key="autograd_later")
    result = graphs.requires_grad_later(ex, later)
    code_and_output(result.snippet)
    st.graphviz_chart(ag.graph_dot(result.graph), width="content")
    if result.x_grad is not None:
        largest = ag.largest_difference(result.x_grad, result.by_hand)
        (st.success if ag.is_small(largest) else st.error)(
            f"`x.grad` against `w @ (torch.sigmoid(z) - y) / {len(ex.y)}`, the chain rule written out: "
            f"largest difference **{largest:.1e}**."
        )
    return later


def program(ex: ag.Example, **choices) -> None:
    """The page's end: the tutorial's section as one file from the controls above (`choices`: those of
    core.learn.programs.autograd.program)."""
    try:
        built = programs.program(ex.seed, len(ex.x), len(ex.y), **choices)
    except StudioError as exc:
        st.info(f"The code you would write, as one file, shows once every choice above works: {exc}")
        return
    program_view.render(built)
