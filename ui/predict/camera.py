"""A photo from the camera on the Predict page: it arrives as an upload and goes the same way."""

import streamlit as st

from core.model.checkpoint import LoadedCheckpoint
from ui.predict.upload import render_upload


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
