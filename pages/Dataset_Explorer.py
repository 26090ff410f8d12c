"""Dataset Explorer: samples and what the Dataset hands out, classes, a custom Dataset, DataLoader epochs."""

import streamlit as st

from core.base.errors import StudioError
from core.data.fashion import SPLITS, dataset_status
from core.learn.programs import datasets as programs
from ui import link
from ui.learn import custom_dataset, dataloader, explorer
from ui.learn.program import render as render_program
from ui.nav import title

heading = title("explorer")
st.caption(
    "Look at the pictures a model learns from: random samples with their labels and what the Dataset "
    "really hands out, how many images each class has, a Dataset of your own files, and the batches a "
    "DataLoader serves, epoch after epoch."
)

customs = explorer.discover_custom()
by_name = {info.name: info for info in customs}
choice_col, split_col = st.columns([3, 2])
source_name = explorer.FASHION
if not customs:  # nothing to choose between: the split takes the first place
    split_col = choice_col
else:
    source_name = choice_col.radio(
        "Dataset",
        [explorer.FASHION, *by_name],
        horizontal=True,
        key="explorer_source",
        help="FashionMNIST, or a custom CSV + image folder found under data/custom/.",
    )

link.notify(link.adopt([explorer.SPLIT_LINK]))
split = None
try:
    if source_name == explorer.FASHION:
        status = dataset_status()
        if not status.ready:
            st.error(status.message)
            explorer.custom_help(customs)
            st.stop()
        split = split_col.radio(
            "Split",
            SPLITS,
            horizontal=True,
            key="explorer_split",
            format_func=lambda s: {"train": "Train (60,000)", "test": "Test (10,000)"}[s],
        )
        source = explorer.fashion_source(split)
    else:
        source = explorer.custom_source(by_name[source_name])
except StudioError as exc:
    st.error(str(exc))
    explorer.custom_help(customs)
    st.stop()

shared = explorer.link_params(source) + dataloader.LINK_PARAMS + custom_dataset.LINK_PARAMS
link.notify(link.adopt(shared))

st.subheader("Samples", anchor=programs.SAMPLES_ANCHOR)
classes, side, seed = explorer.grid_controls(source)
picked = explorer.render_samples(source, classes, side, seed)
view = explorer.grid_view(source, split, classes, side, seed, picked)
if split is not None:
    explorer.render_code(view)

st.subheader("Classes", anchor="classes")
st.plotly_chart(explorer.class_distribution_figure(source, classes), width="stretch")
if split is not None:
    st.markdown("**Mean image of each class**")
    st.caption("Every pixel averaged over all images of a class in this split: the shape the class shares.")
    explorer.render_class_means(split)

st.subheader("A custom Dataset for your files", anchor=programs.CUSTOM_ANCHOR)
if split is not None or dataset_status().ready:  # it writes FashionMNIST test images as files
    view = custom_dataset.render(view)
explorer.custom_help(customs)

st.subheader("DataLoader batches", anchor=programs.LOADER_ANCHOR)
if split is None:
    st.info(
        "The batch view uses FashionMNIST: custom images can differ in size, and the default "
        "DataLoader can only stack images of one size into a batch."
    )
else:
    view = dataloader.render(view)

render_program(programs.program(view))
link.keep([explorer.SPLIT_LINK] * bool(split) + shared, where=heading)
