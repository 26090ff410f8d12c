"""Where FashionMNIST lives, the project's copy or Debian's; no torch, so the set-up can import it."""

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]  # core/base/paths.py
DATA_DIR = Path(os.environ.get("STUDIO_DATA_DIR", PROJECT_ROOT / "data"))
# Debian's dataset-fashion-mnist package installs the four .gz files here.
SYSTEM_DIR = Path(os.environ.get("FASHION_MNIST_SYSTEM_DIR", "/usr/share/datasets/fashion-mnist"))
SYSTEM_PACKAGE = "dataset-fashion-mnist"
SPLITS = ("train", "test")
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def raw_dir(root: Path | None = None) -> Path:
    """Where torchvision's FashionMNIST expects its unpacked files: <root>/FashionMNIST/raw."""
    return Path(root or DATA_DIR) / "FashionMNIST" / "raw"


def all_files() -> list[str]:
    return [name for split in SPLITS for name in FILES[split]]


def has_project_copy(root: Path | None = None) -> bool:
    raw = raw_dir(root)
    return all((raw / name).is_file() for name in all_files())


def has_system_copy(system_dir: Path | None = None) -> bool:
    system = Path(system_dir or SYSTEM_DIR)
    return all((system / f"{name}.gz").is_file() for name in all_files())
