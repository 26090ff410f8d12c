"""Streamlit pieces of the Dataset Explorer: cached statistics, the sample grid, charts, the batch view."""

import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import plotly.graph_objects as go
import streamlit as st
import torch

from core.base.errors import StudioError
from core.data import explore
from core.data.explore import CustomDatasetInfo
from core.data.fashion import CLASSES
from core.learn.programs import datasets as programs
from core.learn.programs.datasets import ExplorerView
from ui import link
from ui.cache import split_tensors, torchvision_dataset

FASHION = "FashionMNIST"
SEED_KEY = "explorer_seed"
MAX_SEED = 2**31 - 1
# Grid thumbnails per grid side: whole multiples of 28 px that fit a 1280 px wide window.
THUMB_PX = {3: 112, 4: 84, 5: 84, 6: 56}
MEAN_PX = 112
LARGE_PX = 252  # 28 px x 9
PRIMARY = "#D9480F"  # .streamlit/config.toml's primaryColor
MUTED = "#C9C4BC"
DENSE = 6  # at this grid side a thumbnail is 56 px: too narrow for "#index · T-shirt/top"
# Names that fit under a 56 px thumbnail; the full name is in the tooltip.
SHORT = {"T-shirt/top": "T-shirt", "Ankle boot": "Boot"}
NO_BREAK_HYPHEN = "\u2011"  # "T-shirt/top" never breaks into "T-" and "shirt/top"
DATASET_NAMES = {"fashion_train": "training_data", "fashion_test": "test_data"}  # the tutorial's names


@dataclass(frozen=True)
class Source:
    """One browsable dataset: its labels, a name for each label and a way to fetch image i."""

    key: str  # widget keys per source, so a class filter never mixes two datasets
    title: str
    labels: torch.Tensor  # (N,) int64
    names: dict[int, str]
    image: Callable[[int], torch.Tensor]  # index -> (H, W) or (C, H, W), for the grid
    item: Callable[[int], tuple[torch.Tensor, int]]  # index -> what the Dataset hands out: dataset[i]
    is_fashion: bool

    def label_text(self, index: int) -> str:
        label = int(self.labels[index])
        return self.names.get(label, str(label))


def fashion_source(split: str) -> Source:
    """FashionMNIST from the cached uint8 tensors: a grid never goes through PIL."""
    images, labels = split_tensors(split)
    dataset = torchvision_dataset(split)  # for the inspector: training_data[i], a float (1, 28, 28) tensor
    return Source(
        f"fashion_{split}",
        f"FashionMNIST {split}",
        labels,
        dict(enumerate(CLASSES)),
        lambda i: images[i],
        lambda i: dataset[i],
        True,
    )


@st.cache_resource(show_spinner="Reading the custom dataset…", max_entries=8)
def _custom_dataset(name: str, annotations_file: str, img_dir: str, mtime_ns: int):
    """The CustomImageDataset and its labels; `mtime_ns` reloads an edited CSV."""
    dataset = explore.open_custom(CustomDatasetInfo(name, Path(annotations_file), Path(img_dir)))
    return dataset, explore.custom_labels(dataset)


def custom_source(info: CustomDatasetInfo) -> Source:
    """A custom CSV + image folder; images are decoded one by one, as the tutorial's Dataset does."""
    mtime_ns = info.annotations_file.stat().st_mtime_ns
    dataset, labels = _custom_dataset(info.name, str(info.annotations_file), str(info.img_dir), mtime_ns)
    names = {label: f"label {label}" for label in sorted(set(labels.tolist()))}
    return Source(
        f"custom_{info.name}", info.name, labels, names, lambda i: dataset[i][0], lambda i: dataset[i], False
    )


def discover_custom() -> list[CustomDatasetInfo]:
    # Read CUSTOM_ROOT at call time so tests can point it at a temporary folder.
    return explore.discover_custom_datasets(explore.CUSTOM_ROOT)


def custom_help(customs: list[CustomDatasetInfo]) -> None:
    """How to add a custom dataset (the tutorial's CSV + image folder), listing any found."""
    title = (
        f":material/folder: Your own images ({len(customs)} found)"
        if customs
        else ":material/folder: No custom dataset found — how to add one"
    )
    with st.expander(title):
        st.markdown(
            f"Make a folder `{explore.CUSTOM_ROOT}/<name>/` holding `{explore.ANNOTATIONS_NAME}` "
            "(one `filename,label` row per image, e.g. `tshirt1.png,0`) and the images, either beside "
            f"the CSV or in an `{explore.IMAGES_SUBDIR}/` subfolder. It is read by the tutorial's "
            "`CustomImageDataset`; reload this page and pick it above."
        )


SPLIT_LINK = link.choice("split", "explorer_split", ("train", "test"), fallback="the train split")


def classes_key(source: Source) -> str:
    return f"explorer_classes_{source.key}"  # per source: a class filter never mixes two datasets


def pick_key(source: Source) -> str:
    return f"explorer_pick_{source.key}"


def link_params(source: Source) -> list[link.Param]:
    """What a copied link keeps of the samples, besides the split: classes, grid, seed, inspected sample."""
    by_name = {name: label for label, name in source.names.items()}
    return [
        link.choices("classes", classes_key(source), by_name, most=len(by_name), fallback="all classes"),
        link.choice("grid", "explorer_grid", {str(k): k for k in explore.GRID_SIZES}, fallback="3×3"),
        link.whole("seed", SEED_KEY, 0, MAX_SEED, fallback="seed 0"),
        link.whole("sample", pick_key(source), 0, len(source.labels) - 1, fallback="the first sample"),
    ]


def _shuffle() -> None:
    """Callback: a fresh seed, written into the seed box so the grid can be drawn again later."""
    current = st.session_state.get(SEED_KEY, 0)
    seed = current
    while seed == current:
        seed = random.randrange(MAX_SEED)
    st.session_state[SEED_KEY] = seed


def _select_all(key: str, options: list[int]) -> None:
    st.session_state[key] = options


def grid_controls(source: Source) -> tuple[list[int], int, int]:
    """Class filter, grid size and seed widgets; returns (classes, side, seed)."""
    options = list(source.names)
    key = classes_key(source)
    classes = st.pills(
        "Classes",
        options,
        selection_mode="multi",
        default=options,
        format_func=source.names.get,
        key=key,
        help="Only samples of these classes are drawn. Click a class to leave it out or bring it back.",
    )
    # A wrapping row of content-sized controls: nothing gets cut off in a narrow window.
    row = st.container(horizontal=True, vertical_alignment="bottom")
    side = row.segmented_control(
        "Grid",
        explore.GRID_SIZES,
        format_func=lambda k: f"{k}×{k}",
        key="explorer_grid",
        default=3,
        required=True,
    )
    st.session_state.setdefault(SEED_KEY, 0)
    seed = row.number_input(
        "Seed",
        min_value=0,
        max_value=MAX_SEED,
        step=1,
        key=SEED_KEY,
        help="The same seed, classes and grid size always give the same grid.",
        width=170,
    )
    row.button(
        "Shuffle",
        icon=":material/shuffle:",
        key="explorer_shuffle",
        on_click=_shuffle,
        help="Draw new samples (a new random seed)",
    )
    row.button("All classes", key="explorer_all", on_click=_select_all, args=(key, options))
    return classes, side, int(seed)


def _show(array, width: int, caption: str | None = None) -> None:
    """A PNG (JPEG would smear the sharp pixel edges) at most `width` px wide, never stretched."""
    st.image(array, caption=caption, width=min(width, array.shape[1]), output_format="PNG")


def render_grid(source: Source, indices: list[int], side: int) -> None:
    """The samples as a side x side grid of crisp upscaled images; the label under each one is a button
    that opens it in the inspector (st.image itself cannot be clicked)."""
    px = THUMB_PX[side]
    for start in range(0, len(indices), side):
        # Fixed-width cells in a wrapping row: never narrower than the image, so captions never overlap.
        with st.container(horizontal=True, gap="small"):
            for index in indices[start : start + side]:
                with st.container(width=px, gap=None):
                    _show(explore.to_display(source.image(index), px), px)
                    st.button(
                        grid_label(source, index, side),
                        key=f"explorer_open_{index}",
                        on_click=_inspect,
                        args=(pick_key(source), index),
                        type="tertiary",
                        help=f"#{index} · {source.label_text(index)}: inspect it on the right",
                    )
    st.caption("Click the label under an image to inspect it.")


def grid_label(source: Source, index: int, side: int) -> str:
    """`#index · label`, or just the (short) label under the small thumbnails of the densest grid."""
    name = source.label_text(index)
    if side >= DENSE:
        return SHORT.get(name, name).replace("-", NO_BREAK_HYPHEN)
    return f"#{index} · {name.replace('-', NO_BREAK_HYPHEN)}"


def _inspect(key: str, index: int) -> None:
    st.session_state[key] = index


def pick_sample(source: Source, indices: list[int]) -> int:
    """Which grid sample to inspect; falls back to the first when the grid changed under it."""
    key = pick_key(source)
    if st.session_state.get(key) not in indices:
        st.session_state[key] = indices[0]
    return st.selectbox(
        "Inspect a sample", indices, key=key, format_func=lambda i: f"#{i} · {source.label_text(i)}"
    )


def render_sample(source: Source, index: int) -> None:
    """One sample large, as the Dataset hands it out: its index, label, shape, dtype and value range."""
    image, label = source.item(index)
    name = source.label_text(index)
    st.markdown(f"**Index** {index} · **Label** {label}" + f" ({name})" * source.is_fashion)
    _show(explore.to_display(image, LARGE_PX), LARGE_PX)
    stats = explore.pixel_stats(image)
    values = (("Min", stats.min), ("Max", stats.max), ("Mean", stats.mean), ("Std", stats.std))
    columns = st.columns(2) + st.columns(2)  # 2 x 2: four side by side truncate in a narrow panel
    for column, (stat, value) in zip(columns, values, strict=True):
        column.metric(stat, _metric_text(stat, value, image.is_floating_point()))
    st.code("\n".join(explore.describe_sample(image, label, name)), language="text", wrap_lines=True)
    if source.is_fashion:
        st.caption(
            f"What `{DATASET_NAMES[source.key]}[{index}]` hands out with `transform=ToTensor()`: the file "
            "stores uint8 (28, 28) pixels 0–255; ToTensor divides them by 255 and adds the channel."
        )
    else:
        st.caption(
            "What `CustomImageDataset[i]` hands out with no transform: decode_image's uint8 (C, H, W), "
            "0–255 as stored in the file."
        )


def _metric_text(stat: str, value: float, floating: bool) -> str:
    """Floats in [0, 1] to 3 places; uint8 pixels as 0 and 255, not "0.0" and "255.0", means to 1 place."""
    if floating:
        return f"{value:.3f}"
    return f"{value:.0f}" if stat in ("Min", "Max") else f"{value:.1f}"


def class_distribution_figure(source: Source, chosen: list[int]) -> go.Figure:
    """Bar chart of images per class; classes in the filter are coloured, the rest greyed."""
    counts = explore.class_counts(source.labels, max(source.names) + 1)
    labels = list(source.names)
    figure = go.Figure(
        go.Bar(
            x=[source.names[c] for c in labels],
            y=[counts[c] for c in labels],
            text=[f"{counts[c]:,}" for c in labels],
            marker_color=[PRIMARY if c in chosen else MUTED for c in labels],
            hovertemplate="%{x}: %{y:,} images<extra></extra>",
        )
    )
    figure.update_layout(
        title=f"Images per class · {source.title} ({len(source.labels):,} images)",
        xaxis_title="Class",
        yaxis_title="Images (count)",
        margin={"t": 60, "b": 40},
        height=380,
    )
    return figure


@st.cache_resource(show_spinner="Averaging each class…")
def _class_means(split: str) -> torch.Tensor:
    images, labels = split_tensors(split)
    return explore.class_means(images, labels, len(CLASSES))  # (10, 28, 28), 0-255


def render_class_means(split: str) -> None:
    """The mean image of every FashionMNIST class: what an 'average' sneaker looks like."""
    means = _class_means(split) / 255
    for start in range(0, len(CLASSES), 5):
        for column, c in zip(st.columns(5), range(start, start + 5), strict=True):
            with column:
                _show(explore.to_display(means[c], MEAN_PX), MEAN_PX, CLASSES[c])


def render_samples(source: Source, classes: list[int], side: int, seed: int) -> int | None:
    """The grid of the chosen classes beside the inspector; returns the inspected index (None: no grid)."""
    if not classes:
        st.info("Pick at least one class above to draw samples.")
        return None
    indices = explore.sample_indices(source.labels, classes, side * side, seed)
    if len(indices) < side * side:
        st.caption(f"Only {len(indices)} samples match these classes; showing all of them.")
    row = st.container(horizontal=True, gap="large")  # grid and inspector stack in a narrow window
    grid_col, detail_col = row.container(width="content"), row.container(width=300)
    picked = None
    try:  # a custom image that cannot be decoded is reported, the rest of the page stays
        with grid_col:
            render_grid(source, indices, side)
        with detail_col, st.container(border=True):
            picked = pick_sample(source, indices)
            render_sample(source, picked)
    except StudioError as exc:
        st.error(str(exc))
    return picked


def grid_view(
    source: Source, split: str | None, classes: list[int], side: int, seed: int, picked: int | None
) -> ExplorerView:
    """The samples' controls as the page's code takes them; a custom source's code browses FashionMNIST."""
    if not source.is_fashion or split is None:
        return ExplorerView(seed=seed)
    chosen = None if set(classes) == set(source.names) else tuple(sorted(classes))
    return ExplorerView(split, chosen, side, seed, picked if picked is not None else 0)


def render_code(view: ExplorerView) -> None:
    """The code behind the grid and the inspector: indexing the Dataset, named by labels_map."""
    st.markdown(
        f"The code: each sample is `{view.dataset}[index]`, an image and an integer label; "
        "`labels_map` names the label."
    )
    st.code(f"{programs.grid_code(view)}\n\n{programs.sample_code(view)}", language="python")
