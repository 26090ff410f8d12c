"""The Dataset Explorer's DataLoader section: batch size and shuffle, the first batch, two epochs compared."""

from dataclasses import replace

import streamlit as st
import torch

from core.data import explore
from core.data.fashion import CLASSES
from core.learn import moments
from core.learn.programs import datasets as programs
from core.learn.programs.datasets import ExplorerView
from ui import link
from ui.cache import torchvision_dataset
from ui.learn import moment

BATCH_KEY = "explorer_batch"
SHUFFLE_KEY = "explorer_loader_shuffle"  # not "explorer_shuffle": that is the grid's Shuffle button
MOSAIC_COLUMNS = 8  # x 2 px per pixel: 476 px; the label table below has the same 8 columns
MOSAIC_MAX = 64
WHY = (
    "The Dataset hands out one sample at a time. While training a model we want them in **minibatches**, "
    "**reshuffled at every epoch** to reduce overfitting, and read with Python's **multiprocessing** "
    "(`num_workers=`) to go faster. `DataLoader` does all that behind one iterable: each `iter()` starts "
    "an epoch, each `next()` gives a batch."
)

LINK_PARAMS = [
    link.whole("batch", BATCH_KEY, 1, 1024, fallback="64"),
    link.choice("shuffle", SHUFFLE_KEY, {"true": True, "false": False}, fallback="shuffle=True"),
]


def _controls() -> tuple[int, bool]:
    """Batch size and shuffle; returns (batch_size, shuffle)."""
    row = st.container(horizontal=True, vertical_alignment="bottom", gap="medium")
    batch_size = row.number_input(
        "Batch size", 1, 1024, 64, step=1, key=BATCH_KEY, help="The tutorial uses 64.", width=140
    )
    st.session_state.setdefault(SHUFFLE_KEY, True)
    shuffle = row.toggle(
        "shuffle",
        key=SHUFFLE_KEY,
        help="shuffle=True: a new order of the samples at every epoch. False: the file's order, every time.",
    )
    return int(batch_size), bool(shuffle)


@st.cache_resource(show_spinner="Loading two epochs' first batches…", max_entries=16)
def _first_batches(split: str, batch_size: int, shuffle: bool, seed: int) -> list:
    return explore.first_batches(torchvision_dataset(split), batch_size, shuffle, seed)


def render(view: ExplorerView) -> ExplorerView:
    """Why batches; the controls; the loader's code, what it prints, the first batch's images with their
    labels, then the next epoch. Returns the view with the controls' values."""
    st.markdown(WHY)
    batch_size, shuffle = _controls()
    view = replace(view, batch_size=batch_size, shuffle=shuffle)
    images = len(torchvision_dataset(view.split))
    answer = moments.batches_per_epoch(images, view.batch_size)
    signature = f"{view.split}|{view.batch_size}"
    moment.ask(moments.BATCHES_PER_EPOCH, answer, page="explorer", signature=signature)
    last = moments.last_batch_size(images, view.batch_size)
    moment.ask(moments.LAST_BATCH, last, page="explorer", signature=signature)
    first, second = _first_batches(view.split, view.batch_size, view.shuffle, view.seed)
    epochs = explore.epoch_lines([first, second], CLASSES)  # epoch 1, epoch 2, the same order or not
    st.code(programs.loader_code(view), language="python")
    st.code("\n".join([*explore.batch_lines(*first), epochs[0]]), language="text", wrap_lines=True)
    features, labels = first
    _render_batch(features, labels, view)

    st.markdown("**The next epoch** · `iter()` again")
    st.code(programs.epoch_code(view), language="python")
    st.code("\n".join(epochs), language="text", wrap_lines=True)
    if view.shuffle:
        st.caption(
            f"shuffle=True: the second epoch starts with other samples. The loader's generator is seeded "
            f"with the page's seed ({view.seed}), so this page and the code above draw the same orders."
        )
    else:
        st.caption("shuffle=False: every epoch serves the samples in the file's order, the same batches.")
    return view


def _render_batch(features: torch.Tensor, labels: torch.Tensor, view: ExplorerView) -> None:
    """The batch's images as one mosaic, and beside the same positions their labels with class names."""
    x, y = view.batch_names
    shown = features[:MOSAIC_MAX]
    sheet = explore.mosaic(shown, min(MOSAIC_COLUMNS, len(shown)))
    image = explore.to_display(sheet, 2 * sheet.shape[1])
    more = f" (the first {len(shown)} of {len(labels)})" if len(shown) < len(labels) else ""
    st.image(
        image,
        caption=f"{x}: the batch's images{more}, left to right, then top to bottom",
        width=image.shape[1],
        output_format="PNG",
    )
    rows = explore.label_rows(labels[:MOSAIC_MAX], CLASSES, MOSAIC_COLUMNS)
    starts = range(0, len(rows) * MOSAIC_COLUMNS, MOSAIC_COLUMNS)
    table = {"": [f"{y}[{start}:{start + len(row)}]" for start, row in zip(starts, rows, strict=True)]}
    for c in range(min(MOSAIC_COLUMNS, len(labels))):
        table[f"+{c}"] = [row[c] if c < len(row) else "" for row in rows]
    st.markdown(f"`{y}`{more}, each digit with its class name (`labels_map[y]`), placed as the images above:")
    st.dataframe(table, hide_index=True)
