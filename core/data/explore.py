"""Pure helpers behind the Dataset Explorer: seeded samples, class statistics, epochs, custom sets."""

import csv
import tempfile
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


def describe_sample(image: torch.Tensor, label: int, name: str) -> tuple[str, ...]:
    """What `img, label = training_data[i]` hands out, in the words the page and its code print."""
    values = image.float()
    return (
        f"img.shape = {image.shape}",
        f"img.dtype = {image.dtype}",
        f"values {float(values.min()):.3f} to {float(values.max()):.3f}, mean {float(values.mean()):.3f}",
        f"label = {label} ({name})",
    )


FIRST_LABELS = 8  # how many labels of each epoch's first batch are compared


def first_batches(dataset: Dataset, batch_size: int, shuffle: bool, seed: int, epochs: int = 2) -> list:
    """The first batch `(features (N, 1, 28, 28), labels (N,))` of each of `epochs` epochs of one DataLoader.

    Each `iter(loader)` starts an epoch; with shuffle=True it draws a new order. The loader's own generator,
    seeded, makes the orders the same for the same seed in any process, and leaves torch's global one alone.
    """
    generator = torch.Generator().manual_seed(seed)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=generator)
    return [next(iter(loader)) for _ in range(epochs)]


def batch_lines(features: torch.Tensor, labels: torch.Tensor) -> tuple[str, str]:
    """The data tutorial's two print() lines for a batch."""
    return f"Feature batch shape: {features.size()}", f"Labels batch shape: {labels.size()}"


def named_labels(labels: torch.Tensor, names: Sequence[str]) -> list[str]:
    """Each label digit with its class name beside it: "9 Ankle boot"."""
    return [f"{y} {names[y]}" for y in labels.tolist()]


def label_rows(labels: torch.Tensor, names: Sequence[str], columns: int) -> list[list[str]]:
    """The named labels row by row, as `mosaic` places their images."""
    named = named_labels(labels, names)
    return [named[start : start + columns] for start in range(0, len(named), columns)]


def same_batches(first: tuple[torch.Tensor, torch.Tensor], second: tuple[torch.Tensor, torch.Tensor]) -> bool:
    """Whether two batches hold the same samples in the same order (the pixels as read, not computed)."""
    return torch.equal(first[1], second[1]) and torch.equal(first[0], second[0])


def epoch_lines(batches: Sequence[tuple[torch.Tensor, torch.Tensor]], names: Sequence[str]) -> list[str]:
    """What the page's code prints for the first batch of each of two epochs, and whether they match."""
    lines = [
        f"Epoch {n} starts with: " + ", ".join(named_labels(labels[:FIRST_LABELS], names))
        for n, (_features, labels) in enumerate(batches, 1)
    ]
    return [*lines, f"The same order in both epochs: {same_batches(batches[0], batches[1])}"]


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


# ---- the tutorial's "Creating a Custom Dataset for your files", on real images ---------------------------

ANNOTATIONS_HEADER = ("file", "label")


def sample_file_name(index: int) -> str:
    return f"test_{index}.png"


def write_image_folder(folder: Path, dataset: Dataset, indices: Sequence[int]) -> Path:
    """Samples of `dataset` (float (1, H, W) in [0, 1], what ToTensor gives) as PNG files in `folder` and an
    annotations.csv of `file,label` rows: the layout CustomImageDataset reads. Returns the CSV's path."""
    # torchvision: ~1.2 s to import after torch (measured here), so only when used
    from torchvision.io import write_png

    folder.mkdir(parents=True, exist_ok=True)
    rows = [ANNOTATIONS_HEADER]
    for index in indices:
        image, label = dataset[index]
        name = sample_file_name(index)
        write_png((image * 255).round().to(torch.uint8), str(folder / name))  # back to the stored 0-255
        rows.append((name, str(label)))
    annotations = folder / ANNOTATIONS_NAME
    with annotations.open("w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(rows)
    return annotations


@dataclass(frozen=True)
class RoundTrip:
    annotations: str  # the CSV as written
    items: tuple[tuple[torch.Tensor, int], ...]  # custom_data[i] of each row: (uint8 (C, H, W), label)


def round_trip(dataset: Dataset, indices: Sequence[int]) -> RoundTrip:
    """Write the samples as files in a temporary folder, then read them back through CustomImageDataset."""
    with tempfile.TemporaryDirectory(prefix="custom-dataset-") as tmp:
        annotations = write_image_folder(Path(tmp), dataset, indices)
        custom = CustomImageDataset(annotations, tmp)
        return RoundTrip(annotations.read_text(), tuple(custom[i] for i in range(len(custom))))


def custom_lines(items: Sequence[tuple[torch.Tensor, int]], names: Sequence[str]) -> list[str]:
    """What the page's code prints for a CustomImageDataset: its length, then each item's shape and label."""
    lines = [f"len(custom_data) = {len(items)}"]
    for i, (image, label) in enumerate(items):
        lines.append(f"custom_data[{i}]: {image.shape} {image.dtype}, label {label} ({names[label]})")
    return lines
