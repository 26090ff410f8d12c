"""Pure helpers behind the Dataset Explorer: seeded samples, class statistics, batch shapes, custom sets."""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from core.data.fashion import DATA_DIR, CustomImageDataset

# data/custom/<name>/ holds one dataset: a CSV of `filename,label` rows and its images.
CUSTOM_ROOT = DATA_DIR / "custom"
ANNOTATIONS_NAME = "annotations.csv"
IMAGES_SUBDIR = "images"
GRID_SIZES = (3, 4, 5, 6)


def sample_indices(labels: torch.Tensor, classes: Sequence[int] | None, n: int, seed: int) -> list[int]:
    """`n` distinct indices whose label is in `classes` (all when None), the same for the same seed."""
    pool = torch.arange(len(labels))
    if classes is not None:
        pool = pool[torch.isin(labels, torch.as_tensor(list(classes), dtype=labels.dtype))]
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(pool), generator=generator)[:n]
    return pool[order].tolist()


def class_counts(labels: torch.Tensor, num_classes: int) -> list[int]:
    """How many samples each class 0..num_classes-1 has."""
    return torch.bincount(labels, minlength=num_classes)[:num_classes].tolist()


def class_means(images: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """The mean image of each class, (num_classes, H, W) float on the images' scale (zeros if empty)."""
    means = torch.zeros(num_classes, *images.shape[1:])
    for c in range(num_classes):
        # One class at a time: a float copy of the whole 60k split would cost ~190 MB.
        members = images[labels == c]
        if len(members):
            means[c] = members.float().mean(dim=0)
    return means


@dataclass(frozen=True)
class PixelStats:
    min: float
    max: float
    mean: float
    std: float


def pixel_stats(image: torch.Tensor, correction: int = 0) -> PixelStats:
    """Min, max, mean and std (population by default) of all pixel values, on the image's own scale."""
    values = image.float()
    std = float(values.std(correction=correction)) if values.numel() > correction else 0.0
    return PixelStats(float(values.min()), float(values.max()), float(values.mean()), std)


@dataclass(frozen=True)
class BatchPreview:
    x: torch.Tensor  # (N, C, H, W) float, what the model receives
    y: torch.Tensor  # (N,) int64
    lines: tuple[str, str]  # the tutorial's two print() lines


def batch_shapes(dataset: Dataset, batch_size: int) -> BatchPreview:
    """The first batch of `DataLoader(dataset, batch_size=...)` and the tutorial's shape lines for it."""
    loader = DataLoader(dataset, batch_size=batch_size)
    x, y = next(iter(loader))
    # Exactly the quickstart's `print(f"Shape of X [N, C, H, W]: {X.shape}")` and the line after it.
    lines = (f"Shape of X [N, C, H, W]: {x.shape}", f"Shape of y: {y.shape} {y.dtype}")
    return BatchPreview(x, y, lines)


def to_display(image: torch.Tensor, size: int) -> np.ndarray:
    """An image as uint8 (H, W) or (H, W, 3), upscaled by a whole factor towards `size` px, nearest-neighbour.

    Accepts (H, W) or (C, H, W), uint8 or floats in [0, 1] (what ToTensor gives); a whole factor
    with repeated pixels keeps a 28x28 sample crisp instead of the browser's blurry resampling.
    """
    if image.is_floating_point():
        image = (image.clamp(0, 1) * 255).round()
    image = image.to(torch.uint8)
    if image.dim() == 3:
        image = image[0] if image.shape[0] in (1, 2) else image[:3].permute(1, 2, 0)  # drop alpha
    factor = max(1, size // max(image.shape[0], image.shape[1]))
    image = image.repeat_interleave(factor, dim=0).repeat_interleave(factor, dim=1)
    return image.numpy()


def mosaic(images: torch.Tensor, columns: int, gap: int = 2) -> torch.Tensor:
    """Tile (N, 1, H, W) or (N, H, W) images into one (rows*(H+gap)-gap, columns*(W+gap)-gap) image."""
    if images.dim() == 4:
        images = images[:, 0]
    n, h, w = images.shape
    rows = -(-n // columns)
    fill = images.max() if n else 0  # a light gap on any scale: FashionMNIST backgrounds are black
    sheet = torch.full((rows * (h + gap) - gap, columns * (w + gap) - gap), fill, dtype=images.dtype)
    for i in range(n):
        top, left = (i // columns) * (h + gap), (i % columns) * (w + gap)
        sheet[top : top + h, left : left + w] = images[i]
    return sheet


@dataclass(frozen=True)
class CustomDatasetInfo:
    name: str
    annotations_file: Path
    img_dir: Path


def discover_custom_datasets(root: Path | None = None) -> list[CustomDatasetInfo]:
    """Each folder <root>/<name>/ holding a CSV (annotations.csv preferred) is one custom dataset.

    Images are looked up in <name>/images/ when that folder exists, else next to the CSV.
    """
    root = Path(root or CUSTOM_ROOT)
    if not root.is_dir():
        return []
    found = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        preferred = folder / ANNOTATIONS_NAME
        csvs = [preferred] if preferred.is_file() else sorted(folder.glob("*.csv"))
        if not csvs:
            continue
        images = folder / IMAGES_SUBDIR
        found.append(CustomDatasetInfo(folder.name, csvs[0], images if images.is_dir() else folder))
    return found


def open_custom(info: CustomDatasetInfo) -> CustomImageDataset:
    """The tutorial's CustomImageDataset over a discovered folder (raises DatasetNotFound/DatasetCorrupt)."""
    return CustomImageDataset(info.annotations_file, info.img_dir)


def custom_labels(dataset: CustomImageDataset) -> torch.Tensor:
    """The labels of a CustomImageDataset, read from its CSV rows (no image is decoded)."""
    return torch.tensor([label for _, label in dataset.rows], dtype=torch.long)
