"""Turn any uploaded image into the 28x28 input FashionMNIST would have, and rank the classes for it."""

import contextlib
import io
import math
import os
import struct
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import torch
from PIL import Image, ImageChops, ImageFilter, ImageOps
from torch import nn

from core.data import CLASSES
from core.errors import BadImage

SIZE = 28  # FashionMNIST images are 28x28
MAX_IMAGE_BYTES = 10 * 1024 * 1024  # uploads above this are refused before anything is parsed
MAX_PIXELS = 40_000_000  # checked from the header, before decoding: about 120 MB as RGB
MAX_SIDE = 12_000  # longest side allowed; stops 1 x 50000 strips that pass the pixel count
ALLOWED_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF")  # sniffed from the content, not the file name
DECODE_SIDE = 1024  # big JPEGs are decoded at a reduced scale no smaller than this (plenty for 28 px)
MASK_SIDE = 512  # the item is located on a copy at most this long: fast, and averages out specks
LIGHT_BACKGROUND = 127  # a border median above this means a light background (the item gets inverted)
ITEM_THRESHOLD = 20  # a pixel differing from the background by more than this (of 255) belongs to the item
NOISE_FLOOR = 8  # differences up to this are background in the output, as FashionMNIST's are 0

_UNREADABLE = "not an image this app can read (PNG, JPEG, WebP, BMP or GIF)"
_DAMAGED = "cannot decode this image (it is truncated or damaged)"
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error)


@dataclass(frozen=True)
class Prepared:
    """An uploaded image and the model input made from it, with what the UI shows about the steps."""

    original: Image.Image  # upright (EXIF orientation applied), as decoded
    tensor: torch.Tensor  # (1, 1, 28, 28) float32 in [0, 1]
    inverted: bool  # the background was light, so the item was turned light on dark
    crop_box: tuple[int, int, int, int] | None  # (left, top, right, bottom) in `original`; None = whole

    def input_image(self) -> Image.Image:
        """The 28x28 model input as an 8-bit grayscale image, for display."""
        pixels = self.tensor.reshape(SIZE, SIZE).mul(255).round().to(torch.uint8)
        return Image.frombytes("L", (SIZE, SIZE), pixels.numpy().tobytes())


@dataclass(frozen=True)
class Prediction:
    index: int
    label: str
    prob: float


def load_image(
    source: bytes | str | os.PathLike | BinaryIO,
    *,
    max_bytes: int = MAX_IMAGE_BYTES,
    max_pixels: int = MAX_PIXELS,
) -> Image.Image:
    """Decode the first frame of an allowed image, upright; anything unusable raises BadImage.

    Limits are checked cheapest first: byte size, then the header's dimensions, then decoding.
    """
    data = _read_bytes(source, max_bytes)
    if not data:
        raise BadImage("the file is empty")
    with warnings.catch_warnings():
        # Pillow only warns between its own limit and twice it; treat both as "too large".
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = _open(data)
            _check_dimensions(image.size, max_pixels)
            image.seek(0)  # first frame only; never walk the frames of an animation
            image.draft(image.mode, (DECODE_SIDE, DECODE_SIDE))  # JPEG only: decode at a reduced scale
            _decode(image)
        except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
            raise BadImage(
                f"image too large: over {Image.MAX_IMAGE_PIXELS:,} pixels; the limit is {_limits(max_pixels)}"
            ) from exc
    return _upright(image)


def _read_bytes(source: bytes | str | os.PathLike | BinaryIO, max_bytes: int) -> bytes:
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
    elif isinstance(source, str | os.PathLike):
        path = Path(source)
        try:
            _check_bytes(path.stat().st_size, max_bytes)
            data = path.read_bytes()
        except OSError as exc:
            raise BadImage(f"cannot read {path.name}: {exc.strerror or exc}") from exc
    else:
        if source.seekable():  # an upload buffer: know its size without reading it
            start = source.tell()
            _check_bytes(source.seek(0, os.SEEK_END) - start, max_bytes)
            source.seek(start)
        data = source.read(max_bytes + 1)  # one byte past the limit is enough to know it is over
    _check_bytes(len(data), max_bytes)
    return data


def _check_bytes(size: int, max_bytes: int) -> None:
    if size > max_bytes:
        raise BadImage(f"image is too large ({_human(size)}; the limit is {_human(max_bytes)})")


def _human(size: int) -> str:
    return f"{size / 2**20:.1f} MB" if size >= 2**20 else f"{size / 1024:.1f} KB"


def _limits(max_pixels: int) -> str:
    return f"{max_pixels / 1e6:g} megapixels and {MAX_SIDE:,} pixels a side"


def _open(data: bytes) -> Image.Image:
    try:
        # `formats` makes Pillow sniff only these, so a PDF, EPS or TIFF renamed .png is refused.
        return Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
    except Image.UnidentifiedImageError as exc:  # no allowed format recognised the content
        raise BadImage(_UNREADABLE) from exc
    except _DECODE_ERRORS as exc:  # recognised, but its header is cut short or broken (e.g. WebP)
        raise BadImage(_DAMAGED) from exc


def _check_dimensions(size: tuple[int, int], max_pixels: int) -> None:
    width, height = size
    if width * height > max_pixels or max(size) > MAX_SIDE:
        raise BadImage(f"image too large: {width} x {height} pixels; the limit is {_limits(max_pixels)}")


def _decode(image: Image.Image) -> None:
    # ImageFile.LOAD_TRUNCATED_IMAGES stays off: a half image would be classified as if whole.
    try:
        image.load()
    except _DECODE_ERRORS as exc:
        raise BadImage(_DAMAGED) from exc


def _upright(image: Image.Image) -> Image.Image:
    # A damaged EXIF block can raise almost anything; the photo unrotated beats a refusal.
    with contextlib.suppress(Exception):
        ImageOps.exif_transpose(image, in_place=True)  # phone photos store pixels sideways
    return image


def prepare(source: bytes | str | os.PathLike | BinaryIO) -> Prepared:
    """Load an upload and make the model input from it, keeping what the UI shows."""
    image = load_image(source)
    tensor, inverted, crop_box = _transform(image)
    return Prepared(image, tensor, inverted, crop_box)


def to_model_input(image: Image.Image) -> torch.Tensor:
    """Any PIL image -> (1, 1, 28, 28) float32 in [0, 1], made the way FashionMNIST was made."""
    return _transform(image)[0]


def _transform(image: Image.Image) -> tuple[torch.Tensor, bool, tuple[int, int, int, int] | None]:
    gray = _to_gray(image)
    background = _border_median(gray)
    light = background > LIGHT_BACKGROUND
    if gray.size == (SIZE, SIZE) and not light:
        # Already in FashionMNIST form (dark background, 28x28): use it exactly as it is.
        return _to_tensor(gray), False, None
    box = _item_box(gray, background)
    small = _fit(gray.crop(box), background)
    crop_box = None if box == (0, 0, *gray.size) else box
    return _to_tensor(_levels(small, background)), light, crop_box


def _to_gray(image: Image.Image) -> Image.Image:
    """8-bit grayscale; transparency is composited over white, high bit depths scaled by their range."""
    if image.has_transparency_data:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("L")
    if image.mode in ("I", "F") or image.mode.startswith("I;16"):
        return _scale_to_8bit(image)
    if image.mode == "LAB":
        return image.getchannel("L")  # Pillow cannot convert LAB to RGB; L is the lightness
    return image.convert("L")


def _scale_to_8bit(image: Image.Image) -> Image.Image:
    # Pillow's own conversion clips everything above 255 to white; map min..max onto 0..255 instead.
    low, high = image.getextrema()
    scale = 255 / (high - low) if high > low else 0.0
    return image.convert("F").point(lambda v: v * scale - low * scale).convert("L")


def _border_median(gray: Image.Image) -> int:
    width, height = gray.size
    edges = [
        (0, 0, width, 1),
        (0, height - 1, width, height),
        (0, 0, 1, height),
        (width - 1, 0, width, height),
    ]
    values = sorted(b"".join(gray.crop(edge).tobytes() for edge in edges))
    return values[len(values) // 2]


def _item_box(gray: Image.Image, background: int) -> tuple[int, int, int, int]:
    """Bounding box of the pixels that differ from the background, found on a reduced copy."""
    factor = math.ceil(max(gray.size) / MASK_SIDE)
    small = gray.reduce(factor) if factor > 1 else gray  # box average: specks fade, items stay
    diff = ImageChops.difference(small, Image.new("L", small.size, background))
    mask = diff.point(lambda v: 255 if v > ITEM_THRESHOLD else 0)
    # A 3x3 median drops isolated specks; a tiny item it would erase entirely is kept unfiltered.
    box = mask.filter(ImageFilter.MedianFilter(3)).getbbox() or mask.getbbox()
    if box is None:
        raise BadImage("no item found: the image looks like a single flat colour")
    left, top, right, bottom = (v * factor for v in box)
    return left, top, min(right, gray.width), min(bottom, gray.height)


def _fit(crop: Image.Image, background: int) -> Image.Image:
    """Longest edge to 28, shorter edge padded with the background so the item sits centred."""
    scale = SIZE / max(crop.size)
    size = (max(1, round(crop.width * scale)), max(1, round(crop.height * scale)))
    # reducing_gap first shrinks by an integer factor: fast on 10k-pixel crops, same look.
    resized = crop.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    canvas = Image.new("L", (SIZE, SIZE), background)
    # An odd leftover pixel goes before the item (left/top), as in FashionMNIST: 1 px matters to an MLP.
    canvas.paste(resized, ((SIZE - size[0] + 1) // 2, (SIZE - size[1] + 1) // 2))
    return canvas


def _levels(small: Image.Image, background: int) -> Image.Image:
    """Distance from the background, stretched so the item's peak is 255 as in every FashionMNIST image.

    For a light background this is the negation FashionMNIST applied; the distance also keeps a white
    item on a grey background, or a black one on a dark background, visible.
    """
    diff = ImageChops.difference(small, Image.new("L", small.size, background))
    peak = diff.getextrema()[1]
    if peak <= NOISE_FLOOR:
        return diff.point(lambda _v: 0)
    return diff.point(lambda v: round(max(0, v - NOISE_FLOOR) * 255 / (peak - NOISE_FLOOR)))


def _to_tensor(gray: Image.Image) -> torch.Tensor:
    pixels = torch.frombuffer(bytearray(gray.tobytes()), dtype=torch.uint8)
    return pixels.reshape(1, 1, SIZE, SIZE).float().div_(255)  # (1, 1, 28, 28), like ToTensor


def predict(
    model: nn.Module,
    image: Prepared | Image.Image | torch.Tensor | bytes | str | os.PathLike | BinaryIO,
    k: int = 3,
) -> list[Prediction]:
    """The k most likely classes for one image, most likely first; k is clipped to 1..10."""
    x = _as_input(image)
    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            probs = torch.softmax(model(x.to(device)), dim=1)[0].cpu()  # (10,)
    finally:
        model.train(was_training)
    top = torch.topk(probs, max(1, min(k, probs.numel())))
    return [
        Prediction(i, CLASSES[i], p) for p, i in zip(top.values.tolist(), top.indices.tolist(), strict=True)
    ]


def _as_input(
    image: Prepared | Image.Image | torch.Tensor | bytes | str | os.PathLike | BinaryIO,
) -> torch.Tensor:
    if isinstance(image, Prepared):
        return image.tensor
    if isinstance(image, Image.Image):
        return to_model_input(image)
    if isinstance(image, torch.Tensor):
        if image.shape[-2:] != (SIZE, SIZE) or image.numel() != SIZE * SIZE:
            raise ValueError(f"expected a 28x28 image tensor, got shape {tuple(image.shape)}")
        x = image.reshape(1, 1, SIZE, SIZE)  # (1, 1, 28, 28)
        return x.float().div(255) if x.dtype == torch.uint8 else x.float()
    return prepare(image).tensor
