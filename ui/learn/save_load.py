"""Streamlit pieces of the Save & Load page: the model and images picked, the state_dict saved and loaded,
eval() against train(), and the whole pickled model refused."""

import random
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import streamlit as st
import torch
from torch import nn

from core import runs
from core.base.errors import StudioError
from core.data.fashion import CLASSES
from core.data.transforms import display_array
from core.learn import moments
from core.learn import save_load as sl
from core.learn.build_model import UNTRAINED_SEED, untrained_model
from core.model.archive import size_text
from core.model.networks import MODELS
from ui import link
from ui.layout import cells, side_by_side
from ui.learn import moment
from ui.model_picker import USABLE, load_run

MODEL_KEY = "save_load_model"  # "untrained:mlp", "untrained:cnn" or "run:<id>"
START_KEY = "save_load_start"  # the first of the test images shown
UNTRAINED = tuple(f"untrained:{name}" for name in MODELS)
IMAGE_PX = 84  # 28 px x 3
ROWS = ("model", "model2, loaded", "fresh, never loaded")

SAVE_CODE = f"""torch.save(model.state_dict(), {sl.WEIGHTS_FILE!r})

for key, tensor in model.state_dict().items():
    print(key, tuple(tensor.shape))"""
LOAD_CODE = """model2 = {cls}()  # new random weights, replaced by the saved ones
model2.load_state_dict(torch.load({file!r}, weights_only=True))
model2.eval()
fresh = {cls}().eval()  # built the same way, never loaded

with torch.no_grad():
    logits, logits2, logits_fresh = model(X), model2(X), fresh(X)"""
MODES_CODE = f"""with torch.no_grad():
    model.eval()
    evaluated = model(X)
    torch.manual_seed({UNTRAINED_SEED})
    model.train()  # train mode left on at test time
    first, second = model(X), model(X)"""
TUTORIAL_WHOLE_CODE = f"""torch.save(model, {sl.WHOLE_FILE!r})
model = torch.load({sl.WHOLE_FILE!r}, weights_only=False)"""
WHOLE_CODE = f"""torch.save(model, {sl.WHOLE_FILE!r})  # in a temporary folder
torch.load({sl.WHOLE_FILE!r}, weights_only=True)  # refused: raises pickle.UnpicklingError"""
TUTORIAL_NOTE = (
    "be sure to call `model.eval()` method before inferencing to set the dropout and batch normalization "
    "layers to evaluation mode. Failing to do this will yield inconsistent inference results."
)


@dataclass(frozen=True)
class Shown:
    """The model the page saves and loads, and where its test images start."""

    choice: str  # MODEL_KEY's value
    name: str  # "mlp" or "cnn"
    options: dict | None  # a run's model options; None: the defaults
    model: nn.Module  # shared when it is a run's (cached): only asked, never changed
    model2: nn.Module  # the new model the weights are loaded into
    fresh: nn.Module  # built the same way, never loaded
    start: int
    label: str
    checkpoint: Path | None = None  # the run's model.pth; None: the seeded untrained weights


# ---- controls -----------------------------------------------------------------------------------------


def _finished() -> dict[str, runs.RunInfo]:
    listed = runs.list_runs()
    return {f"run:{run.id}": run for run in listed if run.status in USABLE and run.checkpoint is not None}


def _label(choice: str, finished: dict[str, runs.RunInfo]) -> str:
    if choice in UNTRAINED:
        return f"{MODELS[choice.partition(':')[2]].title} · untrained, torch.manual_seed({UNTRAINED_SEED})"
    run = finished[choice]
    model = run.config.model.upper() if run.config else "?"
    accuracy = f"{run.best_test_acc:.1%} on test" if run.best_test_acc is not None else "not evaluated"
    return f"Run {run.id} · {model} · {accuracy}"


def _links(choices: list[str], count: int) -> list[link.Param]:
    return [
        link.choice("model", MODEL_KEY, choices, fallback="the untrained MLP"),
        link.whole("from", START_KEY, 0, count - sl.SHOWN_IMAGES, fallback="test image 0"),
    ]


def _random_start(count: int) -> None:
    st.session_state[START_KEY] = random.randrange(count - sl.SHOWN_IMAGES + 1)


def controls(count: int) -> Shown | None:
    """The model (untrained MLP or CNN, or a finished run) and the first of the test images, in a row;
    None after an error message (a run whose weights cannot be used)."""
    finished = _finished()
    choices = [*UNTRAINED, *finished]
    link.notify(link.adopt(_links(choices, count)))
    if st.session_state.get(MODEL_KEY) not in choices:
        st.session_state.pop(MODEL_KEY, None)  # the run was deleted: back to the default
    row = st.container(horizontal=True, vertical_alignment="bottom", gap="medium")
    choice = row.selectbox(
        "Model", choices, format_func=lambda c: _label(c, finished), key=MODEL_KEY, width=420,
        help="An untrained model, or the weights of a finished run from the Train page",
    )  # fmt: skip
    start = row.number_input(
        f"First of {sl.SHOWN_IMAGES} test images", 0, count - sl.SHOWN_IMAGES, key=START_KEY, width=200,
        help=f"Test images {sl.SHOWN_IMAGES} in a row, from this index: images no model trained on.",
    )  # fmt: skip
    row.button("", icon=":material/casino:", on_click=_random_start, args=(count,), help="Random test images")
    if not finished:
        st.caption("No finished run yet: train one on the Train page to save and load its weights here.")
    if choice in UNTRAINED:
        name = choice.partition(":")[2]
        model, model2, fresh = sl.seeded_models(name)
        return Shown(choice, name, None, model, model2, fresh, int(start), _label(choice, finished))
    try:
        loaded = load_run(finished[choice])
    except StudioError as exc:
        st.error(f"{_label(choice, finished)}: its weights cannot be used: {exc}")
        return None
    _, model2, fresh = sl.seeded_models(loaded.model_name, loaded.model_options)
    return Shown(
        choice, loaded.model_name, loaded.model_options, loaded.model, model2, fresh, int(start),
        _label(choice, finished), finished[choice].checkpoint,
    )  # fmt: skip


def keep_in_link(shown: Shown, count: int, where) -> None:
    """`?model=&from=` in the URL, so a copied link reopens this model and these images."""
    values = {MODEL_KEY: shown.choice, START_KEY: shown.start}
    link.keep(_links([shown.choice], count), values, where)


# ---- 1. save -------------------------------------------------------------------------------------------


def saved(trip: sl.RoundTrip, shown: Shown) -> None:
    """The file's size, its state_dict's keys and shapes, and a download of it."""
    st.code(SAVE_CODE, language="python")
    tensors = sum(entry.numel for entry in trip.entries)
    st.markdown(
        f"`{sl.WEIGHTS_FILE}` · **{size_text(trip.size)}** ({trip.size:,} bytes) · "
        f"{len(trip.entries)} tensors · {tensors:,} numbers (a float32 takes 4 bytes)"
    )
    table = pd.DataFrame(
        {
            "key": [e.key for e in trip.entries],
            "shape": [str(e.shape) for e in trip.entries],
            "dtype": [e.dtype for e in trip.entries],
            "numbers": [f"{e.numel:,}" for e in trip.entries],
        }
    )
    st.dataframe(table, hide_index=True, width=620)
    st.caption(
        "Only tensors, each under its layer's name: no code and no class. BatchNorm's running statistics "
        "(`running_mean`, `running_var`, `num_batches_tracked`) are buffers, not parameters, and are saved "
        "too: eval mode needs them."
        if shown.name == "cnn"
        else "Only tensors, each under its layer's name: no code and no class. These are the tutorial's "
        "keys, so this file loads into the tutorial's own `NeuralNetwork`."
    )
    st.download_button(
        f"Download {sl.WEIGHTS_FILE}", trip.data, file_name=sl.WEIGHTS_FILE, mime="application/octet-stream",
        icon=":material/download:", key="save_load_download",
        help="The state_dict of the model above; the Predict page loads it",
    )  # fmt: skip


# ---- 2. load -------------------------------------------------------------------------------------------


def _names(logits: torch.Tensor) -> list[str]:
    return [CLASSES[int(i)] for i in logits.argmax(1)]


def _agree(a: torch.Tensor, b: torch.Tensor) -> int:
    """On how many images two models' logits (N, 10) give the same class."""
    return int((a.argmax(1) == b.argmax(1)).sum())


def _class(name: str) -> str:
    return MODELS[name].factory.__name__


def loaded(trip: sl.RoundTrip, shown: Shown, x: torch.Tensor, labels: list[int]) -> None:
    """The test images, then each model's answers side by side, and how far the logits are apart."""
    start = shown.start
    st.code(LOAD_CODE.format(cls=_class(shown.name), file=sl.WEIGHTS_FILE), language="python")
    st.caption(f"`load_state_dict` returned `{trip.load_result}`.")
    pictures = cells(len(labels), IMAGE_PX + 24)
    for i, (cell, image, label) in enumerate(zip(pictures, x, labels, strict=True)):
        picture = display_array(image, IMAGE_PX)[0]
        cell.image(picture, caption=f"#{start + i} · {CLASSES[label]}", width=IMAGE_PX)
    columns = [f"#{start + i}" for i in range(len(labels))]
    rows = {"true class": [CLASSES[label] for label in labels]}
    rows.update(zip(ROWS, (_names(trip.original), _names(trip.loaded), _names(trip.fresh)), strict=True))
    st.dataframe(pd.DataFrame.from_dict(rows, orient="index", columns=columns), width="stretch")
    same = _agree(trip.original, trip.loaded)
    agree = _agree(trip.original, trip.fresh)
    n = len(labels)
    st.markdown(
        f":green[:material/check_circle:] **model2, loaded**, answers as **model** on **{same} of {n}** "
        f"images; its logits differ by at most **{trip.loaded_gap:.6f}** (`(logits - logits2).abs().max()`): "
        "the loaded weights are the saved ones, number for number."
    )
    st.markdown(
        f":orange[:material/shuffle:] **fresh**, built the same way but never loaded, agrees on "
        f"**{agree} of {n}**, and its logits differ by up to **{trip.fresh_gap:.6f}**: without "
        "`load_state_dict` a new model is just new random weights."
    )


# ---- 3. eval() or train() ------------------------------------------------------------------------------


def modes_asked(shown: Shown, x: torch.Tensor) -> bool:
    """The tutorial's note and the code of the comparison, then its question; True once answered."""
    st.markdown(f"The tutorial's note: *{TUTORIAL_NOTE}*")
    st.code(MODES_CODE, language="python")
    answer = moments.train_calls_answer(sl.compare_modes(shown.model, x).call_gap)
    return moment.ask(
        moments.TRAIN_CALLS, answer, page="save_load", signature=f"{shown.choice}|{shown.start}"
    )


def modes(shown: Shown, x: torch.Tensor, start: int) -> None:
    """What to expect, then the CNN and the MLP: eval mode against two train-mode calls on the same images."""
    st.markdown(
        "**What to expect** with train mode left on at test time: the CNN's **BatchNorm** layers normalise "
        "with the mean and variance of *this batch* instead of those kept from training, so an image's "
        "answer depends on the images beside it; its **Dropout** zeroes a random share of the classifier's "
        "units (a quarter by default) on every call, so two calls on the same images disagree. The "
        "tutorial's MLP has neither layer: `train()` and `eval()` give it the same outputs."
    )
    for name in ("cnn", "mlp"):
        picked = shown.name == name
        model = shown.model if picked else untrained_model(name)
        which = "the model picked above" if picked else f"untrained, torch.manual_seed({UNTRAINED_SEED})"
        _mode_result(name, which, sl.compare_modes(model, x), start)


def _mode_result(name: str, which: str, result: sl.Modes, start: int) -> None:
    st.markdown(f"**{MODELS[name].title}** · {which}")
    columns = [f"#{start + i}" for i in range(result.evaluated.shape[0])]
    rows = {
        "model.eval()": _names(result.evaluated),
        "model.train(), 1st call": _names(result.first),
        "model.train(), 2nd call": _names(result.second),
    }
    st.dataframe(pd.DataFrame.from_dict(rows, orient="index", columns=columns), width="stretch")
    gaps = (
        f"largest |train − eval| **{result.train_gap:.6f}** · "
        f"largest |1st − 2nd train call| **{result.call_gap:.6f}**"
    )
    if not result.changes_with_mode:
        st.markdown(
            f":green[:material/check_circle:] {gaps}: no BatchNorm and no Dropout, so `train()` changes "
            "nothing here. `model.eval()` is still the habit to keep: the next model may have them."
        )
        return
    layers = []
    if result.batch_norms:
        layers.append(f"{result.batch_norms} BatchNorm layers (this batch's statistics)")
    if result.dropouts:
        layers.append(f"Dropout p={', '.join(f'{p:g}' for p in result.dropouts)} (new coin flips each call)")
    changed = len(columns) - _agree(result.evaluated, result.first)
    st.markdown(
        f":red[:material/warning:] {gaps}: {changed} of {len(columns)} answers change in train mode, from "
        f"{' and '.join(layers)}."
    )
    if result.stats_moved > 0:
        st.caption(
            "The two train-mode calls also moved BatchNorm's running means, by up to "
            f"{result.stats_moved:.4f} (even under `torch.no_grad()`): test images leaked into the "
            "statistics. The page ran them on a copy of the model."
        )


# ---- 4. the whole model --------------------------------------------------------------------------------


def whole(result: sl.WholeModel, name: str) -> None:
    st.markdown(
        "The tutorial also saves the whole model, class and all, and loads it back with `weights_only=False`:"
    )
    st.code(TUTORIAL_WHOLE_CODE, language="python")
    answer = moments.whole_load_answer(result.error)
    if not moment.ask(moments.WHOLE_LOAD, answer, page="save_load", signature=name):
        return
    st.markdown(
        "`torch.save(model)` pickles the object: the file names its class (`module.ClassName`) and holds no "
        "code of it, so loading needs that class defined where you load, and Python's pickle runs whatever "
        "instructions the file gives. A file from someone else could run any code on your machine. "
        "`weights_only=True` (the default since PyTorch 2.6) allows only tensors, dicts and a few safe "
        "types, so it refuses such a file. **This app never loads with `weights_only=False`**; here is "
        "what it did:"
    )
    st.code(WHOLE_CODE, language="python")
    if result.error is None:
        st.warning("PyTorch loaded the whole model with weights_only=True: this version allows its class.")
        return
    st.markdown(
        f"`{sl.WHOLE_FILE}` · **{size_text(result.size)}** ({result.size:,} bytes) · refused: "
        f"`{result.refused}` is not an allowed global. PyTorch's own words:"
    )
    st.code(result.error, language=None, wrap_lines=True)
    st.caption(
        f"In a learner's script the class is `__main__.{_class(name)}`: the script that defined it. "
        "Allow-listing it (`torch.serialization.add_safe_globals`) or `weights_only=False` is for files you "
        "saved yourself."
    )
    whole_col, weights_col = side_by_side("save_load_pickles", 340, 340)
    with whole_col:
        st.markdown(f"**What `{sl.WHOLE_FILE}` asks Python to import** (read with `pickletools`, not run)")
        st.code("\n".join(result.names), language=None)
    with weights_col:
        st.markdown(f"**What `{sl.WEIGHTS_FILE}` asks for**: all allowed by `weights_only=True`")
        st.code("\n".join(result.weights_names), language=None)
    if result.app_message:
        st.markdown(
            ":material/shield: Uploaded to the Predict page, such a file is refused unread, with this "
            f"answer: {result.app_message}"
        )
