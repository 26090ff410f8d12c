"""The Train page's new-run form: presets, the form's state (saved, linked, handed over), Start."""

from dataclasses import asdict

import streamlit as st

from core import runs
from core.base.device import available_devices
from core.base.errors import BadConfig, StudioError
from core.data.augment import Augment
from core.data.fashion import DatasetStatus
from core.model.networks import MODELS
from core.training import analysis, ranks
from core.training.config import LIMITS, OPTIMIZERS, PRESETS, SCHEDULES, TrainConfig
from ui import learners, link
from ui.train.fields import (
    ADVANCED,
    ADVANCED_FIELDS,
    AUGMENT_FIELDS,
    AUGMENTATION,
    FORM_FIELDS,
    MAIN_FIELDS,
    NUMBER_FIELDS,
    advanced_fields,
    augment_fields,
    augment_key,
    field_key,
    main_fields,
    parse_number,
    shown,
    widget_value,
)
from ui.train.live import SCROLL_TO
from ui.train.view import export_script

PRESET_HELP = {
    "tutorial": "the quickstart as is: SGD, learning rate 0.001, batch 64, 5 epochs (about 65% accuracy)",
    "recommended": "AdamW with a cosine schedule: about 89% (MLP) or 92% (CNN) in 5 epochs on a CPU",
}
CUSTOM = "custom"  # the preset control's choice while the fields hold no preset
TRANSFORMS_KEY = "train_augment"  # ui.learn.transforms.TRAIN_KEY: a dict of Augment's fields, handed over
_HANDED = "train_augment_seen"  # the last hand-off taken (each is taken once)
_TAKEN = "train_augment_taken"  # its Augment's fields, once valid: the form says where they came from
_SAVED = "train_form_saved"  # plain (non-widget) copy of the form, so it survives page switches
_TRIED = "train_start_tried"  # Start was pressed with problems: list them until they are fixed
_REFUSED = "train_start_refused"  # why core.runs refused the last Start, shown once
_TUTORIAL = {name: widget_value(name, getattr(PRESETS["tutorial"], name)) for name in FORM_FIELDS}


# ---- the form state ----------------------------------------------------------------------------------


def _init_form_state() -> None:
    """Give every form widget a value: what this user last had, else the tutorial preset."""
    saved = st.session_state.get(_SAVED, {})
    for name in FORM_FIELDS:
        st.session_state.setdefault(field_key(name), saved.get(name, _TUTORIAL[name]))
    for name in AUGMENT_FIELDS:
        st.session_state.setdefault(augment_key(name), saved.get(f"aug_{name}", 0.0))
    _take_transforms_augment()
    # A section opens on first sight when it holds something set elsewhere (a link, the form this user left
    # on another page); afterwards the user opens and closes it, and a preset or Start may open it again.
    st.session_state.setdefault(ADVANCED, _advanced_changed())
    st.session_state.setdefault(AUGMENTATION, _augment_now().active)


def _advanced_changed() -> bool:
    """Some field under Advanced holds other than the tutorial's value."""
    return any(st.session_state[field_key(name)] != _TUTORIAL[name] for name in ADVANCED_FIELDS)


def _augment_now() -> Augment:
    return Augment(**{name: float(st.session_state[augment_key(name)]) for name in AUGMENT_FIELDS})


def _take_transforms_augment() -> None:
    """Prefill augmentation from the Transforms page when it hands over a new setting; open its section."""
    incoming = st.session_state.get(TRANSFORMS_KEY)
    if not isinstance(incoming, dict) or incoming == st.session_state.get(_HANDED):
        return
    st.session_state[_HANDED] = dict(incoming)
    try:
        augment = Augment(**incoming)
    except (TypeError, ValueError) as exc:
        st.warning(f"The augmentation from the Transforms page was not used: {exc}")
        return
    for name, value in asdict(augment).items():
        st.session_state[augment_key(name)] = float(value)
    st.session_state[_TAKEN] = asdict(augment)
    st.session_state[AUGMENTATION] = True


def _from_transforms() -> bool:
    """The augmentation sliders hold what the Transforms page handed over (and it is some augmentation)."""
    taken = st.session_state.get(_TAKEN)
    return taken is not None and Augment(**taken).active and asdict(_augment_now()) == taken


def _apply_preset() -> None:
    """on_change of the preset: fill the form with it, keeping model, device, processes and augmentation;
    open Advanced when the preset sets a field there."""
    chosen = PRESETS.get(st.session_state[field_key("preset")])
    if chosen is None:  # the highlighted choice clicked again, or "custom": nothing to fill
        return
    for name in _PRESET_FIELDS:
        st.session_state[field_key(name)] = widget_value(name, getattr(chosen, name))
    if any(name in ADVANCED_FIELDS for name in _preset_changes(chosen)):
        st.session_state[ADVANCED] = True


# What the machine offers (device, processes), the model and the augmentation stay as chosen when a preset
# is applied: a preset never undoes the Transforms page's hand-off.
_KEPT_BY_PRESETS = ("model", "device", "processes")
_PRESET_FIELDS = tuple(name for name in FORM_FIELDS if name not in _KEPT_BY_PRESETS)


def _preset_changes(chosen: TrainConfig) -> list[str]:
    """The fields where `chosen` differs from the tutorial."""
    return [name for name in _PRESET_FIELDS if getattr(chosen, name) != getattr(PRESETS["tutorial"], name)]


def _preset_of_fields() -> str | None:
    """The preset the fields hold now (augmentation aside)."""
    values, _problems = _field_values()
    for name, preset in PRESETS.items():
        if all(name_ in values and values[name_] == getattr(preset, name_) for name_ in _PRESET_FIELDS):
            return name
    return None


def _preset_label(choice: str) -> str:
    if choice == CUSTOM and _from_transforms():
        return "custom (augmentation from Transforms)"
    return choice


def _preset_caption(matched: str | None, base: str | None) -> str:
    """What the preset control's choice means: the preset, or how the fields differ from one."""
    if matched:
        return PRESET_HELP[matched]
    augment = _augment_now()
    if not augment.active:
        return "Your own settings: no preset matches the fields."
    where = " from the Transforms page" if _from_transforms() else ""
    holds = f"The {base} preset" if base else "Your own settings"
    return f"{holds} with augmentation{where}: {analysis.augment_words(augment)}."


def _field_values() -> tuple[dict, dict[str, str]]:
    """The form's values by TrainConfig field (augmentation aside), and a problem for each bad field."""
    values, problems = {}, {}
    for name in FORM_FIELDS:
        raw = st.session_state[field_key(name)]
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
    try:
        config = TrainConfig(**values, augment=_augment_now())
    except (BadConfig, ValueError) as exc:  # fields together, e.g. a model too big for a checkpoint
        field = next((name for name in NUMBER_FIELDS if name in str(exc)), "config")
        return None, {field: str(exc)}
    try:  # what core.runs.start checks first: listed with the other problems rather than after Start
        ranks.check_processes(config)
    except StudioError as exc:
        return None, {"processes": str(exc)}
    return config, {}


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
        link.choice("model", field_key("model"), list(MODELS)),
        link.choice("opt", field_key("optimizer"), OPTIMIZERS),
        link.choice("schedule", field_key("lr_schedule"), SCHEDULES),
        link.choice("device", field_key("device"), available_devices(), fallback="auto"),
        link.number("momentum", field_key("momentum"), 0.0, 0.99),
        _processes_param(),
    ]
    params += [link.number(url, augment_key(name), 0.0, most) for name, (url, most) in _AUGMENT_LINKS.items()]
    return params


def _text_param(name: str) -> link.Param:
    """A number field: its text, refused unless the field would pass Start's check."""

    def read(value: link.Value) -> str:
        text = value[-1] if isinstance(value, list) else value
        try:
            return shown(parse_number(name, text[:40]))
        except ValueError as exc:
            raise link.BadLink(f"{exc}.") from None

    return link.Param(_LINK_NAMES[name], field_key(name), read, fallback="the form's value")


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

    return link.Param(url, field_key(name), read, write=shown, fallback="the form's value")


def most_processes_here() -> int:
    """The most processes any device of this machine allows (core.ranks.most_processes)."""
    return max(ranks.most_processes(device) for device in available_devices())


def _processes_param() -> link.Param:
    """Processes: a whole number this machine can run (the chosen device's own limit is checked on Start)."""
    most = min(most_processes_here(), int(LIMITS["processes"].high))
    return link.whole(_LINK_NAMES["processes"], field_key("processes"), 1, most, fallback="1 process")


def _link_values() -> dict:
    """What the URL should hold: a field left at the tutorial's value is left out, so links stay short."""
    defaults = {field_key(name): value for name, value in _TUTORIAL.items()}
    defaults |= {augment_key(n): 0.0 for n in AUGMENT_FIELDS}
    return {key: None for key, default in defaults.items() if st.session_state.get(key) == default}


# ---- drawing it --------------------------------------------------------------------------------------


def render_form(status: DatasetStatus) -> None:
    """The new-run form. No st.form: Enter in a field only applies it; Start alone starts a run."""
    links = form_links()
    link.notify(link.adopt(links))
    _init_form_state()
    st.subheader("New run")
    _preset_control()
    if not status.ready:
        st.error(status.message)
    read_only = runs.store_problem()
    with st.container(border=True, key="train_form"):
        main_fields()
        advanced_fields()
        augment_fields(_augment_note())
        st.button(
            "Start training",
            type="primary",
            key=field_key("start"),
            disabled=not status.ready or read_only is not None,
            help=read_only,  # the sidebar says so too
            width="stretch",
            on_click=_start,
        )
        _report_problems()
    _export_form()
    link.keep(links, _link_values())
    st.session_state[_SAVED] = {
        **{name: st.session_state[field_key(name)] for name in FORM_FIELDS},
        **{f"aug_{name}": st.session_state[augment_key(name)] for name in AUGMENT_FIELDS},
    }


def _preset_control() -> None:
    """The presets, highlighted only while the fields hold one (augmentation included); else "custom"."""
    base = _preset_of_fields()
    matched = base if not _augment_now().active else None
    st.session_state[field_key("preset")] = matched or CUSTOM
    st.segmented_control(
        "Preset",
        list(PRESETS) if matched else [*PRESETS, CUSTOM],
        key=field_key("preset"),
        on_change=_apply_preset,
        format_func=_preset_label,
        help="Fills the form (augmentation stays as set); change any field afterwards.",
    )
    st.caption(_preset_caption(matched, base))


def _augment_note() -> str | None:
    if not _from_transforms():
        return None
    return f"From the Transforms page: {analysis.augment_words(_augment_now())}."


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
    """on_click of Start (before the page is drawn, so Advanced can be opened when it holds a problem)."""
    config, problems = check_form()
    if problems:
        st.session_state[_TRIED] = True
        if set(problems) - set(MAIN_FIELDS):  # a field under Advanced, or fields together ("config")
            st.session_state[ADVANCED] = True
        return
    st.session_state[_TRIED] = False
    try:
        # A busy device: it waits its turn in the queue. Shared: it is this browser's (ui.learners).
        run_id = runs.start(config, wait=True, **learners.start_fields())
    except (StudioError, ValueError) as exc:
        st.session_state[_REFUSED] = str(exc)
        return
    st.session_state["train_run_id"] = st.session_state[SCROLL_TO] = run_id
