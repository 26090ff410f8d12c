"""Streamlit pieces of the Tensors page: one panel per part of the tutorial's Tensors section.

Each panel draws its controls, then the code, then what the code prints (computed by core.learn.tensors,
never by running the text), and returns its choices: the page's "code you would write" is built from all
of them, so a control reruns the whole page (panels in fragments would leave that file behind).
"""

from collections.abc import Callable
from dataclasses import replace

import streamlit as st
import torch
from PIL import Image, ImageDraw

from core.base.device import accelerator_type
from core.base.errors import StudioError
from core.data.fashion import CLASSES
from core.learn import moments
from core.learn import tensors as tn
from core.learn.programs import tensors as programs
from ui import link
from ui.cache import torchvision_dataset
from ui.learn import moment
from ui.learn import program as program_view
from ui.nav import next_link

PRIMARY = "#D9480F"  # .streamlit/config.toml's primaryColor
IMAGE_PX = 224  # the 28x28 sample, 8 px a pixel
MAX_SEED = 2**31 - 1
DEFAULT = programs.Choices()  # every control starts from the page's defaults, the program's too

# What a copied link keeps, panel by panel: each panel adopts its part before drawing its widgets; the
# page keeps them all at its end.
INIT_LINK = [
    link.text("shape", "tensors_shape", 40, fallback="2, 3"),
    link.choice("dtype", "tensors_dtype", list(tn.DTYPES), fallback="float32"),
    link.whole("seed", "tensors_seed", 0, MAX_SEED, fallback="seed 0"),
]
JOIN_LINK = [
    link.choice("join", "tensors_join", ["cat", "stack"], fallback="cat"),
    link.whole("joined", "tensors_join_count", 2, 4, fallback="3 tensors"),
]
OP_LINK = [
    link.choice("op", "tensors_op", tn.ARITHMETIC, fallback="the matrix product"),
    link.whole("rows", "tensors_op_rows", 1, 8, fallback="3 rows"),
    link.whole("cols", "tensors_op_cols", 1, 8, fallback="2 columns"),
]


def _index_link(count: int) -> list[link.Param]:
    return [link.whole("sample", "tensors_sample", 0, count - 1, fallback="sample 0")]


def link_params(count: int) -> list[link.Param]:
    """Every panel's part of the URL; `count` is the number of training images."""
    return INIT_LINK + _index_link(count) + JOIN_LINK + OP_LINK


def code_and_output(snippet: tn.Snippet, predict: Callable[[], bool] | None = None) -> None:
    """The code, then what it prints; one above the other, so neither is cut at the side. With `predict`
    (a moment: ui.learn.moment.ask), the output waits until the learner has predicted it or asked to see."""
    st.code(snippet.code, language="python", wrap_lines=True)  # a long line wraps in a narrow window
    if predict is not None and not predict():
        return
    st.caption("Output, as Python prints it")
    st.code(snippet.output.rstrip("\n"), language="text")


def _panel(build: Callable[[], tn.Snippet], predict: Callable[[], bool] | None = None) -> tn.Snippet | None:
    """Build the panel's snippet and show it, or the message of whatever choice cannot work."""
    try:
        snippet = build()
    except StudioError as exc:
        st.error(str(exc))
        return None
    code_and_output(snippet, predict)
    return snippet


def initializing() -> dict:
    st.caption(
        "Directly from data, from a NumPy array, from another tensor (`*_like` keeps its shape and dtype "
        "unless told otherwise), or with random or constant values of a shape you choose."
    )
    link.notify(link.adopt(INIT_LINK))
    row = st.container(horizontal=True, vertical_alignment="bottom")
    shape_text = row.text_input(
        "Shape", DEFAULT.shape, key="tensors_shape", width=160, help="e.g. 2, 3 or 2x3x4"
    )
    dtype = row.selectbox(
        "dtype", list(tn.DTYPES), _at(tn.DTYPES, DEFAULT.dtype), key="tensors_dtype", width=160
    )
    seed = row.number_input("Seed", 0, MAX_SEED, DEFAULT.seed, key="tensors_seed", width=160)
    _panel(lambda: tn.initializing(tn.parse_shape(shape_text), dtype, int(seed)))
    return {"shape": shape_text, "dtype": dtype, "seed": int(seed)}


def attributes() -> dict:
    st.caption("Every tensor knows its shape, its datatype and the device it is stored on.")
    row = st.container(horizontal=True, vertical_alignment="bottom")
    shape_text = row.text_input("Shape", DEFAULT.attr_shape, key="tensors_attr_shape", width=160)
    dtype = row.selectbox(
        "dtype", list(tn.DTYPES), _at(tn.DTYPES, DEFAULT.attr_dtype), key="tensors_attr_dtype", width=160
    )
    move = row.toggle("Move to the accelerator", DEFAULT.move, key="tensors_attr_move")
    _panel(lambda: tn.attributes(tn.parse_shape(shape_text), dtype, move))
    accelerator = accelerator_type()
    if move and accelerator is None:
        st.info(
            "This machine has no accelerator PyTorch can use, so `torch.accelerator.is_available()` is "
            "False and the tensor stays on the CPU."
        )
    elif move:
        st.success(f"The tensor moved to this machine's accelerator: {accelerator}.")
    return {"attr_shape": shape_text, "attr_dtype": dtype, "move": move}


def indexing() -> dict:
    st.caption(
        "Indexing and slicing work as in NumPy. Here on a real training image: channel 0, a range of rows "
        "and columns. Then the tutorial's own example, setting a column of `torch.ones(4, 4)` to zero."
    )
    dataset = torchvision_dataset("train")
    link.notify(link.adopt(_index_link(len(dataset))))
    row = st.container(horizontal=True, vertical_alignment="bottom")
    index = row.number_input(
        "Sample", min_value=0, value=DEFAULT.index, key="tensors_sample", width=160,
        help=f"An index into training_data: 0 to {len(dataset) - 1:,}",
    )  # fmt: skip
    rows = row.slider("Rows", 0, tn.SIDE, DEFAULT.rows, key="tensors_rows", width=220)
    cols = row.slider("Columns", 0, tn.SIDE, DEFAULT.cols, key="tensors_cols", width=220)
    try:
        image, label = dataset[tn.check_index(int(index), len(dataset))]  # (1, 28, 28) floats, from ToTensor
    except StudioError as exc:
        st.error(str(exc))
    else:
        snippet = _panel(lambda: tn.image_slice(image, label, int(index), rows, cols))
        if snippet is not None:
            _draw_slice(image, rows, cols, snippet.tensors["patch"], CLASSES[label])
    st.markdown("**The tutorial's example**")
    columns = [0, 1, 2, 3, -1]
    column = st.selectbox(
        "Column to set to zero", columns, _at(columns, DEFAULT.column), key="tensors_column", width=200
    )
    _panel(lambda: tn.zero_column(column))
    chosen = {"index": int(index), "samples": len(dataset), "rows": tuple(rows), "cols": tuple(cols)}
    return chosen | {"column": column}


def _draw_slice(
    image: torch.Tensor, rows: tuple[int, int], cols: tuple[int, int], patch: torch.Tensor, name: str
) -> None:
    scale = IMAGE_PX // tn.SIDE
    whole = Image.fromarray(image[0].mul(255).round().byte().numpy()).convert("RGB")
    whole = whole.resize((IMAGE_PX, IMAGE_PX), Image.Resampling.NEAREST)
    box = [cols[0] * scale, rows[0] * scale, cols[1] * scale - 1, rows[1] * scale - 1]
    ImageDraw.Draw(whole).rectangle(box, outline=PRIMARY, width=3)
    part = Image.fromarray(patch.mul(255).round().byte().numpy())
    factor = max(1, IMAGE_PX // max(part.size))
    part = part.resize((part.width * factor, part.height * factor), Image.Resampling.NEAREST)
    row = st.container(horizontal=True, gap="medium")
    with row.container(width=IMAGE_PX):
        st.image(whole, caption=f"img: {name}, the slice outlined")
    with row.container(width=IMAGE_PX):
        st.image(part, caption=f"patch: {patch.shape[0]} x {patch.shape[1]}")


def joining() -> dict:
    st.caption(
        "`torch.cat` joins tensors along a dimension they already have; `torch.stack` adds a new one. "
        "Each copy here is `torch.arange(6).reshape(2, 3)`."
    )
    link.notify(link.adopt(JOIN_LINK))
    row = st.container(horizontal=True, vertical_alignment="bottom")
    how = row.segmented_control("Join with", ["cat", "stack"], default=DEFAULT.join, key="tensors_join")
    how = how or DEFAULT.join  # clicking the chosen option again clears it
    dims = tn.join_dims(how)
    dim = row.selectbox("dim", dims, _at(dims, DEFAULT.dim), key=f"tensors_join_dim_{how}", width=120)
    count = row.slider("Tensors", 2, 4, DEFAULT.count, key="tensors_join_count", width=200)

    def predict() -> bool:  # asked only once the panel works: its controls are then valid
        answer = moments.join_shape(how, dim, count)
        return moment.ask(moments.JOIN_SHAPE, answer, page="tensors", signature=f"{how}|{dim}|{count}")

    _panel(lambda: tn.joining(how, dim, count), predict)
    return {"join": how, "dim": dim, "count": count}


def arithmetic() -> dict:
    st.caption(
        "`@` (or `matmul`) is the matrix product, `*` (or `mul`) multiplies element by element; "
        "`item()` turns a one-element tensor into a Python number. Operations ending in `_` change the "
        "tensor in place."
    )
    link.notify(link.adopt(OP_LINK))
    row = st.container(horizontal=True, vertical_alignment="bottom")
    operation = row.selectbox(
        "Operation", tn.ARITHMETIC, _at(tn.ARITHMETIC, DEFAULT.operation), key="tensors_op", width=240
    )
    rows = row.number_input("Rows", 1, 8, DEFAULT.op_rows, key="tensors_op_rows", width=110)
    cols = row.number_input("Columns", 1, 8, DEFAULT.op_cols, key="tensors_op_cols", width=110)
    value = DEFAULT.op_value
    if operation == "in-place add":
        value = row.number_input(
            "Value to add", -1e6, 1e6, DEFAULT.op_value, key="tensors_op_value", width=140
        )
    _panel(lambda: tn.arithmetic(operation, int(rows), int(cols), float(value)))
    if operation == "in-place add":
        st.warning(
            "From the tutorial: in-place operations save some memory, but can be problematic when "
            "computing derivatives because of an immediate loss of history. Hence, their use is discouraged."
        )
    return {"operation": operation, "op_rows": int(rows), "op_cols": int(cols), "op_value": float(value)}


def numpy_bridge() -> dict:
    st.caption(
        "A tensor on the CPU and the NumPy array made from it share their memory: change one and the other "
        "changes too, in both directions."
    )
    row = st.container(horizontal=True, vertical_alignment="bottom")
    length = row.slider("Length", 1, 10, DEFAULT.np_length, key="tensors_np_length", width=220)
    value = row.number_input("Value to add", -1e6, 1e6, DEFAULT.np_value, key="tensors_np_value", width=140)

    def predict() -> bool:
        answer = moments.numpy_after_add(int(length), float(value))
        return moment.ask(moments.NUMPY_SHARED, answer, page="tensors", signature=f"{length}|{value}")

    _panel(lambda: tn.numpy_bridge(int(length), float(value)), predict)
    return {"np_length": int(length), "np_value": float(value)}


def program(choices: dict) -> None:
    """The page's end: the panels' code as one file, or what to fix first when a choice cannot work."""
    try:
        built = programs.program(replace(DEFAULT, **choices))
    except StudioError as exc:
        st.divider()
        st.info(f"The code you would write, as one file, shows once every panel above works: {exc}")
        next_link("tensors")
        return
    program_view.render(built)


def _at(options, value) -> int:
    """The index of a default among a widget's options."""
    return list(options).index(value)
