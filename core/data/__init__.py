"""FashionMNIST and what is done to it: the files and batches, augmentation, the explorer, transforms."""
