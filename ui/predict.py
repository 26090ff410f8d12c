"""Streamlit pieces of the Predict page: picking a model, one uploaded image's result, test-set samples."""

import io
import random
import re
import string
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
import torch
from PIL import Image, ImageDraw
from torch import nn

from core import runs
from core.attribution import METHODS, attribute, overlay
from core.checkpoint import MAX_CHECKPOINT_BYTES, LoadedCheckpoint
from core.data import CLASSES, dataset_status
from core.errors import BadCheckpoint, BadImage, RunError, StudioError
from core.predict import MAX_IMAGE_BYTES, SIZE, Prediction, Prepared, predict, prepare
from core.train import preset
from ui import link
from ui.cache import checkpoint_from_bytes, checkpoint_from_file, split_tensors
from ui.layout import cells, side_by_side

IMAGE_TYPES = ["png", "jpg", "jpeg", "webp", "bmp", "gif"]
IMAGE_KINDS = "PNG, JPEG, WebP, BMP or GIF images"  # what the image drop zone takes, in words
MODEL_TYPES = ["pth", "pt"]
MODEL_ZONE = "…or upload a model.pth"  # the model drop zone's label
IMAGE_ZONE = "Drop images of clothing here"  # the image drop zone's label
USABLE = ("finished", "stopped")  # an active run's checkpoint changes every epoch; offer it once it ends
MAX_IMAGE_MB = MAX_IMAGE_BYTES // 2**20  # shown by the image uploader, which the browser enforces
SHOWN_PX = 280  # previews and the 28x28 input (x10) are shown this large
NAME_CHARS = 60  # longer file names are shortened in the middle for display
KEEP_UPLOADED_MODELS = 3  # uploaded models kept selectable per session (each holds its weights)
PRIMARY = "#D9480F"  # .streamlit/config.toml's primaryColor
MUTED = "#C9C4BC"
ORDINALS = ("Top-1", "2nd", "3rd", *(f"{n}th" for n in range(4, 11)))
TINY_PX = 16  # an item smaller than this a side is blown up from next to nothing: say so
WIDE = 1.6  # an item this much wider than tall may be a garment lying on its side
CANVAS_PX = 280  # the drawing canvas: 28 px x 10
DRAWN_INPUT_PX = 168  # the drawing's 28x28 input beside it: 28 px x 6
INK, PAPER = "#000000", "#FFFFFF"  # pen on paper; the eraser draws in the paper's colour

MODEL_KEY = "predict_model"
UPLOADED_KEY = "predict_uploaded_models"  # {file_id: (name, LoadedCheckpoint)}
REFUSED_KEY = "predict_refused_models"  # {file_id: error message}: a refused upload is checked once
PREPARED_KEY = "predict_prepared"  # {file_id: Prepped | error message} for the images now uploaded
QUICK_ERROR_KEY = "predict_quick_error"
SAMPLE_KEY = "predict_sample"
TAB_KEY = "predict_input"  # which input tab is open
CANVAS_KEY = "predict_canvas"
# The input tabs: URL name -> tab label (a tab's value is its label).
INPUTS = {
    "upload": ":material/upload: Your images",
    "draw": ":material/draw: Draw",
    "camera": ":material/photo_camera: Camera",
    "samples": ":material/casino: Test-set samples",
}
ANY_CLASS = -1  # not None: a selectbox holding None reads as "nothing chosen" and offers to clear it

_MARKDOWN_SPECIAL = re.compile(f"([{re.escape(string.punctuation)}])")


# ---- names ------------------------------------------------------------------------------------------


def display_name(name: str, limit: int = NAME_CHARS) -> str:
    """A file name fit to show: control and direction-override characters replaced, long ones shortened."""
    clean = "".join("�" if unicodedata.category(ch).startswith("C") else ch for ch in name) or "(no name)"
    if len(clean) <= limit:
        return clean
    tail = 12  # keeps the extension and the end, where names usually differ
    return clean[: limit - tail - 1] + "…" + clean[-tail:]


def escape_markdown(text: str) -> str:
    """Backslash-escape every ASCII punctuation mark, so markdown shows `text` literally."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


# ---- choosing a model --------------------------------------------------------------------------------


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
        link.notify(link.adopt([_run_link(choices)]))
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


def _run_link(choices: dict) -> link.Param:
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


K_LINK = link.whole("k", "predict_k", 1, 10, fallback="the top 3")
INPUT_LINK = link.choice("input", TAB_KEY, INPUTS, fallback="your images")


def keep_in_link(where) -> None:
    """The run shown, k and the open tab in the URL; an uploaded model.pth cannot travel in a link."""
    shown = st.session_state.get(MODEL_KEY)
    run = shown if isinstance(shown, str) and shown.startswith("run:") else None
    link.keep([_run_link({}), K_LINK, INPUT_LINK], {MODEL_KEY: run}, where)


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
    upload = st.file_uploader(
        MODEL_ZONE,  # any kind: a wrong one gets a sentence, not the widget's bare red mark
        max_upload_size=MAX_CHECKPOINT_BYTES // 2**20,
        key="predict_model_file",
        help="Saved with `torch.save(model.state_dict(), 'model.pth')` as in the tutorial, "
        f"at most {MAX_CHECKPOINT_BYTES // 2**20} MB. Loaded safely: nothing in the file is run.",
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
    kind = _suffix(name)
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


def _suffix(name: str) -> str:
    return Path(name).suffix.lower().lstrip(".")


def check_image_name(name: str) -> None:
    """Refuse, with what this drop zone takes, a file whose name says it is not an image.

    A name without a suffix is left to the decoder: the bytes decide."""
    kind = _suffix(name)
    if not kind or kind in IMAGE_TYPES:
        return
    if kind in MODEL_TYPES:
        raise BadImage(
            f"this is a model file: drop it on “{MODEL_ZONE}” above; this drop zone takes {IMAGE_KINDS}."
        )
    shown = escape_markdown(display_name(kind, limit=12))  # shown as markdown by st.error
    raise BadImage(f"a .{shown} file is not an image: this drop zone takes {IMAGE_KINDS}.")


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
        runs.start(preset("recommended", epochs=1))
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


# ---- uploaded images ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prepped:
    """What one uploaded image shows and feeds the model; small, so it can live in session state."""

    preview: Image.Image  # the upload, upright, about SHOWN_PX, with the crop box drawn
    model_view: Image.Image  # the 28x28 input, upscaled nearest-neighbour
    tensor: torch.Tensor  # (1, 1, 28, 28) float32, what the model gets
    steps: str  # what preprocessing did, in words
    hints: tuple[str, ...] = ()  # why the answer may mislead: a tiny image, an item lying on its side


def prepare_upload(data: bytes) -> Prepped:
    """Decode and preprocess one upload; anything unusable raises BadImage."""
    if len(data) > MAX_IMAGE_BYTES:  # before any parsing; the widget's own limit is the browser's
        raise BadImage(
            f"image is too large ({len(data) / 2**20:.1f} MB; the limit is {MAX_IMAGE_BYTES / 2**20:.0f} MB)"
        )
    prepared = prepare(data)
    return Prepped(
        _preview(prepared),
        upscale(prepared.input_image()),
        prepared.tensor,
        _steps(prepared),
        hints(prepared),
    )


def hints(prepared: Prepared) -> tuple[str, ...]:
    """What makes this image a poor question for a model trained on FashionMNIST, in words."""
    left, top, right, bottom = prepared.crop_box or (0, 0, *prepared.original.size)
    width, height = right - left, bottom - top
    found = []
    if max(prepared.original.size) < TINY_PX:
        size = "×".join(map(str, prepared.original.size))
        found.append(f"The model sees a 28×28 picture; this one is {size}, so the answer means little.")
    elif max(width, height) < TINY_PX:
        found.append(f"The item is only {width}×{height} pixels, blown up to 28×28: the answer means little.")
    if width >= WIDE * height:
        found.append(
            f"The item is {width / height:.1f}× wider than tall. Shoes and bags are, but FashionMNIST's "
            "clothes all stand upright: if this one lies on its side, turn the picture by 90°."
        )
    return tuple(found)


def upscale(image: Image.Image, size: int = SHOWN_PX) -> Image.Image:
    """Blow a small image up by a whole factor, nearest-neighbour, so each pixel stays a crisp square."""
    factor = max(1, size // max(image.size))
    return image.resize((image.width * factor, image.height * factor), Image.Resampling.NEAREST)


def _preview(prepared: Prepared) -> Image.Image:
    original = prepared.original
    try:  # shrink first: converting a 12-megapixel photo to RGB costs more than the prediction itself
        shown = _shrink(original).convert("RGBA" if original.has_transparency_data else "RGB")
    except (ValueError, OSError):  # a mode Pillow cannot resize or turn into RGB: show the input instead
        return upscale(prepared.input_image())
    if max(shown.size) < SHOWN_PX:
        shown = upscale(shown)
    if prepared.crop_box is not None:
        scale = shown.width / original.width
        box = [round(v * scale) for v in prepared.crop_box]
        ImageDraw.Draw(shown).rectangle(box, outline=PRIMARY, width=3)
    return shown


def _shrink(image: Image.Image) -> Image.Image:
    if max(image.size) <= SHOWN_PX:
        return image
    scale = SHOWN_PX / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.BOX, reducing_gap=2.0)


def _steps(prepared: Prepared) -> str:
    if prepared.crop_box is None and not prepared.inverted and prepared.original.size == (SIZE, SIZE):
        return "Already a 28×28 image on a dark background, like FashionMNIST: used as it is."
    steps = ["turned to grayscale"]
    if prepared.inverted:
        steps.append("inverted (light background → dark, as in FashionMNIST)")
    if prepared.crop_box is not None:
        steps.append("cropped to the item (orange box)")
    steps.append("padded square and shrunk to 28×28")
    return "Preprocessing: " + ", ".join(steps) + "."


def _prepared(file_id: str | None, name: str, data: bytes) -> Prepped:
    """prepare_upload, remembered per uploaded file so changing k (or a model arriving) does not decode
    photos again."""
    if file_id is None:
        check_image_name(name)
        return prepare_upload(data)
    memo = st.session_state.setdefault(PREPARED_KEY, {})
    if file_id not in memo:
        try:
            check_image_name(name)
            memo[file_id] = prepare_upload(data)
        except BadImage as exc:
            memo[file_id] = str(exc)
    result = memo[file_id]
    if isinstance(result, str):
        raise BadImage(result)
    return result


def forget_images(keep: set[str]) -> None:
    """Drop remembered images the uploader no longer holds."""
    memo = st.session_state.get(PREPARED_KEY, {})
    for file_id in set(memo) - keep:
        del memo[file_id]


def render_upload(
    name: str,
    data: bytes,
    model: nn.Module | None,
    k: int,
    *,
    file_id: str | None = None,
    position: int = 0,
    explain: bool = False,
) -> list[Prediction] | str | None:
    """One image in its own box: original, the 28x28 input, the top-k chart. Returns the predictions,
    the error message shown in their place, or None when there is no model yet to ask."""
    with st.container(border=True):
        st.text(f"File: {display_name(name)}")  # plain text: a file name is never markdown or a path
        try:
            prepped = _prepared(file_id, name, data)
            predictions = predict(model, prepped.tensor, k) if model is not None else None
        except StudioError as exc:
            st.error(f"Cannot classify this file: {exc}")
            return str(exc)
        image_col, input_col, chart_col = st.columns([1, 1, 2], gap="medium")
        image_col.image(prepped.preview, caption="Your image")
        input_col.image(prepped.model_view, caption="What the model sees (28×28)")
        with chart_col:
            if predictions is None:
                st.info(
                    "No model to ask yet. Train the quick one above (about a minute) or upload a "
                    "`model.pth`: the prediction appears here when it is ready, without dropping this again."
                )
            else:
                best = predictions[0]
                st.markdown(f"Top-1: **{best.label}** · {best.prob:.1%}")
                chart = topk_figure(predictions)
                st.plotly_chart(chart, width="stretch", key=f"predict_upload_chart_{position}")
        st.caption(prepped.steps)
        for hint in prepped.hints:
            st.caption(f":orange[:material/info:] {hint}")
        if explain and predictions is not None:
            render_attributions(model, prepped.tensor, predictions[0])
    return predictions


# ---- drawing and the camera ---------------------------------------------------------------------------


def draw_section(model: nn.Module | None, k: int, explain: bool = False) -> None:
    """A canvas to sketch on; each finished stroke sends the drawing through the same path as an upload."""
    tools = st.container(horizontal=True, vertical_alignment="bottom")
    tool = tools.segmented_control(
        "Tool", ["Pen", "Eraser"], default="Pen", required=True, key="predict_draw_tool", width="content"
    )
    brush = tools.slider("Brush size", 4, 48, 20, key="predict_draw_brush", width=220)
    tools.button("Clear", icon=":material/ink_eraser:", key="predict_draw_clear", on_click=_clear_canvas,
                 help="Start again on a blank canvas (undo and redo are above the canvas).")  # fmt: skip
    canvas_col, result_col = side_by_side("predict_draw_result", CANVAS_PX + 4, 420)
    with canvas_col:
        drawing = canvas(
            stroke_width=brush,
            stroke_color=INK if tool == "Pen" else PAPER,
            background_color=PAPER,
            update_streamlit=True,  # sent on mouse or touch up: once per stroke, not on every move
            height=CANVAS_PX,
            width=CANVAS_PX,
            drawing_mode="freedraw",
            return_image_data=True,
            key=f"{CANVAS_KEY}_{st.session_state.get(_CANVAS_GENERATION, 0)}",
        )
        st.caption(
            "Draw dark on white, like a sketch. Undo and redo: the buttons that appear above the canvas "
            "when you point at it (on a touch screen, tap it)."
        )
    pixels = drawing.image_data
    if pixels is None or _blank(pixels):
        result_col.info("Sketch a piece of clothing on the canvas: trousers, a shirt, a shoe, a bag…")
        return
    try:
        prepped = prepare_upload(_png(pixels))
    except StudioError as exc:
        result_col.error(f"Cannot classify this drawing: {exc}")
        return
    with result_col:
        input_col, chart_col = side_by_side("predict_draw_answer", DRAWN_INPUT_PX, 240)
        input_col.image(prepped.model_view, caption="What the model sees (28×28)", width=DRAWN_INPUT_PX)
        with chart_col:
            predictions = _answer(model, prepped, k, "predict_draw_chart")
        for hint in prepped.hints:
            st.caption(f":orange[:material/info:] {hint}")
    if explain and predictions is not None:
        render_attributions(model, prepped.tensor, predictions[0])


_CANVAS_GENERATION = "predict_canvas_generation"  # a new number, a new canvas: how Clear empties it


def _clear_canvas() -> None:
    st.session_state[_CANVAS_GENERATION] = st.session_state.get(_CANVAS_GENERATION, 0) + 1


def canvas(**options):
    """streamlit-drawable-canvas's st_canvas. Imported on use: the component registers itself with the
    running Streamlit at import, so importing it elsewhere (a plain test importing this module) fails."""
    from streamlit_drawable_canvas import st_canvas

    return st_canvas(**options)


def _blank(pixels: np.ndarray) -> bool:
    """Nothing drawn (or all of it erased): every pixel the same colour."""
    return bool((pixels == pixels.reshape(-1, pixels.shape[-1])[0]).all())


def _png(pixels: np.ndarray) -> bytes:
    """The canvas's RGBA pixels as a PNG, so a drawing is decoded and checked like any upload."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels, dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def _answer(model: nn.Module | None, prepped: Prepped, k: int, key: str) -> list[Prediction] | None:
    """The top-1 line and the top-k chart, or a word on getting a model first."""
    if model is None:
        st.info("No model to ask yet: train the quick one above, or upload a `model.pth`.")
        return None
    predictions = predict(model, prepped.tensor, k)
    st.markdown(f"Top-1: **{predictions[0].label}** · {predictions[0].prob:.1%}")
    st.plotly_chart(topk_figure(predictions), width="stretch", key=key)
    return predictions


def camera_section(model: nn.Module | None, k: int, explain: bool = False) -> None:
    """A photo from the camera, classified the way an uploaded photo is."""
    photo = st.camera_input(
        "Hold a piece of clothing up to the camera",
        key="predict_camera",
        help="One item against a plain wall works best. The photo stays in this browser session.",
    )
    if photo is None:
        st.caption("Take a photo above: it goes through the same steps as a dropped image.")
        return
    render_upload("camera photo", photo.getvalue(), model, k, position="camera", explain=explain)


ATTRIBUTION_PX = 168  # 28 px x 6


def render_attributions(model: nn.Module, x: torch.Tensor, top: Prediction) -> None:
    """Which pixels mattered for the top class, by each method, over the 28x28 input."""
    st.markdown(f"**Which pixels mattered for “{top.label}”**: orange raised its score, blue lowered it.")
    for cell, (key, method) in zip(cells(len(METHODS), ATTRIBUTION_PX + 40), METHODS.items(), strict=True):
        with cell:
            try:
                heat = attribute(model, x, top.index, key)
            except StudioError as exc:
                st.error(str(exc))
                continue
            picture = Image.fromarray(overlay(x, heat).numpy())
            st.image(upscale(picture, ATTRIBUTION_PX), caption=method.name)
            st.caption(method.meaning)


def summary_table(results: list[tuple[str, list[Prediction] | str]], k: int) -> pd.DataFrame:
    """One row per file: the top-k labels with probabilities in percent; a last column says what went
    wrong with files that could not be classified."""
    columns = ["File"]
    for rank in range(k):
        columns += [ORDINALS[rank], _prob_column(rank)]
    if any(isinstance(result, str) for _name, result in results):
        columns.append("Problem")
    rows = []
    for name, result in results:
        row: dict[str, object] = {"File": display_name(name)}
        if isinstance(result, str):
            row.update({ORDINALS[rank]: "—" for rank in range(k)}, Problem=str(result))
        else:
            for rank, prediction in enumerate(result):
                row[ORDINALS[rank]] = prediction.label
                row[_prob_column(rank)] = round(prediction.prob * 100, 1)
        rows.append(row)
    return pd.DataFrame(rows, columns=columns)


def _prob_column(rank: int) -> str:
    return "Probability" if rank == 0 else f"Probability ({ORDINALS[rank]})"


def render_summary(results: list[tuple[str, list[Prediction] | str]], k: int) -> None:
    table = summary_table(results, k)
    progress = st.column_config.ProgressColumn(format="%.1f%%", min_value=0, max_value=100)
    config: dict[str, object] = {"File": st.column_config.TextColumn(width="medium")}
    config.update({column: progress for column in table.columns if column.startswith("Probability")})
    config["Problem"] = st.column_config.TextColumn(width="large")
    st.dataframe(table, hide_index=True, width="stretch", column_config=config)


def topk_figure(predictions: list[Prediction], truth: int | None = None) -> go.Figure:
    """Horizontal bars, most likely on top; the true class (if known) is marked in its label."""
    ordered = predictions[::-1]  # plotly draws the first category at the bottom
    labels = [p.label + (" (truth)" if p.index == truth else "") for p in ordered]
    colours = [PRIMARY if p is predictions[0] else MUTED for p in ordered]
    figure = go.Figure(
        go.Bar(
            x=[p.prob * 100 for p in ordered],
            y=labels,
            orientation="h",
            marker_color=colours,
            text=[f"{p.prob:.1%}" for p in ordered],
            textposition="outside",
            cliponaxis=False,
            hovertemplate="%{y}: %{x:.1f}%<extra></extra>",
        )
    )
    figure.update_layout(
        title="The most likely class" if len(predictions) == 1 else f"Top-{len(predictions)} classes",
        xaxis={"title": "Probability (%)", "range": [0, 112], "tickvals": [0, 25, 50, 75, 100]},
        yaxis={"automargin": True},
        height=110 + 34 * len(predictions),
        margin={"l": 10, "r": 10, "t": 40, "b": 45},
        showlegend=False,
    )
    return figure


# ---- test-set samples --------------------------------------------------------------------------------


def random_index(labels: torch.Tensor, label: int | None, rng: random.Random) -> int:
    """A random test index, of class `label` when one is given."""
    candidates = torch.arange(len(labels)) if label is None else (labels == label).nonzero().flatten()
    return int(candidates[rng.randrange(len(candidates))])


def _new_sample() -> None:
    st.session_state.pop(SAMPLE_KEY, None)


def sample_section(model: nn.Module, k: int, explain: bool = False) -> None:
    """A test-set image (random, or of one class) with the model's top-k next to the truth."""
    images, labels = split_tensors("test")
    # A wrapping row of content-sized controls: columns squeezed the button to "An…" at 800 px.
    row = st.container(horizontal=True, vertical_alignment="bottom")
    choice = row.selectbox(
        "Class",
        [ANY_CLASS, *range(len(CLASSES))],
        format_func=lambda c: "Any class" if c == ANY_CLASS else CLASSES[c],
        key="predict_sample_class",
        on_change=_new_sample,
        width=220,
    )
    label = None if choice == ANY_CLASS else choice
    row.button("Another sample", icon=":material/casino:", key="predict_next_sample", on_click=_new_sample)
    index = st.session_state.get(SAMPLE_KEY)
    if index is None or (label is not None and int(labels[index]) != label):
        index = random_index(labels, label, random.Random())
        st.session_state[SAMPLE_KEY] = index
    truth = int(labels[index])
    predictions = predict(model, images[index], k)
    image_col, chart_col = st.columns([1, 2], gap="medium")
    image_col.image(upscale(Image.fromarray(images[index].numpy())), caption=f"Test image #{index}")
    with chart_col:
        best = predictions[0]
        verdict = (
            ":green[:material/check_circle: correct]"
            if best.index == truth
            else ":red[:material/cancel: wrong]"
        )
        st.markdown(
            f"Prediction: **{best.label}** · {best.prob:.1%} — truth: **{CLASSES[truth]}** · {verdict}"
        )
        st.plotly_chart(topk_figure(predictions, truth), width="stretch", key="predict_sample_chart")
    if explain:
        render_attributions(model, images[index].float().div(255), predictions[0])
