"""A Transforms page pipeline as the Train form's training augmentation (core.data.augment.Augment): what
maps onto it, and in words what does not."""

import math
from collections.abc import Sequence
from dataclasses import dataclass

from core.data.augment import Augment
from core.data.transforms import IMAGE_SIDE, Step, clean_params


@dataclass(frozen=True)
class TrainingAugment:
    """What the training-time batched augmentation keeps of a pipeline, and what it leaves out."""

    augment: Augment
    used: tuple[str, ...] = ()  # "RandomRotation → rotate up to ±15°", one line per mapped step
    unused: tuple[str, ...] = ()  # names of the steps training cannot apply
    notes: tuple[str, ...] = ()  # approximations worth knowing


def to_augment(steps: Sequence[Step]) -> TrainingAugment:
    """Map a pipeline onto core.data.augment.Augment(hflip, rotate, translate, scale, erase).

    Steps with no training equivalent are listed in `unused` rather than silently dropped. Several steps
    touching the same setting keep the strongest value.
    """
    values = {"hflip": 0.0, "rotate": 0.0, "translate": 0.0, "scale": 0.0, "erase": 0.0}
    used, unused, notes = [], [], []
    for name, params in steps:
        cleaned = clean_params(name, params)
        mapped = _MAPPERS[name](cleaned, notes) if name in _MAPPERS else None
        if mapped is None:
            unused.append(name)
            continue
        for key, value in mapped.items():
            values[key] = max(values[key], value)
        used.append(f"{name} → {_describe_mapping(name, mapped)}")
    for key, value in values.items():
        cap = 180.0 if key == "rotate" else 1.0
        if value > cap:
            notes.append(f"{_describe_setting(key, value)} is more than training allows; capped at {cap:g}.")
            values[key] = cap
    rounded = {key: round(value, 4) for key, value in values.items()}  # 0.4142, not 0.41421356237309
    return TrainingAugment(Augment(**rounded), tuple(used), tuple(unused), tuple(notes))


def _describe_mapping(name: str, mapped: dict[str, float]) -> str:
    if name == "ToTensor":
        return "built in (training scales pixels to [0, 1] the same way)"
    if name == "RandomResizedCrop":  # it only zooms in; training's zoom goes both ways
        return f"zoom in up to {mapped['scale']:.0%} (training zooms in or out by up to that much)"
    return ", ".join(_describe_setting(k, v) for k, v in mapped.items()) or "nothing (all its settings are 0)"


def _describe_setting(key: str, value: float) -> str:
    return {
        "hflip": f"flip left–right {value:.0%} of the time",
        "rotate": f"rotate up to ±{value:g}°",
        "translate": f"shift up to ±{value:.0%} of the side",
        "scale": f"zoom up to ±{value:.0%}",
        "erase": f"erase a rectangle in {value:.0%} of the images",
    }[key]


def _size_note(name: str, params: dict, notes: list[str]) -> None:
    if params["size"] != IMAGE_SIDE:
        notes.append(f"{name}: size {params['size']} is ignored; training keeps 28 × 28 images.")


def _map_crop(params: dict, notes: list[str]) -> dict[str, float]:
    _size_note("RandomCrop", params, notes)
    return {"translate": params["padding"] / IMAGE_SIDE}


def _map_resized_crop(params: dict, notes: list[str]) -> dict[str, float]:
    _size_note("RandomResizedCrop", params, notes)
    notes.append(
        "RandomResizedCrop is approximated by a zoom that keeps the aspect ratio: keeping a fraction a of "
        "the area is a zoom of 1/√a."
    )
    return {"scale": 1 / math.sqrt(params["scale"][0]) - 1}


def _map_affine(params: dict, notes: list[str]) -> dict[str, float]:
    if params["shear"]:
        notes.append("RandomAffine: shear is not used in training (rotation, shift and zoom are).")
    low, high = params["scale"]
    mapped = {"rotate": params["degrees"], "translate": params["translate"], "scale": max(1 - low, high - 1)}
    return {k: v for k, v in mapped.items() if v}


def _map_erasing(params: dict, notes: list[str]) -> dict[str, float]:
    if params["scale"] != (0.02, 0.33) or params["value"]:
        notes.append("RandomErasing: training always erases 2–20% of the area and fills it with 0.")
    return {"erase": params["p"]}


_MAPPERS = {
    # TensorBatches already turns uint8 pixels into floats in [0, 1], which is what ToTensor does.
    "ToTensor": lambda params, notes: {},
    "RandomHorizontalFlip": lambda params, notes: {"hflip": params["p"]},
    "RandomRotation": lambda params, notes: {"rotate": params["degrees"]},
    "RandomCrop": _map_crop,
    "RandomResizedCrop": _map_resized_crop,
    "RandomAffine": _map_affine,
    "RandomErasing": _map_erasing,
}
