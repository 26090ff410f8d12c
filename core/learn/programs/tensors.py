"""Tensors' "code you would write": the tutorial's Tensors section as one file, from the page's controls.

Each piece is the code of one of the page's panels (core.learn.tensors), so the file prints what the page
shows, panel after panel.
"""

from dataclasses import dataclass

from core.learn import tensors as tn
from core.learn.program import Piece, Program

# The page's headings that the pieces make (their anchors, set by the page)
INIT_ANCHOR = "initializing-a-tensor"
ATTRIBUTES_ANCHOR = "attributes-of-a-tensor"
INDEXING_ANCHOR = "indexing-and-slicing"
JOINING_ANCHOR = "joining-tensors"
ARITHMETIC_ANCHOR = "arithmetic-operations"
NUMPY_ANCHOR = "bridge-with-numpy"


@dataclass(frozen=True)
class Choices:
    """The page's controls, panel by panel, with the page's defaults (its widgets start from these)."""

    shape: str = "2, 3"  # as typed: parse_shape reads it
    dtype: str = "float32"
    seed: int = 0
    attr_shape: str = "3, 4"
    attr_dtype: str = "float32"
    move: bool = True
    index: int = 0
    samples: int = 60_000  # len(training_data), which the index must fall in
    rows: tuple[int, int] = (9, 15)
    cols: tuple[int, int] = (10, 18)
    column: int = 1
    join: str = "cat"
    dim: int = 0
    count: int = 3
    operation: str = "matrix product"
    op_rows: int = 3
    op_cols: int = 2
    op_value: float = 5.0
    np_length: int = 5
    np_value: float = 1.0


def program(c: Choices) -> Program:
    """The file; a choice the page cannot use raises BadTensorInput with the panel's own message."""
    imports = tn.PRELUDE + tn.DATA_IMPORTS + "\n"  # at the top: numbered like the page, 1 to 6
    init = imports + tn.initializing(tn.parse_shape(c.shape), c.dtype, c.seed).code
    attributes = tn.attributes(tn.parse_shape(c.attr_shape), c.attr_dtype, c.move).code
    index = tn.check_index(c.index, c.samples)
    indexing = tn.image_slice_code(index, c.rows, c.cols) + "\n" + tn.zero_column(c.column).code
    joining = tn.joining(c.join, c.dim, c.count).code
    arithmetic = tn.arithmetic(c.operation, c.op_rows, c.op_cols, c.op_value).code
    bridge = tn.numpy_bridge(c.np_length, c.np_value).code
    return Program(
        page="tensors",
        needs="torch, torchvision and NumPy",
        summary="Tensors: initializing, attributes, operations and the bridge with NumPy.",
        pieces=(
            Piece("Initializing a tensor", init, "tensors from data, NumPy and a shape", INIT_ANCHOR),
            Piece("Attributes of a tensor", attributes, "shape, dtype and device", ATTRIBUTES_ANCHOR),
            Piece("Indexing and slicing", indexing, "image patch and zeroed column", INDEXING_ANCHOR),
            Piece("Joining tensors", joining, f"torch.{c.join} result", JOINING_ANCHOR),
            Piece("Arithmetic operations", arithmetic, c.operation, ARITHMETIC_ANCHOR),
            Piece("Bridge with NumPy", bridge, "shared memory of t and n", NUMPY_ANCHOR),
        ),
    )
