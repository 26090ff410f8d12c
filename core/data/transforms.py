"""Catalogue of torchvision transforms with parameter specs; pipelines, their code, one-hot targets."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image
from torchvision import transforms
from torchvision.transforms import functional as TF

from core.base.errors import BadConfig
from core.data.explore import pixel_stats
from core.data.fashion import CLASSES, fashion_mnist

IMAGE_SIDE = 28  # FashionMNIST images, and what the training models take
# FashionMNIST's training-set pixel mean and std after ToTensor, the usual Normalize values.
FASHION_MEAN, FASHION_STD = 0.286, 0.353
ONE_HOT_CODE = "Lambda(lambda y: torch.zeros(10, dtype=torch.float).scatter_(0, torch.tensor(y), value=1))"


@dataclass(frozen=True)
class ParamSpec:
    """One keyword argument of a transform, described well enough to build its widget."""

    name: str  # the torchvision keyword
    kind: str  # "float", "int" or "range" (a (min, max) pair of floats)
    default: float | int | tuple[float, float]
    min: float
    max: float
    step: float
    help: str
    as_arg: str = "value"  # how the widget value becomes the argument: "value", "channel" (v,), "pair" (v, v)
    slider: bool = True  # False: a number box, for values people type precisely


@dataclass(frozen=True)
class TransformSpec:
    """A catalogue entry: the torchvision class, its parameters and where it may sit in a pipeline."""

    name: str  # the class name in torchvision.transforms
    summary: str
    params: tuple[ParamSpec, ...] = ()
    takes: str = "any"  # "pil": PIL images only, "tensor": tensors only, "any": both
    training_note: str = ""  # why it has no training equivalent (empty when it maps)

    @property
    def cls(self) -> type:
        return getattr(transforms, self.name)


def _float(name: str, default: float, low: float, high: float, step: float, help: str, **kw) -> ParamSpec:
    return ParamSpec(name, "float", default, low, high, step, help, **kw)


def _int(name: str, default: int, low: int, high: int, help: str, step: int = 1) -> ParamSpec:
    return ParamSpec(name, "int", default, low, high, step, help, slider=False)


def _range(
    name: str, default: tuple[float, float], low: float, high: float, step: float, help: str
) -> ParamSpec:
    return ParamSpec(name, "range", default, low, high, step, help)


def _prob(help: str) -> ParamSpec:
    return _float("p", 0.5, 0.0, 1.0, 0.05, help)


_SIZE_HELP = "Side of the output (pixels)."

CATALOGUE: dict[str, TransformSpec] = {
    spec.name: spec
    for spec in (
        TransformSpec(
            "ToTensor",
            "PIL image (0–255) → float tensor (C, H, W) in [0, 1]; the tutorial's only transform.",
            takes="pil",
        ),
        TransformSpec(
            "Normalize",
            "Subtract a mean and divide by a std, per channel, so pixels are centred near 0.",
            (
                _float(
                    "mean",
                    FASHION_MEAN,
                    -1.0,
                    1.0,
                    0.001,
                    "Subtracted from every pixel (0.286 is FashionMNIST's mean).",
                    as_arg="channel",
                    slider=False,
                ),
                _float(
                    "std",
                    FASHION_STD,
                    0.0,
                    2.0,
                    0.001,
                    "Every pixel is divided by it (0.353 is FashionMNIST's std); must be above 0.",
                    as_arg="channel",
                    slider=False,
                ),
            ),
            takes="tensor",
            training_note="training feeds the model pixels in [0, 1]; the model learns any shift itself",
        ),
        TransformSpec(
            "RandomHorizontalFlip",
            "Mirror the image left–right with probability p.",
            (_prob("Chance that an image is flipped."),),
        ),
        TransformSpec(
            "RandomVerticalFlip",
            "Turn the image upside down with probability p (rarely sensible for clothes).",
            (_prob("Chance that an image is flipped."),),
            training_note="training only flips left–right",
        ),
        TransformSpec(
            "RandomRotation",
            "Rotate by a random angle between −degrees and +degrees; the corners fill with black.",
            (_float("degrees", 15.0, 0.0, 180.0, 1.0, "Largest rotation either way (°)."),),
        ),
        TransformSpec(
            "RandomCrop",
            "Pad the image, then cut a random size × size window: a random shift of up to `padding` pixels.",
            (
                _int("size", IMAGE_SIDE, 4, 112, "Side of the window (pixels)."),
                _int("padding", 4, 0, 28, "Black border added on every side first (pixels)."),
            ),
        ),
        TransformSpec(
            "RandomResizedCrop",
            "Cut a random part of the image (a fraction of its area) and resize it to size × size: a zoom.",
            (
                _int("size", IMAGE_SIDE, 4, 112, _SIZE_HELP),
                _range("scale", (0.5, 1.0), 0.05, 1.0, 0.05, "Fraction of the area that is kept."),
                _range("ratio", (0.75, 1.33), 0.25, 4.0, 0.01, "Aspect ratio (width / height) of the cut."),
            ),
        ),
        TransformSpec(
            "RandomAffine",
            "Rotate, shift, zoom and shear at random, all at once.",
            (
                _float("degrees", 10.0, 0.0, 180.0, 1.0, "Largest rotation either way (°)."),
                _float(
                    "translate",
                    0.1,
                    0.0,
                    0.5,
                    0.01,
                    "Largest shift, as a fraction of the side, horizontally and vertically.",
                    as_arg="pair",
                ),
                _range("scale", (0.9, 1.1), 0.5, 1.5, 0.01, "Zoom factor range (1 = unchanged)."),
                _float("shear", 0.0, 0.0, 45.0, 1.0, "Largest shear either way (°)."),
            ),
        ),
        TransformSpec(
            "GaussianBlur",
            "Blur with a Gaussian kernel whose sigma is drawn at random.",
            (
                _int("kernel_size", 3, 1, 27, "Kernel side in pixels; must be odd.", step=2),
                _range("sigma", (0.1, 2.0), 0.1, 5.0, 0.1, "Range the blur's sigma is drawn from."),
            ),
            training_note="training does not blur",
        ),
        TransformSpec(
            "ColorJitter",
            "Change brightness and contrast by a random factor (1 ± the value).",
            (
                _float("brightness", 0.4, 0.0, 1.0, 0.05, "Brightness factor drawn from [1 − b, 1 + b]."),
                _float("contrast", 0.0, 0.0, 1.0, 0.05, "Contrast factor drawn from [1 − c, 1 + c]."),
            ),
            training_note="training does not change brightness or contrast",
        ),
        TransformSpec(
            "RandomErasing",
            "Blank a random rectangle with probability p (works on tensors: put it after ToTensor).",
            (
                _prob("Chance that a rectangle is erased."),
                _range("scale", (0.02, 0.33), 0.01, 1.0, 0.01, "Fraction of the area erased."),
                _float("value", 0.0, 0.0, 1.0, 0.05, "What the rectangle is filled with."),
            ),
            takes="tensor",
        ),
        TransformSpec(
            "Resize",
            "Resize to size × size pixels.",
            (_int("size", 32, 4, 112, _SIZE_HELP),),
            training_note="training keeps 28 × 28 images: the models take exactly 784 pixels",
        ),
    )
}

Step = tuple[str, dict[str, Any]]  # (catalogue name, {param: widget value})
Histogram = tuple[list[float], list[int]]  # (bin centres, counts)


def default_params(name: str) -> dict[str, Any]:
    return {p.name: p.default for p in _spec(name).params}


def _spec(name: str) -> TransformSpec:
    if name not in CATALOGUE:
        raise BadConfig(f"unknown transform {name!r}; choose one of {', '.join(CATALOGUE)}")
    return CATALOGUE[name]


def _clean(spec: TransformSpec, param: ParamSpec, value: Any) -> float | int | tuple[float, float]:
    """Check one widget value against its spec; round floats so code shows 0.3, not 0.30000000000000004."""
    where = f"{spec.name}: {param.name}"
    try:
        if param.kind == "range":
            low, high = (round(float(v), 4) for v in value)
        else:
            low = high = int(value) if param.kind == "int" else round(float(value), 4)
    except (TypeError, ValueError) as exc:
        raise BadConfig(f"{where} must be a number, not {value!r}") from exc
    if not (param.min <= low <= param.max and param.min <= high <= param.max):
        raise BadConfig(f"{where} must be between {param.min} and {param.max}, not {value!r}")
    if low > high:
        raise BadConfig(f"{where} must be given as (min, max), but {low} > {high}")
    return (low, high) if param.kind == "range" else low


def _check(spec: TransformSpec, params: dict[str, Any]) -> None:
    """Combinations torchvision would only reject later (or never), said in words."""
    if spec.name == "GaussianBlur" and params["kernel_size"] % 2 == 0:
        raise BadConfig(f"GaussianBlur: kernel_size must be odd (3, 5, 7, …), not {params['kernel_size']}")
    if spec.name == "Normalize" and params["std"] <= 0:
        raise BadConfig("Normalize: std must be above 0 (pixels are divided by it)")


def clean_params(name: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """Defaults filled in, values checked; raises BadConfig with a message a person can act on."""
    spec = _spec(name)
    given = dict(params or {})
    unknown = set(given) - {p.name for p in spec.params}
    if unknown:
        raise BadConfig(f"{name} has no parameter(s) {sorted(unknown)}")
    cleaned = {p.name: _clean(spec, p, given.get(p.name, p.default)) for p in spec.params}
    _check(spec, cleaned)
    return cleaned


def _arguments(name: str, params: dict[str, Any]) -> dict[str, Any]:
    """torchvision keyword arguments from widget values: one channel becomes (v,), a shift (v, v)."""
    cleaned = clean_params(name, params)
    args = {}
    for p in _spec(name).params:
        value = cleaned[p.name]
        args[p.name] = {"channel": (value,), "pair": (value, value)}.get(p.as_arg, value)
    return args


def _check_order(steps: Sequence[Step]) -> None:
    """ToTensor turns the PIL image into a tensor once; tensor-only steps must come after it."""
    is_tensor = False
    for i, (name, _params) in enumerate(steps, start=1):
        takes = _spec(name).takes
        if takes == "tensor" and not is_tensor:
            raise BadConfig(
                f"Step {i}, {name}, works on tensors but gets a PIL image: move it below ToTensor "
                "(or add ToTensor before it)."
            )
        if takes == "pil" and is_tensor:
            raise BadConfig(f"Step {i}, {name}, needs a PIL image but gets a tensor: keep a single ToTensor.")
        is_tensor = is_tensor or name == "ToTensor"


def build_pipeline(steps: Sequence[Step]) -> transforms.Compose:
    """`transforms.Compose([...])` of the steps, in order; raises BadConfig for a pipeline that cannot run."""
    _check_order(steps)
    built = []
    for name, params in steps:
        try:
            built.append(_spec(name).cls(**_arguments(name, params)))
        except (TypeError, ValueError) as exc:
            raise BadConfig(f"{name}: {exc}") from exc
    return transforms.Compose(built)


def pipeline_code(steps: Sequence[Step]) -> str:
    """Runnable Python building the same pipeline, plus the tutorial's one-hot target transform."""
    lines = []
    for name, params in steps:
        args = ", ".join(f"{key}={value!r}" for key, value in _arguments(name, params).items())
        lines.append(f"    transforms.{name}({args}),")
    body = "\n".join(lines)
    return (
        "import torch\n"
        "from torchvision import datasets, transforms\n\n"
        f"transform = transforms.Compose([\n{body}\n])\n"
        "target_transform = transforms.Lambda(\n"
        "    lambda y: torch.zeros(10, dtype=torch.float).scatter_(0, torch.tensor(y), value=1)\n"
        ")"
    )


def apply_pipeline(pipeline: transforms.Compose, images: Sequence[Image.Image], seed: int) -> list[Any]:
    """Each image through the pipeline once, the random draws fixed by `seed`.

    fork_rng keeps the seeding local: other users' draws and training runs keep their own random stream.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        try:
            return [pipeline(image) for image in images]
        except (TypeError, ValueError, RuntimeError) as exc:
            raise BadConfig(f"The pipeline cannot run on a {_describe(images[0])}: {exc}") from exc


def random_draws(pipeline: transforms.Compose, image: Image.Image, seed: int, n: int) -> list[Any]:
    """The same image through the pipeline n times: how varied the augmentation is."""
    return apply_pipeline(pipeline, [image] * n, seed)


def _describe(output: Any) -> str:
    if isinstance(output, Image.Image):
        return f"{output.width}×{output.height} PIL image"
    return f"tensor of shape {tuple(output.shape)}"


def sample_image(split: str, index: int) -> tuple[Image.Image, int]:
    """(PIL image, label) of one sample, exactly as the tutorial's Dataset hands it to `transform`."""
    return raw_dataset(split)[index]


def raw_dataset(split: str):
    """The tutorial's FashionMNIST Dataset with no transform: items are (PIL image, int label)."""
    return fashion_mnist(split, transform=_keep_pil)


def _keep_pil(image: Image.Image) -> Image.Image:
    # fashion_mnist() adds ToTensor when transform is None; this keeps the PIL image as is.
    return image


def one_hot(label: int) -> torch.Tensor:
    """The tutorial's target transform applied to one label: a (10,) float vector with a 1 at `label`."""
    if not 0 <= int(label) < len(CLASSES):
        raise BadConfig(f"label must be between 0 and {len(CLASSES) - 1}, not {label}")
    return target_transform()(int(label))


def target_transform() -> transforms.Lambda:
    """The tutorial's `Lambda` turning an integer label into a one-hot vector (same expression)."""
    return transforms.Lambda(
        lambda y: torch.zeros(10, dtype=torch.float).scatter_(0, torch.tensor(y), value=1)
    )


def as_tensor(output: Any) -> tuple[torch.Tensor, bool]:
    """A pipeline's output as a tensor, and whether it had to be converted (a PIL image, via ToTensor)."""
    if isinstance(output, Image.Image):
        return TF.to_tensor(output), True
    return output, False


@dataclass(frozen=True)
class TensorStats:
    shape: tuple[int, ...]
    dtype: str
    min: float
    max: float
    mean: float
    std: float


def tensor_stats(t: torch.Tensor) -> TensorStats:
    stats = pixel_stats(t, correction=1)
    return TensorStats(tuple(t.shape), str(t.dtype), stats.min, stats.max, stats.mean, stats.std)


def pixel_histogram(t: torch.Tensor, low: float, high: float, bins: int = 32) -> Histogram:
    """(bin centres, pixel counts) of a tensor's values over [low, high]."""
    if high <= low:
        high = low + 1.0
    counts = torch.histc(t.float().flatten(), bins=bins, min=low, max=high)
    width = (high - low) / bins
    return [low + width * (i + 0.5) for i in range(bins)], [int(c) for c in counts]


def display_array(t: torch.Tensor, size: int) -> tuple[np.ndarray, bool]:
    """A (C, H, W) or (H, W) tensor as uint8 pixels upscaled by a whole factor towards `size` px.

    Values outside [0, 1] (after Normalize) are rescaled from their min..max for display; the flag
    says so, so the page can tell the viewer.
    """
    image = t[0] if t.dim() == 3 else t  # (H, W): FashionMNIST has one channel
    image = image.float()
    rescaled = bool(image.min() < 0 or image.max() > 1)
    if rescaled:
        image = (image - image.min()) / max(float(image.max() - image.min()), 1e-8)
    pixels = (image.clamp(0, 1) * 255).round().to(torch.uint8)
    factor = max(1, size // max(pixels.shape))
    pixels = pixels.repeat_interleave(factor, dim=0).repeat_interleave(factor, dim=1)
    return pixels.numpy(), rescaled
