"""The Dataset Explorer's custom Dataset section: the tutorial's class, on real images written as files."""

from dataclasses import replace

import streamlit as st

from core.data import explore
from core.data.fashion import CLASSES
from core.learn.programs import datasets as programs
from core.learn.programs.datasets import ExplorerView
from ui import link
from ui.cache import torchvision_dataset

FIRST_KEY = "explorer_files_first"
COUNT_KEY = "explorer_files_count"
TEST_SIZE = 10_000  # FashionMNIST's test split
MAX_FILES = 8
THUMB_PX = 84  # 28 px x 3

LINK_PARAMS = [
    link.whole("files_from", FIRST_KEY, 0, TEST_SIZE - 1, fallback="test image 0"),
    link.whole("files", COUNT_KEY, 1, MAX_FILES, fallback="4 files"),
]


def _controls() -> tuple[int, int]:
    """Which test images become files: (first index, how many)."""
    row = st.container(horizontal=True, vertical_alignment="bottom", gap="small")
    first = row.number_input(
        "First test image",
        0,
        TEST_SIZE - 1,
        0,
        key=FIRST_KEY,
        help="Index into test_data of the first image written as a file.",
        width=150,
    )
    count = row.number_input("Files", 1, MAX_FILES, 4, key=COUNT_KEY, help="How many images.", width=100)
    count = min(int(count), TEST_SIZE - int(first))  # the last test images: fewer than asked
    return int(first), count


@st.cache_resource(show_spinner="Writing the images as files and reading them back…", max_entries=16)
def _round_trip(first: int, count: int) -> explore.RoundTrip:
    return explore.round_trip(torchvision_dataset("test"), range(first, first + count))


def render(view: ExplorerView) -> ExplorerView:
    """The class's code; the controls, the code writing test images as files and reading them back, and its
    output. Returns the view with the controls' values."""
    st.markdown(
        "Your own images need a Dataset of your own. A custom Dataset class implements three functions: "
        "`__init__` (where the files are), `__len__` (how many samples) and `__getitem__` (sample `idx` "
        "as a tensor and its label). The tutorial's reads the labels from a CSV file and each image from "
        "a folder:"
    )
    st.code(programs.CLASS_CODE, language="python")
    st.markdown(
        "To see it work, write a few real test images as PNG files with their `annotations.csv`, then read "
        "them back through the class:"
    )
    first, count = _controls()
    view = replace(view, custom_first=first, custom_count=count)
    trip = _round_trip(first, count)
    st.code(programs.files_code(view), language="python")
    row = st.container(horizontal=True, gap="medium")
    with row.container(width=200):
        st.code(trip.annotations, language="text")
        st.caption(f"`{programs.FOLDER}/{explore.ANNOTATIONS_NAME}`")
    for i, (image, label) in enumerate(trip.items):
        with row.container(width=THUMB_PX):
            st.image(
                explore.to_display(image, THUMB_PX),
                caption=f"custom_data[{i}] · {CLASSES[label]}",
                output_format="PNG",
            )
    st.code("\n".join(explore.custom_lines(trip.items, CLASSES)), language="text", wrap_lines=True)
    st.caption(
        "`decode_image` gives the uint8 (C, H, W) pixels stored in the file, 0–255: no ToTensor here. "
        "A `transform=` such as `lambda image: image.float() / 255` gives the floats ToTensor gives."
    )
    return view
