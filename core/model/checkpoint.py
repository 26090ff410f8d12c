"""Checkpoints: tutorial-compatible state_dict .pth files with a JSON sidecar, loaded safely."""

import contextlib
import hashlib
import io
import json
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import torch
from torch import nn

from core.base.errors import BadCheckpoint
from core.base.fsutil import atomic_write_bytes, atomic_write_json
from core.data.fashion import CLASSES
from core.model.archive import checked_archive, clip, safe_torch_load, size_text
from core.model.networks import MODELS, NUM_CLASSES, build_model, check_options

MAX_CHECKPOINT_BYTES = 64 * 1024 * 1024
MAX_SIDECAR_BYTES = 1024 * 1024  # ours are about 1 KB: the model, its options, the config, a few metrics
FORMAT = "fashionmnist-studio/1"
INPUT_PIXELS = 28 * 28

_WRAPPER_KEYS = ("state_dict", "model_state_dict")  # where training scripts often nest the weights
_SHOWN = 4  # how many key names a message lists before "... and N more"
_CHECKPOINT_HINT = "checkpoints: a FashionMNIST model's state_dict is a few MB"
_FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
_INT_DTYPES = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)

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
    data = _read_regular_file(path, max_bytes, "checkpoint", _CHECKPOINT_HINT)
    meta = _vouching_sidecar(path, hashlib.sha256(data).hexdigest())
    return load_checkpoint_bytes(
        data,
        source=str(path),
        max_bytes=max_bytes,
        model_name=meta["model"] if meta else None,
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
    """Turn checkpoint bytes (an upload, or a file's content) into an eval-mode model.

    Every check that can be made from sizes and shapes comes before the memory it guards is used:
    the archive before torch unpacks it, the model's shapes (on the meta device) before it is built."""
    if len(data) > max_bytes:
        raise BadCheckpoint(_too_large(source, len(data), max_bytes, _CHECKPOINT_HINT))
    archive = checked_archive(data, source)
    state = _extract_state_dict(safe_torch_load(archive, source), source)
    del archive  # the tensors hold their own copies now
    _check_dense(state, source)
    if model_name is None:
        try:
            model_name, model_options = infer_architecture(state)
        except BadCheckpoint as e:
            raise BadCheckpoint(f"{source}: {e}") from None
    options = _checked_options(model_name, model_options or {}, source)
    _check_io(model_name, state, source)
    expected = _blueprint(model_name, options).state_dict()
    _check_fits(expected, state, model_name, source)
    _check_values(expected, state, source)
    model = build_model(model_name, **options)  # no larger than the weights already in memory
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:  # the checks above should leave nothing for this to find
        raise BadCheckpoint(f"{source} does not fit model {model_name!r}: {clip(str(e))}") from e
    model.to(torch.device(map_location)).eval()
    return LoadedCheckpoint(model, model_name, options, meta, hashlib.sha256(data).hexdigest(), source)


def infer_architecture(state_dict: Mapping[str, torch.Tensor]) -> tuple[str, dict]:
    """Name the registered model a bare state_dict belongs to, with the options that rebuild it."""
    keys = set(state_dict)
    if keys == _keys_of("mlp"):
        # The tutorial's NeuralNetwork: Linear(784, hidden) at index 0; dropout has no weights.
        hidden = _rows(state_dict, "linear_relu_stack.0.weight", 2)  # (hidden, 784)
        return "mlp", {**MODELS["mlp"].defaults, "hidden": hidden, "dropout": 0.0}
    if keys == _keys_of("cnn"):
        channels = _rows(state_dict, "features.0.weight", 4)  # (channels, 1, 3, 3)
        hidden = _rows(state_dict, "classifier.1.weight", 2)  # (hidden, 2 * channels * 7 * 7)
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


def _rows(state_dict: Mapping[str, torch.Tensor], key: str, dims: int) -> int:
    shape = tuple(state_dict[key].shape)
    if len(shape) != dims:
        raise BadCheckpoint(f"layer {key} has shape {shape}, but that layer's weights have {dims} dimensions")
    return shape[0]  # a size the option ranges then check, before anything of that size is built


@cache
def _keys_of(name: str) -> frozenset[str]:
    # Key names do not depend on sizes or dropout, so the defaults stand for every variant.
    return frozenset(build_model(name).state_dict())


def _too_large(source: str, size: int, max_bytes: int, hint: str) -> str:
    return f"{source} is {size_text(size)}, over the {size_text(max_bytes)} limit for {hint}"


def _read_regular_file(path: Path, limit: int, what: str, hint: str) -> bytes:
    """The bytes of a regular file of at most `limit` bytes, read without ever blocking or running on:
    a folder, a FIFO (which blocks until a writer comes) or a device (which may never end) is refused
    from its metadata, and the read stops at the size the file had when it was opened."""
    try:
        _require_regular_file(os.stat(path), path, what)
        # O_NONBLOCK: if the path became a FIFO since the stat, opening it must not wait for a writer.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as file:
            info = os.fstat(file.fileno())
            _require_regular_file(info, path, what)
            if info.st_size > limit:  # decided from the size alone, so a huge file is never read
                raise BadCheckpoint(_too_large(f"{what} {path}", info.st_size, limit, hint))
            data = file.read(info.st_size + 1)  # one byte more tells a file that grows meanwhile
    except FileNotFoundError:
        raise BadCheckpoint(f"{what} {path} does not exist") from None
    except OSError as e:
        raise BadCheckpoint(f"{what} {path} cannot be read: {e.strerror or e}") from e
    if len(data) > info.st_size:  # our writers replace files whole: someone else is writing this one
        raise BadCheckpoint(f"{what} {path} grew while it was read; try again once it is written")
    return data


def _require_regular_file(info: os.stat_result, path: Path, what: str) -> None:
    if stat.S_ISDIR(info.st_mode):
        raise BadCheckpoint(f"{what} {path} is a folder, not a file")
    if not stat.S_ISREG(info.st_mode):
        raise BadCheckpoint(f"{what} {path} is not a regular file (it is {_file_kind(info.st_mode)})")


def _file_kind(mode: int) -> str:
    for test, kind in (
        (stat.S_ISFIFO, "a named pipe"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return kind
    return "not a file"


def _vouching_sidecar(pth: Path, sha256: str) -> dict | None:
    """The sidecar, when it vouches for these exact weights by their sha256; else None.

    A sidecar without a hash says nothing about which weights it describes, so its model options are
    not trusted: the weights load as a bare state_dict would, their architecture read from their shapes."""
    side = sidecar_path(pth)
    if not side.exists():
        return None
    meta = _parse_sidecar(side, pth)
    vouched = meta.get("sha256")
    if not isinstance(vouched, str):
        return None
    if vouched != sha256:
        if meta.get("replaces_sha256") != sha256:
            raise BadCheckpoint(
                f"{pth}: checkpoint does not match its sidecar (sha256 mismatch): "
                "the file was changed or damaged after saving"
            )
        return None  # a save was interrupted: these are the previous weights, whole; the sidecar is newer
    _check_description(meta, side, pth)
    return meta


def _parse_sidecar(side: Path, pth: Path) -> dict:
    advice = f"delete it to load {pth.name} alone"
    raw = _read_regular_file(side, MAX_SIDECAR_BYTES, "sidecar", f"sidecars; {advice}")
    try:
        meta = json.loads(raw)
    except RecursionError:  # thousands of nested brackets: json recurses once per level
        raise BadCheckpoint(f"sidecar {side} is nested too deeply to be a sidecar; {advice}") from None
    except ValueError as e:  # bad JSON or bad UTF-8, or a number too long to convert
        raise BadCheckpoint(f"sidecar {side} is not valid JSON ({clip(str(e))}); {advice}") from e
    if not isinstance(meta, dict):
        raise BadCheckpoint(f"sidecar {side} is not a JSON object; {advice}")
    return meta


def _check_description(meta: dict, side: Path, pth: Path) -> None:
    name, options = meta.get("model"), meta.get("model_options")
    if not isinstance(name, str) or name not in MODELS:
        raise BadCheckpoint(
            f"sidecar {side}: 'model' must be one of {', '.join(sorted(MODELS))}, not {_described(name)}; "
            f"delete it to load {pth.name} alone"
        )
    if options is not None and not isinstance(options, dict):
        raise BadCheckpoint(
            f"sidecar {side}: 'model_options' must be a JSON object, not {_described(options)}; "
            f"delete it to load {pth.name} alone"
        )


def _described(value: object) -> str:
    return clip(repr(value), 40) if isinstance(value, str | int | float) else _a(type(value).__name__)


def _checked_options(model_name: str, options: dict, source: str) -> dict:
    """All options, checked against their ranges before any size is used to allocate."""
    try:
        check_options(model_name, options)
    except ValueError as e:
        raise BadCheckpoint(f"{source}: cannot build that model: {e}") from None
    return {**MODELS[model_name].defaults, **options}


def _blueprint(model_name: str, options: dict) -> nn.Module:
    # On the meta device a model has its shapes and dtypes but no storage: free at any size.
    with torch.device("meta"):
        return build_model(model_name, **options)


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
        if not isinstance(key, str):
            raise BadCheckpoint(
                f"{source} is not a state_dict: its keys must be layer names (text), "
                f"but one is {_a(type(key).__name__)}"
            )
        if not isinstance(value, torch.Tensor):
            raise BadCheckpoint(
                f"{source} is not a state_dict: entry {clip(repr(key), 60)} holds "
                f"{_a(type(value).__name__)}, not a tensor"
            )
    return obj


def _a(noun: str) -> str:
    return f"an {noun}" if noun[:1].lower() in "aeiou" else f"a {noun}"


def _check_dense(state: Mapping[str, torch.Tensor], source: str) -> None:
    """Plain tensors with values: meta tensors have none, and sparse ones fail the checks' maths."""
    for key, tensor in state.items():
        if tensor.device.type == "meta":
            raise BadCheckpoint(
                f"{source}: tensor {clip(key, 60)} is a meta tensor, a shape without values "
                "(saved from a model that was never given weights)"
            )
        if tensor.layout != torch.strided:
            layout = str(tensor.layout).removeprefix("torch.")
            raise BadCheckpoint(
                f"{source}: tensor {clip(key, 60)} is {layout}, but a model's weights are dense tensors"
            )


def _check_io(model_name: str, state: Mapping[str, torch.Tensor], source: str) -> None:
    for key, dim, expected, meaning in _IO_CHECKS.get(model_name, ()):
        tensor = state.get(key)
        if tensor is not None and tensor.dim() > dim and tensor.shape[dim] != expected:
            raise BadCheckpoint(f"{source}: layer {key} has {tensor.shape[dim]} {meaning}")


def _check_fits(
    expected: Mapping[str, torch.Tensor], state: Mapping[str, torch.Tensor], model_name: str, source: str
) -> None:
    """What load_state_dict(strict=True) would reject, with every offending key named."""
    wrong = [
        f"{k}: expected {tuple(expected[k].shape)}, found {tuple(v.shape)}"
        for k, v in state.items()
        if k in expected and v.shape != expected[k].shape
    ]
    missing, unexpected = set(expected) - set(state), set(state) - set(expected)
    if missing or unexpected or wrong:
        raise BadCheckpoint(
            f"{source} does not fit model {model_name!r}: " + _key_diff(missing, unexpected, wrong)
        )


def _check_values(
    expected: Mapping[str, torch.Tensor], state: Mapping[str, torch.Tensor], source: str
) -> None:
    """Weights in a floating dtype, finite once in float32 (the model's dtype: float64's 1e300 is
    inf there); counters (BatchNorm's num_batches_tracked) in an integer one. Anything else would be
    cast on loading, complex numbers losing their imaginary part, and predict NaN."""
    for key, tensor in state.items():
        if expected[key].dtype.is_floating_point:
            if tensor.dtype not in _FLOAT_DTYPES:
                raise BadCheckpoint(
                    f"{source}: tensor {key} holds {_dtype(tensor)} values, but weights are floating "
                    "point (float16, bfloat16, float32 or float64)"
                )
            if not torch.isfinite(tensor.to(torch.float32)).all():
                raise BadCheckpoint(
                    f"{source}: tensor {key} contains NaN or Inf (or values past float32's range); "
                    "the training diverged"
                )
        elif tensor.dtype not in _INT_DTYPES:
            raise BadCheckpoint(
                f"{source}: tensor {key} holds {_dtype(tensor)} values, but it is a counter: integers"
            )


def _dtype(tensor: torch.Tensor) -> str:
    return str(tensor.dtype).removeprefix("torch.")


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
    return ", ".join(clip(key, 60) for key in sorted(keys)[:_SHOWN]) + _more(len(keys))


def _more(count: int) -> str:
    return f" ... and {count - _SHOWN} more" if count > _SHOWN else ""
