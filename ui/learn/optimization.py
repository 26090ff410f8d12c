"""Streamlit pieces of the Optimization page: hyperparameters, the loss taken apart, one step at a time."""

import copy
import random

import pandas as pd
import streamlit as st

from core.base.errors import StudioError
from core.data.fashion import CLASSES
from core.learn import optimization as opt
from core.training.config import OPTIMIZERS
from ui import link
from ui.cache import split_tensors
from ui.model_picker import pick_model

BATCH_SIZES = [16, 32, 64, 128, 256, 512, 1024]
LEARNING_RATES = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0]
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
]


def hyperparameters() -> None:
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
        "gradient: too small and learning is slow, too large and the loss jumps about or blows up."
    )


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


# ---- one step at a time ----------------------------------------------------------------------------------


def step_controls() -> opt.Stepper | None:
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
    return held[1]


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
