"""A photo from the camera on the Predict page: it arrives as an upload and goes the same way, and is
kept in the session (the camera widget forgets it when its tab or page is left) until Clear."""

import streamlit as st

from core.model.checkpoint import LoadedCheckpoint
from core.model.predict import MAX_IMAGE_BYTES
from ui.predict.upload import render_upload

CAMERA_KEY = "predict_camera"
SHOT_KEY = "predict_camera_shot"  # (file id, bytes) of the last photo taken, kept across page switches


def camera_section(loaded: LoadedCheckpoint | None, k: int, explain: bool = False) -> None:
    """A photo from the camera, classified the way an uploaded photo is (it arrives as an upload)."""
    live = CAMERA_KEY in st.session_state  # False once the tab or the page was left: the widget forgot
    photo = st.camera_input(
        "Hold a piece of clothing up to the camera",
        key=CAMERA_KEY,
        help="One item against a plain wall works best. The photo stays in this browser session.",
    )
    data = kept_shot(photo, live)
    if data is None:
        st.caption("Take a photo above: it goes through the same steps as a dropped image.")
        return
    if photo is None:
        row = st.container(horizontal=True, vertical_alignment="center")
        row.caption("The photo you took earlier in this session:")
        row.button("Clear photo", icon=":material/delete:", key="predict_camera_clear", on_click=clear_shot)
    render_upload("camera photo", data, loaded, k, position="camera", explain=explain)


def kept_shot(photo, live: bool) -> bytes | None:
    """The photo to show: the one just taken (kept, if not too large to read), else the kept one; the
    camera's own Clear (a live widget with no photo) forgets it."""
    if photo is not None:
        data = photo.getvalue()
        st.session_state[SHOT_KEY] = (photo.file_id, data) if len(data) <= MAX_IMAGE_BYTES else None
        return data
    if live:
        st.session_state.pop(SHOT_KEY, None)
    shot = st.session_state.get(SHOT_KEY)
    return shot[1] if shot else None


def clear_shot() -> None:
    st.session_state.pop(SHOT_KEY, None)
