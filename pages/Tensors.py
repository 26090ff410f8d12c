"""Tensors: the tutorial's tensor operations, each with its code and its printed output, computed live."""

import streamlit as st

from core.learn.programs import tensors as programs
from core.learn.tensors import PRELUDE
from ui import link
from ui.cache import dataset_or_message, torchvision_dataset
from ui.learn import tensors as view
from ui.nav import title

heading = title("tensors")
st.caption(
    "Tensors are like NumPy arrays that can also live on an accelerator and record how they were computed "
    "for automatic differentiation. Every panel below runs real PyTorch as you change its controls: its "
    "code, then exactly what that code prints. Each snippet starts with:"
)
st.code(PRELUDE.rstrip("\n"), language="python")

choices = {}
st.subheader("1. Initializing a tensor", anchor=programs.INIT_ANCHOR)
choices |= view.initializing()

st.subheader("2. Attributes of a tensor", anchor=programs.ATTRIBUTES_ANCHOR)
choices |= view.attributes()

st.subheader("3. Indexing and slicing", anchor=programs.INDEXING_ANCHOR)
ready = dataset_or_message()
if ready:
    choices |= view.indexing()

st.subheader("4. Joining tensors", anchor=programs.JOINING_ANCHOR)
choices |= view.joining()

st.subheader("5. Arithmetic operations", anchor=programs.ARITHMETIC_ANCHOR)
choices |= view.arithmetic()

st.subheader("6. Bridge with NumPy", anchor=programs.NUMPY_ANCHOR)
choices |= view.numpy_bridge()

view.program(choices)
link.keep(view.link_params(len(torchvision_dataset("train")) if ready else 1), where=heading)
