"""Predict: classify your own images, or test-set samples, with a trained or uploaded model."""

import streamlit as st

from core.base.errors import StudioError
from core.data.fashion import dataset_status
from ui import link
from ui.nav import title
from ui.predict import page as predict

heading = title("predict")
st.caption(
    "Ask a trained model what it sees: drop in photos of clothing (or pick test-set images) and get its "
    "top guesses with probabilities, next to the 28×28 grayscale picture the model actually receives."
)

link.notify(link.adopt([predict.K_LINK, predict.INPUT_LINK]))
predict.begin_run()  # what each image costs is remembered; what this run does not show is forgotten
with st.container(border=True):
    loaded = predict.model_section()  # None: images are kept and shown until there is a model

# A wrapping row: in columns, a narrow window squeezed the slider's label onto two lines.
options = st.container(horizontal=True, vertical_alignment="center", gap="large")
k_col, explain_col = options.container(width=240), options.container(width="content")
explain = explain_col.toggle(
    "Show which pixels mattered",
    key="predict_explain",
    help="For the top class: the input gradient from autograd, and Integrated Gradients and Occlusion from "
    "Captum, painted over the 28×28 input.",
)
k = k_col.slider(
    "Classes to show (top-k)",
    min_value=1,
    max_value=10,
    value=3,
    key="predict_k",
    help="How many of the ten classes to list for each image, most likely first.",
)

# on_change="rerun": a tab knows whether it is open, so the camera is asked for only on its own tab.
images_tab, draw_tab, camera_tab, samples_tab = st.tabs(
    list(predict.INPUTS.values()), key=predict.TAB_KEY, on_change="rerun"
)

with images_tab:
    predict.uploads_section(loaded, k, explain)

with draw_tab:
    predict.draw_section(loaded, k, explain)

if camera_tab.open:
    with camera_tab:
        predict.camera_section(loaded, k, explain)

with samples_tab:
    st.caption("Images the model never trained on, with the true label to compare against.")
    status = dataset_status()
    if loaded is None:
        st.info("There is no model to ask yet: train the quick one above, or upload a `model.pth`.")
    elif not status.ready:
        st.error(status.message)
    else:
        try:
            predict.sample_section(loaded, k, explain)
        except StudioError as exc:
            st.error(str(exc))

predict.keep_in_link(heading)
predict.forget_unused()
