"""Streamlit pieces of the Transforms page: pipeline editor, previews, charts and the training hand-off."""

import random
from dataclasses import asdict
from typing import Any

import plotly.graph_objects as go
import streamlit as st
import torch
from PIL import Image

from core.base.errors import StudioError
from core.data import transforms as tf
from core.data.augment import Augment
from core.data.fashion import CLASSES
from core.data.to_augment import to_augment
from core.data.transforms import CATALOGUE, ParamSpec, Step, TensorStats
from core.learn import moments
from core.training.analysis import augment_words
from ui import link
from ui.layout import cells, side_by_side
from ui.learn import moment

STEPS_KEY = "transforms_steps"  # [{"id": int, "name": str}], the pipeline in order
NEXT_ID_KEY = "transforms_next_id"
SEED_KEY = "transforms_seed"
PIPELINE_KEY = "transforms_pipeline"  # the pipeline last shown, [(name, params)]: for links and coming back
MAX_STEPS = 12  # a link with more steps than this is refused
TRAIN_KEY = "train_augment"  # read by the Train page: a dict of core.data.augment.Augment's fields
SPLIT = "train"  # augmentation is for training images
MAX_SEED = 2**31 - 1
N_DRAWS = 8
IMAGE_PX = 140  # 28 px x 5
DRAW_PX = 84  # 28 px x 3
PRIMARY = "#D9480F"  # .streamlit/config.toml's primaryColor
MUTED = "#8C8A86"
PRESETS: dict[str, list[Step]] = {
    "Tutorial": [("ToTensor", {})],
    "Augmentation": [
        ("RandomHorizontalFlip", {"p": 0.5}),
        ("RandomRotation", {"degrees": 10.0}),
        ("ToTensor", {}),
        ("RandomErasing", {"p": 0.25, "scale": (0.02, 0.33), "value": 0.0}),
    ],
    "Normalized": [("ToTensor", {}), ("Normalize", {})],
}


@st.cache_resource(show_spinner="Loading FashionMNIST…")
def raw_dataset(split: str):
    """The tutorial's Dataset handing out PIL images (no ToTensor), shared by every session."""
    return tf.raw_dataset(split)


# ---- the pipeline in a link: ?step=RandomRotation:degrees=10&step=ToTensor ------------------------------


def _format_step(step: Step) -> str:
    name, params = step
    values = ",".join(f"{key}={_format_value(value)}" for key, value in params.items())
    return f"{name}:{values}" if values else name


def _format_value(value: Any) -> str:
    return f"{value[0]:g}..{value[1]:g}" if isinstance(value, tuple | list) else f"{value:g}"


def _read_steps(value: link.Value) -> list[Step]:
    texts = value if isinstance(value, list) else [value]
    if len(texts) > MAX_STEPS:
        raise link.BadLink(f"the pipeline has {len(texts)} steps; at most {MAX_STEPS} are allowed.")
    return [_read_step(text) for text in texts if text]  # ?step= alone: an empty pipeline


def _read_step(text: str) -> Step:
    """One step, checked by core.data.transforms.clean_params like a widget's values; never evaluated."""
    if len(text) > link.MAX_TEXT:
        raise link.BadLink(f"a step of {len(text):,} characters is too long.")
    name, _, rest = text.partition(":")
    if name not in CATALOGUE:
        raise link.BadLink(f"step {name[:30]!r} is not one of the transforms here.")
    given = {}
    for part in filter(None, rest.split(",")):
        key, _, raw = part.partition("=")
        given[key] = tuple(raw.split("..", 1)) if ".." in raw else raw
    try:
        return name, tf.clean_params(name, given)
    except StudioError as exc:
        raise link.BadLink(f"{exc}.") from None


PIPELINE_LINK = link.Param(
    "step",
    PIPELINE_KEY,
    _read_steps,
    lambda steps: [_format_step(step) for step in steps] or [""],
    repeated=True,
    fallback="the tutorial's ToTensor",
)


def link_params(n_samples: int) -> list[link.Param]:
    """What a copied link keeps: the pipeline, the first sample, how many, and the seed."""
    return [PIPELINE_LINK, *_sample_params(n_samples)]


def _sample_params(n_samples: int) -> list[link.Param]:
    return [
        link.whole("sample", "transforms_index", 0, n_samples - 1, fallback="sample 0"),
        link.whole("samples", "transforms_count", 1, 4, fallback="2 samples"),
        link.whole("seed", SEED_KEY, 0, MAX_SEED, fallback="seed 0"),
    ]


# ---- the pipeline editor ----------------------------------------------------------------------------------


def _param_key(step_id: int, param: str) -> str:
    return f"transforms_s{step_id}_{param}"


def _append(name: str, params: dict[str, Any]) -> None:
    """Add a step; its widgets start from `params` (set through session state, not `value=`)."""
    step_id = st.session_state.get(NEXT_ID_KEY, 0)
    st.session_state[NEXT_ID_KEY] = step_id + 1
    for key, value in {**tf.default_params(name), **params}.items():
        st.session_state[_param_key(step_id, key)] = value
    st.session_state[STEPS_KEY].append({"id": step_id, "name": name})


def _load_preset(name: str) -> None:
    st.session_state[STEPS_KEY] = []
    for step_name, params in PRESETS[name]:
        _append(step_name, params)


def _add_chosen() -> None:
    _append(st.session_state["transforms_add"], {})


def _move(index: int, delta: int) -> None:
    steps = st.session_state[STEPS_KEY]
    steps[index], steps[index + delta] = steps[index + delta], steps[index]


def _remove(index: int) -> None:
    del st.session_state[STEPS_KEY][index]


def _param_widget(param: ParamSpec, key: str) -> Any:
    """One widget, chosen from the parameter's spec: the catalogue, not this code, knows every transform."""
    common = {"key": key, "help": param.help}
    if param.kind == "int":
        return st.number_input(param.name, int(param.min), int(param.max), step=int(param.step), **common)
    if param.kind == "range" or param.slider:
        return st.slider(param.name, float(param.min), float(param.max), step=float(param.step), **common)
    return st.number_input(
        param.name, float(param.min), float(param.max), step=param.step, format="%.3f", **common
    )


def _render_step(position: int, step: dict, count: int, remembered: dict[str, Any]) -> Step:
    spec = CATALOGUE[step["name"]]
    with st.container(border=True):
        header = st.container(horizontal=True, vertical_alignment="center", gap="small")
        header.markdown(f"**{position + 1}. {spec.name}**", width="stretch")
        # Text arrows, not Material icons: a screen reader reads an icon's ligature ("arrow_upward").
        for name, label, action, args, disabled, tip in (
            ("up", "↑", _move, (position, -1), position == 0, "Move up"),
            ("down", "↓", _move, (position, 1), position == count - 1, "Move down"),
            ("remove", "✕", _remove, (position,), False, "Remove this step"),
        ):
            key = f"transforms_{name}_{step['id']}"
            header.button(
                label,
                type="tertiary",
                key=key,
                on_click=action,
                args=args,
                disabled=disabled,
                help=tip,
            )
        st.caption(spec.summary)
        params = {}
        for param in spec.params:
            key = _param_key(step["id"], param.name)
            # Back from another page, Streamlit has dropped the widgets' values; the last pipeline has them.
            st.session_state.setdefault(key, remembered.get(param.name, param.default))
            params[param.name] = _param_widget(param, key)
    return spec.name, params


def pipeline_editor() -> list[Step]:
    """Presets, the steps as bordered cards with their parameters, and the add row; returns the steps."""
    link.notify(link.adopt([PIPELINE_LINK]))  # a link's pipeline, on the first visit
    shown = st.session_state.get(PIPELINE_KEY)
    if STEPS_KEY not in st.session_state:
        st.session_state[STEPS_KEY] = []
        for name, params in PRESETS["Tutorial"] if shown is None else shown:
            _append(name, params)
    presets = st.container(horizontal=True, gap="small")
    for name in PRESETS:
        presets.button(
            name,
            key=f"transforms_preset_{name}",
            on_click=_load_preset,
            args=(name,),
            help=_preset_help(name),
        )
    steps = st.session_state[STEPS_KEY]
    if not steps:
        st.info("The pipeline is empty: the image goes through unchanged. Add a transform below.")
    built = [_render_step(i, step, len(steps), _remembered(shown, i, step)) for i, step in enumerate(steps)]
    st.session_state[PIPELINE_KEY] = built
    row = st.container(horizontal=True, vertical_alignment="bottom", gap="small")
    chosen = row.selectbox("Add a transform", list(CATALOGUE), key="transforms_add", width="stretch")
    row.button("Add", icon=":material/add:", key="transforms_add_button", on_click=_add_chosen)
    st.caption(CATALOGUE[chosen].summary)
    return built


def _remembered(shown: list[Step] | None, position: int, step: dict) -> dict[str, Any]:
    """The parameters step `position` had when the page was last shown, if it is the same transform."""
    if shown and position < len(shown) and shown[position][0] == step["name"]:
        return dict(shown[position][1])
    return {}


def _preset_help(name: str) -> str:
    return "Start over from: " + ", ".join(step for step, _ in PRESETS[name])


# ---- sample controls and previews -------------------------------------------------------------------------


def _new_seed() -> None:
    st.session_state[SEED_KEY] = random.randrange(MAX_SEED)


def sample_controls(n_samples: int) -> tuple[list[int], int]:
    """Index of the first sample, how many to show and the seed; returns (indices, seed)."""
    link.notify(link.adopt(_sample_params(n_samples)))
    row = st.container(horizontal=True, vertical_alignment="bottom", gap="small")
    first = row.number_input(
        "First sample",
        0,
        n_samples - 1,
        0,
        key="transforms_index",
        help=f"Index into the {SPLIT} split (0–{n_samples - 1:,}).",
        width=120,
    )
    count = row.number_input("Samples", 1, 4, 2, key="transforms_count", help="How many to show.", width=90)
    st.session_state.setdefault(SEED_KEY, 0)
    seed = row.number_input(
        "Seed",
        0,
        MAX_SEED,
        step=1,
        key=SEED_KEY,
        help="torch.manual_seed(seed) before the pipeline runs: the same seed gives the same random draws.",
        width=130,
    )
    row.button("", icon=":material/casino:", on_click=_new_seed, help="A new random seed")
    last = min(int(first) + int(count), n_samples)
    return list(range(int(first), last)), int(seed)


def _shown(output: Any, size: int) -> tuple[Any, bool]:
    """Pixels to display and whether they were rescaled (values outside [0, 1] after Normalize)."""
    tensor, _converted = tf.as_tensor(output)
    return tf.display_array(tensor, size)


def _kind(output: Any) -> str:
    if isinstance(output, Image.Image):
        return f"PIL {output.width}×{output.height}"
    return "tensor " + "×".join(str(n) for n in output.shape)


def render_before_after(images: list, outputs: list | None, indices: list[int], labels: list[int]) -> None:
    """Two rows: the Dataset's PIL images, then what the pipeline made of them."""
    st.markdown("**Before** · the Dataset's PIL image")
    before = cells(len(images), IMAGE_PX)
    for column, image, index, label in zip(before, images, indices, labels, strict=True):
        column.image(_shown(image, IMAGE_PX)[0], caption=f"#{index} · {CLASSES[label]}", output_format="PNG")
    if outputs is None:
        return
    st.markdown("**After** · `transform(image)`")
    rescaled_any = False
    for column, output, index in zip(cells(len(outputs), IMAGE_PX), outputs, indices, strict=True):
        pixels, rescaled = _shown(output, IMAGE_PX)
        rescaled_any |= rescaled
        column.image(pixels, caption=f"#{index} · {_kind(output)}", output_format="PNG")
    if rescaled_any:
        st.caption("Values outside [0, 1] (after Normalize) are stretched from their min–max for display.")


def render_draws(draws: list, index: int) -> None:
    """The same sample through the pipeline several times: how varied the augmentation is."""
    st.markdown(f"**{len(draws)} random draws of sample #{index}** · same seed, same draws")
    for column, (i, output) in zip(cells(len(draws), DRAW_PX), enumerate(draws, start=1), strict=True):
        column.image(_shown(output, DRAW_PX)[0], caption=str(i), output_format="PNG")


# ---- statistics, histogram, one-hot ----------------------------------------------------------------------


def render_stats(image: Image.Image, output: Any | None, index: int, signature: str) -> None:
    """Statistics table and pixel histogram of the first sample, before and after the pipeline; with a
    pipeline that runs, once its value range has been predicted. `signature`: the pipeline and seed."""
    answer = moments.value_range(output) if output is not None else None
    if answer is not None and not moment.ask(
        moments.VALUE_RANGE, answer, page="transforms", signature=signature
    ):
        return
    before, _ = tf.as_tensor(image)
    after, converted = tf.as_tensor(output) if output is not None else (None, False)
    rows = {f"before · ToTensor(#{index})": tf.tensor_stats(before)}
    if after is not None:
        rows[f"after · transform(#{index})"] = tf.tensor_stats(after)
    stats_col, hist_col = side_by_side("transforms_histogram", 330, 360)
    with stats_col:
        stats_table(rows)
        if converted:
            st.caption(
                "The pipeline has no ToTensor, so it returns a PIL image: its row is taken after ToTensor."
            )
        st.caption(
            "`ToTensor` scales 0–255 to [0, 1]; `Normalize` then shifts and scales by the mean and std."
        )
    with hist_col:
        st.plotly_chart(histogram_figure(before, after), width="stretch")


def stats_table(rows: dict[str, TensorStats]) -> None:
    """Shape, dtype and value statistics, one column per tensor (narrow enough for half the page)."""
    data = {"": ["shape", "dtype", "min", "max", "mean", "std"]}
    for stage, s in rows.items():
        data[stage] = [
            str(s.shape),
            s.dtype.removeprefix("torch."),
            *(f"{v:.4f}" for v in (s.min, s.max, s.mean, s.std)),
        ]
    st.dataframe(data, hide_index=True, width="stretch")


def histogram_figure(before: torch.Tensor, after: torch.Tensor | None) -> go.Figure:
    """Overlaid pixel-value histograms on a shared axis; log counts, since most pixels are background."""
    tensors = [t for t in (before, after) if t is not None]
    low = min(0.0, *(float(t.min()) for t in tensors))
    high = max(1.0, *(float(t.max()) for t in tensors))
    figure = go.Figure()
    for name, tensor, colour in (("before (ToTensor)", before, MUTED), ("after", after, PRIMARY)):
        if tensor is not None:
            centres, counts = tf.pixel_histogram(tensor, low, high)
            figure.add_bar(x=centres, y=counts, name=name, marker_color=colour, opacity=0.7)
    figure.update_layout(
        title="Pixel values of the first sample",
        barmode="overlay",
        height=320,
        margin={"t": 50, "b": 40},
        xaxis_title="pixel value (tensor units)",
        yaxis_title="pixels (count, log scale)",
        yaxis_type="log",
        yaxis_dtick=1,  # ticks at 1, 10, 100, 1000: plotly adds 2 and 5 between them, read as "10, 2, 5, 100"
        legend={"orientation": "h", "y": -0.3},
    )
    return figure


def one_hot_figure(vectors: list[torch.Tensor], indices: list[int]) -> go.Figure:
    """Rows are samples, columns the 10 classes: a single bright cell per row is the one-hot vector."""
    figure = go.Figure(
        go.Heatmap(
            z=[v.tolist() for v in vectors],
            x=list(CLASSES),
            y=[f"#{i}" for i in indices],
            colorscale=[[0, "#F4F1EC"], [1, PRIMARY]],
            zmin=0,
            zmax=1,
            showscale=False,
            xgap=2,
            ygap=2,
            hovertemplate="sample %{y} · %{x}: %{z:.0f}<extra></extra>",
        )
    )
    figure.update_layout(
        title="target_transform(y): one row per sample",
        xaxis_title="class (vector position 0–9)",
        yaxis_title="sample",
        yaxis_autorange="reversed",
        yaxis_type="category",
        height=110 + 45 * len(vectors),
        margin={"t": 50, "b": 40},
    )
    return figure


def render_one_hot(labels: list[int], indices: list[int]) -> None:
    """The samples' one-hot targets, once the first one's has been predicted."""
    first = labels[0]
    question = moments.one_hot_moment(first, CLASSES[first])
    answer = moments.one_hot_answer(question, tf.target_transform()(first), first)
    if not moment.ask(question, answer, page="transforms", signature=str(first)):
        return
    vectors = [tf.one_hot(label) for label in labels]
    st.plotly_chart(one_hot_figure(vectors, indices), width="stretch")
    printed = [
        f"y = {label} ({CLASSES[label]})  →  {vector}" for label, vector in zip(labels, vectors, strict=True)
    ]
    st.code("\n".join(printed), language="text", wrap_lines=True)  # a narrow window would cut the vector


# ---- the training hand-off -------------------------------------------------------------------------------


def render_training(steps: list[Step], runs: bool) -> None:
    """What training would keep of the pipeline, and the button that hands it to the Train page.

    `runs` is False when the pipeline failed above: its error is shown there once, not repeated here.
    """
    if not runs:
        st.info("Fix the pipeline above to hand it to training.")
        return
    try:
        mapping = to_augment(steps)
    except StudioError as exc:
        st.error(str(exc))
        return
    chosen = asdict(mapping.augment)
    for line in mapping.used:
        st.markdown(f":green[:material/check_circle:] {line}")
    for name in mapping.unused:
        st.markdown(
            f":gray[:material/block:] {name} → not used in training ({CATALOGUE[name].training_note})"
        )
    for note in mapping.notes:
        st.caption(f"ℹ️ {note}")
    if st.button("Use as training augmentation", type="primary", key="transforms_use"):
        st.session_state[TRAIN_KEY] = chosen
    if st.session_state.get(TRAIN_KEY) == chosen:
        skipped = f" Not used: {', '.join(mapping.unused)}." if mapping.unused else ""
        st.success(f"The Train page will use this augmentation: {augment_words(Augment(**chosen))}.{skipped}")
    elif TRAIN_KEY in st.session_state:
        st.info("The Train page holds an earlier augmentation; click the button to replace it with this one.")
