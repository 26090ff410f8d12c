"""Locate and prepare FashionMNIST; the tutorial's Dataset, fast in-memory batches, custom CSV datasets."""

import csv
import gzip
import math
import os
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch
from torch.utils.data import Dataset

from core.base.errors import DatasetCorrupt, DatasetNotFound
from core.base.fsutil import atomic_write_bytes
from core.base.paths import (
    DATA_DIR,
    FILES,
    SPLITS,
    SYSTEM_DIR,
    SYSTEM_PACKAGE,
    all_files,
    has_project_copy,
    has_system_copy,
    raw_dir,
)
from core.base.paths import (
    PROJECT_ROOT as PROJECT_ROOT,  # re-exported: core.runs and the tests find the project here
)

CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

SOURCE_FILE = "SOURCE"  # records where prepare() found the files
FIX_HINT = (
    f"Run `make data` (or `python -m core data prepare`). Offline on Debian, first run "
    f"`sudo apt-get install -y {SYSTEM_PACKAGE}`; or copy the four FashionMNIST files "
    "(train-images-idx3-ubyte, ...) into {raw}."
)
_IDX_MAGIC = {3: 0x00000803, 1: 0x00000801}  # uint8 data, 3 dims (images) or 1 dim (labels)


def _hint(root: Path | None) -> str:
    return FIX_HINT.format(raw=raw_dir(root))


@dataclass(frozen=True)
class DatasetStatus:
    ready: bool
    source: str | None  # "local", "system", "download" or None
    path: Path
    message: str


def dataset_status(root: Path | None = None) -> DatasetStatus:
    """Cheap check (file presence only) used by the UI on every page load."""
    raw = raw_dir(root)
    missing = [n for n in all_files() if not (raw / n).is_file()]
    if missing:
        return DatasetStatus(False, None, raw, f"FashionMNIST is not prepared yet. {_hint(root)}")
    source_file = raw / SOURCE_FILE
    source = source_file.read_text().strip() if source_file.is_file() else "local"
    return DatasetStatus(True, source, raw, f"FashionMNIST ready in {raw} (source: {source})")


def prepare(
    root: Path | None = None,
    *,
    system_dir: Path | None = None,
    allow_download: bool = True,
    log: Callable[[str], None] = lambda _msg: None,
) -> str:
    """Make the unpacked files available under raw_dir(root); return the source used.

    Order: files already in data/FashionMNIST/raw -> Debian's system copy -> torchvision download.
    """
    raw = raw_dir(root)
    if has_project_copy(root):
        _validate_all(root)
        source = dataset_status(root).source or "local"
        log(f"FashionMNIST already in {raw} (source: {source})")
        return source
    system = Path(system_dir or SYSTEM_DIR)
    if has_system_copy(system):
        log(f"Unpacking FashionMNIST from {system} into {raw}")
        for name in all_files():
            _unpack_gz(system / f"{name}.gz", raw / name)
        _validate_all(root)
        atomic_write_bytes(raw / SOURCE_FILE, b"system\n")
        return "system"
    if allow_download:
        log("Downloading FashionMNIST with torchvision")
        _download(root)
        _validate_all(root)
        atomic_write_bytes(raw / SOURCE_FILE, b"download\n")
        return "download"
    raise DatasetNotFound(f"FashionMNIST was not found in {raw} or {system}. {_hint(root)}")


def _unpack_gz(src: Path, dest: Path) -> None:
    try:
        with gzip.open(src, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as exc:
        raise DatasetCorrupt(
            f"{src} is truncated or not a gzip file ({exc}). "
            f"Reinstall it with `sudo apt-get install --reinstall {SYSTEM_PACKAGE}`."
        ) from exc
    atomic_write_bytes(dest, data)


def _download(root: Path | None) -> None:
    # torchvision: ~1.2 s to import after torch (measured here), so only when used
    from torchvision.datasets import FashionMNIST

    try:
        for train in (True, False):
            FashionMNIST(str(root or DATA_DIR), train=train, download=True)
    except Exception as exc:  # network errors come in many types; all mean the same to the user
        raise DatasetNotFound(
            f"FashionMNIST is not on this machine and could not be downloaded ({exc}). {_hint(root)}"
        ) from exc


def _validate_all(root: Path | None) -> None:
    for split in SPLITS:
        load_split(split, root)


def read_idx(path: Path, ndim: int) -> torch.Tensor:
    """Read an IDX file (the MNIST format) of uint8 values with `ndim` dimensions, checking it whole.

    torchvision's own reader does the reading; around it, our checks of the header and the length turn
    a damaged file into a message saying what is wrong and how to restore it.
    """
    # torchvision: ~1.2 s to import after torch (measured here), so only when used
    from torchvision.datasets.mnist import read_image_file, read_label_file

    _check_idx(Path(path), ndim)
    reader = read_image_file if ndim == 3 else read_label_file
    try:
        return reader(str(path))
    except (AssertionError, RuntimeError, TypeError, ValueError, KeyError) as exc:
        raise DatasetCorrupt(f"{path} cannot be read as an IDX file ({exc}). {_fix_for(path)}") from exc


def _check_idx(path: Path, ndim: int) -> None:
    """The header's magic number and dimensions, and a file length that matches them exactly."""
    header = 4 + 4 * ndim
    try:
        with open(path, "rb") as f:
            head = f.read(header)
            size = os.fstat(f.fileno()).st_size
    except FileNotFoundError as exc:
        raise DatasetNotFound(f"{path} is missing. {FIX_HINT.format(raw=Path(path).parent)}") from exc
    if len(head) < header:
        raise DatasetCorrupt(f"{path} is truncated (only {size} bytes). {_fix_for(path)}")
    magic, *dims = struct.unpack(f">{1 + ndim}I", head)
    if magic != _IDX_MAGIC[ndim]:
        raise DatasetCorrupt(f"{path} is not a FashionMNIST IDX file (bad header). {_fix_for(path)}")
    expected = header + math.prod(dims)
    if size != expected:
        raise DatasetCorrupt(
            f"{path} is truncated or damaged ({size} bytes, expected {expected}). {_fix_for(path)}"
        )


def _fix_for(path: Path) -> str:
    return (
        f"Delete it and run `make data` (or `python -m core data prepare`) to restore it from {SYSTEM_DIR}."
    )


@lru_cache(maxsize=4)
def _load_split_cached(split: str, raw: Path) -> tuple[torch.Tensor, torch.Tensor]:
    image_file, label_file = FILES[split]
    images = read_idx(raw / image_file, 3)  # (N, 28, 28) uint8
    labels = read_idx(raw / label_file, 1).long()  # (N,)
    if images.shape[1:] != (28, 28):
        raise DatasetCorrupt(f"{raw / image_file} holds {tuple(images.shape[1:])} images, not 28x28.")
    if images.shape[0] != labels.shape[0]:
        raise DatasetCorrupt(
            f"{raw}: {images.shape[0]} images but {labels.shape[0]} labels in the {split} split. "
            f"{_fix_for(raw)}"
        )
    if labels.numel() and int(labels.max()) >= len(CLASSES):
        raise DatasetCorrupt(f"{raw / label_file} has labels outside 0-9. {_fix_for(raw)}")
    return images, labels


def load_split(split: str, root: Path | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The whole split as (images uint8 (N, 28, 28), labels int64 (N,)), read once and cached."""
    if split not in FILES:
        raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
    raw = raw_dir(root)
    if not all((raw / n).is_file() for n in FILES[split]):
        prepare(root)
    return _load_split_cached(split, raw.resolve())


def fashion_mnist(split: str = "train", root: Path | None = None, transform=None, target_transform=None):
    """The tutorial's Dataset: `datasets.FashionMNIST(root, train=..., transform=ToTensor())`."""
    # torchvision: ~1.2 s to import after torch (measured here), so only when used
    from torchvision.datasets import FashionMNIST
    from torchvision.transforms import ToTensor

    load_split(split, root)  # prepares and validates the files first, with our clear errors
    return FashionMNIST(
        str(root or DATA_DIR),
        train=split == "train",
        download=False,
        transform=ToTensor() if transform is None else transform,
        target_transform=target_transform,
    )


class TensorBatches:
    """A split held in memory as uint8 on the training device, batched by shuffled index.

    Each batch is turned into floats in [0, 1] (what ToTensor gives) only when it is served, so
    there is no per-sample PIL work and a 60k split costs 47 MB on the device.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        *,
        batch_size: int,
        device: torch.device | str = "cpu",
        shuffle: bool = False,
        seed: int = 0,
        limit_batches: int | None = None,
        augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
        rank: int = 0,
        world: int = 1,
    ):
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if not 0 <= rank < world:
            raise ValueError(f"rank must be between 0 and world - 1, not {rank} of {world}")
        self.device = torch.device(device)
        self.images = images.to(self.device)  # (N, 28, 28) uint8
        self.labels = labels.to(self.device)  # (N,) int64
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.limit_batches = limit_batches
        self.augment = augment
        # A CPU generator keeps the order identical on every device for a given seed: every rank of a
        # distributed run draws the same permutation (and augmentation) and serves its share of it.
        self.generator = torch.Generator().manual_seed(seed)
        self.rank, self.world = rank, world

    def __len__(self) -> int:
        n = math.ceil(len(self.labels) / self.batch_size)
        return min(n, self.limit_batches) if self.limit_batches else n

    @property
    def num_samples(self) -> int:
        return min(len(self.labels), len(self) * self.batch_size)

    def global_size(self, i: int) -> int:
        """Images in batch `i` over all ranks (the last batch of a split may be short)."""
        return max(0, min(self.batch_size, len(self.labels) - i * self.batch_size))

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.labels)
        if self.shuffle:
            order = torch.randperm(n, generator=self.generator).to(self.device)
        else:
            order = torch.arange(n, device=self.device)
        for i in range(len(self)):
            idx = order[i * self.batch_size : (i + 1) * self.batch_size]
            # This rank's contiguous share (the whole batch for one process); the shares cover it once.
            share = idx.tensor_split(self.world)[self.rank]
            if self.augment is None:
                x = self.images[share].unsqueeze(1).float().div_(255)  # (B, 1, 28, 28)
            else:  # the whole batch, as one process would: the generator stays the same on every rank
                x = self.augment(self.images[idx].unsqueeze(1).float().div_(255), self.generator)
                x = x.tensor_split(self.world)[self.rank]
            yield x, self.labels[share]


class CustomImageDataset(Dataset):
    """The tutorial's custom Dataset: a CSV of `filename,label` rows and a folder of images."""

    def __init__(self, annotations_file, img_dir, transform=None, target_transform=None):
        self.annotations_file = Path(annotations_file)
        self.img_dir = Path(img_dir)
        self.transform = transform
        self.target_transform = target_transform
        self.rows = _read_annotations(self.annotations_file)
        missing = [name for name, _ in self.rows if not (self.img_dir / name).is_file()]
        if missing:
            shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
            raise DatasetNotFound(
                f"{len(missing)} image(s) listed in {self.annotations_file} are not in "
                f"{self.img_dir}: {shown}"
            )

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, idx: int):
        # torchvision: ~1.2 s to import after torch (measured here), so only when used
        from torchvision.io import decode_image

        name, label = self.rows[idx]
        path = self.img_dir / name
        try:
            image = decode_image(str(path))  # (C, H, W) uint8, as in the tutorial
        except (RuntimeError, ValueError) as exc:
            raise DatasetCorrupt(f"{path} cannot be decoded as an image ({exc}).") from exc
        if self.transform:
            image = self.transform(image)
        if self.target_transform:
            label = self.target_transform(label)
        return image, label


def _read_annotations(path: Path) -> list[tuple[str, int]]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise DatasetNotFound(f"annotations file {path} does not exist") from exc
    except UnicodeDecodeError as exc:
        raise DatasetCorrupt(f"{path} is not a UTF-8 text CSV file") from exc
    rows = []
    for lineno, row in enumerate(csv.reader(text.splitlines()), start=1):
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) != 2:
            raise DatasetCorrupt(f"{path} line {lineno}: expected `filename,label`, got {len(row)} fields")
        name, label = row[0].strip(), row[1].strip()
        if lineno == 1 and not label.lstrip("-").isdigit():
            continue  # a header row such as `file,label`
        if not label.isdigit():
            raise DatasetCorrupt(f"{path} line {lineno}: label {label!r} is not a whole number")
        if not name or Path(name).is_absolute() or ".." in Path(name).parts:
            raise DatasetCorrupt(f"{path} line {lineno}: {name!r} is not a file name inside the image folder")
        rows.append((name, int(label)))
    if not rows:
        raise DatasetCorrupt(f"{path} has no `filename,label` rows")
    return rows
