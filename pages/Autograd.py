"""Autograd: the tutorial's example live, the graph PyTorch records, gradients checked by hand."""

import streamlit as st

from core.learn.programs import autograd as programs
from ui import link
from ui.cache import dataset_or_message
from ui.learn import autograd as view
from ui.nav import title

heading = title("autograd")
st.caption(
    "Training adjusts weights along the gradient of the loss. `torch.autograd` computes those gradients: "
    "every operation on a tensor with `requires_grad=True` is recorded in a graph, and `backward()` walks it "
    "from the loss to the weights. Here is the tutorial's one-layer network, with its real graph and "
    "gradients, and a check you can trust."
)

st.subheader("1. Tensors, functions and the graph", anchor=programs.EXAMPLE_ANCHOR)
ex = view.example_controls()
link.keep(view.LINK, where=heading)
if ex is None:
    st.stop()
view.example(ex)

st.subheader("2. The graph autograd recorded", anchor=programs.GRAPH_ANCHOR)
view.graph(ex)

st.subheader("3. Computing gradients: backward()", anchor=programs.BACKWARD_ANCHOR)
view.backward_controls(ex)
view.backward_result(ex)

st.subheader("4. Disabling gradient tracking", anchor=programs.NO_GRAD_ANCHOR)
how = view.stop_tracking(ex)

st.subheader("5. More on computational graphs", anchor=programs.MORE_ANCHOR)
more = view.more_on_graphs(ex)

st.subheader("6. On a real model: the gradient for the pixels")
st.caption(
    "The same mechanism on the tutorial's network and a real test image: ask for the gradient of the loss "
    "with respect to the 784 input pixels instead of the weights."
)
if dataset_or_message():
    view.real_model()

st.subheader("7. Optional reading: tensor gradients and Jacobian products", anchor=programs.JACOBIAN_ANCHOR)
st.caption(
    "When the output is a tensor rather than a scalar loss, `backward()` needs a vector `v` of the output's "
    "shape: it computes the vector-Jacobian product vᵀ·J, not the Jacobian J itself. What those are, the "
    "tutorial's example, then the same calls one click at a time."
)
v_kind = view.jacobian()

view.program(ex, how=how, v_kind=v_kind, **more)
