"""Turn any uploaded image into the 28x28 input FashionMNIST would have, and rank the classes for it."""

import base64
import binascii
import contextlib
import io
import os
import re
import stat
import struct
import time
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import torch
from PIL import Image, ImageChops, ImageOps, ImageStat
from torch import nn

from core.base.errors import BadImage
from core.data.fashion import CLASSES
from core.model.crop import LIGHT_BACKGROUND, SIZE, Box, border_median, find_item, render

MAX_IMAGE_BYTES = 10 * 1024 * 1024  # uploads above this are refused before anything is parsed
MAX_PIXELS = 40_000_000  # checked from the header, before decoding: about 120 MB as RGB
MAX_SIDE = 12_000  # longest side allowed; stops 1 x 50000 strips that pass the pixel count
ALLOWED_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF")  # sniffed from the content, not the file name
DECODE_SIDE = 1024  # big JPEGs are decoded at a reduced scale no smaller than this (plenty for 28 px)
# What decoding one image may cost. A real image needs a few hundred reads and well under 0.5 s.
DECODE_CPU_SECONDS = 2.0  # CPU time of the decoding thread, checked between Pillow's reads of the file
MAX_READS = 50_000  # 10 MB of PNG in 1 KB chunks takes about 30,000 reads; tiny-chunk floods take millions
MAX_JPEG_SCANS = 100  # libjpeg writes 10 progressive scans in colour, 6 in grey, 18 in CMYK
MAX_SCAN_PIXELS = 1_000_000_000  # scans x pixels: 25 scans at 40 megapixels, 0.6-1.1 s of libjpeg here
MAX_JPEG_SEGMENTS = 2_000  # a real JPEG has tens; 255 ICC chunks and a few hundred more still pass

# A data URL as a browser's canvas.toDataURL() writes it: the media type, then base64.
_DATA_URL = re.compile(r"data:(?P<kind>[\w.+-]+/[\w.+-]+)?(?:;[\w.+-]+=[\w.+-]+)*;base64,")

_UNREADABLE = "not an image this app can read (PNG, JPEG, WebP, BMP or GIF)"
_DAMAGED = "cannot decode this image (it is truncated or damaged)"
_METADATA = "image carries a text or colour-profile block too large to unpack; re-save it without metadata"
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error)
# A JPEG marker: 0xFF then a code that is not stuffing (00), a restart (D0-D7) or another fill byte (FF).
_JPEG_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
_SOS, _EOI = 0xDA, 0xD9
_STANDALONE = (0x01, 0xD8)  # TEM and SOI carry no length


@dataclass(frozen=True)
class Prepared:
    """An uploaded image and the model input made from it, with what the UI shows about the steps."""

    original: Image.Image  # upright (EXIF orientation applied), as decoded
    tensor: torch.Tensor  # (1, 1, 28, 28) float32 in [0, 1]
    inverted: bool  # the background was light, so the item was turned light on dark
    crop_box: Box | None  # (left, top, right, bottom) in `original`; None = whole
    unsure: str | None = None  # why the crop may hold more than the item (an uneven background), in words

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

    Limits are checked cheapest first: byte size, then the header's dimensions and the file's structure,
    then decoding, which stops once it has cost more than its budget.
    """
    data = _read_bytes(source, max_bytes)
    if not data:
        raise BadImage("the file is empty")
    with _pillow_warnings_silenced():
        stream = _BudgetedStream(data)
        image = _open(stream, max_pixels)
        _check_dimensions(image.size, max_pixels)
        if image.format in ("JPEG", "MPO"):  # MPO: a JPEG with more images after it, seen by Pillow
            _check_jpeg_scans(data, image.size)
        image.seek(0)  # first frame only; never walk the frames of an animation
        image.draft(image.mode, (DECODE_SIDE, DECODE_SIDE))  # JPEG only: decode at a reduced scale
        _decode(image, stream)
        return _upright(image)


@contextlib.contextmanager
def _pillow_warnings_silenced():
    """Pillow's warnings (damaged EXIF, odd palettes or APNG chunks) are noise: it carries on and so do
    we. Its decompression-bomb warning alone becomes an error, so that the image is refused.

    catch_warnings is process-wide before Python 3.14: two sessions decoding at once can let a warning
    through for a moment, and at worst leave these same filters in place, which is harmless here.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=r"PIL\.")
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        yield


def _read_bytes(source: bytes | str | os.PathLike | BinaryIO, max_bytes: int) -> bytes:
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
    elif isinstance(source, str | os.PathLike):
        data = _read_path(Path(source), max_bytes)
    else:
        if source.seekable():  # an upload buffer: know its size without reading it
            start = source.tell()
            _check_bytes(source.seek(0, os.SEEK_END) - start, max_bytes)
            source.seek(start)
        data = source.read(max_bytes + 1)  # one byte past the limit is enough to know it is over
    _check_bytes(len(data), max_bytes)
    return data


def _read_path(path: Path, max_bytes: int) -> bytes:
    """At most max_bytes + 1 bytes of a regular file; /dev/zero never ends and a FIFO never answers."""
    try:
        info = path.stat()
        _check_regular(path, info.st_mode)
        _check_bytes(info.st_size, max_bytes)
        # O_NONBLOCK: should the path have become a FIFO since stat, opening it must not wait for a writer.
        with os.fdopen(os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)), "rb") as file:
            _check_regular(path, os.fstat(file.fileno()).st_mode)
            return file.read(max_bytes + 1)
    except OSError as exc:
        raise BadImage(f"cannot read {path.name}: {exc.strerror or exc}") from exc


def _check_regular(path: Path, mode: int) -> None:
    if stat.S_ISDIR(mode):
        raise BadImage(f"{path} is a folder, not an image file")
    if not stat.S_ISREG(mode):
        raise BadImage(f"{path} is not a regular file (a device, pipe or socket is no image)")


def _check_bytes(size: int, max_bytes: int) -> None:
    if size > max_bytes:
        raise BadImage(f"image is too large ({_human(size)}; the limit is {_human(max_bytes)})")


def _human(size: int) -> str:
    return f"{size / 2**20:.1f} MB" if size >= 2**20 else f"{size / 1024:.1f} KB"


def _limits(max_pixels: int) -> str:
    return f"{max_pixels / 1e6:g} megapixels and {MAX_SIDE:,} pixels a side"


class _BudgetedStream(io.BytesIO):
    """The file as Pillow reads it: each read first checks what decoding has cost so far.

    Pillow reads between every chunk, segment or block it parses (in Python) and between the pieces it
    hands its decoders, so a file built of millions of tiny parts, or one slow to decode, is stopped
    within one piece of the budget. CPU time of this thread is counted: other users' load does not
    make an image fail.
    """

    def __init__(self, data: bytes):
        super().__init__(data)
        self.reads_left = MAX_READS
        self.deadline = time.thread_time() + DECODE_CPU_SECONDS
        self.refusal: BadImage | None = None

    def read(self, size: int | None = -1) -> bytes:
        self.reads_left -= 1
        if self.reads_left < 0:
            self._refuse(f"image is made of too many small parts (over {MAX_READS:,} reads)")
        if time.thread_time() > self.deadline:
            self._refuse(f"image took over {DECODE_CPU_SECONDS:g} s of CPU time to decode")
        return super().read(size)

    def _refuse(self, problem: str) -> None:
        self.refusal = BadImage(f"{problem}; re-save it as an ordinary PNG or JPEG")
        raise self.refusal


def _open(stream: _BudgetedStream, max_pixels: int) -> Image.Image:
    try:
        # `formats` makes Pillow sniff only these, so a PDF, EPS or TIFF renamed .png is refused.
        return Image.open(stream, formats=ALLOWED_FORMATS)
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        # Pillow's own guard (above 89 megapixels) runs inside Image.open, before our check can.
        limit = min(max_pixels, Image.MAX_IMAGE_PIXELS or max_pixels)
        size = _declared_size(stream, exc)
        raise BadImage(f"image too large: {size}; the limit is {_limits(limit)}") from exc
    except Image.UnidentifiedImageError as exc:  # no allowed format recognised the content
        raise stream.refusal or BadImage(_UNREADABLE) from exc
    except ValueError as exc:
        if "MAX_TEXT" in str(exc):  # Pillow's caps on unpacked PNG text and ICC chunks (1 MB, 64 MB in all)
            raise BadImage(_METADATA) from exc
        raise stream.refusal or BadImage(_DAMAGED) from exc
    except _DECODE_ERRORS as exc:  # recognised, but its header is cut short or broken (e.g. WebP)
        raise stream.refusal or BadImage(_DAMAGED) from exc


def _declared_size(stream: io.BytesIO, refusal: Exception) -> str:
    """The width x height a header declares, read by the format's own plugin without Image.open's bomb
    check; else the pixel count in Pillow's refusal (WebP's plugin runs the check itself)."""
    data = stream.getvalue()
    for name in ALLOWED_FORMATS:
        factory, accept = Image.OPEN[name]
        if accept is None or accept(data[:16]) is True:
            with contextlib.suppress(Exception):
                width, height = factory(io.BytesIO(data), "").size
                return f"{width} x {height} pixels"
    pixels = re.search(r"\((\d+) pixels\)", str(refusal))
    return f"{int(pixels[1]):,} pixels" if pixels else f"over {Image.MAX_IMAGE_PIXELS:,} pixels"


def _check_dimensions(size: tuple[int, int], max_pixels: int) -> None:
    width, height = size
    if width * height > max_pixels or max(size) > MAX_SIDE:
        raise BadImage(f"image too large: {width} x {height} pixels; the limit is {_limits(max_pixels)}")


def _check_jpeg_scans(data: bytes, size: tuple[int, int]) -> None:
    """Refuse a JPEG with more scans than a real one would have.

    libjpeg decodes every scan over every block of the image, so the work grows with scans x pixels: a
    4096 x 4096 JPEG with its last scan repeated 2,000 times (165 KB) costs 20 s of CPU. A progressive
    JPEG has about 10 scans, a baseline one 1 to 4.
    """
    limit = max(1, min(MAX_JPEG_SCANS, MAX_SCAN_PIXELS // (size[0] * size[1])))
    scans = _count_jpeg_scans(data, stop_after=limit)
    if scans > limit:
        raise BadImage(
            f"JPEG has over {limit} scans, the limit for {size[0]} x {size[1]} pixels (an ordinary "
            "progressive JPEG has about 10); re-save it as an ordinary JPEG"
        )


def _count_jpeg_scans(data: bytes, stop_after: int) -> int:
    """Start-of-scan segments up to the first EOI, walking the marker segments; stops past stop_after."""
    scans, pos = 0, 2  # past SOI
    for _ in range(MAX_JPEG_SEGMENTS):
        marker = _JPEG_MARKER.search(data, pos)  # skips the entropy-coded data after each scan header
        code = data[marker.start() + 1] if marker else _EOI
        if code == _EOI:
            return scans
        pos = marker.end()
        if code in _STANDALONE:
            continue
        pos += int.from_bytes(data[pos : pos + 2], "big")  # the length counts itself, not the marker
        scans += code == _SOS
        if scans > stop_after:
            return scans
    raise BadImage(f"JPEG has over {MAX_JPEG_SEGMENTS:,} marker segments; re-save it as an ordinary JPEG")


def _decode(image: Image.Image, stream: _BudgetedStream) -> None:
    # ImageFile.LOAD_TRUNCATED_IMAGES stays off: a half image would be classified as if whole.
    try:
        image.load()
    except _DECODE_ERRORS as exc:
        raise stream.refusal or BadImage(_DAMAGED) from exc


def _upright(image: Image.Image) -> Image.Image:
    # A damaged EXIF block can raise almost anything; the photo unrotated beats a refusal.
    with contextlib.suppress(Exception):
        ImageOps.exif_transpose(image, in_place=True)  # phone photos store pixels sideways
    return image


def load_data_url(
    url: object, *, max_bytes: int = MAX_IMAGE_BYTES, max_pixels: int = MAX_PIXELS
) -> Image.Image:
    """Decode a `data:image/...;base64,...` URL (a canvas's drawing) through load_image's limits.

    The URL comes from the browser and may be anything: its length is checked before base64 is
    decoded, and the bytes are then checked like any upload."""
    if not isinstance(url, str):
        raise BadImage(f"the drawing arrived as {type(url).__name__}, not as an image; clear the canvas")
    head = _DATA_URL.match(url, 0, 200)  # a real header is about 22 characters
    if head is None:
        raise BadImage("the drawing did not arrive as a base64 data: URL; clear the canvas and draw again")
    if not (head["kind"] or "").startswith("image/"):
        raise BadImage("the drawing's data URL does not hold an image; clear the canvas and draw again")
    encoded = len(url) - head.end()
    _check_bytes(encoded // 4 * 3, max_bytes)  # base64 turns 3 bytes into 4 characters
    try:
        data = base64.b64decode(url[head.end() :], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadImage("the drawing's data is not valid base64; clear the canvas and draw again") from exc
    return load_image(data, max_bytes=max_bytes, max_pixels=max_pixels)


def prepare(
    source: bytes | str | os.PathLike | BinaryIO,
    *,
    max_bytes: int = MAX_IMAGE_BYTES,
    max_pixels: int = MAX_PIXELS,
) -> Prepared:
    """Load an upload and make the model input from it, keeping what the UI shows."""
    return prepare_image(load_image(source, max_bytes=max_bytes, max_pixels=max_pixels))


def prepare_image(image: Image.Image) -> Prepared:
    """The model input made from an image already loaded (by load_image or load_data_url)."""
    return Prepared(image, *_transform(image))


def to_model_input(image: Image.Image) -> torch.Tensor:
    """Any PIL image -> (1, 1, 28, 28) float32 in [0, 1], made the way FashionMNIST was made."""
    return _transform(image)[0]


def _transform(image: Image.Image) -> tuple[torch.Tensor, bool, Box | None, str | None]:
    with _pillow_warnings_silenced():  # e.g. a palette's transparency given as bytes
        gray = _to_gray(image)
    level = border_median(gray)
    light = level > LIGHT_BACKGROUND
    if gray.size == (SIZE, SIZE) and not light:
        # Already in FashionMNIST form (dark background, 28x28): use it exactly as it is.
        return _to_tensor(gray), False, None, None
    found = find_item(gray, level)
    crop_box = None if found.box == (0, 0, *gray.size) else found.box
    return _to_tensor(render(gray, found)), light, crop_box, found.unsure


def _to_gray(image: Image.Image) -> Image.Image:
    """8-bit grayscale; transparency is composited onto a background the item stands out from, high
    bit depths scaled by their range."""
    if image.has_transparency_data:
        rgba = image.convert("RGBA")
        backdrop = Image.new("RGBA", rgba.size, _backdrop(rgba))
        return Image.alpha_composite(backdrop, rgba).convert("L")
    if image.mode in ("I", "F") or image.mode.startswith("I;16"):
        return _scale_to_8bit(image)
    if image.mode == "LAB":
        return image.getchannel("L")  # Pillow cannot convert LAB to RGB; L is the lightness
    return image.convert("L")


def _backdrop(rgba: Image.Image) -> tuple[int, int, int, int]:
    """Black behind a light item, white behind a dark one: over white, a white shirt cut out on a
    transparent PNG would vanish, or be inverted into a dark one by the light-background test."""
    alpha = rgba.getchannel("A")
    opaque = ImageStat.Stat(alpha).sum[0]
    if opaque == 0:
        return (255, 255, 255, 255)
    # The item's mean lightness, each pixel weighted by how opaque it is (multiply divides by 255).
    lightness = ImageStat.Stat(ImageChops.multiply(rgba.convert("L"), alpha)).sum[0] * 255 / opaque
    return (0, 0, 0, 255) if lightness > LIGHT_BACKGROUND else (255, 255, 255, 255)


def _scale_to_8bit(image: Image.Image) -> Image.Image:
    # Pillow's own conversion clips everything above 255 to white; map min..max onto 0..255 instead.
    low, high = image.getextrema()
    scale = 255 / (high - low) if high > low else 0.0
    return image.convert("F").point(lambda v: v * scale - low * scale).convert("L")


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
