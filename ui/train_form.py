"""The Train page's new-run form: presets, every TrainConfig field, Start."""

from dataclasses import asdict, fields

import streamlit as st

from core import runs
from core.augment import Augment
from core.data import DatasetStatus
from core.device import available_devices
from core.errors import StudioError
from core.models import MODELS
from core.train import LIMITS, OPTIMIZERS, PRESETS, SCHEDULES, TrainConfig
from ui.train import MODEL_NAMES, OPTIMIZER_NAMES

LR_VALUES = (1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2e-2, 5e-2, 0.1, 0.2, 0.5, 1.0)
BATCH_SIZES = (8, 16, 32, 64, 128, 256, 512, 1024, 2048)
WEIGHT_DECAYS = (0.0, 1e-5, 1e-4, 5e-4, 1e-3, 1e-2, 0.1)
PRESET_HELP = {
    "tutorial": "the quickstart as is: SGD, learning rate 0.001, batch 64, 5 epochs (about 65% accuracy)",
    "recommended": "AdamW with a cosine schedule: about 89% (MLP) or 92% (CNN) in 5 epochs on a CPU",
}
_FORM_FIELDS = tuple(f.name for f in fields(TrainConfig) if f.name != "augment")  # every other field
_AUGMENT_FIELDS = tuple(f.name for f in fields(Augment))
_SAVED = "train_form_saved"  # plain (non-widget) copy of the form, so it survives page switches


def _key(name: str) -> str:
    return f"train_{name}"


def _aug_key(name: str) -> str:
    return f"train_aug_{name}"


def _init_form_state() -> None:
    """Give every form widget a value: what this user last had, else the tutorial preset."""
    saved = st.session_state.get(_SAVED, {})
    tutorial = PRESETS["tutorial"]
    for name in _FORM_FIELDS:
        st.session_state.setdefault(_key(name), saved.get(name, getattr(tutorial, name)))
    for name in _AUGMENT_FIELDS:
        st.session_state.setdefault(_aug_key(name), saved.get(f"aug_{name}", 0.0))
    _take_transforms_augment()


def _take_transforms_augment() -> None:
    """Prefill augmentation from the Transforms page when it hands over a new setting."""
    incoming = st.session_state.get("train_augment")
    if not isinstance(incoming, dict) or incoming == st.session_state.get("train_augment_seen"):
        return
    st.session_state["train_augment_seen"] = dict(incoming)
    try:
        augment = Augment(**incoming)
    except (TypeError, ValueError) as exc:
        st.warning(f"The augmentation from the Transforms page was not used: {exc}")
        return
    for name, value in asdict(augment).items():
        st.session_state[_aug_key(name)] = float(value)


def _apply_preset() -> None:
    """on_change of the preset: fill the form with it, keeping the chosen model, device and augmentation."""
    chosen = PRESETS[st.session_state[_key("preset")]]
    for name in _FORM_FIELDS:
        if name not in ("model", "device"):
            st.session_state[_key(name)] = getattr(chosen, name)


def most(field: str) -> int:
    """The largest whole value TrainConfig accepts for `field` (core.train.LIMITS, the CLI's too)."""
    return int(LIMITS[field].high)


def with_value(options: tuple, value) -> list:
    """`options` plus the current value, so a value set elsewhere (a preset, a saved form) is selectable."""
    return sorted({*options, value}) if value is not None else list(options)


def render_form(status: DatasetStatus) -> None:
    """The new-run form; Start launches a worker through core.runs and shows any refusal as an error."""
    _init_form_state()
    st.subheader("New run")
    st.session_state.setdefault(_key("preset"), st.session_state.get(_SAVED, {}).get("preset", "tutorial"))
    st.segmented_control(
        "Preset",
        list(PRESETS),
        key=_key("preset"),
        required=True,
        on_change=_apply_preset,
        help="Fills the form; change any field afterwards.",
    )
    st.caption(PRESET_HELP.get(st.session_state[_key("preset")], ""))
    if not status.ready:
        st.error(status.message)
    with st.form("train_form", border=True):
        _model_fields()
        _optimizer_fields()
        _augment_fields()
        submitted = st.form_submit_button(
            "Start training", type="primary", key=_key("start"), disabled=not status.ready, width="stretch"
        )
    st.session_state[_SAVED] = {
        "preset": st.session_state[_key("preset")],
        **{name: st.session_state[_key(name)] for name in _FORM_FIELDS},
        **{f"aug_{name}": st.session_state[_aug_key(name)] for name in _AUGMENT_FIELDS},
    }
    if submitted:
        _start()


def _model_fields() -> None:
    st.selectbox("Model", list(MODELS), key=_key("model"), format_func=lambda m: MODEL_NAMES.get(m, m))
    left, right = st.columns(2)
    left.number_input("Epochs", min_value=1, max_value=most("epochs"), step=1, key=_key("epochs"))
    right.select_slider(
        "Batch size", with_value(BATCH_SIZES, st.session_state[_key("batch_size")]), key=_key("batch_size")
    )
    st.number_input(
        "Batches per epoch cap, for quick tries",
        min_value=1,
        step=10,
        key=_key("limit_batches"),
        placeholder="all batches",
        help="Train on only this many batches each epoch; leave empty to use the whole training set.",
    )
    with st.expander("Model size"):
        st.number_input(
            "Hidden units",
            min_value=1,
            max_value=most("hidden"),
            key=_key("hidden"),
            placeholder="model default",
            help="Width of the hidden layers (512 in the tutorial's MLP, 128 in the CNN's head).",
        )
        st.number_input(
            "Dropout",
            min_value=0.0,
            max_value=0.95,
            step=0.05,
            key=_key("dropout"),
            placeholder="model default",
            help="Fraction of activations zeroed while training (0 in the tutorial).",
        )


def _optimizer_fields() -> None:
    st.select_slider(
        "Learning rate (log scale)",
        with_value(LR_VALUES, st.session_state[_key("lr")]),
        key=_key("lr"),
        format_func=lambda v: f"{v:g}",
    )
    st.selectbox("Optimizer", OPTIMIZERS, key=_key("optimizer"), format_func=OPTIMIZER_NAMES.get)
    st.selectbox(
        "Learning-rate schedule",
        SCHEDULES,
        key=_key("lr_schedule"),
        help="constant: the same learning rate throughout; cosine: decays it smoothly to 0 by the last step.",
    )
    st.slider(
        "Momentum", 0.0, 0.99, step=0.01, key=_key("momentum"), help="Used by SGD only (0 in the tutorial)."
    )
    st.select_slider(
        "Weight decay",
        with_value(WEIGHT_DECAYS, st.session_state[_key("weight_decay")]),
        key=_key("weight_decay"),
        format_func=lambda v: f"{v:g}",
    )
    left, right = st.columns(2)
    left.number_input(
        "Seed", min_value=0, max_value=most("seed"), step=1, key=_key("seed"), help="Same seed, same run."
    )
    devices = available_devices()
    if st.session_state[_key("device")] not in devices:
        st.session_state[_key("device")] = "auto"
    right.selectbox("Device", devices, key=_key("device"))
    st.number_input(
        "Log the loss every N batches",
        min_value=1,
        max_value=10_000,
        key=_key("log_every"),
        help="The tutorial prints every 100 batches; smaller means a denser training-loss chart.",
    )


def _augment_fields() -> None:
    with st.expander("Augmentation (training images only)"):
        st.caption("Prefilled from the Transforms page when you set it there; all zero means none.")
        st.slider("Horizontal flip probability", 0.0, 1.0, step=0.05, key=_aug_key("hflip"))
        st.slider("Rotation (± degrees)", 0.0, 180.0, step=1.0, key=_aug_key("rotate"))
        st.slider("Shift (fraction of the side)", 0.0, 1.0, step=0.01, key=_aug_key("translate"))
        st.slider("Zoom (± fraction)", 0.0, 1.0, step=0.01, key=_aug_key("scale"))
        st.slider("Random erasing probability", 0.0, 1.0, step=0.05, key=_aug_key("erase"))


def form_config() -> TrainConfig:
    """The TrainConfig the form describes; raises BadConfig or ValueError when a value is out of range."""
    values = {name: st.session_state[_key(name)] for name in _FORM_FIELDS}
    augment = Augment(**{name: float(st.session_state[_aug_key(name)]) for name in _AUGMENT_FIELDS})
    return TrainConfig(**values, augment=augment)


def _start() -> None:
    try:
        run_id = runs.start(form_config())
    except (StudioError, ValueError) as exc:
        st.error(str(exc))
        return
    st.session_state["train_run_id"] = run_id
