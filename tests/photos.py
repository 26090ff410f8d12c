"""Photos made from FashionMNIST images: enlarged, a dark garment on a light background that may be
uneven (a band, a gradient, a shadow), as a phone would take them; for the crop's tests."""

import io
import math

import numpy as np
import torch
from PIL import Image, ImageFilter


def backdrop(kind: str, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A light background (as photos of clothes have) of the given kind: (h, w) float."""
    height, width = shape
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    background = np.full(shape, rng.uniform(200, 245), np.float32)
    if kind in ("gradient", "mix"):  # light falling off in any direction by 30-70 levels
        angle = rng.uniform(0, 2 * math.pi)
        ramp = xx * math.cos(angle) + yy * math.sin(angle)
        background -= rng.uniform(30, 70) * (ramp - ramp.min()) / (ramp.max() - ramp.min())
    if kind in ("band", "mix"):  # a darker band across: a table's edge, a wall meeting the floor
        half, centre = rng.uniform(0.04, 0.15) * height, rng.uniform(0.15, 0.85) * height
        background -= rng.uniform(50, 110) * (np.abs(yy - centre) < half)
    if kind == "vband":  # a door frame, a curtain
        half, centre = rng.uniform(0.04, 0.15) * width, rng.uniform(0.15, 0.85) * width
        background -= rng.uniform(50, 110) * (np.abs(xx - centre) < half)
    return background


def photo(pixels: torch.Tensor, kind: str, seed: int, *, at: tuple[float, float] | None = None) -> bytes:
    """A FashionMNIST image as a photo: enlarged to 300-600 px, a dark garment where the image is light,
    on a light background of `kind`, with a soft shadow for "shadow" and "mix", noise and JPEG.

    `at` places the item as fractions of the free room (0 = left/top, 1 = right/bottom)."""
    rng = np.random.default_rng(seed)
    side = int(rng.integers(300, 601))
    item = Image.fromarray(pixels.numpy()).resize((side, side), Image.Resampling.BICUBIC)
    alpha = np.asarray(item, np.float32) / 255  # how much of the garment covers each pixel
    width, height = (int(side * rng.uniform(1.3, 2.0)) for _ in range(2))
    fx, fy = at if at is not None else rng.uniform(0, 1, 2)
    left, top = round(fx * (width - side)), round(fy * (height - side))
    cover = np.zeros((height, width), np.float32)
    cover[top : top + side, left : left + side] = alpha
    background = backdrop(kind, (height, width), rng)
    if kind in ("shadow", "mix"):  # the garment's shadow, offset and blurred, 20-35% darker
        shift = rng.integers(5, side // 12, size=2)
        shadow = Image.fromarray((np.roll(cover, tuple(shift), (0, 1)) * 255).astype(np.uint8))
        shadow = np.asarray(shadow.filter(ImageFilter.GaussianBlur(side / 40)), np.float32) / 255
        background *= 1 - rng.uniform(0.2, 0.35) * shadow
    ink = rng.uniform(20, 110)
    gray = background * (1 - cover) + ink * cover + rng.normal(0, 3, (height, width))
    rgb = np.stack([gray * tint for tint in rng.uniform(0.92, 1.0, 3)], -1)
    buffer = io.BytesIO()
    Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()
