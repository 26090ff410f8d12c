"""The Train page's new-run form: presets, every TrainConfig field, Start."""

from dataclasses import asdict, fields

import streamlit as st

from core import runs
from core.base.device import available_devices, resolve_device
from core.base.errors import BadConfig, StudioError
from core.data.augment import Augment
from core.data.fashion import DatasetStatus
from core.model.networks import MODELS
from core.training import analysis, ranks
from core.training.config import LIMITS, OPTIMIZERS, OPTIONAL, PRESETS, SCHEDULES, TrainConfig
from ui import link
from ui.train.live import SCROLL_TO
from ui.train.view import MODEL_NAMES, OPTIMIZER_NAMES, export_script

LR_VALUES = (1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2e-2, 5e-2, 0.1, 0.2, 0.5, 1.0)
BATCH_SIZES = (8, 16, 32, 64, 128, 256, 512, 1024, 2048)
WEIGHT_DECAYS = (0.0, 1e-5, 1e-4, 5e-4, 1e-3, 1e-2, 0.1)
PRESET_HELP = {
    "tutorial": "the quickstart as is: SGD, learning rate 0.001, batch 64, 5 epochs (about 65% accuracy)",
    "recommended": "AdamW with a cosine schedule: about 89% (MLP) or 92% (CNN) in 5 epochs on a CPU",
}
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
SIZE_SECTION = "train_section_size"  # the "Model size" expander's key: Start opens it when it holds a problem
_SIZE_FIELDS = ("hidden", "dropout")
_FORM_FIELDS = tuple(f.name for f in fields(TrainConfig) if f.name != "augment")  # every other field
_AUGMENT_FIELDS = tuple(f.name for f in fields(Augment))
_SAVED = "train_form_saved"  # plain (non-widget) copy of the form, so it survives page switches
_TRIED = "train_start_tried"  # Start was pressed with problems: list them until they are fixed
_REFUSED = "train_start_refused"  # why core.runs refused the last Start, shown once


def _key(name: str) -> str:
    return f"train_{name}"


def _aug_key(name: str) -> str:
    return f"train_aug_{name}"


def shown(value) -> str:
    """A config value as its text field shows it; None (no cap, the model's default) is an empty field."""
    if value is None:
        return ""
    return f"{value:g}" if isinstance(value, float) else str(value)


def _widget_value(name: str, value):
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


# ---- the form state ----------------------------------------------------------------------------------


def _init_form_state() -> None:
    """Give every form widget a value: what this user last had, else the tutorial preset."""
    saved = st.session_state.get(_SAVED, {})
    tutorial = PRESETS["tutorial"]
    for name in _FORM_FIELDS:
        default = _widget_value(name, getattr(tutorial, name))
        st.session_state.setdefault(_key(name), saved.get(name, default))
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
    words = analysis.augment_words(augment)
    st.toast(f"Augmentation from the Transforms page: {words}", icon=":material/input:")


def _apply_preset() -> None:
    """on_change of the preset: fill the form with it, keeping model, device, processes and augmentation."""
    chosen = PRESETS.get(st.session_state[_key("preset")])
    if chosen is None:  # the highlighted preset clicked again: nothing to fill
        return
    for name in _PRESET_FIELDS:
        st.session_state[_key(name)] = _widget_value(name, getattr(chosen, name))


# What the machine offers (device, processes) and the model stay as chosen when a preset is applied.
_KEPT_BY_PRESETS = ("model", "device", "processes")
_PRESET_FIELDS = tuple(name for name in _FORM_FIELDS if name not in _KEPT_BY_PRESETS)


def _matching_preset() -> str | None:
    """The preset the fields hold now, so the control never highlights one the user has changed."""
    values, _problems = _field_values()
    for name, preset in PRESETS.items():
        if all(name_ in values and values[name_] == getattr(preset, name_) for name_ in _PRESET_FIELDS):
            return name
    return None


def _field_values() -> tuple[dict, dict[str, str]]:
    """The form's values by TrainConfig field (augmentation aside), and a problem for each bad field."""
    values, problems = {}, {}
    for name in _FORM_FIELDS:
        raw = st.session_state[_key(name)]
        if name not in NUMBER_FIELDS:
            values[name] = raw
            continue
        try:
            values[name] = parse_number(name, raw)
        except ValueError as exc:
            problems[name] = str(exc)
    return values, problems


def check_form() -> tuple[TrainConfig | None, dict[str, str]]:
    """The TrainConfig the form describes, or None and every problem by field (one message each)."""
    values, problems = _field_values()
    if problems:
        return None, problems
    augment = Augment(**{name: float(st.session_state[_aug_key(name)]) for name in _AUGMENT_FIELDS})
    try:
        config = TrainConfig(**values, augment=augment)
    except (BadConfig, ValueError) as exc:  # fields together, e.g. a model too big for a checkpoint
        field = next((name for name in NUMBER_FIELDS if name in str(exc)), "config")
        return None, {field: str(exc)}
    try:  # what core.runs.start checks first: listed with the other problems rather than after Start
        ranks.check_processes(config)
    except StudioError as exc:
        return None, {"processes": str(exc)}
    return config, {}


def with_value(options: tuple, value) -> list:
    """`options` plus the current value, so a value set elsewhere (a preset, a saved form) is selectable."""
    return sorted({*options, value}) if value is not None else list(options)


# ---- the form in the URL (ui.link) -------------------------------------------------------------------

_LINK_NAMES = {"model": "model", "epochs": "epochs", "batch_size": "batch", "limit_batches": "cap",
               "hidden": "hidden", "dropout": "dropout", "lr": "lr", "optimizer": "opt",
               "lr_schedule": "schedule", "momentum": "momentum", "weight_decay": "wd", "seed": "seed",
               "device": "device", "log_every": "log", "processes": "procs"}  # fmt: skip
_AUGMENT_LINKS = {"hflip": ("flip", 1.0), "rotate": ("rotate", 180.0), "translate": ("shift", 1.0),
                  "scale": ("zoom", 1.0), "erase": ("erase", 1.0)}  # fmt: skip


def form_links() -> list[link.Param]:
    """Every form field as a URL parameter, each read as strictly as TrainConfig reads it.

    A link only fills the form: nothing starts until Start is pressed."""
    params = [_text_param(name) for name in NUMBER_FIELDS]
    params += [_limit_param(name) for name in ("batch_size", "lr", "weight_decay")]
    params += [
        link.choice("model", _key("model"), list(MODELS)),
        link.choice("opt", _key("optimizer"), OPTIMIZERS),
        link.choice("schedule", _key("lr_schedule"), SCHEDULES),
        link.choice("device", _key("device"), available_devices(), fallback="auto"),
        link.number("momentum", _key("momentum"), 0.0, 0.99),
        _processes_param(),
    ]
    params += [link.number(url, _aug_key(name), 0.0, most) for name, (url, most) in _AUGMENT_LINKS.items()]
    return params


def _text_param(name: str) -> link.Param:
    """A number field: its text, refused unless the field would pass Start's check."""

    def read(value: link.Value) -> str:
        text = value[-1] if isinstance(value, list) else value
        try:
            return shown(parse_number(name, text[:40]))
        except ValueError as exc:
            raise link.BadLink(f"{exc}.") from None

    return link.Param(_LINK_NAMES[name], _key(name), read, fallback="the form's value")


def _limit_param(name: str) -> link.Param:
    """A slider's number, within core.training.config.LIMITS."""
    url, limit = _LINK_NAMES[name], LIMITS[name]

    def read(value: link.Value) -> int | float:
        text = (value[-1] if isinstance(value, list) else value)[:40]
        try:
            number = int(text) if limit.whole else float(text)
        except ValueError:
            raise link.BadLink(f"{url} {text!r} is not a number.") from None
        if not limit.allows(number):
            raise link.BadLink(f"{url} must be {limit.describe()}, not {text}.")
        return number

    return link.Param(url, _key(name), read, write=shown, fallback="the form's value")


def most_processes_here() -> int:
    """The most processes any device of this machine allows (core.ranks.most_processes)."""
    return max(ranks.most_processes(device) for device in available_devices())


def _processes_param() -> link.Param:
    """Processes: a whole number this machine can run (the chosen device's own limit is checked on Start)."""
    most = min(most_processes_here(), int(LIMITS["processes"].high))
    return link.whole(_LINK_NAMES["processes"], _key("processes"), 1, most, fallback="1 process")


def _link_values() -> dict:
    """What the URL should hold: a field left at the tutorial's value is left out, so links stay short."""
    defaults = {_key(n): _widget_value(n, getattr(PRESETS["tutorial"], n)) for n in _FORM_FIELDS}
    defaults |= {_aug_key(n): 0.0 for n in _AUGMENT_FIELDS}
    return {key: None for key, default in defaults.items() if st.session_state.get(key) == default}


# ---- drawing it --------------------------------------------------------------------------------------


def render_form(status: DatasetStatus) -> None:
    """The new-run form. No st.form: Enter in a field only applies it; Start alone starts a run."""
    links = form_links()
    link.notify(link.adopt(links))
    _init_form_state()
    st.subheader("New run")
    st.session_state[_key("preset")] = _matching_preset()
    st.segmented_control(
        "Preset",
        list(PRESETS),
        key=_key("preset"),
        on_change=_apply_preset,
        help="Fills the form; change any field afterwards.",
    )
    preset = st.session_state[_key("preset")]
    st.caption(PRESET_HELP[preset] if preset else "Your own settings: no preset matches the fields.")
    if not status.ready:
        st.error(status.message)
    read_only = runs.store_problem()
    with st.container(border=True, key="train_form"):
        _model_fields()
        _optimizer_fields()
        _augment_fields()
        st.button(
            "Start training",
            type="primary",
            key=_key("start"),
            disabled=not status.ready or read_only is not None,
            help=read_only,  # the sidebar says so too
            width="stretch",
            on_click=_start,
        )
        _report_problems()
    _export_form()
    link.keep(links, _link_values())
    st.session_state[_SAVED] = {
        **{name: st.session_state[_key(name)] for name in _FORM_FIELDS},
        **{f"aug_{name}": st.session_state[_aug_key(name)] for name in _AUGMENT_FIELDS},
    }


def _export_form() -> None:
    config, problems = check_form()
    if config is not None:
        export_script(config, "the Train form's settings", None, key="train_export_form")
    else:
        st.caption(f"Export as script: once the fields are right ({next(iter(problems.values()))}).")


def _report_problems() -> None:
    """After a refused Start: one message listing every field to fix (updated as they are fixed)."""
    refused = st.session_state.pop(_REFUSED, None)
    if refused:
        st.error(refused)
    if not st.session_state.get(_TRIED):
        return
    _config, problems = check_form()
    if not problems:
        st.session_state[_TRIED] = False
        return
    lines = "\n".join(f"- {message}" for message in problems.values())
    st.error(f"Not started. Fix {'this' if len(problems) == 1 else 'these'} first:\n{lines}")


def _start() -> None:
    """on_click of Start (before the page is drawn, so the section holding a problem can be opened)."""
    config, problems = check_form()
    if problems:
        st.session_state[_TRIED] = True
        if any(name in problems for name in _SIZE_FIELDS):
            st.session_state[SIZE_SECTION] = True
        return
    st.session_state[_TRIED] = False
    try:
        run_id = runs.start(config)
    except (StudioError, ValueError) as exc:
        st.session_state[_REFUSED] = str(exc)
        return
    st.session_state["train_run_id"] = st.session_state[SCROLL_TO] = run_id


def _number_field(where, name: str, label: str | None = None, **kwargs) -> None:
    """A text field for a number of TrainConfig; what is typed stays as typed until Start checks it."""
    where.text_input(label or NUMBER_FIELDS[name], key=_key(name), autocomplete="off", **kwargs)


def _model_fields() -> None:
    st.selectbox("Model", list(MODELS), key=_key("model"), format_func=lambda m: MODEL_NAMES.get(m, m))
    left, right = st.columns(2)
    _number_field(left, "epochs", help=f"Passes over the training set ({LIMITS['epochs'].describe()}).")
    right.select_slider(
        "Batch size", with_value(BATCH_SIZES, st.session_state[_key("batch_size")]), key=_key("batch_size")
    )
    _number_field(
        st,
        "limit_batches",
        "Batches per epoch cap, for quick tries",
        placeholder="all batches",
        help="Train on only this many batches each epoch; leave empty to use the whole training set.",
    )
    with st.expander("Model size", key=SIZE_SECTION, on_change="rerun"):
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
    _number_field(st, "seed", help=f"Same seed, same run ({LIMITS['seed'].describe()}).")
    _device_fields()
    _number_field(
        st, "log_every", help="The tutorial prints every 100 batches; fewer gives a denser loss chart."
    )


def _device_fields() -> None:
    """Device, and how many processes train the run on it (DistributedDataParallel, core.runs.launcher)."""
    left, right = st.columns(2)
    devices = available_devices()
    if st.session_state[_key("device")] not in devices:
        st.session_state[_key("device")] = "auto"
    left.selectbox("Device", devices, key=_key("device"))
    device = st.session_state[_key("device")]
    most = ranks.most_processes(device)
    kind = resolve_device(device).type
    on_cpu = kind == "cpu"
    here = {"cpu": f"up to {most} here, one per CPU core", "cuda": f"up to {most} here, one per GPU"}
    right.selectbox(
        "Processes",
        with_value(range(1, most + 1), st.session_state[_key("processes")]),
        key=_key("processes"),
        help="Processes that train the run together with DistributedDataParallel: each takes its share "
        f"of every batch and their gradients are averaged ({here.get(kind, f'one on {kind}')}).",
    )
    if on_cpu and most > 1:
        st.caption(
            "On one CPU, several processes show DistributedDataParallel at work (each takes its share "
            "of every batch) rather than a speed-up."
        )


def _augment_fields() -> None:
    with st.expander("Augmentation (training images only)"):
        st.caption("Prefilled from the Transforms page when you set it there; all zero means none.")
        st.slider("Horizontal flip probability", 0.0, 1.0, step=0.05, key=_aug_key("hflip"))
        st.slider("Rotation (± degrees)", 0.0, 180.0, step=1.0, key=_aug_key("rotate"))
        st.slider("Shift (fraction of the side)", 0.0, 1.0, step=0.01, key=_aug_key("translate"))
        st.slider("Zoom (± fraction)", 0.0, 1.0, step=0.01, key=_aug_key("scale"))
        st.slider("Random erasing probability", 0.0, 1.0, step=0.05, key=_aug_key("erase"))
