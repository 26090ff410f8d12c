"""The tutorial's Tensors section as snippets: code generated from a few choices, and what it prints.

Each function returns a `Snippet`: the lines of PyTorch a learner reads, and the text those lines
print, computed here by doing the same operations (never by running the code text: nothing a user
types is executed). A test runs every snippet's code and compares its output with ours.
Random numbers come from a private `torch.Generator` seeded like the code's `torch.manual_seed`,
which gives the same numbers without touching the global generator other sessions share.
"""

import math
import re
from dataclasses import dataclass, field

import numpy as np
import torch

from core.base.device import accelerator_type
from core.base.errors import StudioError
from core.learn.program import literal

PRELUDE = "import numpy as np\nimport torch\n"  # what every snippet assumes; shown once on the page
DATA_IMPORTS = "from torchvision import datasets\nfrom torchvision.transforms import ToTensor\n"
DTYPES = {
    "float32": torch.float32,
    "float64": torch.float64,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
}
MAX_DIMS = 4
MAX_ELEMENTS = 1_000  # above this PyTorch summarises the print with "..." anyway
TUTORIAL_DATA = [[1, 2], [3, 4]]
SIDE = 28  # FashionMNIST images are SIDE x SIDE
ARITHMETIC = ("matrix product", "element-wise product", "sum to a Python number", "in-place add")


class BadTensorInput(StudioError):
    """A choice on the Tensors page that cannot make a tensor (an empty or huge shape, ...)."""


@dataclass(frozen=True)
class Snippet:
    code: str  # runs after PRELUDE
    output: str  # exactly what running it prints
    tensors: dict[str, torch.Tensor] = field(default_factory=dict, compare=False)  # for drawing


class Printed:
    """Collects text the way print() would write it."""

    def __init__(self):
        self._parts: list[str] = []

    def __call__(self, *values, sep: str = " ", end: str = "\n") -> None:
        self._parts.append(sep.join(str(v) for v in values) + end)

    def text(self) -> str:
        return "".join(self._parts)


def _lines(*lines: str) -> str:
    return "\n".join(lines) + "\n"


# ---- choices -----------------------------------------------------------------------------------------


def parse_shape(text: str) -> tuple[int, ...]:
    """ "2, 3", "(2, 3)" or "2x3" -> (2, 3); anything else raises BadTensorInput saying what to type."""
    body = text.strip().strip("()[]").strip()
    parts = [p for p in re.split(r"\s*[,x×]\s*|\s+", body) if p]
    if not parts or not all(re.fullmatch(r"[+-]?\d{1,9}", p) for p in parts):
        raise BadTensorInput(f"{text.strip()[:40]!r} is not a shape: type whole numbers, such as 2, 3")
    shape = tuple(int(p) for p in parts)
    if len(shape) > MAX_DIMS:
        raise BadTensorInput(
            f"a shape of {len(shape)} dimensions is hard to read here: use at most {MAX_DIMS}"
        )
    if any(d < 1 for d in shape):
        raise BadTensorInput(
            f"every dimension must be at least 1: a dimension of {min(shape)} makes a tensor with no values"
        )
    if math.prod(shape) > MAX_ELEMENTS:
        raise BadTensorInput(
            f"{' x '.join(map(str, shape))} is {math.prod(shape):,} values: keep it to {MAX_ELEMENTS:,} or "
            "fewer so the printout stays readable"
        )
    return shape


def _dtype(name: str) -> torch.dtype:
    if name not in DTYPES:
        raise BadTensorInput(f"dtype {name!r} is not offered here: choose one of {', '.join(DTYPES)}")
    return DTYPES[name]


def _shape_code(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(map(str, shape)) + ",)"  # the tutorial writes `shape = (2,3,)`


# ---- 1. initializing ----------------------------------------------------------------------------------


def initializing(shape: tuple[int, ...], dtype: str, seed: int) -> Snippet:
    """From data, from NumPy, like another tensor, and rand/ones/zeros of `shape` and `dtype`."""
    kind = _dtype(dtype)
    code = _lines(
        f"torch.manual_seed({literal(seed)})",
        f"data = {TUTORIAL_DATA}",
        "x_data = torch.tensor(data)",
        "np_array = np.array(data)",
        "x_np = torch.from_numpy(np_array)",
        'print(f"Tensor from data: \\n {x_data} \\n")',
        'print(f"Tensor from NumPy: \\n {x_np} \\n")',
        "x_ones = torch.ones_like(x_data)  # retains the properties of x_data",
        'print(f"Ones Tensor: \\n {x_ones} \\n")',
        "x_rand = torch.rand_like(x_data, dtype=torch.float)  # overrides the datatype of x_data",
        'print(f"Random Tensor: \\n {x_rand} \\n")',
        f"shape = {_shape_code(shape)}",
        f"rand_tensor = torch.rand(shape, dtype=torch.{dtype})",
        f"ones_tensor = torch.ones(shape, dtype=torch.{dtype})",
        f"zeros_tensor = torch.zeros(shape, dtype=torch.{dtype})",
        'print(f"Random Tensor: \\n {rand_tensor} \\n")',
        'print(f"Ones Tensor: \\n {ones_tensor} \\n")',
        'print(f"Zeros Tensor: \\n {zeros_tensor}")',
    )
    out, g = Printed(), torch.Generator().manual_seed(seed)
    x_data = torch.tensor(TUTORIAL_DATA)
    out(f"Tensor from data: \n {x_data} \n")
    out(f"Tensor from NumPy: \n {torch.from_numpy(np.array(TUTORIAL_DATA))} \n")
    out(f"Ones Tensor: \n {torch.ones_like(x_data)} \n")
    out(f"Random Tensor: \n {torch.rand_like(x_data, dtype=torch.float, generator=g)} \n")
    rand_tensor = torch.rand(shape, dtype=kind, generator=g)
    out(f"Random Tensor: \n {rand_tensor} \n")
    out(f"Ones Tensor: \n {torch.ones(shape, dtype=kind)} \n")
    out(f"Zeros Tensor: \n {torch.zeros(shape, dtype=kind)}")
    return Snippet(code, out.text(), {"rand_tensor": rand_tensor})


# ---- 2. attributes ------------------------------------------------------------------------------------


def attributes(shape: tuple[int, ...], dtype: str, move: bool) -> Snippet:
    """shape, dtype and device, before and (if asked) after moving to the accelerator."""
    kind = _dtype(dtype)
    lines = [
        f"tensor = torch.rand({', '.join(map(str, shape))}, dtype=torch.{dtype})",
        'print(f"Shape of tensor: {tensor.shape}")',
        'print(f"Datatype of tensor: {tensor.dtype}")',
        'print(f"Device tensor is stored on: {tensor.device}")',
    ]
    tensor = torch.rand(shape, dtype=kind)
    out = Printed()
    out(f"Shape of tensor: {tensor.shape}")
    out(f"Datatype of tensor: {tensor.dtype}")
    out(f"Device tensor is stored on: {tensor.device}")
    if move:
        lines += [
            "# We move our tensor to the current accelerator if available",
            "if torch.accelerator.is_available():",
            "    tensor = tensor.to(torch.accelerator.current_accelerator())",
            'print(f"Device tensor is stored on: {tensor.device}")',
        ]
        if accelerator_type() is not None:
            tensor = tensor.to(torch.accelerator.current_accelerator())
        out(f"Device tensor is stored on: {tensor.device}")
    return Snippet(_lines(*lines), out.text())


# ---- 3. indexing and slicing ----------------------------------------------------------------------------


def image_slice(
    image: torch.Tensor, label: int, index: int, rows: tuple[int, int], cols: tuple[int, int]
) -> Snippet:
    """`img[0, r0:r1, c0:c1]` of the tutorial's training_data[index]; `image` is its (1, 28, 28) tensor."""
    (r0, r1), (c0, c1) = _span(rows, "rows"), _span(cols, "columns")
    patch = image[0, r0:r1, c0:c1]
    out = Printed()
    out(f"Label: {label}, patch shape: {tuple(patch.shape)}")
    out(patch)
    return Snippet(DATA_IMPORTS + image_slice_code(index, rows, cols), out.text(), {"patch": patch})


def image_slice_code(index: int, rows: tuple[int, int], cols: tuple[int, int]) -> str:
    """The slice's code, without DATA_IMPORTS (a whole file has them at its top)."""
    (r0, r1), (c0, c1) = _span(rows, "rows"), _span(cols, "columns")
    return _lines(
        "training_data = datasets.FashionMNIST(",
        '    root="data", train=True, download=True, transform=ToTensor()',
        ")",
        f"img, label = training_data[{literal(index)}]  # img: (1, 28, 28), values in [0, 1]",
        f"patch = img[0, {r0}:{r1}, {c0}:{c1}]  # channel 0, rows {r0}-{r1 - 1}, columns {c0}-{c1 - 1}",
        'print(f"Label: {label}, patch shape: {tuple(patch.shape)}")',
        "print(patch)",
    )


def check_index(index: int, size: int) -> int:
    """A sample index of a dataset of `size` items, or a message giving the range."""
    if not 0 <= index < size:
        raise BadTensorInput(f"there is no sample {index:,}: training_data holds 0 to {size - 1:,}")
    return index


def _span(span: tuple[int, int], what: str) -> tuple[int, int]:
    start, stop = int(span[0]), int(span[1])
    if not 0 <= start < stop <= SIDE:
        raise BadTensorInput(f"{what} {start} to {stop} are not a range inside 0-{SIDE}: pick start < stop")
    return start, stop


def zero_column(column: int) -> Snippet:
    """The tutorial's `tensor[:, 1] = 0` on `torch.ones(4, 4)`, with the column chosen."""
    if not -4 <= column < 4:
        raise BadTensorInput(f"column {column} is outside a 4 x 4 tensor: pick one of -4 to 3")
    code = _lines(
        "tensor = torch.ones(4, 4)",
        'print(f"First row: {tensor[0]}")',
        'print(f"First column: {tensor[:, 0]}")',
        'print(f"Last column: {tensor[..., -1]}")',
        f"tensor[:, {literal(column)}] = 0",
        "print(tensor)",
    )
    tensor, out = torch.ones(4, 4), Printed()
    out(f"First row: {tensor[0]}")
    out(f"First column: {tensor[:, 0]}")
    out(f"Last column: {tensor[..., -1]}")
    tensor[:, column] = 0
    out(tensor)
    return Snippet(code, out.text())


# ---- 4. joining -----------------------------------------------------------------------------------------


def join_dims(how: str) -> list[int]:
    """The dims a join of 2-D tensors accepts: cat keeps 2 dims, stack makes 3."""
    return [-2, -1, 0, 1] if how == "cat" else [-3, -2, -1, 0, 1, 2]


def joining(how: str, dim: int, count: int) -> Snippet:
    """`torch.cat` or `torch.stack` of `count` copies of a 2 x 3 tensor along `dim`."""
    if how not in ("cat", "stack"):
        raise BadTensorInput(f"{how!r} is not a join: choose cat or stack")
    if dim not in join_dims(how):
        raise BadTensorInput(f"torch.{how} of 2-D tensors takes dim in {join_dims(how)}, not {dim}")
    if not 2 <= count <= 4:
        raise BadTensorInput("join 2 to 4 tensors")
    names = ", ".join(["tensor"] * count)
    code = _lines(
        "tensor = torch.arange(6).reshape(2, 3)",
        f"joined = torch.{how}([{names}], dim={literal(dim)})",
        'print(f"{tuple(tensor.shape)} x ' + str(count) + ' -> {tuple(joined.shape)}")',
        "print(joined)",
    )
    tensor = torch.arange(6).reshape(2, 3)
    joined = getattr(torch, how)([tensor] * count, dim=dim)
    out = Printed()
    out(f"{tuple(tensor.shape)} x {count} -> {tuple(joined.shape)}")
    out(joined)
    return Snippet(code, out.text(), {"joined": joined})


# ---- 5. arithmetic --------------------------------------------------------------------------------------


def arithmetic(operation: str, rows: int, cols: int, value: float) -> Snippet:
    """One of ARITHMETIC on `torch.arange(1, rows * cols + 1.0).reshape(rows, cols)`."""
    if operation not in ARITHMETIC:
        raise BadTensorInput(f"{operation!r} is not offered: choose one of {', '.join(ARITHMETIC)}")
    if not (1 <= rows <= 8 and 1 <= cols <= 8):
        raise BadTensorInput("rows and columns go from 1 to 8 here")
    if not math.isfinite(value):
        raise BadTensorInput("add a finite number")
    end, shape = literal(rows * cols + 1.0), f"{literal(rows)}, {literal(cols)}"
    setup = f"tensor = torch.arange(1, {end}).reshape({shape})"
    tensor = torch.arange(1, rows * cols + 1.0).reshape(rows, cols)
    make = {
        "matrix product": _matrix_product,
        "element-wise product": _elementwise_product,
        "sum to a Python number": _sum_item,
        "in-place add": _in_place_add,
    }[operation]
    body, out = make(tensor, value)
    return Snippet(_lines(setup, *body), out.text())


def _matrix_product(tensor: torch.Tensor, _value: float) -> tuple[list[str], Printed]:
    body = [
        "# the matrix product of tensor and its transpose; y1, y2, y3 hold the same values",
        "y1 = tensor @ tensor.T",
        "y2 = tensor.matmul(tensor.T)",
        "y3 = torch.rand_like(y1)",
        "torch.matmul(tensor, tensor.T, out=y3)",
        "print(y1)",
        "print(torch.equal(y1, y2), torch.equal(y1, y3))",
    ]
    y1, y2 = tensor @ tensor.T, tensor.matmul(tensor.T)
    y3 = torch.empty_like(y1)
    torch.matmul(tensor, tensor.T, out=y3)
    out = Printed()
    out(y1)
    out(torch.equal(y1, y2), torch.equal(y1, y3))
    return body, out


def _elementwise_product(tensor: torch.Tensor, _value: float) -> tuple[list[str], Printed]:
    body = [
        "# the element-wise product; z1, z2, z3 hold the same values",
        "z1 = tensor * tensor",
        "z2 = tensor.mul(tensor)",
        "z3 = torch.rand_like(tensor)",
        "torch.mul(tensor, tensor, out=z3)",
        "print(z1)",
        "print(torch.equal(z1, z2), torch.equal(z1, z3))",
    ]
    z1, z2 = tensor * tensor, tensor.mul(tensor)
    z3 = torch.empty_like(tensor)
    torch.mul(tensor, tensor, out=z3)
    out = Printed()
    out(z1)
    out(torch.equal(z1, z2), torch.equal(z1, z3))
    return body, out


def _sum_item(tensor: torch.Tensor, _value: float) -> tuple[list[str], Printed]:
    body = [
        "agg = tensor.sum()  # a one-element tensor",
        "agg_item = agg.item()  # its value as a Python number",
        "print(agg)",
        "print(agg_item, type(agg_item))",
    ]
    agg = tensor.sum()
    out = Printed()
    out(agg)
    out(agg.item(), type(agg.item()))
    return body, out


def _in_place_add(tensor: torch.Tensor, value: float) -> tuple[list[str], Printed]:
    body = [
        'print(f"{tensor} \\n")',
        f"tensor.add_({literal(value)})  # the trailing _ changes tensor itself",
        "print(tensor)",
    ]
    out = Printed()
    out(f"{tensor} \n")
    tensor.add_(value)
    out(tensor)
    return body, out


# ---- 6. the NumPy bridge --------------------------------------------------------------------------------


def numpy_bridge(length: int, value: float) -> Snippet:
    """A CPU tensor and its NumPy array share memory: a change in one shows in the other, both ways."""
    if not 1 <= length <= 10:
        raise BadTensorInput("pick a length from 1 to 10")
    if not math.isfinite(value):
        raise BadTensorInput("add a finite number")
    code = _lines(
        f"t = torch.ones({literal(length)})",
        "n = t.numpy()  # shares t's memory",
        'print(f"t: {t}")',
        'print(f"n: {n}")',
        f"t.add_({literal(value)})  # changes t in place ...",
        'print(f"t: {t}")',
        'print(f"n: {n}")  # ... and n with it',
        f"n = np.ones({literal(length)})",
        "t = torch.from_numpy(n)  # shares n's memory",
        f"np.add(n, {literal(value)}, out=n)  # changes n in place ...",
        'print(f"t: {t}")  # ... and t with it',
        'print(f"n: {n}")',
    )
    out = Printed()
    t = torch.ones(length)
    n = t.numpy()
    out(f"t: {t}")
    out(f"n: {n}")
    t.add_(value)
    out(f"t: {t}")
    out(f"n: {n}")
    n = np.ones(length)
    t = torch.from_numpy(n)
    np.add(n, value, out=n)
    out(f"t: {t}")
    out(f"n: {n}")
    return Snippet(code, out.text())
