"""Shared read-only objects, built once per server process with st.cache_resource."""

import functools

import streamlit as st
import torch

from core.base.device import DeviceInfo, describe_device, resolve_device
from core.base.errors import StudioError
from core.data.fashion import dataset_status, fashion_mnist, load_split
from core.model.checkpoint import LoadedCheckpoint, load_checkpoint, load_checkpoint_bytes


@st.cache_resource(show_spinner=False)
def device_info() -> DeviceInfo:
    return describe_device(resolve_device("auto"))


# The tutorial's Dataset is also kept outside Streamlit's caches (load_split keeps the tensors in
# core.data.fashion): any client may send Streamlit's "clear_cache" message, which empties those caches for
# every user (the server obeys it whatever the toolbar shows). The Explorer's rerun after such a clear took
# 0.27 s reading the dataset again, 0.12 s with this (AppTest, this machine); the other caches refill.
_dataset = functools.cache(fashion_mnist)


@st.cache_resource(show_spinner="Loading FashionMNIST…")
def split_tensors(split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(images uint8 (N, 28, 28), labels (N,)) of a split; raises DatasetNotFound/DatasetCorrupt."""
    return load_split(split)


@st.cache_resource(show_spinner="Loading FashionMNIST…")
def torchvision_dataset(split: str):
    """The tutorial's `datasets.FashionMNIST(..., transform=ToTensor())` for a split."""
    return _dataset(split)


def dataset_ready() -> bool:
    return dataset_status().ready


def dataset_or_message() -> bool:
    """True when FashionMNIST is prepared; otherwise shows what to run (st.error) and returns False."""
    status = dataset_status()
    if not status.ready:
        st.error(status.message)
    return status.ready


def split_or_stop(split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The split's images and labels; when the dataset is missing or unreadable, the message and a stop."""
    if not dataset_or_message():
        st.stop()
    try:
        return split_tensors(split)
    except StudioError as exc:
        st.error(str(exc))
        st.stop()


@st.cache_resource(show_spinner="Loading model…", max_entries=8)
def checkpoint_from_file(path: str, mtime_ns: int) -> LoadedCheckpoint:
    """A run's checkpoint; `mtime_ns` makes a re-saved file load afresh."""
    return load_checkpoint(path)


@st.cache_resource(show_spinner="Checking the uploaded model…", max_entries=4)
def checkpoint_from_bytes(data: bytes, name: str) -> LoadedCheckpoint:
    return load_checkpoint_bytes(data, source=name)
