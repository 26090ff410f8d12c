"""Find the item in a photo against its background, even an uneven one, and make the 28x28 input from it.

The background is estimated from the photo's border: flat, it is the border's median (as before); uneven
(a darker band, a lighting gradient), it is a Coons patch, the smooth surface that interpolates the four
border lines across the photo, so a band or a gradient that crosses the border is background everywhere
it runs. The item is what stands out from that estimate. Everything is computed on a copy at most
MASK_SIDE pixels long, so the work per image is bounded whatever its size.
"""

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from PIL import Image, ImageFilter

from core.base.errors import BadImage

SIZE = 28  # FashionMNIST images are 28x28
MASK_SIDE = 512  # the item is located on a copy at most this long: fast, and averages out specks
LIGHT_BACKGROUND = 127  # a border median above this means a light background (the item gets inverted)
ITEM_THRESHOLD = 20  # a pixel differing from the background by more than this (of 255) belongs to the item
NOISE_FLOOR = 8  # differences up to this are background in the output, as FashionMNIST's are 0
AGREE = 0.9  # a box this much of another's area is the same item
MIN_MODEL_SIDE = 64  # shorter border lines cannot tell a band from the item touching them: flat only
EDGE_WINDOW = 1 / 16  # border lines are smoothed by a running median this long (of the side): specks go
UNEVEN = (
    "The background is uneven and the item reaches the edge of the photo: the crop (orange box) may "
    "hold more than the item. Crop the photo closer around it, or use a plain background."
)

Box = tuple[int, int, int, int]  # (left, top, right, bottom)


@dataclass(frozen=True)
class Found:
    """Where the item is, and the background it was told apart from."""

    box: Box  # in the image's own pixels
    level: int  # the border's median: above LIGHT_BACKGROUND the background is light
    surface: np.ndarray | None  # (h, w) background at the mask's scale; None: `level` everywhere
    factor: int  # one pixel of `surface` is factor x factor pixels of the image
    unsure: str | None  # why the box may not be the item alone, in words; None when it looks clean


def border_median(gray: Image.Image) -> int:
    """The median of the image's outermost pixels: the background level when it is flat."""
    width, height = gray.size
    edges = [
        (0, 0, width, 1),
        (0, height - 1, width, height),
        (0, 0, 1, height),
        (width - 1, 0, width, height),
    ]
    values = sorted(b"".join(gray.crop(edge).tobytes() for edge in edges))
    return values[len(values) // 2]


def find_item(gray: Image.Image, level: int) -> Found:
    """The item's bounding box against the background, found on a reduced copy of `gray`."""
    factor = -(-max(gray.size) // MASK_SIDE)  # ceil
    small = gray.reduce(factor) if factor > 1 else gray  # box average: specks fade, items stay
    pixels = np.asarray(small, dtype=np.float32)  # (h, w)
    flat_box = _box(np.abs(pixels - level))
    if flat_box is None:
        raise BadImage("no item found: the image looks like a single flat colour")
    edges = _edges(pixels)
    uneven = any(np.abs(edge - level).max() > ITEM_THRESHOLD for edge in edges)
    if not uneven or min(pixels.shape) < MIN_MODEL_SIDE:
        return _found(flat_box, factor, gray, level)
    patch = _coons(*_repaired(*edges), pixels.shape)
    patch_box = _box(np.abs(pixels - patch))
    # The border's unevenness is either background (a band, a gradient) or the item touching the border.
    # Background explained away leaves an item that reaches fewer of the photo's edges.
    if patch_box is not None and _touches(patch_box, pixels.shape) < _touches(flat_box, pixels.shape):
        unsure = _touches(patch_box, pixels.shape) > 0
        return _found(patch_box, factor, gray, level, patch, unsure)
    # Unsure: the item reaches the photo's edge, and the border read as background leaves a smaller one.
    unsure = _touches(flat_box, pixels.shape) > 0 and _area(patch_box) < AGREE * _area(flat_box)
    return _found(flat_box, factor, gray, level, None, unsure)


def _found(
    box: Box,
    factor: int,
    gray: Image.Image,
    level: int,
    surface: np.ndarray | None = None,
    unsure: bool = False,
) -> Found:
    """`box`, found at the reduced scale, in the image's own pixels."""
    left, top, right, bottom = (v * factor for v in box)
    box = (left, top, min(right, gray.width), min(bottom, gray.height))
    return Found(box, level, surface, factor, UNEVEN if unsure else None)


def _edges(pixels: np.ndarray) -> tuple[np.ndarray, ...]:
    """The top, bottom, left and right border lines, each smoothed by a running median."""
    height, width = pixels.shape
    window = max(3, round(max(height, width) * EDGE_WINDOW) // 2 * 2 + 1)  # odd
    lines = (pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1])
    return tuple(_running_median(line, window) for line in lines)


def _running_median(line: np.ndarray, window: int) -> np.ndarray:
    if len(line) < window:
        return np.full_like(line, np.median(line))
    padded = np.pad(line, window // 2, mode="edge")
    return np.median(sliding_window_view(padded, window), axis=1)


def _repaired(top, bottom, left, right) -> tuple[np.ndarray, ...]:
    """Opposite border lines of a band or a gradient differ by about a constant; where they do not, the
    item touches one of them. There, the line further from its own median takes the other's value."""
    top, bottom = _agree(top, bottom)
    left, right = _agree(left, right)
    return top, bottom, left, right


def _agree(one: np.ndarray, other: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    gap = other - one
    offset = np.median(gap)
    odd = np.abs(gap - offset) > ITEM_THRESHOLD
    if not odd.any():
        return one, other
    one_strays = np.abs(one - np.median(one)) > np.abs(other - np.median(other))
    one, other = one.copy(), other.copy()
    one[odd & one_strays] = other[odd & one_strays] - offset
    other[odd & ~one_strays] = one[odd & ~one_strays] + offset
    return one, other


def _coons(top, bottom, left, right, shape: tuple[int, int]) -> np.ndarray:
    """The bilinearly blended (Coons) patch through four border lines: (h, w)."""
    height, width = shape
    v = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]  # (h, 1)
    u = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :]  # (1, w)
    corners = [(top[0] + left[0]) / 2, (top[-1] + right[0]) / 2]
    corners += [(bottom[0] + left[-1]) / 2, (bottom[-1] + right[-1]) / 2]
    along = (1 - v) * top[None, :] + v * bottom[None, :]
    across = (1 - u) * left[:, None] + u * right[:, None]
    bilinear = (1 - u) * (1 - v) * corners[0] + u * (1 - v) * corners[1]
    bilinear = bilinear + (1 - u) * v * corners[2] + u * v * corners[3]
    return (along + across - bilinear).astype(np.float32)


def _box(difference: np.ndarray) -> Box | None:
    """Bounding box of the pixels that stand out by more than ITEM_THRESHOLD, specks dropped."""
    mask = Image.fromarray(np.where(difference > ITEM_THRESHOLD, 255, 0).astype(np.uint8))
    # A 3x3 median drops isolated specks; a tiny item it would erase entirely is kept unfiltered.
    return mask.filter(ImageFilter.MedianFilter(3)).getbbox() or mask.getbbox()


def _area(box: Box | None) -> int:
    if box is None:
        return 0
    return (box[2] - box[0]) * (box[3] - box[1])


def _touches(box: Box, shape: tuple[int, int]) -> int:
    """How many of the image's four edges the box reaches."""
    left, top, right, bottom = box
    height, width = shape
    return (left == 0) + (top == 0) + (right == width) + (bottom == height)


def render(gray: Image.Image, found: Found) -> Image.Image:
    """The 28x28 input: the crop's distance from the background, longest edge 28, centred, stretched."""
    crop = gray.crop(found.box)
    scale = SIZE / max(crop.size)
    size = (max(1, round(crop.width * scale)), max(1, round(crop.height * scale)))
    # reducing_gap first shrinks by an integer factor: fast on 10k-pixel crops, same look.
    resized = np.asarray(crop.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0), dtype=np.float32)
    distance = np.zeros((SIZE, SIZE), dtype=np.float32)
    # An odd leftover pixel goes before the item (left/top), as in FashionMNIST: 1 px matters to an MLP.
    left, top = (SIZE - size[0] + 1) // 2, (SIZE - size[1] + 1) // 2
    distance[top : top + size[1], left : left + size[0]] = _contrast(resized, found, size)
    return _levels(distance)


def _contrast(pixels: np.ndarray, found: Found, size: tuple[int, int]) -> np.ndarray:
    """Each pixel's distance from the background under it. Over an uneven background the distance is
    divided by the room the background leaves (how far the item's own colour is from it), so the item
    looks the same across a band as beside it; on a flat background, the room is the same everywhere."""
    background = _background(found, size)
    distance = np.abs(pixels - background)
    if found.surface is None:
        return distance
    strongest = distance >= np.percentile(distance, 98)
    ink = float(np.median(pixels[strongest]))  # the item's own colour: where it stands out most
    room = np.abs(ink - background)
    typical = float(np.median(room))
    return distance * typical / np.maximum(room, typical / 2)


def _background(found: Found, size: tuple[int, int]) -> np.ndarray | int:
    """The background under the crop, at the crop's resized size."""
    if found.surface is None:
        return found.level
    left, top, right, bottom = found.box
    f = found.factor
    under = found.surface[top // f : -(-bottom // f), left // f : -(-right // f)]
    return np.asarray(Image.fromarray(np.ascontiguousarray(under)).resize(size, Image.Resampling.BILINEAR))


def _levels(distance: np.ndarray) -> Image.Image:
    """Distance from the background, stretched so the item's peak is 255 as in every FashionMNIST image.

    For a light background this is the negation FashionMNIST applied; the distance also keeps a white
    item on a grey background, or a black one on a dark background, visible.
    """
    distance = np.round(distance.astype(np.float64))  # whole levels, as a flat background always gave
    peak = float(distance.max())
    if peak <= NOISE_FLOOR:
        return Image.new("L", (SIZE, SIZE), 0)
    stretched = np.round(np.maximum(0, distance - NOISE_FLOOR) * 255 / (peak - NOISE_FLOOR))
    return Image.fromarray(stretched.astype(np.uint8))
