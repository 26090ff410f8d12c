"""The Train form's fields: their keys, how a typed number is read, and the widgets that draw them (the
main knobs in view, the rest under "Advanced", the augmentation section)."""

from dataclasses import fields

import streamlit as st

from core.base.device import available_devices, resolve_device
from core.data.augment import Augment
from core.model.networks import MODELS
from core.training import ranks
from core.training.config import LIMITS, OPTIMIZERS, OPTIONAL, SCHEDULES, TrainConfig
from ui.train.view import MODEL_NAMES, OPTIMIZER_NAMES

LR_VALUES = (1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2e-2, 5e-2, 0.1, 0.2, 0.5, 1.0)
BATCH_SIZES = (8, 16, 32, 64, 128, 256, 512, 1024, 2048)
WEIGHT_DECAYS = (0.0, 1e-5, 1e-4, 5e-4, 1e-3, 1e-2, 0.1)
# Typed as text and checked on Start: a number box rounds "1.5" to 1, turns "1e30" into 1 and refills a
# cleared optional field with its minimum, all without a word.
NUMBER_FIELDS = {
    "epochs": "Epochs",
    "limit_batches": "Batches per epoch cap",
    "hidden": "Hidden units",
    "dropout": "Dropout",
    "seed": "Seed",
    "log_every": "Log the loss every N batches",
}
FORM_FIELDS = tuple(f.name for f in fields(TrainConfig) if f.name != "augment")  # augmentation aside
AUGMENT_FIELDS = tuple(f.name for f in fields(Augment))
# The knobs that matter, always in view (TensorFlow Playground shows about five); the rest under Advanced.
MAIN_FIELDS = ("model", "epochs", "batch_size", "lr", "optimizer")
ADVANCED_FIELDS = tuple(name for name in FORM_FIELDS if name not in MAIN_FIELDS)
# Whether the two sections are drawn open. They open and close in the browser alone: a tracked (keyed)
# expander clicked while the page's first run was still drawing reset the form's other fields to their
# widgets' defaults (batch 8, lr 1e-05; Streamlit 1.67). The page opens one by turning its flag on.
ADVANCED = "train_advanced_open"  # a link, a preset or Start that sets a field under Advanced turns it on
AUGMENTATION = "train_augment_open"  # the Transforms page's hand-off turns it on


def field_key(name: str) -> str:
    return f"train_{name}"


def augment_key(name: str) -> str:
    return f"train_aug_{name}"


def shown(value) -> str:
    """A config value as its text field shows it; None (no cap, the model's default) is an empty field."""
    if value is None:
        return ""
    return f"{value:g}" if isinstance(value, float) else str(value)


def widget_value(name: str, value):
    """A TrainConfig value as field `name`'s widget holds it (text for the number fields)."""
    return shown(value) if name in NUMBER_FIELDS else value


def parse_number(name: str, text: str) -> int | float | None:
    """The value typed into field `name`, checked against core.training.config.LIMITS; ValueError says what
    is wrong."""
    label, limit, text = NUMBER_FIELDS[name], LIMITS[name], str(text).strip()
    if not text:
        if name in OPTIONAL:
            return None
        raise ValueError(f"{label} is empty: type a number")
    try:
        value = int(text) if limit.whole else float(text)
    except ValueError:
        value = _number(label, text, whole=limit.whole)
    if not limit.allows(value):
        kind = "a whole number " if limit.whole else ""
        raise ValueError(f"{label} must be {kind}{limit.describe()}, not {_cut(text)}")
    return value


def _cut(text: str) -> str:
    """What was typed, for a message: 400 digits show as their first few and their count."""
    return text if len(text) <= 40 else f"{text[:12]}… ({len(text)} characters)"


def _number(label: str, text: str, *, whole: bool) -> int | float:
    """`text` as a number ("1e3" is a whole number too); ValueError for "1.5" where one is needed."""
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{label}: {_cut(text)!r} is not a number") from None
    if whole and not value.is_integer():
        raise ValueError(f"{label} must be a whole number, not {_cut(text)}")
    return int(value) if whole else value


def with_value(options: tuple, value) -> list:
    """`options` plus the current value, so a value set elsewhere (a preset, a saved form) is selectable."""
    return sorted({*options, value}) if value is not None else list(options)


# ---- the widgets -------------------------------------------------------------------------------------


def _number_field(where, name: str, label: str | None = None, **kwargs) -> None:
    """A text field for a number of TrainConfig; what is typed stays as typed until Start checks it."""
    where.text_input(label or NUMBER_FIELDS[name], key=field_key(name), autocomplete="off", **kwargs)


def main_fields() -> None:
    """Model, epochs, batch size, learning rate and optimizer: what the tutorial itself lets you change."""
    st.selectbox("Model", list(MODELS), key=field_key("model"), format_func=lambda m: MODEL_NAMES.get(m, m))
    left, right = st.columns(2)
    _number_field(left, "epochs", help=f"Passes over the training set ({LIMITS['epochs'].describe()}).")
    right.select_slider(
        "Batch size",
        with_value(BATCH_SIZES, st.session_state[field_key("batch_size")]),
        key=field_key("batch_size"),
    )
    st.select_slider(
        "Learning rate (log scale)",
        with_value(LR_VALUES, st.session_state[field_key("lr")]),
        key=field_key("lr"),
        format_func=lambda v: f"{v:g}",
    )
    st.selectbox("Optimizer", OPTIMIZERS, key=field_key("optimizer"), format_func=OPTIMIZER_NAMES.get)


def advanced_fields() -> None:
    """Everything else TrainConfig holds, in one expander that a link, a preset or Start may open."""
    with st.expander("Advanced", expanded=st.session_state.get(ADVANCED, False)):
        _number_field(
            st,
            "limit_batches",
            "Batches per epoch cap, for quick tries",
            placeholder="all batches",
            help="Train on only this many batches each epoch; leave empty to use the whole training set.",
        )
        _model_size_fields()
        _optimizer_details()
        _number_field(st, "seed", help=f"Same seed, same run ({LIMITS['seed'].describe()}).")
        _device_fields()
        _number_field(
            st, "log_every", help="The tutorial prints every 100 batches; fewer gives a denser loss chart."
        )


def _model_size_fields() -> None:
    _number_field(
        st,
        "hidden",
        placeholder="model default",
        help="Width of the hidden layers (512 in the tutorial's MLP, 128 in the CNN's head); "
        f"{LIMITS['hidden'].describe()}.",
    )
    _number_field(
        st,
        "dropout",
        placeholder="model default",
        help="Fraction of activations zeroed while training (0 in the tutorial), e.g. 0.1.",
    )


def _optimizer_details() -> None:
    st.selectbox(
        "Learning-rate schedule",
        SCHEDULES,
        key=field_key("lr_schedule"),
        help="constant: the same learning rate throughout; cosine: decays it smoothly to 0 by the last step.",
    )
    st.slider(
        "Momentum",
        0.0,
        0.99,
        step=0.01,
        key=field_key("momentum"),
        help="Used by SGD only (0 in the tutorial).",
    )
    st.select_slider(
        "Weight decay",
        with_value(WEIGHT_DECAYS, st.session_state[field_key("weight_decay")]),
        key=field_key("weight_decay"),
        format_func=lambda v: f"{v:g}",
    )


def _device_fields() -> None:
    """Device, and how many processes train the run on it (DistributedDataParallel, core.runs.launcher)."""
    left, right = st.columns(2)
    devices = available_devices()
    if st.session_state[field_key("device")] not in devices:
        st.session_state[field_key("device")] = "auto"
    left.selectbox("Device", devices, key=field_key("device"))
    device = st.session_state[field_key("device")]
    most = ranks.most_processes(device)
    kind = resolve_device(device).type
    here = {"cpu": f"up to {most} here, one per CPU core", "cuda": f"up to {most} here, one per GPU"}
    right.selectbox(
        "Processes",
        with_value(range(1, most + 1), st.session_state[field_key("processes")]),
        key=field_key("processes"),
        help="Processes that train the run together with DistributedDataParallel: each takes its share "
        f"of every batch and their gradients are averaged ({here.get(kind, f'one on {kind}')}).",
    )
    if kind == "cpu" and most > 1:
        st.caption(
            "On one CPU, several processes show DistributedDataParallel at work (each takes its share "
            "of every batch) rather than a speed-up."
        )


def augment_fields(note: str | None) -> None:
    """The augmentation sliders; `note` says where the values came from (the Transforms page)."""
    with st.expander(
        "Augmentation (training images only)", expanded=st.session_state.get(AUGMENTATION, False)
    ):
        if note:
            st.caption(f":material/input: {note}")
        else:
            st.caption("Prefilled from the Transforms page when you set it there; all zero means none.")
        st.slider("Horizontal flip probability", 0.0, 1.0, step=0.05, key=augment_key("hflip"))
        st.slider("Rotation (± degrees)", 0.0, 180.0, step=1.0, key=augment_key("rotate"))
        st.slider("Shift (fraction of the side)", 0.0, 1.0, step=0.01, key=augment_key("translate"))
        st.slider("Zoom (± fraction)", 0.0, 1.0, step=0.01, key=augment_key("scale"))
        st.slider("Random erasing probability", 0.0, 1.0, step=0.05, key=augment_key("erase"))
