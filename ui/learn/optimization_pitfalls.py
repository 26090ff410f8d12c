"""Streamlit pieces of the Optimization page's experiments: zero_grad() skipped, a learning rate too large,
the test loop left in train mode. Each says what to expect, then shows it, computed live."""

import pandas as pd
import streamlit as st
from torch import nn

from core.base.errors import StudioError
from core.learn import moments
from core.learn import optimization_pitfalls as pit
from core.learn.build_model import untrained_model
from ui.cache import split_tensors
from ui.learn import moment
from ui.learn.optimization import BIG_RATES, LEARNING_RATES, StepSetup
from ui.model_picker import pick_model

BIG_RATE_KEY = "optimization_big_lr"  # in ui.learn.optimization.LINK
MODE_MODEL_KEY = "optimization_mode_model"
RIGHT, SKIPPED = "#1F6FEB", "#D9480F"
NAMES = {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW"}  # torch.optim's class names


# ---- zero_grad() skipped ---------------------------------------------------------------------------------


def skipped_zero_grad(setup: StepSetup) -> None:
    name, lr = NAMES.get(setup.optimizer, setup.optimizer), setup.lr
    st.code(
        "# done right                          # zero_grad() skipped\n"
        "optimizer.zero_grad()                 loss_fn(model(X), y).backward()  # an earlier pass\n"
        "loss_fn(model(X), y).backward()       loss_fn(model(X), y).backward()  # adds to .grad\n"
        "optimizer.step()                      optimizer.step()",
        language="python",
    )
    try:
        found = pit.skip_zero_grad(setup.model, setup.optimizer, lr, setup.x, setup.y)
    except StudioError as exc:
        st.error(str(exc))
        return
    signature = f"{setup.optimizer}|{lr}"
    if not moment.ask(moments.GRAD_RATIO, found.grad_ratio, page="optimization", signature=signature):
        return
    st.markdown(
        "**What to expect.** `loss.backward()` *adds* to `.grad`; only `optimizer.zero_grad()` empties it. "
        "Skip it, and the next `backward()` sums its gradients onto the last ones: after the same batch "
        "twice from the same weights, every `‖.grad‖` is exactly **twice** as large. "
        + (
            f"SGD moves each weight by lr × .grad, so `step()` then goes twice as far as lr = {lr:g} asks, "
            f"as if lr were {2 * lr:g}, and in a loop the sum keeps growing until the steps overshoot."
            if setup.optimizer == "sgd"
            else f"{name} divides by the gradients' running size, so one doubled gradient moves it about as "
            "far as one; the harm shows over the loop, where the summed gradients pull the wrong way."
        )
    )
    st.markdown(
        f"**What happened**, {name} at lr {lr:g} on the batch of 64 above, from loss "
        f"**{found.loss_before:.4f}**: done right, `step()` takes it to **{found.right.loss_after:.4f}**; "
        f"with `zero_grad()` skipped, to **{found.skipped.loss_after:.4f}**. The gradients' norm went from "
        f"{found.right.grad_norm:.4f} to {found.skipped.grad_norm:.4f} (×{found.grad_ratio:.3f}), and the "
        f"weights moved {found.right.moved:.4f} against {found.skipped.moved:.4f} "
        f"(×{found.skipped.moved / found.right.moved:.3f})."
    )
    st.dataframe(_zero_grad_table(found), hide_index=True)
    _loop_chart(found)


def _zero_grad_table(found: pit.ZeroGradExperiment) -> pd.DataFrame:
    right, skipped = found.right.grad_norms, found.skipped.grad_norms
    rows = [(f"‖{name}.grad‖", right[name], skipped[name]) for name in right]
    rows += [
        ("‖all gradients‖", found.right.grad_norm, found.skipped.grad_norm),
        ("‖change‖ made by step()", found.right.moved, found.skipped.moved),
        ("loss after step()", found.right.loss_after, found.skipped.loss_after),
    ]
    table = pd.DataFrame(rows, columns=["", "done right", "zero_grad() skipped"])
    table["skipped / right"] = table["zero_grad() skipped"] / table["done right"]
    table.loc[table[""] == "loss after step()", "skipped / right"] = None  # a ratio of losses says nothing
    return table.round(4)


def _loop_chart(found: pit.ZeroGradExperiment) -> None:
    steps = list(range(1, pit.LOOP_STEPS + 1))
    curves = [("the loop as written", found.loop_right, RIGHT, "solid"),
              ("optimizer.zero_grad() left out", found.loop_skipped, SKIPPED, "dash")]  # fmt: skip
    traces = [{"type": "scatter", "x": steps, "y": ys, "name": name, "mode": "lines+markers",
               "line": {"color": color, "dash": dash}} for name, ys, color, dash in curves]  # fmt: skip
    st.plotly_chart(_figure(traces, f"{pit.LOOP_STEPS} steps of the loop on the same batch"), key="zero_grad")
    rises = [pit.rises(found.loop_right), pit.rises(found.loop_skipped)]
    st.markdown(
        "**Over the loop**, the loss before each of "
        f"{pit.LOOP_STEPS} steps. Without zero_grad(), `.grad` holds the sum of every gradient so far: a "
        "momentum that never forgets. It may run ahead at first, but it cannot slow down where the slope "
        f"turns: the loss rose after {rises[1]} of {pit.LOOP_STEPS} steps, against {rises[0]} for the loop "
        "as written, and the steps are no longer what the learning rate says. Set the learning rate above "
        "to 1: the loop as written jumps about, the sum blows up (a blown-up loss, inf, nan or above 1,000, "
        "ends its line)."
    )


def _figure(traces: list[dict], title: str, *, log: bool = False) -> dict:
    steps = len(traces[0]["x"])
    return {
        "data": traces,
        "layout": {
            "title": {"text": title}, "height": 320, "margin": {"l": 10, "r": 10, "t": 40, "b": 10},
            "xaxis": {"title": {"text": "step"}, "automargin": True, "dtick": 1 if steps <= 10 else 2},
            "yaxis": {"title": {"text": "loss on the batch"}, "type": "log" if log else "linear",
                      "automargin": True},
            "legend": {"orientation": "h", "y": -0.25},
        },
    }  # fmt: skip


# ---- a learning rate too large -----------------------------------------------------------------------


def lr_too_large(setup: StepSetup, page_lr: float) -> None:
    big = st.select_slider("A learning rate too large", BIG_RATES, value=3.0, key=BIG_RATE_KEY,
                           format_func=lambda v: f"{v:g}", width=300)  # fmt: skip
    rates = sorted({page_lr, big})
    try:
        curves = pit.lr_curves(setup.model, rates, setup.x, setup.y)
    except StudioError as exc:
        st.error(str(exc))
        return
    answer = moments.big_rate_answer(next(c for c in curves if c.lr == big).climbed)
    if not moment.ask(moments.BIG_RATE, answer, page="optimization", signature=f"{big}|{page_lr}"):
        return
    st.markdown(
        f"**What to expect.** SGD's step is lr × the gradient. At this page's learning rate, {page_lr:g}, "
        f"each step goes a little downhill and the loss falls slowly. At {big:g} the step jumps right over "
        "the valley to a higher point on the other side, where the gradient is steeper, so the next jump is "
        f"longer still: the loss climbs, and may blow up. {pit.LR_STEPS} SGD steps on the batch of 64 above, "
        "from the same weights:"
    )
    steps = list(range(1, pit.LR_STEPS + 1))
    traces = [{"type": "scatter", "x": steps, "y": c.losses, "name": f"lr = {c.lr:g}",
               "mode": "lines+markers", "line": _lr_line(c.lr == big)} for c in curves]  # fmt: skip
    st.plotly_chart(_figure(traces, "SGD on one batch (log scale)", log=True), key="lr_too_large")
    st.markdown(_lr_verdict(curves))
    st.dataframe(_lr_table(curves), hide_index=True)
    st.caption(
        "Loss before each step; None: the loss had blown up (inf, nan or above 1,000) and training "
        f"stopped. The step-by-step loop offers {LEARNING_RATES[0]:g} to {LEARNING_RATES[-1]:g}."
    )


def _lr_line(too_large: bool) -> dict:
    return {"color": SKIPPED, "dash": "dash"} if too_large else {"color": RIGHT, "dash": "solid"}


def _lr_table(curves: list[pit.LrCurve]) -> pd.DataFrame:
    table = pd.DataFrame({f"lr = {c.lr:g}": c.losses for c in curves}, dtype=float)
    table.insert(0, "step", range(1, len(table) + 1))
    return table.round(4)


def _lr_verdict(curves: list[pit.LrCurve]) -> str:
    said = []
    for c in curves:
        last = c.losses[-1]
        end = "blew up" if last is None else f"ended at {last:.4f}"
        said.append(f"at lr {c.lr:g} the loss {'climbed' if c.climbed else 'fell'}: {c.losses[0]:.4f}, {end}")
    return "; ".join(said).capitalize() + "."


# ---- train mode at test time -------------------------------------------------------------------------------

TEST_LOOP_MARKED = """def test_loop(dataloader, model, loss_fn):
    model.eval()  # <- left out: the model stays in train mode
    size = len(dataloader.dataset)
    num_batches = len(dataloader)
    test_loss, correct = 0, 0
    with torch.no_grad():  # no graph recorded: the numbers are the same without it
        for X, y in dataloader:
            pred = model(X)
            test_loss += loss_fn(pred, y).item()
            correct += (pred.argmax(1) == y).type(torch.float).sum().item()
    test_loss /= num_batches
    correct /= size
    print(f"Test Error: \\n Accuracy: {(100*correct):>0.1f}%, Avg loss: {test_loss:>8f} \\n")"""


@st.cache_data(show_spinner="Testing in both modes…", max_entries=16)
def _compare(label: str, _model: nn.Module) -> pit.ModeComparison:
    """Keyed by the picker's label: an untrained model or a finished run's weights, which never change."""
    images, labels = split_tensors("test")
    return pit.compare_modes(_model, images, labels)


def train_mode_at_test_time() -> None:
    st.code(TEST_LOOP_MARKED, language="python")
    st.markdown(
        "**What to expect.** `model.train()` and `model.eval()` switch the layers that act differently while "
        "training: `Dropout` zeroes activations at random, `BatchNorm` normalises with each batch's own "
        "statistics and updates its running ones. A model without such layers gives the same numbers in both "
        "modes: the tutorial's MLP, whose comment says eval() is \"unnecessary in this situation but added "
        'for best practices". The CNN has both kinds: left in train mode, its test numbers change, and the '
        f"test itself changes the model. The first {pit.TEST_IMAGES} test images, in batches of "
        f"{pit.TEST_BATCH}:"
    )
    st.session_state.setdefault(MODE_MODEL_KEY, "untrained:cnn")
    picked = pick_model(MODE_MODEL_KEY)
    if picked is None:
        return
    model, label = picked
    mlp = _compare("mlp, untrained (seed 0)", untrained_model("mlp"))
    found = _compare(label, model)
    st.dataframe(_modes_table(found), hide_index=True)
    st.markdown(_modes_verdict(found, mlp))


def _modes_table(found: pit.ModeComparison) -> pd.DataFrame:
    rows = [
        ("test_loop as written: eval() and no_grad()", found.evaluated),
        ("eval() left out: train mode", found.in_train_mode),
        ("test_loop as written, after the train-mode pass", found.evaluated_after),
    ]
    return pd.DataFrame(
        {
            "test loop": [name for name, _ in rows],
            "Avg loss": [round(score.loss, 6) for _, score in rows],
            "Accuracy (%)": [round(100 * score.accuracy, 1) for _, score in rows],
        }
    )


def _modes_verdict(found: pit.ModeComparison, mlp: pit.ModeComparison) -> str:
    same = (
        f"The tutorial's MLP, untrained, gives the same in both modes: avg loss {mlp.evaluated.loss:.6f} "
        f"with eval(), {mlp.in_train_mode.loss:.6f} without; it has no Dropout or BatchNorm."
    )
    if not found.mode_layers:
        head = "This model has no Dropout or BatchNorm layer: train mode changes nothing here."
    else:
        layers = ", ".join(f"`{layer}`" for layer in found.mode_layers)
        head = (
            f"This model's {layers} act differently in train mode: avg loss {found.evaluated.loss:.6f} → "
            f"{found.in_train_mode.loss:.6f}, accuracy {found.evaluated.accuracy:.1%} → "
            f"{found.in_train_mode.accuracy:.1%}."
        )
        if found.changed_by_testing:
            head += (
                " Worse, the pass in train mode updated BatchNorm's running statistics: the proper test "
                f"afterwards gives {found.evaluated_after.loss:.6f} and "
                f"{found.evaluated_after.accuracy:.1%}, from a model the test itself changed."
            )
    grads = (
        f"`torch.no_grad()` changes no number: it stops the recording. Inside it `pred.grad_fn` is "
        f"`{found.grad_fn_with_no_grad}`; without it, `{found.grad_fn_without}`: a graph kept for a "
        "backward() that never comes, costing memory and time."
    )
    return f"{head}\n\n{same}\n\n{grads}"
