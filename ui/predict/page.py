"""Streamlit pieces of the Predict page: the model, the inputs, test-set samples.

The page imports this module alone; the pieces live in ui.predict.model, ui.predict.upload,
ui.predict.draw, ui.predict.camera, ui.predict.answers and ui.predict.names, each named for what it does.
"""

import random

import streamlit as st
import torch
from PIL import Image

from core.data.fashion import CLASSES
from core.model.checkpoint import LoadedCheckpoint
from ui import link
from ui.cache import split_tensors
from ui.predict.answers import (
    answer,
    begin_run,
    forget_unused,
    prepare_upload,
    render_attributions,
    summary_table,
    topk_figure,
    upscale,
)
from ui.predict.camera import camera_section
from ui.predict.draw import draw_section
from ui.predict.model import MODEL_KEY, describe_model, model_section, run_link
from ui.predict.names import display_name
from ui.predict.upload import MAX_PHOTOS, too_many_photos, uploads_section
from ui.text import escape_markdown

__all__ = [
    "INPUTS",
    "INPUT_LINK",
    "K_LINK",
    "MAX_PHOTOS",
    "TAB_KEY",
    "begin_run",
    "camera_section",
    "describe_model",
    "display_name",
    "draw_section",
    "escape_markdown",
    "forget_unused",
    "keep_in_link",
    "model_section",
    "prepare_upload",
    "sample_section",
    "summary_table",
    "too_many_photos",
    "uploads_section",
    "upscale",
]

SAMPLE_KEY = "predict_sample"
TAB_KEY = "predict_input"  # which input tab is open
# The input tabs: URL name -> tab label (a tab's value is its label).
INPUTS = {
    "upload": ":material/upload: Your images",
    "draw": ":material/draw: Draw",
    "camera": ":material/photo_camera: Camera",
    "samples": ":material/casino: Test-set samples",
}
ANY_CLASS = -1  # not None: a selectbox holding None reads as "nothing chosen" and offers to clear it

K_LINK = link.whole("k", "predict_k", 1, 10, fallback="the top 3")
INPUT_LINK = link.choice("input", TAB_KEY, INPUTS, fallback="your images")


def keep_in_link(where) -> None:
    """The run shown, k and the open tab in the URL; an uploaded model.pth cannot travel in a link."""
    shown = st.session_state.get(MODEL_KEY)
    run = shown if isinstance(shown, str) and shown.startswith("run:") else None
    link.keep([run_link({}), K_LINK, INPUT_LINK], {MODEL_KEY: run}, where)


# ---- test-set samples --------------------------------------------------------------------------------


def random_index(labels: torch.Tensor, label: int | None, rng: random.Random) -> int:
    """A random test index, of class `label` when one is given."""
    candidates = torch.arange(len(labels)) if label is None else (labels == label).nonzero().flatten()
    return int(candidates[rng.randrange(len(candidates))])


def _new_sample() -> None:
    st.session_state.pop(SAMPLE_KEY, None)


def sample_section(loaded: LoadedCheckpoint, k: int, explain: bool = False) -> None:
    """A test-set image (random, or of one class) with the model's top-k next to the truth."""
    images, labels = split_tensors("test")
    # A wrapping row of content-sized controls: columns squeezed the button to "An…" at 800 px.
    row = st.container(horizontal=True, vertical_alignment="bottom")
    choice = row.selectbox(
        "Class",
        [ANY_CLASS, *range(len(CLASSES))],
        format_func=lambda c: "Any class" if c == ANY_CLASS else CLASSES[c],
        key="predict_sample_class",
        on_change=_new_sample,
        width=220,
    )
    label = None if choice == ANY_CLASS else choice
    row.button("Another sample", icon=":material/casino:", key="predict_next_sample", on_click=_new_sample)
    index = st.session_state.get(SAMPLE_KEY)
    if index is None or (label is not None and int(labels[index]) != label):
        index = random_index(labels, label, random.Random())
        st.session_state[SAMPLE_KEY] = index
    truth = int(labels[index])
    x = images[index].float().div(255)  # (28, 28) in [0, 1], as ToTensor makes it
    found = answer(loaded, f"test:{index}", x)
    predictions = found.ranking[:k]
    image_col, chart_col = st.columns([1, 2], gap="medium")
    image_col.image(upscale(Image.fromarray(images[index].numpy())), caption=f"Test image #{index}")
    with chart_col:
        best = predictions[0]
        verdict = (
            ":green[:material/check_circle: correct]"
            if best.index == truth
            else ":red[:material/cancel: wrong]"
        )
        st.markdown(
            f"Prediction: **{best.label}** · {best.prob:.1%} — truth: **{CLASSES[truth]}** · {verdict}"
        )
        st.plotly_chart(topk_figure(predictions, truth), width="stretch", key="predict_sample_chart")
    if explain:
        render_attributions(loaded, x, found)
