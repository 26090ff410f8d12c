"""The Predict page's inputs: dropped photos (at most MAX_PHOTOS), a drawing and the camera.

Every one reaches the model through core.model.predict's bounded loader, and its work is remembered by
content (ui.predict.answers), so a rerun redoes none of it.
"""

from collections.abc import Mapping

import streamlit as st
from PIL import Image

from core.base.errors import BadImage, StudioError
from core.model.checkpoint import LoadedCheckpoint
from core.model.predict import MAX_IMAGE_BYTES, Prediction, load_data_url, prepare_image
from ui.layout import side_by_side
from ui.predict.answers import (
    Prepped,
    answer,
    content_key,
    prepare_upload,
    prepared_once,
    prepped,
    render_attributions,
    render_summary,
    topk_figure,
)
from ui.predict.names import (
    IMAGE_KINDS,
    IMAGE_TYPES,
    IMAGE_ZONE,
    MODEL_TYPES,
    MODEL_ZONE,
    display_name,
    suffix,
)
from ui.text import escape_markdown

MAX_IMAGE_MB = MAX_IMAGE_BYTES // 2**20  # shown by the image uploader, which the browser enforces
# Photos classified at a time, per session. Each one's first answer with "which pixels mattered" costs
# about 0.1-0.3 s of server CPU (Integrated Gradients and Occlusion), so 20 keep the wait for a whole
# drop under about 5 s and one user's share of a shared server small; the page shows 20 boxes, already
# more than anyone reads. Later files are named in an error and never read.
MAX_PHOTOS = 20
CANVAS_PX = 280  # the drawing canvas: 28 px x 10
DRAWN_INPUT_PX = 168  # the drawing's 28x28 input beside it: 28 px x 6
# What a drawing may be: the canvas's PNG is 280 x 280 (times the screen's pixel ratio, at most 4 here),
# a few KB of strokes. Anything bigger was not made by this canvas.
DRAWING_MAX_BYTES = 2 * 2**20
DRAWING_MAX_PIXELS = 1_300_000  # 1140 x 1140: the canvas at up to 4 screen pixels a pixel
INK, PAPER = "#000000", "#FFFFFF"  # pen on paper; the eraser draws in the paper's colour
CANVAS_KEY = "predict_canvas"
_CANVAS_GENERATION = "predict_canvas_generation"  # a new number, a new canvas: how Clear empties it


# ---- dropped photos ---------------------------------------------------------------------------------


def uploads_section(loaded: LoadedCheckpoint | None, k: int, explain: bool = False) -> None:
    """The drop zone, then one box per photo (the first MAX_PHOTOS) and, for several, a summary table."""
    uploads = st.file_uploader(
        IMAGE_ZONE,
        accept_multiple_files=True,  # any kind: a wrong one gets a sentence, not the widget's bare red mark
        max_upload_size=MAX_IMAGE_MB,  # the browser's limit; the bytes are checked again here
        key="predict_images",
        help=f"{IMAGE_KINDS}, up to {MAX_PHOTOS} at a time. One item on a plain background works best, "
        "like FashionMNIST.",
    )
    if not uploads:
        st.info(
            "Drop one or more images above. Each is turned into a 28×28 grayscale picture the way "
            "FashionMNIST was made (inverted if the background is light, cropped, centred) before the "
            "model sees it."
        )
    if len(uploads) > MAX_PHOTOS:
        st.error(too_many_photos(len(uploads)))
    summary = st.container()
    results = []
    for position, upload in enumerate(uploads[:MAX_PHOTOS]):  # the rest are never read
        result = render_upload(upload.name, upload.getvalue(), loaded, k, position=position, explain=explain)
        results.append((upload.name, result))
    if len(results) > 1 and loaded is not None:
        with summary:
            render_summary(results, k)


def too_many_photos(count: int) -> str:
    return (
        f"{count} images dropped: this page classifies {MAX_PHOTOS} at a time, so the last "
        f"{count - MAX_PHOTOS} were not read. Remove some (✕ beside each) to classify the others."
    )


def check_image_name(name: str) -> None:
    """Refuse, with what this drop zone takes, a file whose name says it is not an image.

    A name without a suffix is left to the decoder: the bytes decide."""
    kind = suffix(name)
    if not kind or kind in IMAGE_TYPES:
        return
    if kind in MODEL_TYPES:
        raise BadImage(
            f"this is a model file: drop it on “{MODEL_ZONE}” above; this drop zone takes {IMAGE_KINDS}."
        )
    shown = escape_markdown(display_name(kind, limit=12))  # shown as markdown by st.error
    raise BadImage(f"a .{shown} file is not an image: this drop zone takes {IMAGE_KINDS}.")


def _prepared_upload(name: str, data: bytes) -> tuple[str, Prepped]:
    """(content key, what the page shows); the name is checked each time, the bytes once per content."""
    check_image_name(name)
    if len(data) > MAX_IMAGE_BYTES:
        return "", prepare_upload(data)  # refused in words, before the bytes are even hashed
    key = content_key(data)
    return key, prepared_once(key, lambda: prepare_upload(data))


def render_upload(
    name: str,
    data: bytes,
    loaded: LoadedCheckpoint | None,
    k: int,
    *,
    position: int | str = 0,
    explain: bool = False,
) -> list[Prediction] | str | None:
    """One image in its own box: original, the 28x28 input, the top-k chart. Returns the predictions,
    the error message shown in their place, or None when there is no model yet to ask."""
    with st.container(border=True):
        st.text(f"File: {display_name(name)}")  # plain text: a file name is never markdown or a path
        try:
            key, shown = _prepared_upload(name, data)
            found = answer(loaded, key, shown.tensor) if loaded is not None else None
        except StudioError as exc:
            st.error(f"Cannot classify this file: {exc}")
            return str(exc)
        predictions = found.ranking[:k] if found is not None else None
        image_col, input_col, chart_col = st.columns([1, 1, 2], gap="medium")
        image_col.image(shown.preview, caption="Your image")
        input_col.image(shown.model_view, caption="What the model sees (28×28)")
        with chart_col:
            if predictions is None:
                st.info(
                    "No model to ask yet. Train the quick one above (about a minute) or upload a "
                    "`model.pth`: the prediction appears here when it is ready, without dropping this again."
                )
            else:
                st.markdown(f"Top-1: **{predictions[0].label}** · {predictions[0].prob:.1%}")
                chart = topk_figure(predictions)
                st.plotly_chart(chart, width="stretch", key=f"predict_upload_chart_{position}")
        st.caption(shown.steps)
        for hint in shown.hints:
            st.caption(f":orange[:material/info:] {hint}")
        if explain and found is not None:
            render_attributions(loaded, shown.tensor, found)
    return predictions


# ---- drawing ------------------------------------------------------------------------------------------


def draw_section(loaded: LoadedCheckpoint | None, k: int, explain: bool = False) -> None:
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
        try:
            sent = read_canvas(stroke_width=brush, stroke_color=INK if tool == "Pen" else PAPER)
        except BadImage as exc:
            sent = exc
        st.caption(
            "Draw dark on white, like a sketch. Undo and redo: the buttons that appear above the canvas "
            "when you point at it (on a touch screen, tap it)."
        )
    with result_col:
        try:
            drawn = _drawing(sent)
        except StudioError as exc:
            st.error(f"Cannot classify this drawing: {exc}")
            return
        if drawn is None:
            st.info("Sketch a piece of clothing on the canvas: trousers, a shirt, a shoe, a bag…")
            return
        key, shown = drawn
        input_col, chart_col = side_by_side("predict_draw_answer", DRAWN_INPUT_PX, 240)
        input_col.image(shown.model_view, caption="What the model sees (28×28)", width=DRAWN_INPUT_PX)
        with chart_col:
            found = _answer_drawing(loaded, key, shown, k)
        for hint in shown.hints:
            st.caption(f":orange[:material/info:] {hint}")
    if explain and found is not None:
        render_attributions(loaded, shown.tensor, found)


def read_canvas(**tool) -> object:
    """The drawing as the browser sent it: the raw value, normally a PNG data URL; None if none yet.

    The component's own CanvasResult.image_data would decode whatever arrives, of any size, before any
    check of ours; its value is read here instead and decoded only by core.model.predict.load_data_url."""
    key = f"{CANVAS_KEY}_{st.session_state.get(_CANVAS_GENERATION, 0)}"
    try:
        canvas(
            **tool,
            background_color=PAPER,
            update_streamlit=True,  # sent on mouse or touch up: once per stroke, not on every move
            height=CANVAS_PX,
            width=CANVAS_PX,
            drawing_mode="freedraw",
            return_image_data=True,  # asks the browser for the PNG; the result's decoder is never used
            key=key,
        )
    except (AttributeError, KeyError, TypeError) as exc:  # st_canvas unpacking a value of another shape
        raise BadImage("the canvas sent something that is not a drawing; click Clear and draw again") from exc
    state = st.session_state.get(key)
    drawing = state.get("drawing") if isinstance(state, Mapping) else None
    return drawing.get("data") if isinstance(drawing, Mapping) else None


def _drawing(sent: object) -> tuple[str, Prepped] | None:
    """(content key, what the page shows) for the drawing sent; None while the canvas is blank."""
    if isinstance(sent, BadImage):
        raise sent
    if sent is None:
        return None
    image = load_data_url(sent, max_bytes=DRAWING_MAX_BYTES, max_pixels=DRAWING_MAX_PIXELS)
    if _blank(image):
        return None
    key = "drawing:" + content_key(sent.encode())  # load_data_url checked its length
    return key, prepared_once(key, lambda: prepped(prepare_image(image)))


def _answer_drawing(loaded: LoadedCheckpoint | None, key: str, shown: Prepped, k: int):
    """The top-1 line and the top-k chart, or a word on getting a model first."""
    if loaded is None:
        st.info("No model to ask yet: train the quick one above, or upload a `model.pth`.")
        return None
    found = answer(loaded, key, shown.tensor)
    predictions = found.ranking[:k]
    st.markdown(f"Top-1: **{predictions[0].label}** · {predictions[0].prob:.1%}")
    st.plotly_chart(topk_figure(predictions), width="stretch", key="predict_draw_chart")
    return found


def _clear_canvas() -> None:
    st.session_state[_CANVAS_GENERATION] = st.session_state.get(_CANVAS_GENERATION, 0) + 1


def canvas(**options):
    """streamlit-drawable-canvas's st_canvas. Imported on use: the component registers itself with the
    running Streamlit at import, so importing it elsewhere (a plain test importing this module) fails."""
    from streamlit_drawable_canvas import st_canvas

    return st_canvas(**options)


def _blank(image: Image.Image) -> bool:
    """Nothing drawn (or all of it erased): every band holds one value, so every pixel one colour."""
    bands = image.getextrema()
    bands = bands if isinstance(bands[0], tuple) else (bands,)  # one band gives (low, high) alone
    return all(low == high for low, high in bands)


# ---- the camera ---------------------------------------------------------------------------------------


def camera_section(loaded: LoadedCheckpoint | None, k: int, explain: bool = False) -> None:
    """A photo from the camera, classified the way an uploaded photo is (it arrives as an upload)."""
    photo = st.camera_input(
        "Hold a piece of clothing up to the camera",
        key="predict_camera",
        help="One item against a plain wall works best. The photo stays in this browser session.",
    )
    if photo is None:
        st.caption("Take a photo above: it goes through the same steps as a dropped image.")
        return
    render_upload("camera photo", photo.getvalue(), loaded, k, position="camera", explain=explain)
