"""File names on the Predict page: shown safely, and what each drop zone takes."""

import unicodedata
from pathlib import Path

IMAGE_TYPES = ["png", "jpg", "jpeg", "webp", "bmp", "gif"]
IMAGE_KINDS = "PNG, JPEG, WebP, BMP or GIF images"  # what the image drop zone takes, in words
MODEL_TYPES = ["pth", "pt"]
MODEL_ZONE = "…or upload a model.pth"  # the model drop zone's label
IMAGE_ZONE = "Drop images of clothing here"  # the image drop zone's label
NAME_CHARS = 60  # longer file names are shortened in the middle for display


def display_name(name: str, limit: int = NAME_CHARS) -> str:
    """A file name fit to show: control and direction-override characters replaced, long ones shortened."""
    clean = "".join("�" if unicodedata.category(ch).startswith("C") else ch for ch in name) or "(no name)"
    if len(clean) <= limit:
        return clean
    tail = 12  # keeps the extension and the end, where names usually differ
    return clean[: limit - tail - 1] + "…" + clean[-tail:]


def suffix(name: str) -> str:
    """The file's extension, lower case, without its dot ("" if it has none)."""
    return Path(name).suffix.lower().lstrip(".")
