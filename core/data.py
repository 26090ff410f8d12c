"""Locate and prepare FashionMNIST; the tutorial's Dataset, fast in-memory batches, custom CSV datasets."""

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
