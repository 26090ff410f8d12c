"""One image's answer on the Predict page: its preprocessing shown, the top-k, which pixels mattered.

Everything computed for an image is remembered in the session, keyed by its content (sha256) and, for
answers, by the checkpoint's sha256: a rerun, a new k or the attributions switched back on recompute
nothing, and what no input shows any more is forgotten at the end of the run.
"""

import hashlib
import io
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
import torch
from PIL import Image, ImageDraw

from core.base.errors import BadImage, StudioError
from core.data.fashion import CLASSES
from core.model.attribution import METHODS, attribute, overlay
from core.model.checkpoint import LoadedCheckpoint
from core.model.predict import MAX_IMAGE_BYTES, SIZE, Prediction, Prepared, predict, prepare
from ui.layout import cells
from ui.predict.names import display_name

SHOWN_PX = 280  # previews and the 28x28 input (x10) are shown this large
ATTRIBUTION_PX = 168  # 28 px x 6
PRIMARY = "#D9480F"  # .streamlit/config.toml's primaryColor
MUTED = "#C9C4BC"
ORDINALS = ("Top-1", "2nd", "3rd", *(f"{n}th" for n in range(4, 11)))
TINY_PX = 16  # an item smaller than this a side is blown up from next to nothing: say so
WIDE = 1.6  # an item this much wider than tall may be a garment lying on its side

PREPARED_KEY = "predict_prepared"  # {content key: Prepped | error message}
ANSWERS_KEY = "predict_answers"  # {(content key, checkpoint sha256): Answer}
USED_KEY = "predict_memo_used"  # the memo keys this run used; the others are forgotten at its end


# ---- an image, prepared ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prepped:
    """What one uploaded image shows and feeds the model; small, so it can live in session state."""

    preview: Image.Image  # the upload, upright, about SHOWN_PX, with the crop box drawn
    model_view: Image.Image  # the 28x28 input, upscaled nearest-neighbour
    tensor: torch.Tensor  # (1, 1, 28, 28) float32, what the model gets
    steps: str  # what preprocessing did, in words
    hints: tuple[str, ...] = ()  # why the answer may mislead: a tiny image, an item lying on its side
    unsure: str | None = None  # why the crop may hold more than the item (an uneven background)


def prepare_upload(data: bytes) -> Prepped:
    """Decode and preprocess one upload; anything unusable raises BadImage."""
    if len(data) > MAX_IMAGE_BYTES:  # before any parsing; the widget's own limit is the browser's
        raise BadImage(
            f"image is too large ({len(data) / 2**20:.1f} MB; the limit is {MAX_IMAGE_BYTES / 2**20:.0f} MB)"
        )
    return prepped(prepare(data))


def prepped(prepared: Prepared) -> Prepped:
    """What the page shows of a prepared image, made once."""
    return Prepped(
        _preview(prepared),
        upscale(prepared.input_image()),
        prepared.tensor,
        _steps(prepared),
        hints(prepared),
        prepared.unsure,
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


# ---- remembered per session -----------------------------------------------------------------------------


def content_key(data: bytes) -> str:
    """What an image's work is remembered by: its bytes' sha256, so the same file dropped again (or
    under another name) is not decoded or asked about again."""
    return hashlib.sha256(data).hexdigest()


def begin_run() -> None:
    """At the top of the page: the memo entries used are counted from here."""
    st.session_state[USED_KEY] = set()


def forget_unused() -> None:
    """At the end of the page: entries no input used in this run are dropped, so the memo never holds
    more than what the page shows (MAX_PHOTOS photos, a drawing, a photo and a sample)."""
    used = st.session_state.get(USED_KEY, set())
    for name in (PREPARED_KEY, ANSWERS_KEY):
        memo = st.session_state.get(name, {})
        for key in [key for key in memo if key not in used]:
            del memo[key]


def _memo(name: str, key: Hashable) -> dict:
    st.session_state.setdefault(USED_KEY, set()).add(key)
    return st.session_state.setdefault(name, {})


def prepared_once(key: str, make: Callable[[], Prepped]) -> Prepped:
    """make(), once per content: a refusal (BadImage) is remembered and raised again, in words."""
    memo = _memo(PREPARED_KEY, key)
    if key not in memo:
        try:
            memo[key] = make()
        except BadImage as exc:
            memo[key] = str(exc)
    if isinstance(memo[key], str):
        raise BadImage(memo[key])
    return memo[key]


@dataclass
class Answer:
    """What a model said about one image: all it is asked, whatever k the page shows."""

    ranking: list[Prediction]  # all ten classes, most likely first: the top-k is a slice
    maps: dict[str, bytes | str] = field(default_factory=dict)  # method -> overlay PNG, or why it failed


def answer(loaded: LoadedCheckpoint, key: str, x: torch.Tensor) -> Answer:
    """The model's ranking for the image `key`, asked once per image and checkpoint."""
    memo_key = (key, loaded.sha256)
    memo = _memo(ANSWERS_KEY, memo_key)
    if memo_key not in memo:
        memo[memo_key] = Answer(predict(loaded.model, x, len(CLASSES)))
    return memo[memo_key]


def _explained(loaded: LoadedCheckpoint, x: torch.Tensor, found: Answer) -> dict[str, bytes | str]:
    """Each method's map for the top class, computed the first time the page shows it."""
    for method in METHODS:
        if method not in found.maps:
            try:
                heat = attribute(loaded.model, x, found.ranking[0].index, method)
            except StudioError as exc:
                found.maps[method] = str(exc)
                continue
            found.maps[method] = _png(upscale(Image.fromarray(overlay(x, heat).numpy()), ATTRIBUTION_PX))
    return found.maps


def _png(image: Image.Image) -> bytes:
    # Kept encoded: st.image would turn a PIL image into a PNG again on every rerun.
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


# ---- showing an answer ----------------------------------------------------------------------------------


def render_attributions(loaded: LoadedCheckpoint, x: torch.Tensor, found: Answer) -> None:
    """Which pixels mattered for the top class, by each method, over the 28x28 input."""
    top = found.ranking[0]
    st.markdown(f"**Which pixels mattered for “{top.label}”**: orange raised its score, blue lowered it.")
    maps = _explained(loaded, x, found)
    for cell, (key, method) in zip(cells(len(METHODS), ATTRIBUTION_PX + 40), METHODS.items(), strict=True):
        with cell:
            if isinstance(maps[key], str):
                st.error(maps[key])
                continue
            st.image(maps[key], caption=method.name)
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
