"""Checkpoint save/load: tutorial compatibility both ways, atomic writes, and refusal of bad files."""

import ast
import hashlib
import io
import json
import os
import pathlib
import tracemalloc
from pathlib import Path

import pytest
import torch
from PIL import Image
from torch import nn

from core.base.errors import BadCheckpoint
from core.data.fashion import CLASSES
from core.model.checkpoint import (
    MAX_CHECKPOINT_BYTES,
    infer_architecture,
    load_checkpoint,
    load_checkpoint_bytes,
    save_checkpoint,
    sidecar_path,
)
from core.model.networks import build_model, model_options

ROOT = Path(__file__).resolve().parents[2]
TUTORIAL_KEYS = [f"linear_relu_stack.{i}.{p}" for i in (0, 2, 4) for p in ("weight", "bias")]


class NeuralNetwork(nn.Module):
    """The quickstart's model, written here as the tutorial has it, independent of core.model.networks."""

    def __init__(self):
        super().__init__()
        self.flatten = nn.Flatten()
        self.linear_relu_stack = nn.Sequential(
            nn.Linear(28 * 28, 512),
            nn.ReLU(),
            nn.Linear(512, 512),
            nn.ReLU(),
            nn.Linear(512, 10),
        )

    def forward(self, x):
        x = self.flatten(x)
        return self.linear_relu_stack(x)


class TouchPayload:
    """Unpickling this would create `marker`: the shape of a real malicious checkpoint."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


class ShellPayload:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _save(obj, path: Path) -> Path:
    torch.save(obj, path)
    return path


def _mlp_state(hidden: int = 16) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return build_model("mlp", hidden=hidden).state_dict()


def _refused(path: Path, **kwargs) -> str:
    with pytest.raises(BadCheckpoint) as info:
        load_checkpoint(path, **kwargs)
    return str(info.value)


# --- round trip -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "options"), [("mlp", {"hidden": 32, "dropout": 0.1}), ("cnn", {"channels": 4})]
)
def test_round_trip_restores_weights_and_writes_the_sidecar(tmp_path, name, options):
    torch.manual_seed(1)
    model = build_model(name, **options)
    opts = model_options(name, **options)
    path = save_checkpoint(
        model,
        tmp_path / "model.pth",
        model_name=name,
        model_options=opts,
        train_config={"epochs": 2},
        metrics={"acc": 0.8},
    )
    loaded = load_checkpoint(path)

    assert loaded.model_name == name and loaded.model_options == opts
    assert not loaded.model.training
    original, restored = model.state_dict(), loaded.model.state_dict()
    assert list(restored) == list(original)
    assert all(torch.equal(original[k], restored[k]) for k in original)

    meta = json.loads(sidecar_path(path).read_text())
    data = path.read_bytes()
    assert meta["format"] == "fashionmnist-studio/1"
    assert (meta["model"], meta["model_options"]) == (name, opts)
    assert meta["train_config"] == {"epochs": 2} and meta["metrics"] == {"acc": 0.8}
    assert meta["classes"] == list(CLASSES)
    assert meta["sha256"] == hashlib.sha256(data).hexdigest() == loaded.sha256
    assert meta["bytes"] == len(data)
    assert meta["saved_at"].endswith("+00:00")
    assert loaded.meta == meta


def test_saved_file_is_a_plain_state_dict_with_the_tutorial_keys(tmp_path):
    path = save_checkpoint(
        build_model("mlp"), tmp_path / "model.pth", model_name="mlp", model_options=model_options("mlp")
    )
    state = torch.load(path, weights_only=True)
    assert list(state) == TUTORIAL_KEYS
    assert all(type(v) is torch.Tensor and v.device.type == "cpu" for v in state.values())


def test_sidecar_path_swaps_the_suffix():
    assert sidecar_path(Path("runs/a/model.pth")) == Path("runs/a/model.json")


def test_cnn_without_sidecar_is_recognised_with_its_sizes():
    state = build_model("cnn", channels=8, hidden=24).state_dict()
    assert infer_architecture(state) == ("cnn", model_options("cnn", channels=8, hidden=24))


# --- tutorial compatibility -------------------------------------------------------------------


def test_a_tutorial_model_pth_loads_without_a_sidecar(tmp_path):
    torch.manual_seed(2)
    tutorial = NeuralNetwork().eval()
    path = _save(tutorial.state_dict(), tmp_path / "model.pth")  # the tutorial's own save line

    loaded = load_checkpoint(path)

    assert loaded.model_name == "mlp"
    assert loaded.model_options == {"hidden": 512, "dropout": 0.0}
    assert loaded.meta is None
    x = torch.rand(5, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(loaded.model(x), tutorial(x))


def test_our_checkpoint_loads_with_the_tutorials_two_lines(tmp_path, monkeypatch):
    torch.manual_seed(3)
    ours = build_model("mlp").eval()
    save_checkpoint(ours, tmp_path / "model.pth", model_name="mlp", model_options=model_options("mlp"))
    monkeypatch.chdir(tmp_path)

    model = NeuralNetwork()
    model.load_state_dict(torch.load("model.pth", weights_only=True))

    model.eval()
    x = torch.rand(5, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(model(x), ours(x))


def test_uploaded_bytes_load_like_a_file():
    buffer = io.BytesIO()
    torch.save(_mlp_state(), buffer)
    loaded = load_checkpoint_bytes(buffer.getvalue())
    assert (loaded.model_name, loaded.source) == ("mlp", "uploaded file")
    assert loaded.model_options["hidden"] == 16


# --- files that are not checkpoints -----------------------------------------------------------


def test_empty_file_is_refused(tmp_path):
    path = tmp_path / "model.pth"
    path.write_bytes(b"")
    assert "is empty" in _refused(path)


def test_truncated_checkpoint_is_refused(tmp_path):
    data = _save(_mlp_state(), tmp_path / "full.pth").read_bytes()
    path = tmp_path / "model.pth"
    path.write_bytes(data[: len(data) // 2])
    assert "not a valid checkpoint (truncated or damaged)" in _refused(path)


def test_random_bytes_are_refused(tmp_path):
    path = tmp_path / "model.pth"
    path.write_bytes(
        torch.randint(0, 256, (4096,), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
        .numpy()
        .tobytes()
    )
    assert "not a valid checkpoint (not a PyTorch zip file" in _refused(path)


def test_png_renamed_to_pth_is_refused_and_named(tmp_path):
    path = tmp_path / "model.pth"
    Image.new("L", (28, 28)).save(path, format="PNG")
    message = _refused(path)
    assert "not a valid checkpoint" in message and "PNG image" in message


def test_text_renamed_to_pth_is_refused(tmp_path):
    path = tmp_path / "model.pth"
    path.write_text("model = NeuralNetwork()\n")
    message = _refused(path)
    assert "not a valid checkpoint" in message and "text file" in message


def test_whole_pickled_model_is_refused_with_the_state_dict_advice(tmp_path):
    path = _save(NeuralNetwork(), tmp_path / "model.pth")
    message = _refused(path)
    assert "whole pickled model" in message
    assert "torch.save(model.state_dict()" in message


@pytest.mark.parametrize("payload", [TouchPayload, ShellPayload])
def test_malicious_pickle_is_refused_and_never_runs(tmp_path, payload):
    marker = tmp_path / "pwned"
    path = _save({"weights": torch.zeros(2), "x": payload(marker)}, tmp_path / "model.pth")
    message = _refused(path)
    assert "not allowed" in message and "nothing in it was run" in message
    assert "whole pickled model" not in message
    assert not marker.exists()


def test_a_list_is_not_a_state_dict(tmp_path):
    path = _save([torch.zeros(3)], tmp_path / "model.pth")
    assert "a list, not a state_dict" in _refused(path)


def test_a_dict_with_non_tensor_values_is_not_a_state_dict(tmp_path):
    path = _save({"linear_relu_stack.0.weight": torch.zeros(1), "epoch": 3}, tmp_path / "model.pth")
    assert "entry 'epoch' holds an int" in _refused(path)


@pytest.mark.parametrize("wrapper", ["state_dict", "model_state_dict"])
def test_state_dict_wrapped_with_training_extras_loads(tmp_path, wrapper):
    state = _mlp_state()
    path = _save({wrapper: state, "epoch": 4, "optimizer": {"lr": 1e-3}}, tmp_path / "model.pth")
    loaded = load_checkpoint(path)
    assert loaded.model_name == "mlp"
    assert torch.equal(
        loaded.model.state_dict()["linear_relu_stack.4.bias"], state["linear_relu_stack.4.bias"]
    )


# --- state dicts that do not fit --------------------------------------------------------------


def test_missing_key_is_named(tmp_path):
    state = _mlp_state()
    del state["linear_relu_stack.2.bias"]
    message = _refused(_save(state, tmp_path / "model.pth"))
    assert "missing keys linear_relu_stack.2.bias" in message


def test_unexpected_key_is_named(tmp_path):
    state = _mlp_state()
    state["linear_relu_stack.6.weight"] = torch.zeros(10, 10)
    message = _refused(_save(state, tmp_path / "model.pth"))
    assert "unexpected keys linear_relu_stack.6.weight" in message


def test_named_model_reports_missing_and_unexpected_keys():
    buffer = io.BytesIO()
    torch.save(build_model("cnn", channels=4).state_dict(), buffer)
    with pytest.raises(BadCheckpoint) as info:
        load_checkpoint_bytes(buffer.getvalue(), model_name="mlp", model_options={"hidden": 16})
    message = str(info.value)
    assert "does not fit model 'mlp'" in message
    assert "missing keys linear_relu_stack.0.bias" in message
    assert "unexpected keys classifier.1.bias" in message


def test_wrong_shape_names_the_key_and_both_shapes(tmp_path):
    state = _mlp_state(hidden=16)
    state["linear_relu_stack.2.weight"] = torch.zeros(16, 8)
    message = _refused(_save(state, tmp_path / "model.pth"))
    assert "linear_relu_stack.2.weight: expected (16, 16), found (16, 8)" in message


def test_unknown_weights_name_their_keys(tmp_path):
    path = _save({"encoder.weight": torch.zeros(2, 2)}, tmp_path / "model.pth")
    message = _refused(path)
    assert "any model this app knows" in message and "encoder.weight" in message


def test_first_layer_must_take_784_pixels(tmp_path):
    state = _mlp_state()
    state["linear_relu_stack.0.weight"] = torch.zeros(16, 3 * 32 * 32)
    assert "has 3072 inputs, but a 28x28 FashionMNIST image has 784" in _refused(
        _save(state, tmp_path / "m.pth")
    )


def test_last_layer_must_give_ten_classes(tmp_path):
    state = _mlp_state()
    state["linear_relu_stack.4.weight"] = torch.zeros(100, 16)
    state["linear_relu_stack.4.bias"] = torch.zeros(100)
    assert "has 100 outputs, but FashionMNIST has 10 classes" in _refused(_save(state, tmp_path / "m.pth"))


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_weights_are_named(tmp_path, bad):
    state = _mlp_state()
    state["linear_relu_stack.2.weight"][3, 4] = bad
    assert "tensor linear_relu_stack.2.weight contains NaN or Inf" in _refused(
        _save(state, tmp_path / "m.pth")
    )


# --- size limit and integrity -----------------------------------------------------------------


def test_file_over_the_limit_is_refused(tmp_path):
    path = _save(_mlp_state(), tmp_path / "model.pth")
    assert "limit" in _refused(path, max_bytes=1000)


def test_oversized_file_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "huge.pth"
    with path.open("wb") as f:
        f.truncate(4 * MAX_CHECKPOINT_BYTES)  # sparse: 256 MB on paper, nothing on disk
    tracemalloc.start()
    try:
        message = _refused(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "256 MB, over the 64 MB limit" in message
    assert peak < 1024 * 1024  # reading it would have allocated 256 MB


def test_uploaded_bytes_over_the_limit_are_refused():
    with pytest.raises(BadCheckpoint, match="limit"):
        load_checkpoint_bytes(b"PK\x03\x04" + bytes(2000), max_bytes=1000)


def test_one_flipped_byte_is_caught_by_the_sidecar(tmp_path):
    path = save_checkpoint(
        build_model("mlp", hidden=16), tmp_path / "model.pth", model_name="mlp", model_options={"hidden": 16}
    )
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    assert "does not match its sidecar (sha256 mismatch)" in _refused(path)


def test_missing_file_is_reported(tmp_path):
    assert "does not exist" in _refused(tmp_path / "nope.pth")


# --- atomic writes ----------------------------------------------------------------------------


class Crash(Exception):
    pass


def _crash_on_replace(monkeypatch, after: int = 0) -> None:
    """Make the (after+1)-th os.replace die, as a killed process would, once the temp file is written."""
    real, calls = os.replace, []

    def replace(src, dst):
        calls.append(dst)
        if len(calls) > after:
            raise Crash
        real(src, dst)

    monkeypatch.setattr(os, "replace", replace)


def _temps(folder: Path) -> list[Path]:
    return sorted(folder.glob(".*.tmp"))


def _resave_interrupted(path: Path, monkeypatch, after: int):
    """Save a checkpoint, then crash a second save at the (after+1)-th os.replace; load what is left,
    asserting it holds the first save's weights."""
    old = build_model("mlp", hidden=16)
    save_checkpoint(old, path, model_name="mlp", model_options={"hidden": 16}, metrics={"epoch": 1})
    _crash_on_replace(monkeypatch, after=after)
    with pytest.raises(Crash):
        save_checkpoint(build_model("mlp", hidden=16), path, model_name="mlp", model_options={"hidden": 16})
    monkeypatch.undo()
    loaded = load_checkpoint(path)
    assert torch.equal(
        loaded.model.state_dict()["linear_relu_stack.0.weight"],
        old.state_dict()["linear_relu_stack.0.weight"],
    )
    return loaded


def test_crash_while_writing_weights_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    loaded = _resave_interrupted(tmp_path / "model.pth", monkeypatch, after=0)
    assert loaded.meta["metrics"] == {"epoch": 1}
    assert _temps(tmp_path) == []


def test_crash_between_sidecar_and_weights_keeps_the_old_weights_loadable(tmp_path, monkeypatch):
    path = tmp_path / "model.pth"
    loaded = _resave_interrupted(path, monkeypatch, after=1)  # new sidecar in place, new weights not
    assert loaded.meta is None  # the newer sidecar does not describe these weights
    assert _temps(tmp_path) == []
    damaged = bytearray(path.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF  # anything else is still a mismatch
    path.write_bytes(bytes(damaged))
    assert "sha256 mismatch" in _refused(path)


def test_leftover_temp_file_does_not_confuse_load(tmp_path):
    path = save_checkpoint(
        build_model("mlp", hidden=16), tmp_path / "model.pth", model_name="mlp", model_options={"hidden": 16}
    )
    (tmp_path / ".model.pth.abc123.tmp").write_bytes(b"half a checkpo")
    assert load_checkpoint(path).model_name == "mlp"


# --- no unsafe loading anywhere ---------------------------------------------------------------


def _dotted(node: ast.AST) -> str:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return ".".join(reversed(parts))


def _sources(*names: str) -> list[Path]:
    files = []
    for name in names:
        target = ROOT / name
        files += sorted(target.rglob("*.py")) if target.is_dir() else [target] if target.is_file() else []
    return files


def _calls(path: Path) -> list[ast.Call]:
    return [n for n in ast.walk(ast.parse(path.read_text(), str(path))) if isinstance(n, ast.Call)]


def test_every_torch_load_passes_weights_only_true():
    offenders, seen = [], 0
    for path in _sources("core", "app.py", "pages", "ui"):
        for call in _calls(path):
            if _dotted(call.func) != "torch.load":
                continue
            seen += 1
            flags = [k.value for k in call.keywords if k.arg == "weights_only"]
            if not (len(flags) == 1 and isinstance(flags[0], ast.Constant) and flags[0].value is True):
                offenders.append(f"{path.relative_to(ROOT)}:{call.lineno}")
    assert seen, "expected at least core/checkpoint.py to call torch.load"
    assert offenders == []


def test_core_never_uses_unsafe_loaders():
    unsafe = {"pickle.load", "pickle.loads", "pickle.Unpickler", "torch.jit.load", "torch.export.load"}
    offenders = [
        f"{path.relative_to(ROOT)}:{call.lineno} {_dotted(call.func)}"
        for path in _sources("core")
        for call in _calls(path)
        if _dotted(call.func) in unsafe
    ]
    assert offenders == []


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_model_trained_on_gpu_saves_cpu_tensors(tmp_path):
    model = build_model("mlp", hidden=16).cuda()
    path = save_checkpoint(model, tmp_path / "model.pth", model_name="mlp", model_options={"hidden": 16})
    # Without map_location torch.load restores each tensor to the device it was saved from.
    assert all(t.device.type == "cpu" for t in torch.load(path, weights_only=True).values())
    assert next(load_checkpoint(path, map_location="cuda").model.parameters()).is_cuda
