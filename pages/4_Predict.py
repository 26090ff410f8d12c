"""Predict: classify your own images, or test-set samples, with a trained or uploaded model."""

import streamlit as st

from core.data import dataset_status
from core.errors import StudioError
from ui import link, predict
from ui.nav import title

heading = title("predict")
st.caption(
    "Ask a trained model what it sees: drop in photos of clothing (or pick test-set images) and get its "
    "top guesses with probabilities, next to the 28×28 grayscale picture the model actually receives."
)

link.notify(link.adopt([predict.K_LINK, predict.INPUT_LINK]))
with st.container(border=True):
    loaded = predict.model_section()
model = loaded.model if loaded is not None else None  # None: images are kept and shown until there is one

k_col, explain_col = st.columns([1, 2], vertical_alignment="center")
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
    uploads = st.file_uploader(
        predict.IMAGE_ZONE,
        accept_multiple_files=True,  # any kind: a wrong one gets a sentence, not the widget's bare red mark
        max_upload_size=predict.MAX_IMAGE_MB,  # the browser's limit; ui.predict checks the bytes again
        key="predict_images",
        help=f"{predict.IMAGE_KINDS}. One item on a plain background works best, like FashionMNIST.",
    )
    predict.forget_images({upload.file_id for upload in uploads})
    if not uploads:
        st.info(
            "Drop one or more images above. Each is turned into a 28×28 grayscale picture the way "
            "FashionMNIST was made (inverted if the background is light, cropped, centred) before the "
            "model sees it."
        )
    summary = st.container()
    results = []
    for position, upload in enumerate(uploads):
        data = upload.getvalue()
        result = predict.render_upload(
            upload.name, data, model, k, file_id=upload.file_id, position=position, explain=explain
        )
        results.append((upload.name, result))
    if len(results) > 1 and model is not None:
        with summary:
            predict.render_summary(results, k)

with draw_tab:
    predict.draw_section(model, k, explain)

if camera_tab.open:
    with camera_tab:
        predict.camera_section(model, k, explain)

with samples_tab:
    st.caption("Images the model never trained on, with the true label to compare against.")
    status = dataset_status()
    if model is None:
        st.info("There is no model to ask yet: train the quick one above, or upload a `model.pth`.")
    elif not status.ready:
        st.error(status.message)
    else:
        try:
            predict.sample_section(model, k, explain)
        except StudioError as exc:
            st.error(str(exc))

predict.keep_in_link(heading)
