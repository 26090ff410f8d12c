"""Transforms: build a torchvision pipeline, preview it on real samples, hand it to training."""

import streamlit as st

from core.base.errors import StudioError
from core.data import transforms as tf
from core.learn.programs import transforms as programs
from ui import link
from ui.cache import dataset_or_message
from ui.layout import side_by_side
from ui.learn import transforms as view
from ui.learn.program import render as render_program
from ui.nav import title

heading = title("transforms")
st.caption(
    "The tutorial turns each PIL image into a tensor with `transform=ToTensor()` and each label into a "
    "one-hot vector with `target_transform`. Build your own pipeline from torchvision transforms, see what "
    "it does to real samples, hand it to training as data augmentation, and take its code along at the end."
)

if not dataset_or_message():
    st.stop()

builder_col, preview_col = side_by_side("transforms_preview", 300)
with builder_col:
    st.subheader("Pipeline", anchor=programs.PIPELINE_ANCHOR)
    st.caption(
        "Steps run top to bottom on each image. Start over from a preset, or add transforms one by one."
    )
    steps = view.pipeline_editor()

pipeline = outputs = draws = None
with preview_col:
    st.subheader("Before and after", anchor="before-and-after")
    try:
        dataset = view.raw_dataset(view.SPLIT)
    except StudioError as exc:
        st.error(str(exc))
        st.stop()
    indices, seed = view.sample_controls(len(dataset))
    samples = [dataset[i] for i in indices]  # (PIL image, label) pairs, as the Dataset returns them
    images, labels = [image for image, _ in samples], [label for _, label in samples]
    try:
        pipeline = tf.build_pipeline(steps)
        outputs = tf.apply_pipeline(pipeline, images, seed)
        draws = tf.random_draws(pipeline, images[0], seed, view.N_DRAWS)
    except StudioError as exc:
        st.error(str(exc))
        outputs = draws = None
    view.render_before_after(images, outputs, indices, labels)
    if draws is not None:
        view.render_draws(draws, indices[0])

st.subheader("Tensor statistics", anchor=programs.STATS_ANCHOR)
view.render_stats(images[0], outputs[0] if outputs is not None else None, indices[0], f"{steps!r}|{seed}")

st.subheader("Target transform: label → one-hot vector", anchor=programs.TARGET_ANCHOR)
st.caption(
    "`target_transform` turns the integer label into a vector of 10 floats with a 1 at the label's position."
)
st.code(f"target_transform = {tf.ONE_HOT_CODE}", language="python", wrap_lines=True)
view.render_one_hot(labels, indices)

st.subheader("Use for training")
st.caption(
    "Training augments whole batches of tensors on the device instead of each PIL image, with its own flip, "
    "rotation, shift, zoom and erasing. This is how your pipeline maps onto them:"
)
view.render_training(steps, runs=outputs is not None)

if outputs is None:
    st.info("Fix the pipeline above to see the code you would write.")
else:
    render_program(programs.program(steps, indices, seed))
link.keep(view.link_params(len(dataset)), where=heading)
