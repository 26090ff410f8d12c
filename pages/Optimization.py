"""Optimization: hyperparameters, the loss and the optimizer, the training loop one line at a time, what goes
wrong without zero_grad(), with a learning rate too large or without eval(), and optimizer races."""

import streamlit as st

from core.learn.programs import optimization as programs
from ui import link
from ui.cache import dataset_or_message
from ui.learn import optimization as view
from ui.learn import optimization_pitfalls as pitfalls
from ui.learn import program as program_view
from ui.learn import race as race_view
from ui.nav import title

heading = title("optimization")
st.caption(
    "Training is an iterative process: in each step the model guesses, the loss function measures how wrong "
    "the guess is, autograd computes the gradients of that loss, and the optimizer moves the weights a "
    "little downhill. Here are the knobs, the loss, the optimizer and one step at a time on real "
    "FashionMNIST, then three ways the loop goes wrong."
)
if not dataset_or_message():
    st.stop()

st.subheader("1. Hyperparameters", anchor=programs.HYPERPARAMETERS_ANCHOR)
learning_rate, batch_size, epochs = view.hyperparameters()

st.subheader("2. The loss function", anchor=programs.LOSS_ANCHOR)
st.caption(
    "`nn.CrossEntropyLoss` turns the model's 10 scores (logits) into probabilities with softmax and takes "
    "−log of the probability of the true class, averaged over the batch."
)
view.loss_function()

st.subheader("3. The optimizer", anchor=programs.OPTIMIZER_ANCHOR)
view.optimizer()

st.subheader("4. The optimization loop, one step at a time", anchor=programs.STEPS_ANCHOR)
st.caption(
    "One fixed batch of 64 training images. Each button runs one line of the tutorial's `train_loop` on a "
    "copy of the model that belongs to you; nothing is saved."
)
held = view.step_controls()
if held is not None:
    stepper, setup = held
    view.step_buttons(stepper)
    view.step_result()
    st.subheader("5. Skipping zero_grad()", anchor="skipping-zero-grad")
    pitfalls.skipped_zero_grad(setup)
    st.subheader("6. A learning rate too large", anchor="learning-rate-too-large")
    pitfalls.lr_too_large(setup, learning_rate)
link.keep(view.LINK, where=heading)

st.subheader("7. Train mode at test time", anchor=programs.TEST_ANCHOR)
pitfalls.train_mode_at_test_time()

st.subheader("8. Optimizer races", anchor="optimizer-races")
race_view.limits_caption()
race_view.setup()
race = race_view.shown_race()
if race is not None:
    race_view.live(race.id)

program_view.render(programs.program(learning_rate, batch_size, epochs))
