"""Optimization: hyperparameters, the loss function taken apart, and the training loop one line at a time."""

import streamlit as st

from ui import link
from ui.cache import dataset_or_message
from ui.learn import optimization as view
from ui.learn import race as race_view
from ui.nav import title

heading = title("optimization")
st.caption(
    "Training is an iterative process: in each step the model guesses, the loss function measures how wrong "
    "the guess is, autograd computes the gradients of that loss, and the optimizer moves the weights a "
    "little downhill. Here are the knobs, the loss and one step at a time, on real FashionMNIST."
)
if not dataset_or_message():
    st.stop()

st.subheader("1. Hyperparameters")
view.hyperparameters()

st.subheader("2. The loss function")
st.caption(
    "`nn.CrossEntropyLoss` turns the model's 10 scores (logits) into probabilities with softmax and takes "
    "−log of the probability of the true class, averaged over the batch."
)
view.loss_function()

st.subheader("3. The optimization loop, one step at a time")
st.caption(
    "One fixed batch of 64 training images. Each button runs one line of the tutorial's `train_loop` on a "
    "copy of the model that belongs to you; nothing is saved."
)
stepper = view.step_controls()
if stepper is not None:
    view.step_buttons(stepper)
    view.step_result()
link.keep(view.LINK, where=heading)

st.subheader("4. Optimizer races")
race_view.limits_caption()
race_view.setup()
race = race_view.shown_race()
if race is not None:
    race_view.live(race.id)
