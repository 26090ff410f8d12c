"""Streamlit pieces of the Build Model page: model and sample controls, the structure, the traced layers."""

import random
from collections.abc import Sequence
from pathlib import Path

import streamlit as st
import torch
from torch import nn

from core import runs
from core.base.errors import BadConfig
from core.data.fashion import CLASSES
from core.data.transforms import display_array
from core.learn import build_model as bm
from core.learn import layers as bm_layers
from core.model.networks import MODELS
from ui import link
from ui.layout import side_by_side

MODEL_KEY = "build_model_model"  # "mlp" or "cnn"
WEIGHTS_KEY = "build_model_weights"  # UNTRAINED or "run:<id>"
SAMPLE_KEY = "build_model_sample"
UNIT_KEY = "build_model_unit"
UNTRAINED = "untrained"
USABLE = ("finished", "stopped")  # a running run's checkpoint changes every epoch
IMAGE_PX = 140  # 28 px x 5
MAP_PX = 56  # each feature map is drawn this large, whatever its size
MAP_COLUMNS = 8
FILTER_PX = 36  # a 3x3 filter drawn this large
PRIMARY = "#D9480F"  # .streamlit/config.toml's primaryColor
MUTED = "#C9C4BC"
SIGNED = "RdBu_r"  # blue below 0, red above: Linear outputs, logits and weights
UNSIGNED = [[0, "#F4F1EC"], [1, PRIMARY]]  # Flatten's pixels and ReLU outputs are never below 0


# ---- models, cached per (name, weights) ------------------------------------------------------------------


@st.cache_resource(show_spinner=False)
def untrained_model(name: str) -> nn.Module:
    """The page's own copy (torch.manual_seed(0), then build): hooks on it never meet another page's calls."""
    return bm.untrained_model(name)


# ---- controls ------------------------------------------------------------------------------------------


# What a copied link keeps: `?model=&weights=&sample=`.
MODEL_LINK = link.choice("model", MODEL_KEY, list(MODELS), fallback="the MLP")


def _weights_link(finished: Sequence[str]) -> link.Param:
    return link.choice("weights", WEIGHTS_KEY, [UNTRAINED, *finished], fallback="the untrained weights")


def _sample_link(count: int) -> link.Param:
    return link.whole("sample", SAMPLE_KEY, 0, count - 1, fallback="test image 0")


def model_controls(row) -> tuple[str, runs.RunInfo | None]:
    """Model and weights pickers in `row`; returns (model name, the chosen run or None)."""
    link.notify(link.adopt([MODEL_LINK]))
    name = row.radio(
        "Model",
        list(MODELS),
        format_func=lambda k: MODELS[k].title,
        key=MODEL_KEY,
        horizontal=True,
        width="content",
    )
    finished = {
        f"run:{run.id}": run
        for run in runs.list_runs()
        if run.status in USABLE and run.checkpoint is not None and run.config and run.config.model == name
    }
    link.notify(link.adopt([_weights_link(list(finished))]))
    if st.session_state.get(WEIGHTS_KEY) not in (UNTRAINED, *finished):
        st.session_state[WEIGHTS_KEY] = UNTRAINED  # e.g. a run of the other model, chosen before switching
    weights = row.selectbox(
        "Weights",
        [UNTRAINED, *finished],
        format_func=lambda k: _weights_label(k, finished),
        key=WEIGHTS_KEY,
        width=340,
        help="Untrained: the random initial weights every model starts from. A finished run: the weights "
        "it learned. Switch between them to compare.",
    )
    if not finished:  # below the row of controls, which the page made before this
        st.caption(f"No finished {name.upper()} run yet: train one on the Train page to compare its weights.")
    return name, finished.get(weights)


def _weights_label(key: str, finished: dict[str, runs.RunInfo]) -> str:
    if key == UNTRAINED:
        return f"Untrained · torch.manual_seed({bm.UNTRAINED_SEED})"
    run = finished[key]
    accuracy = f"{run.best_test_acc:.1%} on test" if run.best_test_acc is not None else "not evaluated"
    return f"Run {run.id} · {accuracy}"


def _random_sample(count: int) -> None:
    st.session_state[SAMPLE_KEY] = random.randrange(count)


def sample_control(row, count: int) -> tuple[int, list[str]]:
    """The test image to follow (0..count-1), in `row`, and any problem with a requested one."""
    link.notify(link.adopt([_sample_link(count)]))
    problems = []
    if SAMPLE_KEY in st.session_state:  # e.g. set by hand or by a test: bounds would hide it silently
        try:
            bm.check_index(st.session_state[SAMPLE_KEY], count)
        except BadConfig as exc:
            problems.append(f"{exc} Showing test image 0 instead.")
            st.session_state[SAMPLE_KEY] = 0
    index = row.number_input(
        "Test image",
        0,
        count - 1,
        key=SAMPLE_KEY,
        help=f"Index into the test split (0–{count - 1:,}): images the models never trained on.",
        width=140,
    )
    row.button(
        "", icon=":material/casino:", on_click=_random_sample, args=(count,), help="A random test image"
    )
    return int(index), problems


def keep_in_link(name: str, run: runs.RunInfo | None, index: int, count: int, where) -> None:
    """The page's state in the URL, so a copied link reopens this model, these weights and this image."""
    weights = f"run:{run.id}" if run is not None else UNTRAINED
    values = {MODEL_KEY: name, WEIGHTS_KEY: weights, SAMPLE_KEY: index}
    link.keep([MODEL_LINK, _weights_link([weights]), _sample_link(count)], values, where)


# ---- the prediction ----------------------------------------------------------------------------------


def render_prediction(traced: bm.Trace, index: int, label: int, compare: bm.Trace | None) -> None:
    """The image, the predicted class against the true one, and all ten probabilities."""
    image_col, result_col = side_by_side("build_model_prediction", IMAGE_PX + 20, 240)
    with image_col:
        st.image(
            display_array(traced.input[0], IMAGE_PX)[0],
            caption=f"#{index} · {CLASSES[label]}",
            width=IMAGE_PX,
        )
    with result_col:
        predicted, prob = traced.predicted, float(traced.probs[0, traced.predicted])
        right = ":green[:material/check_circle: right]"
        verdict = right if predicted == label else ":red[:material/cancel: wrong]"
        truth = CLASSES[label]
        st.markdown(f"Predicted **{CLASSES[predicted]}** ({prob:.1%}) · true **{truth}** · {verdict}")
        st.plotly_chart(probability_figure(traced.probs[0], label), width="stretch", key="build_model_probs")
        if compare is not None:
            _compare_caption(traced, compare, label)


def forward_note(model: nn.Module, x: torch.Tensor) -> None:
    """Why `model(X)` and not `model.forward(X)`, shown with a hook on this very model."""
    via_call, via_forward = bm_layers.hook_calls(model, x)
    st.caption(
        "Call the model, `model(X)`, never `model.forward(X)` directly: calling it goes through "
        "`nn.Module.__call__`, which runs forward and the hooks around it. A forward hook put on this model "
        f"ran **{via_call}** time(s) for `model(X)` and **{via_forward}** for `model.forward(X)`."
    )


def _compare_caption(traced: bm.Trace, untrained: bm.Trace, label: int) -> None:
    said, p_said = CLASSES[untrained.predicted], float(untrained.probs[0, untrained.predicted])
    p_before, p_now = float(untrained.probs[0, label]), float(traced.probs[0, label])
    st.caption(
        f"Untrained (seed {bm.UNTRAINED_SEED}), the same model says **{said}** ({p_said:.1%}) and gives the "
        f"true class {p_before:.1%}; with these weights, {p_now:.1%}."
    )


def probability_figure(probs: torch.Tensor, label: int) -> dict:
    """nn.Softmax(dim=1)'s ten probabilities as bars, the prediction highlighted, the true class marked."""
    values = probs.tolist()
    best = max(range(len(values)), key=values.__getitem__)
    names = [f"{c} ✓" if i == label else c for i, c in enumerate(CLASSES)]
    return {
        "data": [
            {
                "type": "bar",
                "orientation": "h",
                "x": values,
                "y": names,
                "marker": {"color": [PRIMARY if i == best else MUTED for i in range(len(values))]},
                "text": [f"{v:.1%}" for v in values],
                "textposition": "outside",
                "hovertemplate": "%{y}: %{x:.4f}<extra></extra>",
            }
        ],
        "layout": {
            "height": 300,
            "margin": {"l": 10, "r": 10, "t": 30, "b": 10},
            "title": {"text": "nn.Softmax(dim=1)(logits)", "font": {"size": 13}},
            "xaxis": {"range": [0, 1.15], "tickformat": ".0%", "automargin": True},
            "yaxis": {"autorange": "reversed", "automargin": True},
        },
    }


# ---- the layers, one by one ------------------------------------------------------------------------------


def render_input(x: torch.Tensor, index: int) -> None:
    about_col, picture_col = side_by_side("build_model_layer_input", 300, 420)
    with about_col:
        st.markdown(f"**Input** `X` · test image #{index}")
        st.code("x = X\n# → (1, 1, 28, 28)", language="python")
    with picture_col:
        st.image(display_array(x[0], IMAGE_PX)[0], caption="1 image · 1 channel · 28×28", width=IMAGE_PX)


def render_layer(position: int, out: bm.LayerOutput, module: nn.Module, made_by: str | None) -> None:
    """One layer: the class's line that makes it, the line that calls it, then its output for the image."""
    about_col, picture_col = side_by_side(f"build_model_layer_{position}", 300, 420)
    shape = tuple(out.output.shape)
    with about_col:
        st.markdown(f"**{position + 1}. `{out.name}`** · {out.kind}")
        made = f"# made in __init__ by {made_by}\n" if made_by else ""
        st.code(
            f"{made}x = {bm.module_expression(out.name)}(x)\n# {module}\n# → {shape}",
            language="python",
            wrap_lines=True,
        )
    with picture_col:
        st.caption(_layer_note(out, module))
        if out.output.dim() == 4:
            _feature_maps(out)
        elif out.output.shape[1] == len(CLASSES) and out.kind == "Linear":
            st.plotly_chart(
                logits_figure(out.output[0]), width="stretch", key=f"build_model_strip_{position}"
            )
        else:
            st.plotly_chart(strip_figure(out), width="stretch", key=f"build_model_strip_{position}")


def _layer_note(out: bm.LayerOutput, module: nn.Module) -> str:
    values = out.output
    if isinstance(module, nn.ReLU):
        n = values.numel()
        return (
            f"ReLU set **{out.negative_inputs:,} of {n:,}** values to 0 "
            f"({out.negative_inputs / n:.0%}): every one that came in negative."
        )
    if isinstance(module, nn.BatchNorm2d):
        return (
            "In eval mode BatchNorm normalises with the running mean and variance kept while training "
            "(untrained: 0 and 1, so it changes almost nothing). " + _stats(values)
        )
    if isinstance(module, nn.Dropout):
        return "In eval mode Dropout passes everything through: it only drops units while training."
    if isinstance(module, nn.Flatten):
        return f"The pixels laid out as one row of {values.shape[1]:,} values: nothing is computed."
    return _stats(values)


def _stats(values: torch.Tensor) -> str:
    return (
        f"{values[0].numel():,} values · min {float(values.min()):.3f} · max {float(values.max()):.3f} · "
        f"mean {float(values.mean()):.3f}"
    )


def _feature_maps(out: bm.LayerOutput) -> None:
    maps = out.output[0]  # (C, H, W)
    mosaic = bm.feature_mosaic(maps, MAP_COLUMNS, max(1, MAP_PX // maps.shape[1]))
    st.image(
        mosaic,
        width=mosaic.shape[1],  # not the caption's width
        caption=f"{maps.shape[0]} feature maps of {maps.shape[1]}×{maps.shape[2]} · one scale for the layer: "
        f"black {float(maps.min()):.2f}, white {float(maps.max()):.2f}",
    )


def strip_figure(out: bm.LayerOutput) -> dict:
    """A vector as one row of coloured cells (a heat strip); hover shows each unit's value."""
    values = out.output[0].tolist()
    signed = min(values) < 0
    return {
        "data": [
            {
                "type": "heatmap",
                "z": [values],
                "colorscale": SIGNED if signed else UNSIGNED,
                **({"zmid": 0} if signed else {"zmin": 0}),
                "colorbar": {"thickness": 10, "len": 1.4},
                "hovertemplate": "unit %{x}: %{z:.4f}<extra></extra>",
            }
        ],
        "layout": {
            "height": 70,
            "margin": {"l": 0, "r": 0, "t": 4, "b": 4},
            "xaxis": {"visible": False},
            "yaxis": {"visible": False},
        },
    }


def logits_figure(logits: torch.Tensor) -> dict:
    """The last layer's 10 outputs, one bar per class: the scores Softmax turns into probabilities."""
    values = logits.tolist()
    return {
        "data": [
            {
                "type": "bar",
                "orientation": "h",
                "x": values,
                "y": list(CLASSES),
                "marker": {"color": [PRIMARY if v >= 0 else "#1F6FEB" for v in values]},
                "hovertemplate": "%{y}: %{x:.4f}<extra></extra>",
            }
        ],
        "layout": {
            "height": 260,
            "margin": {"l": 10, "r": 10, "t": 10, "b": 10},
            "xaxis": {"zeroline": True, "automargin": True, "title": {"text": "logit"}},
            "yaxis": {"autorange": "reversed", "automargin": True},
        },
    }


# ---- structure and parameters --------------------------------------------------------------------------


def layer_table(rows: list[bm.LayerRow]) -> None:
    total = sum(r.params for r in rows)
    st.dataframe(
        {
            "layer": [r.name for r in rows],
            "type": [r.kind for r in rows],
            "output shape": [str(r.output_shape) for r in rows],
            "parameters": [f"{r.params:,}" for r in rows],
            "share": [f"{r.share:.1%}" for r in rows],
        },
        hide_index=True,
        width="stretch",
    )
    st.markdown(f"**Total: {total:,} parameters** · `sum(p.numel() for p in model.parameters())`")


def render_unit(model: nn.Module, x: torch.Tensor) -> None:
    """One unit of the MLP's first layer: its 784 weights as a 28x28 picture, and what it makes of x."""
    hidden = model.linear_relu_stack[0].out_features
    unit = st.slider("Unit of linear_relu_stack.0", 0, hidden - 1, 0, key=UNIT_KEY, width=360)
    weights = bm.unit_weights(model, x, int(unit))
    picture_col, about_col = side_by_side("build_model_unit_row", 300, 360)
    with picture_col:
        st.plotly_chart(weight_figure(weights.image), width="stretch", key="build_model_unit_weights")
    with about_col:
        st.code(bm.unit_code(weights.unit), language="python", wrap_lines=True)
        st.markdown(
            f"Weights times this image's pixels, summed, plus the bias ({weights.bias:+.4f}): "
            f"**{weights.by_hand:+.4f}**. The layer's own output for unit {weights.unit}: "
            f"**{weights.from_layer:+.4f}**."
        )
        st.caption(
            "Red pixels push the unit up where the image is bright, blue ones push it down. Untrained, the "
            "weights are noise; after a few epochs of training, some show the outline of a piece of clothing."
        )


def weight_figure(image: torch.Tensor) -> dict:
    """A (28, 28) weight image, red above 0 and blue below, pixel rows top to bottom as in the picture."""
    return {
        "data": [
            {
                "type": "heatmap",
                "z": image.tolist(),
                "colorscale": SIGNED,
                "zmid": 0,
                "colorbar": {"thickness": 10},
                "hovertemplate": "row %{y}, column %{x}: %{z:.4f}<extra></extra>",
            }
        ],
        "layout": {
            "height": 300,
            "margin": {"l": 10, "r": 10, "t": 10, "b": 10},
            "xaxis": {"visible": False, "scaleanchor": "y"},
            "yaxis": {"visible": False, "autorange": "reversed"},
        },
    }


def render_filters(model: nn.Module) -> None:
    """The CNN's first layer: its 3x3 filters, drawn as the MLP's units are."""
    weight = model.features[0].weight.detach()[:, 0]  # (channels, 3, 3)
    mosaic = bm.feature_mosaic(weight, MAP_COLUMNS, FILTER_PX // 3)
    st.image(
        mosaic,
        width=mosaic.shape[1],
        caption=f"The {weight.shape[0]} 3×3 filters of `features.0` (`model.features[0].weight[:, 0]`), "
        f"one scale: black {float(weight.min()):.2f}, white {float(weight.max()):.2f}",
    )


def checkpoint_note(path: Path | None) -> str:
    if path is None:
        return (
            "Untrained: every layer starts from PyTorch's default random initialisation, "
            f"here after torch.manual_seed({bm.UNTRAINED_SEED})."
        )
    return f"Weights from `{path}`, loaded with `torch.load(..., weights_only=True)`."
