"""Photos dropped on the Predict page (at most MAX_PHOTOS a session), and any photo as an upload (the
camera's too): each reaches the model through core.model.predict's bounded loader, its work remembered
by content (ui.predict.answers)."""

import streamlit as st

from core.base.errors import BadImage, StudioError
from core.model.checkpoint import LoadedCheckpoint
from core.model.predict import MAX_IMAGE_BYTES, Prediction
from ui.predict.answers import (
    Prepped,
    answer,
    content_key,
    prepare_upload,
    prepared_once,
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


KEPT_KEY = "predict_photos"  # {file id: (name, bytes)}: the photos shown, kept across page switches
SEEN_KEY = "predict_photos_seen"  # the file ids the drop zone held in its last run
_GENERATION = "predict_images_generation"  # a new number, a new drop zone: how Clear empties it


def uploads_section(loaded: LoadedCheckpoint | None, k: int, explain: bool = False) -> None:
    """The drop zone, then one box per photo (the first MAX_PHOTOS) and, for several, a summary table.

    Streamlit forgets a drop zone's files when its page is left; the photos are kept in the session
    (KEPT_KEY) and shown again on return, until Clear."""
    key = uploader_key()
    live = key in st.session_state  # False after a page switch: Streamlit dropped the drop zone's files
    uploads = st.file_uploader(
        IMAGE_ZONE,
        accept_multiple_files=True,  # any kind: a wrong one gets a sentence, not the widget's bare red mark
        max_upload_size=MAX_IMAGE_MB,  # the browser's limit; the bytes are checked again here
        key=key,
        help=f"{IMAGE_KINDS}, up to {MAX_PHOTOS} at a time. One item on a plain background works best, "
        "like FashionMNIST.",
    )
    photos, unread = kept_photos(uploads, live)
    if not photos:
        st.info(
            "Drop one or more images above. Each is turned into a 28×28 grayscale picture the way "
            "FashionMNIST was made (inverted if the background is light, cropped, centred) before the "
            "model sees it."
        )
    else:
        _kept_note(sum(file_id not in {u.file_id for u in uploads} for file_id, _ in photos))
    if unread:
        st.error(too_many_photos(len(photos) + unread))
    summary = st.container()
    results = []
    for position, (_file_id, (name, data)) in enumerate(photos):
        result = render_upload(name, data, loaded, k, position=position, explain=explain)
        results.append((name, result))
    if len(results) > 1 and loaded is not None:
        with summary:
            render_summary(results, k)


def uploader_key() -> str:
    """The drop zone's widget key; the first keeps the plain name, each Clear makes a new one."""
    generation = st.session_state.get(_GENERATION, 0)
    return "predict_images" if generation == 0 else f"predict_images_{generation}"


def kept_photos(uploads: list, live: bool) -> tuple[list[tuple[str, tuple[str, bytes]]], int]:
    """The photos to show, (file id, (name, bytes)) in the order they came, at most MAX_PHOTOS; and how
    many dropped files were left unread. A file removed from a live drop zone (its ✕) is forgotten; one
    too large to read is shown (refused) but not kept."""
    kept = st.session_state.setdefault(KEPT_KEY, {})
    ids = [upload.file_id for upload in uploads]
    if live:
        for gone in set(st.session_state.get(SEEN_KEY, ())) - set(ids):
            kept.pop(gone, None)
    st.session_state[SEEN_KEY] = ids
    photos, unread = list(kept.items()), 0
    for upload in uploads:
        if upload.file_id in kept:
            continue
        if len(photos) >= MAX_PHOTOS:
            unread += 1  # never read
            continue
        data = upload.getvalue()
        if len(data) <= MAX_IMAGE_BYTES:
            kept[upload.file_id] = (upload.name, data)
        photos.append((upload.file_id, (upload.name, data)))
    return photos, unread


def _kept_note(away: int) -> None:
    row = st.container(horizontal=True, vertical_alignment="center")
    if away:
        row.caption(
            f"{away} photo{'s' if away > 1 else ''} kept from earlier in this session "
            f"({'they are' if away > 1 else 'it is'} no longer listed in the drop zone)."
        )
    row.button(
        "Clear photos",
        icon=":material/delete_sweep:",
        key="predict_photos_clear",
        on_click=clear_photos,
        help="Forget every photo on this page; they are kept until then, across page switches.",
    )


def clear_photos() -> None:
    st.session_state[KEPT_KEY] = {}
    st.session_state[SEEN_KEY] = []
    st.session_state[_GENERATION] = st.session_state.get(_GENERATION, 0) + 1


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
            if shown.unsure:
                st.warning(shown.unsure, icon=":material/crop:")
            if predictions is not None:
                chart = topk_figure(predictions)
                st.plotly_chart(chart, width="stretch", key=f"predict_upload_chart_{position}")
        st.caption(shown.steps)
        for hint in shown.hints:
            st.caption(f":orange[:material/info:] {hint}")
        if explain and found is not None:
            render_attributions(loaded, shown.tensor, found)
    return predictions
