"""Batched training augmentation on tensors (flip, rotate, shift, zoom, erase): no per-sample PIL work."""

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Augment:
    """What to do to each training image; all zero means no augmentation."""

    hflip: float = 0.0  # probability of a horizontal flip
    rotate: float = 0.0  # largest rotation, degrees either way
    translate: float = 0.0  # largest shift, as a fraction of the image side
    scale: float = 0.0  # largest zoom in or out, as a fraction (0.1 = 90%..110%)
    erase: float = 0.0  # probability of blanking a random rectangle (RandomErasing)

    def __post_init__(self):
        for name, value in asdict(self).items():
            if not 0.0 <= value <= (180.0 if name == "rotate" else 1.0):
                raise ValueError(f"augment.{name}={value} is out of range")

    @property
    def active(self) -> bool:
        return any(asdict(self).values())

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return apply_augment(x, self, generator)


def apply_augment(x: torch.Tensor, aug: Augment, generator: torch.Generator) -> torch.Tensor:
    """Augment a batch (B, 1, H, W) in [0, 1]; random numbers come from `generator` (on the CPU)."""
    if not aug.active:
        return x
    b = x.shape[0]
    u = torch.rand(b, 10, generator=generator).to(x.device)  # (B, 10) uniforms, one column per draw
    if aug.hflip:
        flip = (u[:, 0] < aug.hflip).view(b, 1, 1, 1)
        x = torch.where(flip, x.flip(-1), x)
    if aug.rotate or aug.translate or aug.scale:
        x = _random_affine(x, aug, u[:, 1:5] * 2 - 1)
    if aug.erase:
        x = _random_erase(x, aug.erase, u[:, 5:10])
    return x


def _random_affine(x: torch.Tensor, aug: Augment, s: torch.Tensor) -> torch.Tensor:
    """One grid_sample for the whole batch; `s` (B, 4) holds uniforms in [-1, 1]."""
    angle = s[:, 0] * math.radians(aug.rotate)
    zoom = 1 + s[:, 1] * aug.scale
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    # affine_grid works in [-1, 1] coordinates, so a shift of f of the side is 2f.
    tx, ty = s[:, 2] * aug.translate * 2, s[:, 3] * aug.translate * 2
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)  # (B, 2, 3)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _random_erase(x: torch.Tensor, p: float, u: torch.Tensor) -> torch.Tensor:
    """Blank one rectangle of 2-20% of the area (aspect 0.3-3.3) in a fraction p of the images.

    `u` (B, 5) holds uniforms in [0, 1]: area, aspect, top, left, and the coin that picks the images.
    """
    b, _, h, w = x.shape
    area = 0.02 + u[:, 0] * 0.18
    ratio = torch.exp(math.log(0.3) + u[:, 1] * (math.log(3.3) - math.log(0.3)))
    eh = (torch.sqrt(area * ratio) * h).clamp(1, h)
    ew = (torch.sqrt(area / ratio) * w).clamp(1, w)
    top = u[:, 2] * (h - eh)
    left = u[:, 3] * (w - ew)
    rows = torch.arange(h, device=x.device).view(1, h, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w)
    inside = (
        (rows >= top.view(b, 1, 1))
        & (rows < (top + eh).view(b, 1, 1))
        & (cols >= left.view(b, 1, 1))
        & (cols < (left + ew).view(b, 1, 1))
    )
    chosen = (u[:, 4] < p).view(b, 1, 1)
    return x.masked_fill((inside & chosen).unsqueeze(1), 0.0)
