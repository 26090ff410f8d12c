"""The Train page's view of a run that no longer trains: metrics, curves, mistakes, downloads, continue."""

import streamlit as st

from core import runs
from core.base.errors import StudioError
from core.data.fashion import CLASSES, dataset_status
from core.training import analysis, ranks
from ui import charts, learners, link
from ui.cache import split_tensors
from ui.layout import cells, side_by_side
from ui.live_feed import duration
from ui.text import escape_markdown
from ui.train.fields import LR_VALUES, parse_number, with_value
from ui.train.live import SCROLL_TO
from ui.train.view import SHOWN, pct, reader, render_curves

GALLERY_SIZE = 30
_CLASSES = {name: index for index, name in enumerate(CLASSES)}
CELL_LINKS = [  # the gallery's classes in the URL, so they survive page switches and shared links
    link.choice("true", "train_cell_true", _CLASSES, fallback="any class"),
    link.choice("predicted", "train_cell_pred", _CLASSES, fallback="any class"),
]
CONFUSION = "train_chart_confusion"  # the confusion matrix's key: its state holds the clicked cell
_CLICKED = "train_cell_clicked"  # (true, predicted) of the last click taken into the gallery


def render_outcome(run: runs.RunInfo) -> None:
    """A run that is no longer training: its result, curves, downloads and how to go on."""
    if run.status in ("failed", runs.DAMAGED):
        st.error(escape_markdown(run.error or "the run failed without an error message"))
    elif run.status == "stopped" and run.checkpoint is None and run.error:  # cancelled while it waited
        st.info(f"{run.error[0].upper()}{run.error[1:]}: it never trained.")
        return
    elif run.status == "stopped":
        st.warning("Stopped before the end; the checkpoint holds the weights at that moment.")
    rows = reader(run).update()
    _final_metrics(run, rows)
    if rows:
        render_curves(rows, run)
    if run.checkpoint is None:
        return
    _downloads(run, rows)
    if run.config is not None:  # failed runs too: a diverged or killed run keeps its last good weights
        _continue(run)


def _final_metrics(run: runs.RunInfo, rows: list[dict]) -> None:
    last = (analysis.epoch_rows(rows) or [{}])[-1]
    cols = cells(5, 100)  # fixed widths that wrap: five columns of a narrow pane cut "50.8%" to "50…"
    cols[0].metric(
        "Test acc.", pct(last.get("test_acc")), help="Test accuracy after the last completed epoch."
    )
    cols[1].metric("Best test acc.", pct(run.best_test_acc))
    cols[2].metric("Test loss", f"{last['test_loss']:.3f}" if "test_loss" in last else "—")
    cols[3].metric(
        "Train acc.", pct(last.get("train_acc")), help="Accuracy on the training batches of the last epoch."
    )
    total = sum(r.get("seconds", 0.0) for r in analysis.epoch_rows(rows))
    epochs = run.config.epochs if run.config else "?"
    cols[4].metric("Epochs", f"{run.epoch}/{epochs}", help=f"{duration(total)} of training")


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
    # Side by side at 1280 px; at 800 px the matrix gets the whole width, so its numbers stay readable.
    classes, matrix = side_by_side("train_confusion_pane", 260, flexible_min=420)
    classes.plotly_chart(
        charts.per_class_accuracy(preds.per_class_accuracy(), run.id),
        key="train_chart_classes",
        config={"displayModeBar": False},  # its toolbar covered the title; a bar chart needs no zoom
    )
    event = matrix.plotly_chart(
        charts.confusion_heatmap(preds.confusion(), run.id),
        key=CONFUSION,
        on_select="rerun",
        selection_mode="points",
    )
    _take_clicked_cell(event)
    _gallery(preds)


def _take_clicked_cell(event) -> None:
    """A click on a confusion-matrix cell sets the gallery's two classes (once per click: the
    selection stays, and the dropdowns must stay free to change)."""
    points = (event or {}).get("selection", {}).get("points", [])
    cell = (points[0].get("y"), points[0].get("x")) if points else None
    if cell == st.session_state.get(_CLICKED) or cell is None or not set(cell) <= set(CLASSES):
        return
    st.session_state[_CLICKED] = cell
    st.session_state["train_cell_true"], st.session_state["train_cell_pred"] = map(CLASSES.index, cell)


def _class_name(index: int | None) -> str:
    return "any class" if index is None else CLASSES[index]


def _gallery(preds: analysis.TestPredictions) -> None:
    options = [None, *range(len(CLASSES))]
    left, right = st.columns(2)
    true = left.selectbox("True class", options, key="train_cell_true", format_func=_class_name)
    predicted = right.selectbox("Predicted as", options, key="train_cell_pred", format_func=_class_name)
    confused = ", ".join(f"{CLASSES[t]} → {CLASSES[p]} ({n})" for t, p, n in preds.most_confused())
    st.caption(f"Click a cell of the confusion matrix, or pick here. Most confused: {confused or 'none'}.")
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
    thumbnails = analysis.thumbnails(images, shown)
    for cell, image, caption in zip(cells(len(shown), 96), thumbnails, captions, strict=True):
        cell.image(image, caption=caption, width=84)  # a cell each: a gap between images


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
    more = row.text_input(  # text, checked like the form's Epochs: never rounded or clamped silently
        "More epochs", value=str(run.config.epochs), key="train_more", width=120, autocomplete="off"
    )
    last_lr = runs.current_lr(run) or run.config.lr  # where a change made while it trained left it
    lr = row.select_slider(
        "Learning rate",
        with_value(LR_VALUES, last_lr),
        value=last_lr,
        key="train_more_lr",
        format_func=lambda v: f"{v:g}",
        width=220,
    )
    processes = _processes_field(row, run)
    clicked = row.button(
        "Continue training from this checkpoint", icon=":material/play_arrow:", key="train_continue"
    )
    if clicked:
        try:
            epochs = parse_number("epochs", more)
            config = run.config.replace(epochs=epochs, lr=float(lr), processes=processes)
            new_id = runs.start(config, init_from=run.checkpoint, wait=True, **learners.start_fields())
        except (StudioError, ValueError) as exc:
            st.error(str(exc))
            return
        st.session_state[SHOWN] = st.session_state[SCROLL_TO] = new_id
        st.rerun()


def _processes_field(row, run: runs.RunInfo) -> int:
    """How many processes continue the run: as many as trained it, where this machine has them (a run
    store copied from a bigger machine offers what this one can); any count loads the same plain weights."""
    try:
        most = ranks.most_processes(run.config.device)
    except StudioError:  # its device is not on this machine: Continue says so in words when clicked
        return run.config.processes
    if most < 2 and run.config.processes == 1:
        return 1  # nothing to choose
    if run.config.processes > most:
        st.caption(
            f"{run.config.processes} processes trained this run; this machine runs at most {most} on "
            f"{run.config.device}, so it continues on {most}."
        )
    return row.selectbox(
        "Processes",
        range(1, most + 1),
        index=min(run.config.processes, most) - 1,
        key="train_more_processes",
        width=110,
        help="Processes that train the continued run together (DistributedDataParallel); the checkpoint "
        "is the same plain model whatever the count.",
    )
