"""Checkpoints: tutorial-compatible state_dict .pth files with a JSON sidecar, loaded safely."""

import contextlib
import hashlib
import io
import json
import pickle
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import torch
from torch import nn

from core.data import CLASSES
from core.errors import BadCheckpoint
from core.fsutil import atomic_write_bytes, atomic_write_json
from core.models import MODELS, NUM_CLASSES, build_model

MAX_CHECKPOINT_BYTES = 64 * 1024 * 1024
FORMAT = "fashionmnist-studio/1"
INPUT_PIXELS = 28 * 28

_MB = 1024 * 1024
_ZIP_MAGIC = b"PK\x03\x04"  # torch.save writes a zip archive since PyTorch 1.6
_WRAPPER_KEYS = ("state_dict", "model_state_dict")  # where training scripts often nest the weights
_SHOWN = 4  # how many key names a message lists before "... and N more"

# Per model: (key, dim, expected size, what it means) checked before building, so a model
# trained on other data gets a plain sentence instead of a shape mismatch.
_IO_CHECKS: dict[str, tuple[tuple[str, int, int, str], ...]] = {
    "mlp": (
        ("linear_relu_stack.0.weight", 1, INPUT_PIXELS, "inputs, but a 28x28 FashionMNIST image has 784"),
        ("linear_relu_stack.4.weight", 0, NUM_CLASSES, "outputs, but FashionMNIST has 10 classes"),
    ),
    "cnn": (
        ("features.0.weight", 1, 1, "input channels, but FashionMNIST images are grayscale (1)"),
        ("classifier.4.weight", 0, NUM_CLASSES, "outputs, but FashionMNIST has 10 classes"),
    ),
}


@dataclass
class LoadedCheckpoint:
    model: nn.Module
    model_name: str
    model_options: dict
    meta: dict | None
    sha256: str
    source: str


def sidecar_path(pth: Path) -> Path:
    return Path(pth).with_suffix(".json")


def save_checkpoint(
    model: nn.Module,
    path: str | Path,
    *,
    model_name: str,
    model_options: dict,
    train_config: dict | None = None,
    metrics: dict | None = None,
) -> Path:
    """Write `model.state_dict()` like the tutorial's `torch.save(model.state_dict(), "model.pth")`,
    then a sidecar naming the model, its options and the file's sha256."""
    path = Path(path)
    state = model.state_dict()  # a fresh OrderedDict; keeping it keeps its _metadata (layer versions)
    for key, tensor in state.items():
        state[key] = tensor.detach().cpu().clone()  # a GPU or shared tensor must not leak into the file
    buffer = io.BytesIO()
    torch.save(state, buffer)
    data = buffer.getvalue()
    meta = {
        "format": FORMAT,
        "model": model_name,
        "model_options": model_options,
        "train_config": train_config,
        "classes": list(CLASSES),
        "metrics": metrics,
        "sha256": hashlib.sha256(data).hexdigest(),
        # The sidecar is written first, so a process killed between the two writes leaves the previous
        # weights beside it: load accepts them by this hash (and ignores the sidecar's description).
        "replaces_sha256": hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None,
        "bytes": len(data),
        "saved_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    sidecar = sidecar_path(path)
    previous = sidecar.read_bytes() if sidecar.is_file() else None
    atomic_write_json(sidecar, meta)
    try:
        atomic_write_bytes(path, data)
    except OSError:  # e.g. disk full: put back the sidecar that describes the weights still in place
        with contextlib.suppress(OSError):
            if previous is None:
                sidecar.unlink()
            else:
                atomic_write_bytes(sidecar, previous)
        raise
    return path


def load_checkpoint(
    path: str | Path, *, max_bytes: int = MAX_CHECKPOINT_BYTES, map_location: str | torch.device = "cpu"
) -> LoadedCheckpoint:
    """Load a .pth from disk, checked against its sidecar when there is one."""
    path = Path(path)
    if not path.is_file():
        raise BadCheckpoint(f"checkpoint {path} does not exist")
    size = path.stat().st_size
    if size > max_bytes:  # decided from the size alone so a huge file is never read into memory
        raise BadCheckpoint(_too_large(str(path), size, max_bytes))
    data = path.read_bytes()
    meta = _read_sidecar(path)
    actual = hashlib.sha256(data).hexdigest()
    if meta is not None and "sha256" in meta and meta["sha256"] != actual:
        if meta.get("replaces_sha256") != actual:
            raise BadCheckpoint(
                f"{path}: checkpoint does not match its sidecar (sha256 mismatch): "
                "the file was changed or damaged after saving"
            )
        meta = None  # a save was interrupted: these are the previous weights, whole; the sidecar is newer
    return load_checkpoint_bytes(
        data,
        source=str(path),
        max_bytes=max_bytes,
        model_name=meta.get("model") if meta else None,
        model_options=meta.get("model_options") if meta else None,
        meta=meta,
        map_location=map_location,
    )


def load_checkpoint_bytes(
    data: bytes,
    *,
    source: str = "uploaded file",
    max_bytes: int = MAX_CHECKPOINT_BYTES,
    model_name: str | None = None,
    model_options: dict | None = None,
    meta: dict | None = None,
    map_location: str | torch.device = "cpu",
) -> LoadedCheckpoint:
    """Turn checkpoint bytes (an upload, or a file's content) into an eval-mode model."""
    if len(data) > max_bytes:
        raise BadCheckpoint(_too_large(source, len(data), max_bytes))
    _check_container(data, source)
    state = _extract_state_dict(_safe_torch_load(data, source), source)
    if model_name is None:
        try:
            model_name, model_options = infer_architecture(state)
        except BadCheckpoint as e:
            raise BadCheckpoint(f"{source}: {e}") from None
    _check_io(model_name, state, source)
    _check_finite(state, source)
    model, options = _build(model_name, model_options or {}, source)
    _check_fits(model, state, model_name, source)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:  # e.g. a dtype that cannot be copied into float weights
        raise BadCheckpoint(f"{source} does not fit model {model_name!r}: {e}") from e
    model.to(torch.device(map_location)).eval()
    return LoadedCheckpoint(model, model_name, options, meta, hashlib.sha256(data).hexdigest(), source)


def infer_architecture(state_dict: Mapping[str, torch.Tensor]) -> tuple[str, dict]:
    """Name the registered model a bare state_dict belongs to, with the options that rebuild it."""
    keys = set(state_dict)
    if keys == _keys_of("mlp"):
        # The tutorial's NeuralNetwork: Linear(784, hidden) at index 0; dropout has no weights.
        hidden = state_dict["linear_relu_stack.0.weight"].shape[0]  # (hidden, 784)
        return "mlp", {**MODELS["mlp"].defaults, "hidden": hidden, "dropout": 0.0}
    if keys == _keys_of("cnn"):
        channels = state_dict["features.0.weight"].shape[0]  # (channels, 1, 3, 3)
        hidden = state_dict["classifier.1.weight"].shape[0]  # (hidden, 2 * channels * 7 * 7)
        return "cnn", {**MODELS["cnn"].defaults, "channels": channels, "hidden": hidden}
    closest = max(MODELS, key=lambda name: len(keys & _keys_of(name)))
    if not keys & _keys_of(closest):
        raise BadCheckpoint(
            f"the weights do not belong to any model this app knows ({', '.join(sorted(MODELS))}); "
            f"found keys {_names(keys)}"
        )
    raise BadCheckpoint(
        f"the weights look like model {closest!r} but do not fit it: "
        + _key_diff(_keys_of(closest) - keys, keys - _keys_of(closest))
    )


@cache
def _keys_of(name: str) -> frozenset[str]:
    # Key names do not depend on sizes or dropout, so the defaults stand for every variant.
    return frozenset(build_model(name).state_dict())


def _too_large(source: str, size: int, max_bytes: int) -> str:
    return (
        f"{source} is {_size(size)}, over the {_size(max_bytes)} limit for checkpoints: "
        "a FashionMNIST model's state_dict is a few MB"
    )


def _size(n: int) -> str:
    return f"{n / _MB:.4g} MB" if n >= _MB else f"{n:,} bytes"


def _read_sidecar(pth: Path) -> dict | None:
    side = sidecar_path(pth)
    if not side.is_file():
        return None
    try:
        meta = json.loads(side.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BadCheckpoint(
            f"sidecar {side} is not valid JSON ({e}); delete it to load {pth.name} alone"
        ) from e
    if not isinstance(meta, dict):
        raise BadCheckpoint(f"sidecar {side} is not a JSON object; delete it to load {pth.name} alone")
    return meta


def _check_container(data: bytes, source: str) -> None:
    """Reject what is not a torch zip before torch sees it, saying what the file looks like."""
    if not data:
        raise BadCheckpoint(f"{source} is empty")
    if not data.startswith(_ZIP_MAGIC):
        raise BadCheckpoint(
            f"{source} is not a valid checkpoint (not a PyTorch zip file; it looks like "
            f"{_looks_like(data)}). Save one with torch.save(model.state_dict(), 'model.pth')"
        )
    try:
        names = zipfile.ZipFile(io.BytesIO(data)).namelist()  # reads only the directory, runs nothing
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise BadCheckpoint(f"{source} is not a valid checkpoint (truncated or damaged)") from e
    if not any(n == "data.pkl" or n.endswith("/data.pkl") for n in names):
        raise BadCheckpoint(
            f"{source} is not a valid checkpoint (a zip archive, but not one torch.save wrote)"
        )


def _looks_like(data: bytes) -> str:
    head = data[:16]
    for magic, kind in (
        (b"\x89PNG", "a PNG image"),
        (b"\xff\xd8\xff", "a JPEG image"),
        (b"GIF8", "a GIF image"),
    ):
        if head.startswith(magic):
            return kind
    if head.startswith(b"\x80"):
        return "a plain pickle or a pre-1.6 PyTorch file"
    try:
        data[:1024].decode("utf-8")
    except UnicodeDecodeError:
        return "unknown binary data"
    return "a text file"


def _safe_torch_load(data: bytes, source: str) -> object:
    # weights_only=True is the whole safety story: there is deliberately no fallback without it.
    # Always to CPU: checks run there, and a device problem must not read as a damaged file.
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise BadCheckpoint(_refusal(str(e), data, source)) from e
    except Exception as e:  # torch reports damage as RuntimeError, ValueError, EOFError, ...
        raise BadCheckpoint(f"{source} is not a valid checkpoint (truncated or damaged)") from e


def _refusal(error: str, data: bytes, source: str) -> str:
    # A pickled nn.Module always carries its attribute dicts; a __reduce__ payload need not.
    if b"_modules" in data and b"_parameters" in data:
        return (
            f"{source}: this file holds a whole pickled model, not a state_dict; "
            "save it with torch.save(model.state_dict(), 'model.pth')"
        )
    found = re.search(r"GLOBAL ([\w.]+)", error)
    what = f" ({found.group(1)})" if found else ""
    return (
        f"{source} contains code or objects that are not allowed in a checkpoint{what}; "
        "it was refused and nothing in it was run"
    )


def _extract_state_dict(obj: object, source: str) -> Mapping[str, torch.Tensor]:
    if isinstance(obj, Mapping):
        for key in _WRAPPER_KEYS:
            if isinstance(obj.get(key), Mapping):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping):
        raise BadCheckpoint(
            f"{source} holds {_a(type(obj).__name__)}, not a state_dict; "
            "save it with torch.save(model.state_dict(), 'model.pth')"
        )
    for key, value in obj.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise BadCheckpoint(
                f"{source} is not a state_dict: entry {key!r} holds {_a(type(value).__name__)}, not a tensor"
            )
    return obj


def _a(noun: str) -> str:
    return f"an {noun}" if noun[:1].lower() in "aeiou" else f"a {noun}"


def _check_io(model_name: str, state: Mapping[str, torch.Tensor], source: str) -> None:
    for key, dim, expected, meaning in _IO_CHECKS.get(model_name, ()):
        tensor = state.get(key)
        if tensor is not None and tensor.dim() > dim and tensor.shape[dim] != expected:
            raise BadCheckpoint(f"{source}: layer {key} has {tensor.shape[dim]} {meaning}")


def _check_finite(state: Mapping[str, torch.Tensor], source: str) -> None:
    for key, tensor in state.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise BadCheckpoint(f"{source}: tensor {key} contains NaN or Inf; the training diverged")


def _build(model_name: str, options: dict, source: str) -> tuple[nn.Module, dict]:
    try:
        model = build_model(model_name, **options)
    except (ValueError, TypeError) as e:
        raise BadCheckpoint(f"{source}: cannot build the model it names: {e}") from e
    return model, {**MODELS[model_name].defaults, **options}


def _check_fits(model: nn.Module, state: Mapping[str, torch.Tensor], model_name: str, source: str) -> None:
    """What load_state_dict(strict=True) would reject, with every offending key named."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    wrong = [
        f"{k}: expected {expected[k]}, found {tuple(v.shape)}"
        for k, v in state.items()
        if k in expected and tuple(v.shape) != expected[k]
    ]
    missing, unexpected = set(expected) - set(state), set(state) - set(expected)
    if missing or unexpected or wrong:
        raise BadCheckpoint(
            f"{source} does not fit model {model_name!r}: " + _key_diff(missing, unexpected, wrong)
        )


def _key_diff(missing: set[str], unexpected: set[str], wrong: list[str] | None = None) -> str:
    parts = []
    if missing:
        parts.append(f"missing keys {_names(missing)}")
    if unexpected:
        parts.append(f"unexpected keys {_names(unexpected)}")
    if wrong:
        parts.append("wrong shapes " + "; ".join(wrong[:_SHOWN]) + _more(len(wrong)))
    return "; ".join(parts)


def _names(keys: set[str]) -> str:
    return ", ".join(sorted(keys)[:_SHOWN]) + _more(len(keys))


def _more(count: int) -> str:
    return f" ... and {count - _SHOWN} more" if count > _SHOWN else ""
