"""The drawing on the Predict page: the canvas's raw data URL, decoded only by core.model.predict's
bounded loader, then classified like any image. The drawing is kept in the session (the canvas forgets
it when the page is left) and drawn again on return, until Clear."""

import json
from collections.abc import Mapping

import streamlit as st
from PIL import Image

from core.base.errors import BadImage, StudioError
from core.model.checkpoint import LoadedCheckpoint
from core.model.predict import load_data_url, prepare_image
from ui.layout import side_by_side
from ui.predict.answers import (
    Prepped,
    answer,
    content_key,
    prepared_once,
    prepped,
    render_attributions,
    topk_figure,
)

CANVAS_PX = 280  # the drawing canvas: 28 px x 10
DRAWN_INPUT_PX = 168  # the drawing's 28x28 input beside it: 28 px x 6
# What a drawing may be: the canvas's PNG is 280 x 280 (times the screen's pixel ratio, at most 4 here),
# a few KB of strokes. Anything bigger was not made by this canvas.
DRAWING_MAX_BYTES = 2 * 2**20
DRAWING_MAX_PIXELS = 1_300_000  # 1140 x 1140: the canvas at up to 4 screen pixels a pixel
INK, PAPER = "#000000", "#FFFFFF"  # pen on paper; the eraser draws in the paper's colour
CANVAS_KEY = "predict_canvas"
_CANVAS_GENERATION = "predict_canvas_generation"  # a new number, a new canvas: how Clear empties it
DRAWING_KEY = "predict_drawing"  # {"raw": the strokes (Fabric.js JSON), "data": the PNG data URL}
_INITIAL = "predict_drawing_initial"  # the strokes a canvas shown afresh starts from
# What is kept: the data URL of a PNG within DRAWING_MAX_BYTES (base64: 4 characters for 3 bytes), and
# strokes whose JSON is at most this long (a stroke of freehand is a few KB).
MAX_URL_CHARS = DRAWING_MAX_BYTES * 4 // 3 + 200
MAX_STROKES_CHARS = 2_000_000


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
    if key not in st.session_state:  # a canvas shown afresh (a first visit, or back from another page)
        st.session_state[_INITIAL] = (st.session_state.get(DRAWING_KEY) or {}).get("raw")
    try:
        canvas(
            **tool,
            initial_drawing=st.session_state.get(_INITIAL),  # the same for as long as this canvas is shown
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
    sent = drawing.get("data") if isinstance(drawing, Mapping) else None
    if sent is None:  # nothing drawn on this canvas yet: the drawing kept from before, if any
        return (st.session_state.get(DRAWING_KEY) or {}).get("data")
    keep_drawing(drawing.get("raw"), sent)
    return sent


def keep_drawing(raw: object, data: object) -> None:
    """Keep the drawing for the canvas to show again after a page switch, if it is of a bounded size;
    otherwise forget the one kept before."""
    strokes = json.dumps(raw) if isinstance(raw, Mapping) else ""
    if isinstance(data, str) and len(data) <= MAX_URL_CHARS and 0 < len(strokes) <= MAX_STROKES_CHARS:
        st.session_state[DRAWING_KEY] = {"raw": raw, "data": data}
    else:
        st.session_state.pop(DRAWING_KEY, None)


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
    st.session_state.pop(DRAWING_KEY, None)


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
