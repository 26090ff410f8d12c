"""The Predict page's model: a finished run or an uploaded model.pth, or a quick run to train one."""

from pathlib import Path

import streamlit as st

from core import runs
from core.base.errors import BadCheckpoint, RunError, StudioError
from core.data.fashion import dataset_status
from core.model.checkpoint import MAX_CHECKPOINT_BYTES, LoadedCheckpoint
from core.training.config import preset
from ui import learners, link
from ui.cache import checkpoint_from_bytes, checkpoint_from_file
from ui.predict.names import (
    IMAGE_TYPES,
    IMAGE_ZONE,
    MODEL_TYPES,
    MODEL_ZONE,
    display_name,
    suffix,
)
from ui.text import escape_markdown

USABLE = ("finished", "stopped")  # an active run's checkpoint changes every epoch; offer it once it ends
KEEP_UPLOADED_MODELS = 3  # uploaded models kept selectable per session (each holds its weights)
MODEL_KEY = "predict_model"
UPLOADED_KEY = "predict_uploaded_models"  # {file_id: (name, LoadedCheckpoint)}
REFUSED_KEY = "predict_refused_models"  # {file_id: error message}: a refused upload is checked once
QUICK_ERROR_KEY = "predict_quick_error"


def model_section() -> LoadedCheckpoint | None:
    """Finished runs and uploaded model.pth files to choose from; None (with a training offer) if none."""
    pick_col, upload_col = st.columns([3, 2], gap="large")
    with upload_col:
        _model_upload()  # first: a newly loaded upload becomes the selection below
    choices = _model_choices()
    with pick_col:
        if not choices:
            quick_train_offer()
            return None
        link.notify(link.adopt([run_link(choices)]))
        if st.session_state.get(MODEL_KEY) not in choices:
            st.session_state[MODEL_KEY] = best_choice(choices)
        key = st.selectbox(
            "Model",
            list(choices),
            format_func=lambda k: choices[k][0],
            key=MODEL_KEY,
            help="A finished or stopped training run, or a model.pth uploaded on the right.",
        )
        try:
            loaded = _load(choices[key][1])
        except StudioError as exc:
            st.error(str(exc))
            return None
        st.caption(describe_model(loaded))
        return loaded


def run_link(choices: dict) -> link.Param:
    """`?run=<id>`: the run whose model the page shows; a well-formed id must also be a usable run here."""
    as_id = link.run_id("run", MODEL_KEY)

    def read(value: link.Value) -> str:
        key = f"run:{as_id.read(value)}"
        if key not in choices:
            raise link.BadLink(f"run {key[4:]} is not a finished run with a model here.")
        return key

    return link.Param(
        "run", MODEL_KEY, read, write=lambda key: key.removeprefix("run:"), fallback="the best run"
    )


def best_choice(choices: dict) -> str:
    """The run with the best test accuracy (the newest among equals); an upload only if there is no run."""
    scored = [(run.best_test_acc or 0.0, key) for key, run in _usable_runs().items() if key in choices]
    return max(scored, key=lambda pair: pair[0])[1] if scored else next(iter(choices))


def _usable_runs() -> dict[str, runs.RunInfo]:
    """{"run:<id>": run} for runs with a checkpoint to load, newest first."""
    return {
        f"run:{run.id}": run
        for run in runs.list_runs()
        if run.status in USABLE and run.checkpoint is not None
    }


def _model_choices() -> dict[str, tuple[str, Path | LoadedCheckpoint]]:
    """{key: (label, a run's checkpoint file or an uploaded model)}: runs newest first, then uploads."""
    choices: dict[str, tuple[str, Path | LoadedCheckpoint]] = {}
    for key, run in _usable_runs().items():
        choices[key] = (_run_label(run), run.checkpoint)
    for file_id, (name, loaded) in st.session_state.get(UPLOADED_KEY, {}).items():
        choices[f"upload:{file_id}"] = (f"Uploaded · {display_name(name)}", loaded)
    return choices


def _run_label(run: runs.RunInfo) -> str:
    model = run.config.model.upper() if run.config else "?"
    # The accuracy first: a narrow window cuts the end of the label off.
    accuracy = f"{run.best_test_acc:.1%} on test" if run.best_test_acc is not None else "not evaluated"
    return f"{accuracy} · {model} · run {run.id} · {run.status}"


def _load(choice: Path | LoadedCheckpoint) -> LoadedCheckpoint:
    if isinstance(choice, LoadedCheckpoint):
        return choice
    return _run_checkpoint(choice)


def _run_checkpoint(path: Path) -> LoadedCheckpoint:
    # The cache key holds the mtime, so the model is loaded once per saved file, not once per rerun.
    try:
        mtime_ns = path.stat().st_mtime_ns
    except OSError as exc:
        raise BadCheckpoint(f"the run's checkpoint {path} cannot be read: {exc.strerror or exc}") from exc
    return checkpoint_from_file(str(path), mtime_ns)


def describe_model(loaded: LoadedCheckpoint) -> str:
    params = sum(p.numel() for p in loaded.model.parameters())
    parts = [f"{loaded.model_name.upper()} · {params:,} parameters"]
    metrics = (loaded.meta or {}).get("metrics") or {}
    if isinstance(metrics.get("test_acc"), int | float):
        parts.append(f"test accuracy {metrics['test_acc']:.1%} after epoch {metrics.get('epoch', '?')}")
    if loaded.meta is None:
        parts.append("uploaded weights, architecture recognised from their shapes")
    return " · ".join(parts)


def _model_upload() -> None:
    """A tutorial-style model.pth, checked once per file; a refused one leaves the selection alone."""
    # The browser refuses bigger files itself; above the server's own limit it would get a bare 413.
    limit_mb = min(MAX_CHECKPOINT_BYTES // 2**20, st.get_option("server.maxUploadSize"))
    upload = st.file_uploader(
        MODEL_ZONE,  # any kind: a wrong one gets a sentence, not the widget's bare red mark
        max_upload_size=limit_mb,
        key="predict_model_file",
        help="Saved with `torch.save(model.state_dict(), 'model.pth')` as in the tutorial, "
        f"at most {limit_mb} MB. Loaded safely: nothing in the file is run.",
    )
    if upload is None:
        return
    uploaded = st.session_state.setdefault(UPLOADED_KEY, {})
    refused = st.session_state.setdefault(REFUSED_KEY, {})
    if upload.file_id not in uploaded and upload.file_id not in refused:
        try:
            loaded = load_uploaded_model(upload.name, upload.getvalue())
        except StudioError as exc:
            refused[upload.file_id] = str(exc)
        else:
            uploaded[upload.file_id] = (upload.name, loaded)
            while len(uploaded) > KEEP_UPLOADED_MODELS:
                uploaded.pop(next(iter(uploaded)))
            st.session_state[MODEL_KEY] = f"upload:{upload.file_id}"  # the new model takes over
    if upload.file_id in refused:
        st.error(refused[upload.file_id])
        st.caption("This file was not loaded; the model in use has not changed.")


def load_uploaded_model(name: str, data: bytes) -> LoadedCheckpoint:
    """Check the size ourselves (the widget's limit is the browser's), then load through the cache."""
    shown = escape_markdown(display_name(name))  # the name goes into messages rendered as markdown
    kind = suffix(name)
    if kind and kind not in MODEL_TYPES:  # no suffix: the bytes decide
        what = "an image" if kind in IMAGE_TYPES else f"a .{escape_markdown(display_name(kind, 12))} file"
        raise BadCheckpoint(
            f"{shown} is {what}, not a model: this drop zone takes a .pth or .pt file saved with "
            f"`torch.save(model.state_dict(), 'model.pth')`. Photos go in “{IMAGE_ZONE}” below."
        )
    if len(data) > MAX_CHECKPOINT_BYTES:
        raise BadCheckpoint(
            f"{shown} is {len(data) / 2**20:.1f} MB, over the {MAX_CHECKPOINT_BYTES / 2**20:.0f} MB "
            "limit for checkpoints: a FashionMNIST model's state_dict is a few MB"
        )
    return checkpoint_from_bytes(data, shown)


# ---- no model yet: a quick training run ------------------------------------------------------------


def quick_train_offer() -> None:
    """Instead of an error: one click trains a model; the page offers it when the run ends."""
    st.info(
        "There is no trained model yet. Train a quick one here (the tutorial's MLP, one epoch: "
        "under a minute on a CPU) or upload a tutorial `model.pth` on the right. Photos you drop "
        "below are kept, and classified as soon as a model is ready."
    )
    active = runs.active_run()
    if active is not None:
        training_progress(active.id)
    else:
        status = dataset_status()
        if not status.ready:
            st.error(status.message)
        else:
            st.button(
                "Train a quick model",
                icon=":material/rocket_launch:",
                type="primary",
                key="predict_quick_train",
                on_click=_start_quick_run,  # a callback: a click counts even if another run began meanwhile
                help="The recommended preset (AdamW, cosine schedule) for one epoch.",
            )
        _last_failure()
    error = st.session_state.pop(QUICK_ERROR_KEY, None)
    if error:
        st.error(error)


def _start_quick_run() -> None:
    try:
        # Refused, not queued, when a run trains: one quick model is what an empty store needs (ui.learners:
        # on a shared server it is this browser's).
        runs.start(preset("recommended", epochs=1), **learners.start_fields())
    except StudioError as exc:  # e.g. RunError: a run is already training on this device
        st.session_state[QUICK_ERROR_KEY] = str(exc)


def _last_failure() -> None:
    latest = runs.list_runs()[:1]
    if latest and latest[0].status == "failed":
        st.warning(f"The last training run ({latest[0].id}) failed: {latest[0].error}")


@st.fragment(run_every=2)
def training_progress(run_id: str) -> None:
    """Polls the training run; when it ends, the whole page reruns and offers its model."""
    try:
        run = runs.get_run(run_id)
    except RunError:
        run = None
    if run is None or not run.active:
        st.rerun()
    where = runs.progress(run)
    epochs = run.config.epochs if run.config else "?"
    st.progress(
        where.fraction,
        text=f"Training run {run.id}: epoch {where.epoch}/{epochs} · {where.fraction:.0%}",
    )
    st.caption("Its model will be offered here as soon as it finishes: no need to reload the page.")
