"""Streamlit pieces of the Optimization page: hyperparameters, the loss taken apart (and its relatives), the
optimizer, one step at a time."""

import copy
import random
from dataclasses import dataclass

import pandas as pd
import streamlit as st
import torch
from torch import nn

from core.base.errors import StudioError
from core.data.fashion import CLASSES
from core.learn import moments
from core.learn import optimization as opt
from core.learn.build_model import untrained_model
from core.training.config import OPTIMIZERS
from ui import link
from ui.cache import split_tensors
from ui.learn import moment
from ui.model_picker import pick_model

BATCH_SIZES = [16, 32, 64, 128, 256, 512, 1024]
LEARNING_RATES = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0]
BIG_RATES = [1.0, 3.0, 10.0]  # the "learning rate too large" experiment's choices
LOSS_SAMPLES = 5
STEPPER_KEY = "optimization_stepper"  # (settings, Stepper): the session's model copy and optimizer
REPORT_KEY = "optimization_report"  # the last StepReport
LOSS_SEED_KEY = "optimization_loss_seed"
_BATCHES = {str(b): b for b in BATCH_SIZES}
_RATES = {f"{r:g}": r for r in LEARNING_RATES}
# What a copied link keeps: the hyperparameters, and the optimizer, rate and batch of the step-by-step loop.
LINK = [
    link.choice("batch", "optimization_batch", _BATCHES, fallback="64"),
    link.whole("epochs", "optimization_epochs", 1, 20, fallback="5"),
    link.choice("lr", "optimization_lr", _RATES, fallback="0.001"),
    link.choice("optimizer", "optimization_step_optimizer", OPTIMIZERS, fallback="sgd"),
    link.choice("step_lr", "optimization_step_lr", _RATES, fallback="0.1"),
    link.whole("batch_seed", "optimization_step_seed", 0, 2**31 - 1, fallback="0"),
    link.choice("big_lr", "optimization_big_lr", {f"{r:g}": r for r in BIG_RATES}, fallback="3"),
]


def hyperparameters() -> tuple[float, int, int]:
    """The three controls; returns (learning_rate, batch_size, epochs)."""
    link.notify(link.adopt(LINK))  # the whole page's: its first controls are these
    row = st.container(horizontal=True, vertical_alignment="bottom")
    batch = row.select_slider("Batch size", BATCH_SIZES, value=64, key="optimization_batch", width=260)
    epochs = row.slider("Epochs", 1, 20, 5, key="optimization_epochs", width=220)
    lr = row.select_slider(
        "Learning rate", LEARNING_RATES, value=1e-3, key="optimization_lr", format_func=lambda v: f"{v:g}",
        width=260,
    )  # fmt: skip
    plan = opt.budget(batch, epochs)
    st.code(f"learning_rate = {lr:g}\nbatch_size = {batch}\nepochs = {epochs}", language="python")
    metrics = st.container(horizontal=True)
    metrics.metric("Optimizer steps per epoch", f"{plan.steps_per_epoch:,}", border=True, width=220)
    metrics.metric("Steps in all", f"{plan.total_steps:,}", border=True, width=180)
    metrics.metric("Images seen", f"{plan.images_seen:,}", border=True, width=180)
    last = f"{plan.last_batch} images" if plan.last_batch else "full, like the others"
    st.markdown(
        f"- **Epochs**: how many times the loop goes over all {opt.TRAIN_SIZE:,} training images: "
        f"{epochs} here, so each image is seen {epochs} time{'s' if epochs > 1 else ''}.\n"
        f"- **Batch size**: images per optimizer step. {opt.TRAIN_SIZE:,} / {batch} gives "
        f"{plan.steps_per_epoch:,} steps an epoch; the last batch is {last}. Smaller batches: more, "
        "noisier steps; larger ones: fewer, smoother steps.\n"
        f"- **Learning rate**: how far each step goes. Plain SGD moves each weight by {lr:g} × its "
        "gradient: too small and learning is slow, too large and the loss jumps about or blows up "
        "([see it below](#learning-rate-too-large))."
    )
    _first_printed_line(batch)
    return lr, batch, epochs


def _first_printed_line(batch: int) -> None:
    images, labels = split_tensors("train")
    loss = opt.first_printed_loss(untrained_model("mlp"), images, labels, batch)
    st.markdown(
        "The [code at the end of this page](#the-code-you-would-write) trains the tutorial's `NeuralNetwork` "
        "from the same initial weights as this page's untrained MLP (seed 0), so the first line its "
        "`train_loop` prints is this one: the loss on the first "
        f"{min(batch, opt.TRAIN_SIZE):,} training images, before any step."
    )
    st.code(opt.printed_loss_line(loss, batch), language="text")


def loss_function() -> None:
    images, labels = split_tensors("test")
    row = st.container(horizontal=True, vertical_alignment="bottom")
    picked = pick_model("optimization_loss_model", row)
    row.button(
        "Other samples", icon=":material/casino:", key="optimization_loss_shuffle", on_click=_reshuffle
    )
    if picked is None:
        return
    model, _label = picked
    seed = st.session_state.setdefault(LOSS_SEED_KEY, 0)
    indices = random.Random(seed).sample(range(len(labels)), LOSS_SAMPLES)
    try:
        parts = opt.loss_breakdown(model, images, labels, indices)
    except StudioError as exc:
        st.error(str(exc))
        return
    st.code(
        "loss_fn = nn.CrossEntropyLoss()\n"
        f"pred = model(X)  # logits, ({LOSS_SAMPLES}, 10): one score per class\n"
        "probs = pred.softmax(dim=1)  # each row sums to 1\n"
        f"p_truth = probs[range({LOSS_SAMPLES}), y]  # the probability given to the right answer\n"
        "print((-p_truth.log()).mean(), loss_fn(pred, y))",
        language="python",
        wrap_lines=True,
    )
    signature = f"{_label}|{seed}"  # another model or other samples: another question
    if not moment.ask(moments.MODEL_LOSS, parts.from_pytorch, page="optimization", signature=signature):
        return
    st.dataframe(_loss_table(parts), hide_index=True, column_config=_loss_columns())
    st.markdown(
        f"Mean of −log p(truth): **{parts.mean_by_hand:.6f}** · `nn.CrossEntropyLoss()`: "
        f"**{parts.from_pytorch:.6f}**: the same number. A confident right answer costs almost nothing, a "
        "confident wrong one a lot; an untrained model gives every class about 0.1, so its loss is near "
        "ln 10 ≈ 2.30."
    )
    with st.expander("The softmax probabilities, class by class"):
        probabilities = pd.DataFrame(parts.probabilities.numpy(), columns=list(CLASSES))
        probabilities.insert(0, "Sample", [f"#{row.index}" for row in parts.rows])
        st.dataframe(probabilities.round(3), hide_index=True)
    _other_losses(parts, labels[indices])


def _other_losses(parts: opt.LossBreakdown, y) -> None:
    """nn.NLLLoss and nn.MSELoss on the same five samples, each number beside a second way to get it."""
    other = opt.other_losses(parts.logits, y)
    st.markdown(
        "**Other loss functions.** The tutorial names two more: `nn.MSELoss` (mean square error) for "
        "regression, and `nn.NLLLoss` (negative log likelihood) for classification. `nn.CrossEntropyLoss` is "
        "`nn.LogSoftmax` followed by `nn.NLLLoss`; on the same five samples:"
    )
    st.code(
        "log_probs = nn.LogSoftmax(dim=1)(pred)  # log of the softmax probabilities\n"
        "print(nn.NLLLoss()(log_probs, y), nn.CrossEntropyLoss()(pred, y))  # equal\n"
        "print(nn.NLLLoss()(pred, y))  # wrong: NLLLoss wants log-probabilities, not logits\n\n"
        f"target = nn.functional.one_hot(y, 10).float()  # ({LOSS_SAMPLES}, 10): MSELoss wants pred's shape\n"
        "print(nn.MSELoss()(pred.softmax(dim=1), target), ((pred.softmax(dim=1) - target) ** 2).mean())",
        language="python",
        wrap_lines=True,
    )
    row = st.container(horizontal=True)
    row.metric("nn.NLLLoss(LogSoftmax(pred), y)", f"{other.nll_of_log_softmax:.6f}", border=True, width=260)
    row.metric("nn.CrossEntropyLoss(pred, y)", f"{other.cross_entropy:.6f}", border=True, width=240)
    row.metric("nn.NLLLoss(pred, y): logits", f"{other.nll_of_logits:.6f}", border=True, width=240)
    row.metric("nn.MSELoss(probs, one-hot)", f"{other.mse:.6f}", border=True, width=240)
    picked = ", ".join(f"{v:.4f}" for v in other.log_probs_of_truth)
    st.markdown(
        f"The first two agree (difference {abs(other.nll_of_log_softmax - other.cross_entropy):.1e}): "
        f"`NLLLoss` takes each row's log-probability at the true class ({picked}), negates it and averages: "
        "the −log p(truth) column above. Given raw logits it averages −logit instead, a number that is no "
        "loss at all. `MSELoss` averages squared differences between two tensors of one shape: here "
        f"{other.mse:.6f}, the same as by hand ({other.mse_by_hand:.6f}). It is the loss for a number to "
        "predict (a price, an angle); for classes, CrossEntropyLoss."
    )


def _reshuffle() -> None:
    st.session_state[LOSS_SEED_KEY] = st.session_state.get(LOSS_SEED_KEY, 0) + 1


def _loss_table(parts: opt.LossBreakdown) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "Sample": [f"#{row.index}" for row in parts.rows],
            "Truth": [CLASSES[row.truth] for row in parts.rows],
            "Predicted": [CLASSES[row.predicted] for row in parts.rows],
            "p(truth)": [row.p_truth for row in parts.rows],
            "−log p(truth)": [row.nll for row in parts.rows],
        }
    )


def _loss_columns() -> dict:
    return {
        "p(truth)": st.column_config.ProgressColumn(format="%.3f", min_value=0.0, max_value=1.0),
        "−log p(truth)": st.column_config.NumberColumn(format="%.4f"),
    }


# ---- the optimizer ------------------------------------------------------------------------------------


def optimizer() -> None:
    names = opt.torch_optimizers()
    st.markdown(
        "Optimization is the process of adjusting the model's weights to reduce the loss at each step; the "
        "optimizer holds that rule. The tutorial uses stochastic gradient descent: each weight moves by "
        "−lr × its gradient. Your PyTorch's `torch.optim` holds "
        f"{len(names)} optimizers: " + ", ".join(f"`{n}`" for n in names) + ". "
        "The tutorial names `Adam` and `RMSprop` as ones that work better for some models and data; the "
        "steps below and the races offer SGD, Adam and AdamW."
    )
    st.code(
        "optimizer = torch.optim.SGD(model.parameters(), lr=learning_rate)\n"
        "# or: torch.optim.Adam(model.parameters(), lr=learning_rate), torch.optim.RMSprop(...), ...\n\n"
        "# Inside the training loop, three steps:\n"
        "optimizer.zero_grad()  # reset the gradients: by default they add up\n"
        "loss.backward()  # the gradient of the loss for each parameter, deposited in .grad\n"
        "optimizer.step()  # adjust the parameters by the gradients",
        language="python",
    )


# ---- one step at a time ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StepSetup:
    """What the step-by-step loop was set up with, for the experiments that follow it on the same batch."""

    model: nn.Module  # the chosen model, shared: experiments copy it
    optimizer: str
    lr: float
    x: torch.Tensor  # (64, 1, 28, 28) floats
    y: torch.Tensor  # (64,) labels


def step_controls() -> tuple[opt.Stepper, StepSetup] | None:
    """The model, optimizer and batch; a change of any of them starts again from the chosen weights."""
    row = st.container(horizontal=True, vertical_alignment="bottom")
    picked = pick_model("optimization_step_model", row)
    optimizer = row.selectbox("Optimizer", OPTIMIZERS, key="optimization_step_optimizer", width=130)
    lr = row.select_slider(
        "Learning rate", LEARNING_RATES, value=0.1, key="optimization_step_lr",
        format_func=lambda v: f"{v:g}", width=240,
    )  # fmt: skip
    seed = int(row.number_input("Batch seed", 0, 2**31 - 1, 0, key="optimization_step_seed", width=130))
    if picked is None:
        return None
    model, label = picked
    settings = (label, optimizer, lr, seed)
    held = st.session_state.get(STEPPER_KEY)
    if held is None or held[0] != settings:
        try:
            held = (settings, _new_stepper(model, optimizer, lr, seed))
        except StudioError as exc:
            st.error(str(exc))
            return None
        st.session_state[STEPPER_KEY] = held
        st.session_state.pop(REPORT_KEY, None)
    stepper = held[1]
    return stepper, StepSetup(model, optimizer, lr, stepper.x, stepper.y)


def _new_stepper(model, optimizer: str, lr: float, seed: int) -> opt.Stepper:
    images, labels = split_tensors("train")
    x, y = opt.fixed_batch(images, labels, 64, seed)
    own = copy.deepcopy(model)  # the session's copy: its steps never touch the shared model
    return opt.Stepper(own, opt.build_optimizer(optimizer, own.parameters(), lr), x, y)


STAGES = {  # button label, the Stepper method it calls
    "forward": "pred = model(X); loss = loss_fn(pred, y)",
    "backward": "loss.backward()",
    "step": "optimizer.step()",
    "zero_grad": "optimizer.zero_grad()",
}


def step_buttons(stepper: opt.Stepper) -> None:
    row = st.container(horizontal=True)
    for stage, label in STAGES.items():
        row.button(label, key=f"optimization_do_{stage}", on_click=_do, args=(stage,))
    row.button("Start again", icon=":material/restart_alt:", key="optimization_restart", on_click=_restart)


def _do(stage: str) -> None:
    held = st.session_state.get(STEPPER_KEY)
    if held is not None:
        st.session_state[REPORT_KEY] = getattr(held[1], stage)()


def _restart() -> None:
    st.session_state.pop(STEPPER_KEY, None)
    st.session_state.pop(REPORT_KEY, None)


def step_result() -> None:
    report: opt.StepReport | None = st.session_state.get(REPORT_KEY)
    st.code(opt.train_loop_code(report.stage if report else None), language="python", wrap_lines=True)
    if report is None:
        st.info(
            "Press the buttons in the loop's order, starting with the forward pass, and watch each one act."
        )
        return
    (st.success if report.ok else st.warning)(f"`{STAGES[report.stage]}`: {report.message}")
    if report.grad_norms and report.stage == "backward":
        st.dataframe(_norms(report.grad_norms, "‖grad‖"), hide_index=True)
    if report.moved:
        st.dataframe(_norms(report.moved, "‖change‖ made by step()"), hide_index=True)


def _norms(values: dict, column: str) -> pd.DataFrame:
    return pd.DataFrame(
        {"Parameter": list(values), column: [v if v is None else round(v, 6) for v in values.values()]}
    )
