"""Train page widgets: the run form, the live view (a fragment), the finished-run view, the runs table."""

import contextlib
import time
from dataclasses import asdict, fields

import pandas as pd
import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from core import analysis, runs
from core.augment import Augment
from core.data import CLASSES, DatasetStatus, dataset_status
from core.device import available_devices
from core.errors import StudioError
from core.models import MODELS
from core.train import LIMITS, OPTIMIZERS, PRESETS, SCHEDULES, TrainConfig
from ui import charts
from ui.cache import split_tensors
from ui.layout import cells
from ui.live_chart import live_chart

LR_VALUES = (1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2e-2, 5e-2, 0.1, 0.2, 0.5, 1.0)
BATCH_SIZES = (8, 16, 32, 64, 128, 256, 512, 1024, 2048)
WEIGHT_DECAYS = (0.0, 1e-5, 1e-4, 5e-4, 1e-3, 1e-2, 0.1)
MODEL_NAMES = {"mlp": "MLP (the tutorial's)", "cnn": "Small CNN"}
OPTIMIZER_NAMES = {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW"}
PRESET_HELP = {
    "tutorial": "the quickstart as is: SGD, learning rate 0.001, batch 64, 5 epochs (about 65% accuracy)",
    "recommended": "AdamW with a cosine schedule: about 89% (MLP) or 92% (CNN) in 5 epochs on a CPU",
}
GALLERY_SIZE = 30
STARTING_POLL_S = 0.25  # how often the live view looks for the first loss while the worker starts
_FORM_FIELDS = tuple(f.name for f in fields(TrainConfig) if f.name != "augment")  # every other field
_AUGMENT_FIELDS = tuple(f.name for f in fields(Augment))
_SAVED = "train_form_saved"  # plain (non-widget) copy of the form, so it survives page switches


def _key(name: str) -> str:
    return f"train_{name}"


def _aug_key(name: str) -> str:
    return f"train_aug_{name}"


# ---- the form -------------------------------------------------------------------------------------------


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


def _most(field: str) -> int:
    """The largest whole value TrainConfig accepts for `field` (core.train.LIMITS, the CLI's too)."""
    return int(LIMITS[field].high)


def _with(options: tuple, value) -> list:
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
    left.number_input("Epochs", min_value=1, max_value=_most("epochs"), step=1, key=_key("epochs"))
    right.select_slider(
        "Batch size", _with(BATCH_SIZES, st.session_state[_key("batch_size")]), key=_key("batch_size")
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
            max_value=_most("hidden"),
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
        _with(LR_VALUES, st.session_state[_key("lr")]),
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
        _with(WEIGHT_DECAYS, st.session_state[_key("weight_decay")]),
        key=_key("weight_decay"),
        format_func=lambda v: f"{v:g}",
    )
    left, right = st.columns(2)
    left.number_input(
        "Seed", min_value=0, max_value=_most("seed"), step=1, key=_key("seed"), help="Same seed, same run."
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


# ---- which run is shown -----------------------------------------------------------------------------


def table_key(all_runs: list[runs.RunInfo]) -> str:
    """The runs table's widget key; it changes when runs are added so row positions never go stale."""
    return f"train_runs_table_{len(all_runs)}_{all_runs[0].id if all_runs else ''}"


def selected_ids(all_runs: list[runs.RunInfo]) -> list[str]:
    state = st.session_state.get(table_key(all_runs))
    rows = state.get("selection", {}).get("rows", []) if state else []
    return [all_runs[i].id for i in rows if 0 <= i < len(all_runs)]


def pick_run(all_runs: list[runs.RunInfo], selected: list[str]) -> runs.RunInfo | None:
    """A lone selected row; else the run training now (re-attach); else the last started; else the newest."""
    by_id = {r.id: r for r in all_runs}
    if len(selected) == 1:
        return by_id[selected[0]]
    active = next((r for r in all_runs if r.active), None)
    if active is not None:
        return active
    return by_id.get(st.session_state.get("train_run_id", "")) or (all_runs[0] if all_runs else None)


# ---- one run ------------------------------------------------------------------------------------------


def render_header(run: runs.RunInfo) -> None:
    config = run.config
    what = "unreadable config"
    if config is not None:
        what = (
            f"{MODEL_NAMES.get(config.model, config.model)} · {config.epochs} epoch(s) · "
            f"{OPTIMIZER_NAMES[config.optimizer]}, lr {config.lr:g}, batch {config.batch_size}"
        )
    st.subheader(f"Run {run.id}")
    st.caption(f"{what} · status **{'training' if run.active else run.status}**")
    if run.active and config is not None and runs.device_key(config) == "cpu":
        # Measured with bench.ui_speed: the browser drawing this view takes a CPU run's time too.
        st.caption(
            ":material/info: Watching takes CPU time from a CPU run: on a 2-core machine it trains "
            "about a third slower with this page open. It keeps training if you switch pages or "
            "close the tab."
        )


@st.fragment(run_every=1)
def live_view(run_id: str) -> None:
    """Redrawn every second from the run directory while the worker trains; cheap by design."""
    run = runs.get_run(run_id)
    if not run.active:
        st.rerun()  # the whole page then shows the finished view
    rows = _reader(run).update()
    where = runs.progress(run)
    epochs = run.config.epochs if run.config else "?"
    st.progress(where.fraction, text=progress_text(where, epochs))
    stopping = (run.dir / runs.STOP_FILE).exists()
    if st.button(
        "Stop",
        icon=":material/stop_circle:",
        key="train_stop",
        disabled=stopping,
        help="Stops after the current batch, saving a checkpoint.",
    ):
        runs.stop(run_id)
        stopping = True
    if stopping:
        st.info("Stopping after the current batch; a checkpoint is being saved.")
    if not rows:
        st.info(
            "Starting the worker: loading PyTorch and FashionMNIST. The first loss appears in a few seconds."
        )
    render_curves(rows, run_id, live=True)  # drawn even while empty: the first point updates a mounted chart
    if not rows and _in_fragment_rerun():
        # Until the first loss is logged, look again in a quarter of a second rather than at the next
        # tick: the first point then shows as soon as it exists. Unchanged elements are not redrawn.
        time.sleep(STARTING_POLL_S)
        st.rerun(scope="fragment")


def _in_fragment_rerun() -> bool:
    """True in a run of a fragment alone (st.rerun(scope="fragment") is refused in the page's own run)."""
    ctx = get_script_run_ctx()
    return bool(ctx is not None and getattr(ctx, "fragment_ids_this_run", None))


def progress_text(where: runs.Progress, epochs) -> str:
    if not where.total_steps:  # the worker has not loaded the data yet
        return "starting the worker…"
    parts = [f"epoch {where.epoch}/{epochs}", f"step {where.step:,}/{where.total_steps:,}"]
    if where.samples_per_s:
        parts.append(f"{where.samples_per_s:,.0f} samples/s")
    if where.eta_s is not None:
        parts.append(f"about {_duration(where.eta_s)} left")
    return " · ".join(parts)


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def _reader(run: runs.RunInfo) -> analysis.MetricsReader:
    """One incremental reader per run in this session: each refresh parses only the new lines."""
    readers = st.session_state.setdefault("train_readers", {})
    if run.id not in readers:
        readers[run.id] = analysis.MetricsReader(run.dir / "metrics.jsonl")
    return readers[run.id]


def render_curves(rows: list[dict], run_id: str, *, live: bool = False) -> None:
    """The training curves; `live`: while the run trains, each chart updated in place every second."""
    log = st.toggle("Log-scale loss", key="train_log_loss")
    _curve(charts.step_loss(rows, run_id, log=log), "train_chart_steps", live)
    if not analysis.epoch_rows(rows):
        st.caption("Loss and accuracy per epoch appear when the first epoch ends and the test set is scored.")
        return
    left, right = st.columns(2)
    with left:
        _curve(charts.epoch_loss(rows, run_id, log=log), "train_chart_epoch_loss", live)
    with right:
        _curve(charts.epoch_accuracy(rows, run_id), "train_chart_epoch_acc", live)


def _curve(figure: dict, key: str, live: bool) -> None:
    def built_in() -> None:
        st.plotly_chart(figure, key=key)

    if live:  # a new st.plotly_chart each time the figure changes would be a chart built from scratch
        live_chart(figure, key=f"{key}_live", fallback=built_in)
    else:
        built_in()


def render_outcome(run: runs.RunInfo) -> None:
    """A run that is no longer training: its result, curves, downloads and how to go on."""
    if run.status in ("failed", runs.DAMAGED):
        st.error(run.error or "the run failed without an error message")
    elif run.status == "stopped":
        st.warning("Stopped before the end; the checkpoint holds the weights at that moment.")
    rows = _reader(run).update()
    _final_metrics(run, rows)
    if rows:
        render_curves(rows, run.id)
    if run.checkpoint is None:
        return
    _downloads(run, rows)
    if run.config is not None:  # failed runs too: a diverged or killed run keeps its last good weights
        _continue(run)


def _final_metrics(run: runs.RunInfo, rows: list[dict]) -> None:
    last = (analysis.epoch_rows(rows) or [{}])[-1]
    cols = cells(5, 100)  # fixed widths that wrap: five columns of a narrow pane cut "50.8%" to "50…"
    cols[0].metric(
        "Test acc.", _pct(last.get("test_acc")), help="Test accuracy after the last completed epoch."
    )
    cols[1].metric("Best test acc.", _pct(run.best_test_acc))
    cols[2].metric("Test loss", f"{last['test_loss']:.3f}" if "test_loss" in last else "—")
    cols[3].metric(
        "Train acc.", _pct(last.get("train_acc")), help="Accuracy on the training batches of the last epoch."
    )
    total = sum(r.get("seconds", 0.0) for r in analysis.epoch_rows(rows))
    epochs = run.config.epochs if run.config else "?"
    cols[4].metric("Epochs", f"{run.epoch}/{epochs}", help=f"{_duration(total)} of training")


def _pct(value: float | None) -> str:
    return f"{value:.1%}" if value is not None else "—"


@st.cache_resource(show_spinner="Scoring the test set with this checkpoint…", max_entries=8)
def scored_test_set(path: str, mtime_ns: int) -> analysis.TestPredictions:
    """Every test image's prediction; `mtime_ns` makes a re-saved checkpoint count as new."""
    return analysis.checkpoint_predictions(path)


def render_mistakes(run: runs.RunInfo) -> None:
    """Confusion matrix, per-class accuracy and misclassified images of the run's saved checkpoint."""
    path = run.checkpoint
    if path is None:
        return
    status = dataset_status()
    if not status.ready:  # scoring needs the test split; never start a download from here
        st.error(status.message)
        return
    try:
        preds = scored_test_set(str(path), path.stat().st_mtime_ns)
    except StudioError as exc:
        st.error(str(exc))
        return
    st.subheader("What the saved model gets wrong")
    st.caption(f"Its answers on the 10,000 test images: {preds.accuracy:.1%} right.")
    left, right = st.columns([3, 2])
    left.plotly_chart(charts.confusion_heatmap(preds.confusion(), run.id), key="train_chart_confusion")
    right.plotly_chart(
        charts.per_class_accuracy(preds.per_class_accuracy(), run.id), key="train_chart_classes"
    )
    _gallery(preds)


def _class_name(index: int | None) -> str:
    return "any class" if index is None else CLASSES[index]


def _gallery(preds: analysis.TestPredictions) -> None:
    options = [None, *range(len(CLASSES))]
    left, right = st.columns(2)
    true = left.selectbox("True class", options, key="train_cell_true", format_func=_class_name)
    predicted = right.selectbox("Predicted as", options, key="train_cell_pred", format_func=_class_name)
    confused = ", ".join(f"{CLASSES[t]} → {CLASSES[p]} ({n})" for t, p, n in preds.most_confused())
    st.caption(f"Pick a cell of the confusion matrix. Most confused: {confused or 'none'}.")
    wrong = preds.misclassified(true, predicted)
    if not wrong:
        st.info("No misclassified test images in this cell.")
        return
    shown = wrong[:GALLERY_SIZE]
    st.caption(
        f"{len(wrong):,} misclassified test images; showing the {len(shown)} the model was surest about."
    )
    images, _labels = split_tensors("test")
    captions = [
        f"{CLASSES[preds.labels[i]]} → {CLASSES[preds.predicted[i]]} {preds.confidence[i]:.0%}" for i in shown
    ]
    st.image(analysis.thumbnails(images, shown), caption=captions, width=84)


def _downloads(run: runs.RunInfo, rows: list[dict]) -> None:
    path = run.checkpoint
    sidecar = path.with_suffix(".json")
    # (label, data, file name, mime, help, key); files are read only when clicked (a callable).
    files = [
        ("model.pth", path.read_bytes, "model.pth", "application/octet-stream",
         "Loads with the tutorial's model.load_state_dict(torch.load('model.pth', weights_only=True)).",
         "train_dl_pth"),
        ("model.json", sidecar.read_bytes, "model.json", "application/json",
         "Which model, its options, the training config and the .pth file's sha256.", "train_dl_json"),
        ("metrics.csv", analysis.metrics_csv(rows), f"{run.id}-metrics.csv", "text/csv",
         "Every logged step and epoch; per-class test accuracy in its own columns.", "train_dl_csv"),
    ]  # fmt: skip
    for column, (label, data, name, mime, help_text, key) in zip(st.columns(3), files, strict=True):
        if label == "model.json" and not sidecar.is_file():
            continue
        column.download_button(
            label, data, file_name=name, mime=mime, on_click="ignore", icon=":material/download:",
            help=help_text, key=key,
        )  # fmt: skip


def _continue(run: runs.RunInfo) -> None:
    """More epochs from the saved weights, at the same or another learning rate (lower after a divergence)."""
    row = st.container(horizontal=True, vertical_alignment="bottom")
    more = row.number_input(
        "More epochs",
        min_value=1,
        max_value=_most("epochs"),
        value=run.config.epochs,
        key="train_more",
        width=120,
    )
    lr = row.select_slider(
        "Learning rate",
        _with(LR_VALUES, run.config.lr),
        value=run.config.lr,
        key="train_more_lr",
        format_func=lambda v: f"{v:g}",
        width=220,
    )
    clicked = row.button(
        "Continue training from this checkpoint", icon=":material/play_arrow:", key="train_continue"
    )
    if clicked:
        try:
            config = run.config.replace(epochs=int(more), lr=float(lr))
            new_id = runs.start(config, init_from=run.checkpoint)
        except (StudioError, ValueError) as exc:
            st.error(str(exc))
            return
        st.session_state["train_run_id"] = new_id
        st.rerun()


# ---- all runs -----------------------------------------------------------------------------------------


def render_runs_table(all_runs: list[runs.RunInfo]) -> None:
    table = pd.DataFrame(
        {
            "id": [r.id for r in all_runs],
            # "training" rather than queued/running: the table is as of page load, the run view is live
            "status": ["training" if r.active else r.status for r in all_runs],
            "model": [r.config.model if r.config else "?" for r in all_runs],
            "epochs": [f"{r.epoch}/{r.config.epochs if r.config else '?'}" for r in all_runs],
            # text, so a run without a scored epoch reads "—" rather than the grid's grey "None"
            "best test acc": [_pct(r.best_test_acc) for r in all_runs],
            "created": [pd.to_datetime(r.created, utc=True, errors="coerce") for r in all_runs],
        }
    )
    st.dataframe(
        table,
        key=table_key(all_runs),
        on_select="rerun",
        selection_mode="multi-row",
        hide_index=True,
        column_config={
            "created": st.column_config.DatetimeColumn("created (UTC)", format="YYYY-MM-DD HH:mm:ss"),
        },
    )
    for run in all_runs:  # what is wrong with each damaged run, without having to open it
        if run.status == runs.DAMAGED:
            st.warning(f"Run {run.id}: {run.error}", icon=":material/warning:")


def render_comparison(chosen: list[runs.RunInfo]) -> None:
    """Overlay the curves of several runs, one colour per run."""
    st.markdown(f"**Comparing {len(chosen)} runs**")
    metrics = {}
    for run in chosen:
        label = f"{run.id} · {run.config.model if run.config else '?'}"
        with contextlib.suppress(StudioError):
            metrics[label] = runs.read_metrics(run.id)
    ids = [run.id for run in chosen]
    revision = "+".join(ids)
    log = st.toggle("Log-scale loss", key="train_compare_log")
    left, right = st.columns(2)
    left.plotly_chart(
        charts.overlay(
            analysis.overlay(metrics, "test_acc"),
            "Test accuracy per epoch",
            "epoch",
            "accuracy",
            revision,
            percent=True,
        ),
        key="train_compare_acc",
    )
    right.plotly_chart(
        charts.overlay(
            analysis.overlay(metrics, "test_loss"), "Test loss per epoch", "epoch", "loss", revision, log=log
        ),
        key="train_compare_loss",
    )
    st.plotly_chart(
        charts.overlay(
            analysis.overlay(metrics, "loss", kind="batch"),
            "Training loss per logged step",
            "step (batches)",
            "loss",
            revision,
            log=log,
            markers=False,
        ),
        key="train_compare_steps",
    )
