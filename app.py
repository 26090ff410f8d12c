"""FashionMNIST Studio: home page (device and dataset status); the other pages arrive in pages/."""

import streamlit as st

from core.data import dataset_status
from core.device import describe_device, resolve_device

st.set_page_config(page_title="FashionMNIST Studio", page_icon="👕", layout="wide")

st.title("👕 FashionMNIST Studio")
st.write(
    "PyTorch's *Learn the Basics* quickstart as a dashboard: browse FashionMNIST, preview transforms, "
    "train a model and watch it learn, then drop in an image to see what it predicts."
)

device = describe_device(resolve_device("auto"))
memory = f", {device.memory_bytes / 2**30:.1f} GiB" if device.memory_bytes else ""
st.subheader("Device")
st.write(f"**{device.type.upper()}**: {device.name}{memory}")

st.subheader("Dataset")
status = dataset_status()
if status.ready:
    st.success(status.message)
else:
    st.warning(status.message)
