"""Build Model's "Model layers" tab: a walk through Flatten, Linear, ReLU, Sequential, Softmax."""

import streamlit as st
import torch

from core.data.fashion import CLASSES
from core.learn import layers, moments
from ui import link
from ui.learn import moment

COUNT_KEY = "build_model_walk_images"
FEATURES_KEY = "build_model_walk_features"
SEED_KEY = "build_model_walk_seed"
DEFAULTS = {COUNT_KEY: 3, FEATURES_KEY: 20, SEED_KEY: 0}  # the tutorial's 3 images and 20 features

# What a copied link keeps: `?images=&features=&layer_seed=`.
LINKS = [
    link.whole("images", COUNT_KEY, 1, layers.MAX_IMAGES, fallback="3 images"),
    link.whole("features", FEATURES_KEY, 1, layers.MAX_FEATURES, fallback="20 features"),
    link.whole("layer_seed", SEED_KEY, 0, 2**31 - 1, fallback="seed 0"),
]


def controls(first: int, total: int) -> tuple[int, int, int, int]:
    """The minibatch (images from test image `first` on), layer1's out_features and the seed.

    Returns (first, count, features, seed), the arguments of core.learn.layers.walk_code."""
    link.notify(link.adopt(LINKS))
    for key, value in DEFAULTS.items():
        st.session_state.setdefault(key, value)
    row = st.container(horizontal=True, vertical_alignment="bottom", gap="medium")
    count = row.number_input(
        "Images in the minibatch", 1, layers.MAX_IMAGES, key=COUNT_KEY, width=170,
        help="The tutorial takes 3 random images; these are real test images from the one chosen above.",
    )  # fmt: skip
    features = row.number_input(
        "layer1's out_features", 1, layers.MAX_FEATURES, key=FEATURES_KEY, width=170,
        help="nn.Linear(in_features=28*28, out_features=...): the tutorial's 20.",
    )  # fmt: skip
    seed = row.number_input(
        "Seed", 0, 2**31 - 1, key=SEED_KEY, width=130, help="torch.manual_seed before the layers are made."
    )
    link.keep(LINKS)
    first = min(first, total - int(count))  # the minibatch stays inside the test split
    return first, int(count), int(features), int(seed)


def render(images: torch.Tensor, labels: torch.Tensor, walk: tuple[int, int, int, int]) -> None:
    """Each step of the tutorial's code with what PyTorch prints for it, on the real images.

    `walk`: (first, count, features, seed), as `controls` returns them."""
    first, count, features, seed = walk
    walked = layers.walk(images[first : first + count], features, seed)
    names = ", ".join(f"#{first + i} {CLASSES[int(labels[first + i])]}" for i in range(count))
    st.caption(f"The minibatch: test images {names}.")
    st.code(layers.walk_code(first, count, features, seed), language="python")
    signature = f"{first}|{count}|{features}|{seed}"
    st.markdown("`nn.Flatten` turns each 28×28 image into one row of 784 pixel values.")
    flat = tuple(walked.flat_image.size())  # PyTorch's answer, from the controls above
    if moment.ask(moments.FLATTEN_SHAPE, flat, page="build_model", signature=signature):
        _step(
            "The minibatch dimension (dim=0) stays.",
            f"{walked.input_image.size()}\n{walked.flat_image.size()}",
        )
    _step(f"`nn.Linear` applies a linear transformation with its stored weights and biases: 784 values in, "
          f"{features} out, for each image.", str(walked.hidden1.size()))  # fmt: skip
    moment.ask(moments.LINEAR_PARAMETERS, moments.linear_parameters(28 * 28, features), page="build_model",
               signature=signature)  # fmt: skip
    zeroed = int((walked.hidden1 < 0).sum())
    _step(f"`nn.ReLU` sets every negative value to 0 ({zeroed} of {walked.hidden1.numel()} here): the "
          "non-linearity that lets the model learn more than one linear map.",
          f"Before ReLU: {walked.hidden1}\n\n\nAfter ReLU: {walked.relu}")  # fmt: skip
    _step(f"`nn.Sequential` is an ordered container: the data passes through its modules in that order. "
          f"Its last layer gives 10 logits per image, values in (-∞, ∞): {tuple(walked.logits.shape)}.",
          str(walked.logits))  # fmt: skip
    _step("`nn.Softmax(dim=1)` scales the logits to probabilities in [0, 1] that sum to 1 along dim=1, "
          "one row per image (untrained layers: close to 1/10 each).",
          str(walked.pred_probab.sum(dim=1)))  # fmt: skip


def _step(words: str, printed: str) -> None:
    st.markdown(words)
    st.code(printed, language=None)
