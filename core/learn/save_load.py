"""Save & Load: a state_dict written and read back with weights_only=True, eval() against train(), and the
whole pickled model that weights_only=True refuses.

Every file is written in a temporary folder that is gone when the function returns; nothing here ever
loads a pickle that could run code (the only torch.load is the tutorial's, with weights_only=True).
"""

import copy
import io
import pickle
import pickletools
import re
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from core.base.errors import BadCheckpoint
from core.learn.build_model import UNTRAINED_SEED, to_input
from core.model.archive import checked_archive, safe_torch_load
from core.model.networks import build_model

WEIGHTS_FILE = "model_weights.pth"  # the tutorial's names
WHOLE_FILE = "model.pth"
SHOWN_IMAGES = 8  # test images asked at once: one batch, side by side
_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # PyTorch's error puts its warning in bold for terminals
_STRINGS = {"SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "BINUNICODE8"}


# ---- models --------------------------------------------------------------------------------------------


def seeded_models(name: str, options: dict | None = None, seed: int = UNTRAINED_SEED) -> list[nn.Module]:
    """`torch.manual_seed(seed)`, then `model`, `model2` and `fresh` built one after another, as the page's
    program builds them: model2 and fresh start from other random weights than model.

    fork_rng keeps the seeding local: other users' random draws and training runs keep their streams."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return [build_model(name, **(options or {})).eval() for _ in range(3)]


def batch(images: torch.Tensor, start: int, count: int = SHOWN_IMAGES) -> torch.Tensor:
    """Test images start..start+count-1 (uint8 (N, 28, 28)) as ToTensor and torch.stack make them:
    float (count, 1, 28, 28) in [0, 1]."""
    return torch.cat([to_input(image) for image in images[start : start + count]])


def logits(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """model(x) in eval mode under no_grad, (N, 10); the model's mode is put back afterwards."""
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            return model(x)
    finally:
        model.train(was_training)


# ---- 1. and 2. the state_dict out and in ---------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    key: str  # as in model.state_dict(): "linear_relu_stack.0.weight"
    shape: tuple[int, ...]
    dtype: str  # "torch.float32"
    numel: int


@dataclass(frozen=True)
class RoundTrip:
    data: bytes  # model_weights.pth as torch.save wrote it
    entries: list[Entry]
    load_result: str  # what load_state_dict returned: "<All keys matched successfully>"
    original: torch.Tensor  # (N, 10): model(X)
    loaded: torch.Tensor  # (N, 10): model2(X) after load_state_dict
    fresh: torch.Tensor  # (N, 10): a model built the same way, never loaded

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def loaded_gap(self) -> float:
        """The largest |model(X) - model2(X)|: 0 when the load restored every weight."""
        return float((self.original - self.loaded).abs().max())

    @property
    def fresh_gap(self) -> float:
        return float((self.original - self.fresh).abs().max())


def state_entries(state: dict[str, torch.Tensor]) -> list[Entry]:
    return [Entry(k, tuple(v.shape), str(v.dtype), v.numel()) for k, v in state.items()]


def round_trip(model: nn.Module, model2: nn.Module, fresh: nn.Module, x: torch.Tensor) -> RoundTrip:
    """The tutorial's save and load: `torch.save(model.state_dict(), "model_weights.pth")`, then
    `model2.load_state_dict(torch.load("model_weights.pth", weights_only=True))` and `model2.eval()`.

    `model2` is changed (it is the new model the weights go into); `model` and `fresh` are only asked.
    The file lives in a temporary folder; its bytes come back for a download."""
    with tempfile.TemporaryDirectory(prefix="save_load_") as folder:
        path = Path(folder) / WEIGHTS_FILE
        torch.save(model.state_dict(), path)
        result = model2.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        data = path.read_bytes()
    model2.eval()
    return RoundTrip(
        data,
        state_entries(model.state_dict()),
        str(result),
        logits(model, x),
        logits(model2, x),
        logits(fresh, x),
    )


# ---- 3. eval() against train() -------------------------------------------------------------------------


@dataclass(frozen=True)
class Modes:
    """One batch through the same weights in eval mode, then twice in train mode (under no_grad)."""

    evaluated: torch.Tensor  # (N, 10): model.eval(); model(X)
    first: torch.Tensor  # (N, 10): model.train(); model(X)
    second: torch.Tensor  # (N, 10): model(X) once more, still in train mode
    batch_norms: int  # BatchNorm layers: in train mode they normalise with the batch's own statistics
    dropouts: tuple[float, ...]  # p of each Dropout that drops anything (p > 0)
    stats_moved: float  # largest change of a BatchNorm running mean from the two train-mode calls

    @property
    def train_gap(self) -> float:
        """The largest |train-mode logit - eval-mode logit|."""
        return float((self.first - self.evaluated).abs().max())

    @property
    def call_gap(self) -> float:
        """The largest difference between the two train-mode calls: Dropout's coin flips."""
        return float((self.first - self.second).abs().max())

    @property
    def changes_with_mode(self) -> bool:
        return bool(self.batch_norms or self.dropouts)


def mode_layers(model: nn.Module) -> tuple[int, tuple[float, ...]]:
    """(how many BatchNorm layers, the p of each Dropout with p > 0): the layers model.eval() switches."""
    norms = sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    drops = tuple(float(m.p) for m in model.modules() if isinstance(m, nn.Dropout) and m.p > 0)
    return norms, drops


def compare_modes(model: nn.Module, x: torch.Tensor, seed: int = UNTRAINED_SEED) -> Modes:
    """`model.eval()` then `model.train()` on the same batch x (N, 1, 28, 28), as the tutorial's note warns.

    On a copy: a train-mode forward pass moves BatchNorm's running statistics even under no_grad, and the
    model may be shared. `torch.manual_seed(seed)` before the train-mode calls fixes Dropout's draws."""
    copied = copy.deepcopy(model)
    means = _running_means(copied)
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        copied.eval()
        evaluated = copied(x)
        torch.manual_seed(seed)
        copied.train()
        first, second = copied(x), copied(x)
    moved = [
        float((after - before).abs().max())
        for before, after in zip(means, _running_means(copied), strict=True)
    ]
    return Modes(evaluated, first, second, *mode_layers(model), max(moved, default=0.0))


def _running_means(model: nn.Module) -> list[torch.Tensor]:
    return [
        m.running_mean.clone()
        for m in model.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.running_mean is not None
    ]


# ---- 4. the whole model --------------------------------------------------------------------------------


@dataclass(frozen=True)
class WholeModel:
    size: int  # bytes of model.pth: torch.save(model)
    names: list[str]  # what its pickle names, in order: classes and functions to import when loading
    weights_names: list[str]  # what model_weights.pth's pickle names, for comparison
    error: str | None  # PyTorch's UnpicklingError for torch.load(..., weights_only=True); None: it loaded
    refused: str  # the global the error names: "core.model.networks.NeuralNetwork"
    app_message: str  # what this app says of such an upload (core.model.archive, as the Predict page does)


def whole_model(model: nn.Module, weights: bytes) -> WholeModel:
    """`torch.save(model, "model.pth")`, then what weights_only=True makes of it: a refusal naming the class.
    `weights` is the same model's model_weights.pth (RoundTrip.data), whose pickle names are listed beside.

    The pickles' names are read with pickletools, which lists their instructions and runs none of them."""
    with tempfile.TemporaryDirectory(prefix="save_load_") as folder:
        path = Path(folder) / WHOLE_FILE
        torch.save(model, path)
        error = _weights_only_error(path)
        data = path.read_bytes()
    try:
        safe_torch_load(checked_archive(data, WHOLE_FILE), WHOLE_FILE)
        app_message = ""
    except BadCheckpoint as exc:
        app_message = str(exc)
    found = re.search(r"GLOBAL ([\w.]+) was not an allowed global", error or "")
    return WholeModel(
        len(data),
        pickle_names(data),
        pickle_names(weights),
        error,
        found.group(1) if found else "",
        app_message,
    )


def _weights_only_error(path: Path) -> str | None:
    try:
        torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        return _ANSI.sub("", str(exc)).strip()
    return None


def pickle_names(data: bytes) -> list[str]:
    """The globals (module.name) a torch.save file's data.pkl refers to, each once, in order of appearance:
    what unpickling it would import and call. Only parsed (pickletools.genops), never run."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        record = next(n for n in archive.namelist() if n == "data.pkl" or n.endswith("/data.pkl"))
        pickled = archive.read(record)
    names: list[str] = []
    strings: list[str] = []  # the last strings pushed: STACK_GLOBAL (protocol 4) takes two of them
    for opcode, arg, _ in pickletools.genops(pickled):
        if opcode.name == "GLOBAL":
            name = str(arg).replace(" ", ".")  # protocol 2, torch.save's default: "module name"
        elif opcode.name == "STACK_GLOBAL" and len(strings) >= 2:
            name = f"{strings[-2]}.{strings[-1]}"
        else:
            if opcode.name in _STRINGS:
                strings.append(str(arg))
            continue
        if name not in names:
            names.append(name)
    return names


def refusal_line(error: str) -> str:
    """The line of PyTorch's refusal that says what it refused: "WeightsUnpickler error: Unsupported ..."."""
    return next((line.strip() for line in error.splitlines() if "Unsupported global" in line), error)
