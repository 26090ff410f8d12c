"""Dataset Explorer: random samples with labels, class statistics and what one DataLoader batch holds."""

import streamlit as st

from core.base.errors import StudioError
from core.data.explore import sample_indices
from core.data.fashion import SPLITS, dataset_status
from ui import link
from ui.learn import explorer
from ui.nav import title

heading = title("explorer")
st.caption(
    "Look at the pictures a model learns from: random samples with their labels, how many images each "
    "class has, what an average one looks like, and the tensors one DataLoader batch hands the model."
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

link.notify(link.adopt(explorer.link_params(source)))
samples_tab, classes_tab, batch_tab = st.tabs(
    [
        ":material/photo_library: Samples",
        ":material/bar_chart: Classes",
        ":material/view_module: DataLoader batch",
    ]
)

with samples_tab:
    classes, side, seed = explorer.grid_controls(source)
    indices = sample_indices(source.labels, classes, side * side, seed) if classes else []
    if not classes:
        st.info("Pick at least one class above to draw samples.")
    else:
        if len(indices) < side * side:
            st.caption(f"Only {len(indices)} samples match these classes; showing all of them.")
        row = st.container(horizontal=True, gap="large")  # grid and inspector stack in a narrow window
        grid_col, detail_col = row.container(width="content"), row.container(width=300)
        try:  # a custom image that cannot be decoded is reported, the rest of the page stays
            with grid_col:
                explorer.render_grid(source, indices, side)
            with detail_col, st.container(border=True):
                explorer.render_sample(source, explorer.pick_sample(source, indices))
        except StudioError as exc:
            st.error(str(exc))

with classes_tab:
    st.plotly_chart(explorer.class_distribution_figure(source, classes), width="stretch")
    if split is not None:
        st.subheader("Mean image of each class")
        st.caption(
            "Every pixel averaged over all images of a class in this split: the shape the class shares."
        )
        explorer.render_class_means(split)

with batch_tab:
    if split is None:
        st.info(
            "The batch view uses FashionMNIST: custom images can differ in size, and the default "
            "DataLoader can only stack images of one size into a batch."
        )
    else:
        st.caption(
            "The quickstart wraps the Dataset in a `DataLoader`, which stacks samples into batches. "
            "Here is the first batch of a real `DataLoader` over this split."
        )
        batch_size = st.columns([1, 3])[0].number_input(
            "Batch size",
            min_value=1,
            max_value=1024,
            value=64,
            step=1,
            key=explorer.BATCH_KEY,
            help="The tutorial uses 64.",
        )
        explorer.render_batch(split, int(batch_size))

explorer.custom_help(customs)
link.keep([explorer.SPLIT_LINK] * bool(split) + explorer.link_params(source), where=heading)
