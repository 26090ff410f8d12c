"""Checkpoints made to hurt: archives that inflate, tensors and sidecars that crash or lie, paths that block.

Each is refused with one line (a BadCheckpoint) before it costs memory, CPU or a warning on stderr."""

import io
import json
import os
import struct
import subprocess
import sys
import tracemalloc
import warnings
import zipfile
from pathlib import Path

import pytest
import torch
from torch.serialization import skip_data

from core.base.errors import BadCheckpoint
from core.model.checkpoint import (
    MAX_SIDECAR_BYTES,
    load_checkpoint,
    load_checkpoint_bytes,
    save_checkpoint,
    sidecar_path,
)
from core.model.networks import build_model

ROOT = Path(__file__).resolve().parents[2]
FIRST_LAYER = "linear_relu_stack.0.weight"
MB = 1024 * 1024


def _refused(path: Path) -> str:
    """The one-line refusal, asserting that no Python warning was raised on the way."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(BadCheckpoint) as info:
            load_checkpoint(path)
    assert [str(w.message) for w in caught] == []
    message = str(info.value)
    assert "\n" not in message
    return message


def _mlp_state(hidden: int = 16) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return build_model("mlp", hidden=hidden).state_dict()


def _saved(state: dict, path: Path) -> Path:
    torch.save(state, path)
    return path


# --- archives that inflate: refused in a fresh process, measuring what refusing costs -------------

REFUSE = """
import io, json, resource, sys, torch
from core.model.checkpoint import load_checkpoint, load_checkpoint_bytes
from core.base.errors import BadCheckpoint
from core.model.networks import build_model

def usage():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_maxrss / 1024, r.ru_utime + r.ru_stime  # peak RSS in MB (Linux: KB), CPU seconds

warm = io.BytesIO()
torch.save(build_model("mlp", hidden=8).state_dict(), warm)
load_checkpoint_bytes(warm.getvalue())  # the baseline: a process that has loaded a checkpoint
peak, cpu = usage()
try:
    load_checkpoint(sys.argv[1])
    outcome = "loaded"
except BadCheckpoint as e:
    outcome = str(e)
after, cpu_after = usage()
print(json.dumps({"outcome": outcome, "peak_mb": after - peak, "cpu_s": cpu_after - cpu, "base_mb": peak}))
"""


def _refuse_in_subprocess(path: Path) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", REFUSE, str(path)], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stderr == ""  # no warning, no traceback
    figures = json.loads(result.stdout)
    print(f"\n{path.name}: +{figures['peak_mb']:.1f} MB peak RSS, {figures['cpu_s']:.3f} s CPU refusing it")
    return figures


def _assert_cheap(figures: dict) -> None:
    assert figures["peak_mb"] < 100  # refusing must not allocate what the file claims
    assert figures["cpu_s"] < 2  # a shared machine's generous margin; refusing takes milliseconds


def deflated_zeros(path: Path, numel: int, *, streamed: bool = False) -> Path:
    """The issue's reproduction: `torch.save({FIRST_LAYER: torch.zeros(numel)})`, every zip entry then
    rewritten with ZIP_DEFLATED. streamed: written to a pipe-like sink, so each entry's sizes follow its
    data (a data descriptor) instead of standing in its local header."""
    plan = path.with_suffix(".plan")
    with skip_data():  # the layout of a real save without writing its bytes: a sparse file, instantly
        torch.save({FIRST_LAYER: torch.empty(numel)}, plan)
    zeros = bytes(MB)
    with zipfile.ZipFile(plan) as source, path.open("wb") as out:
        sink = _Unseekable(out) if streamed else out
        with zipfile.ZipFile(sink, "w", zipfile.ZIP_DEFLATED) as bomb:
            for entry in source.infolist():
                if entry.filename.endswith("/data/0"):
                    with bomb.open(entry.filename, "w", force_zip64=True) as member:
                        for _ in range(entry.file_size // len(zeros)):
                            member.write(zeros)
                else:
                    bomb.writestr(entry.filename, source.read(entry))
    plan.unlink()
    return path


class _Unseekable:
    """A file that can only be appended to, like a socket: zipfile then streams each entry."""

    def __init__(self, file):
        self.write, self.flush = file.write, file.flush


@pytest.mark.parametrize("streamed", [False, True], ids=["deflated", "streamed"])
def test_deflated_zeros_are_refused_unread(tmp_path, streamed):
    path = deflated_zeros(tmp_path / "model.pth", 2**26, streamed=streamed)  # 256 MB of zeros in ~260 KB
    assert path.stat().st_size < MB
    figures = _refuse_in_subprocess(path)
    assert "zip entry 'model/data.pkl' is compressed with DEFLATE" in figures["outcome"]
    _assert_cheap(figures)


def _patch_central_directory(data: bytes, patch) -> bytes:
    """Apply `patch(name, fields) -> fields` to every central-directory entry of a zip (no comment,
    no zip64 sizes), where fields are (crc, compressed size, size, local header offset)."""
    out = bytearray(data)
    at = data.find(b"PK\x01\x02")
    while at >= 0:
        name_length = struct.unpack_from("<H", data, at + 28)[0]
        name = data[at + 46 : at + 46 + name_length].decode()
        crc, compressed, size = struct.unpack_from("<3L", data, at + 16)
        offset = struct.unpack_from("<L", data, at + 42)[0]
        crc, compressed, size, offset = patch(name, (crc, compressed, size, offset))
        struct.pack_into("<3L", out, at + 16, crc, compressed, size)
        struct.pack_into("<L", out, at + 42, offset)
        at = data.find(b"PK\x01\x02", at + 46)
    return bytes(out)


def test_entries_that_overlap_cannot_claim_the_same_bytes_many_times(tmp_path):
    """50 tensors whose entries all point at one 4 MB stretch of the file: 200 MB once unpacked."""
    plan = tmp_path / "plan.pth"
    with skip_data():
        torch.save({f"w{i}": torch.empty(MB) for i in range(50)}, plan)
    with zipfile.ZipFile(plan) as source, zipfile.ZipFile(buffer := io.BytesIO(), "w") as archive:
        for entry in source.infolist():
            content = b"" if "/data/" in entry.filename else source.read(entry)
            archive.writestr(entry.filename, bytes(4 * MB) if entry.filename.endswith("/data/0") else content)
    first = {}

    def point_at_the_first(name, fields):
        if name.endswith("/data/0"):
            first["fields"] = fields
        return first["fields"] if "/data/" in name else fields

    path = tmp_path / "model.pth"
    path.write_bytes(_patch_central_directory(buffer.getvalue(), point_at_the_first))
    assert path.stat().st_size < 5 * MB
    figures = _refuse_in_subprocess(path)
    assert "its zip entries declare 200 MB, more than the whole file's" in figures["outcome"]
    _assert_cheap(figures)


def test_a_central_directory_of_400_000_entries_is_not_parsed(tmp_path):
    """Empty entries, about 100 bytes each: zipfile would build 400,000 objects (~170 MB) for seconds."""
    local, central = bytearray(), bytearray()
    for i in range(400_000):
        name = b"model/%d" % i
        fields = (20, 20, 0, 0, 0, 0, 0, 0, 0, len(name), 0, 0, 0, 0, 0, len(local))
        central += struct.pack("<4s6H3L5H2L", b"PK\x01\x02", *fields) + name
        local += struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 0, 0, 0, 0, 0, 0, len(name), 0) + name
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, len(central), len(local), 0)
    path = tmp_path / "model.pth"
    path.write_bytes(local + central + end)
    figures = _refuse_in_subprocess(path)
    assert "a zip archive of more than 256 entries" in figures["outcome"]
    _assert_cheap(figures)


def test_an_entry_larger_than_its_file_is_refused(tmp_path):
    data = _saved(_mlp_state(), tmp_path / "plain.pth").read_bytes()
    lie = _patch_central_directory(
        data, lambda name, f: (f[0], 2**31, 2**31, f[3]) if name.endswith("/data/0") else f
    )
    path = tmp_path / "model.pth"
    path.write_bytes(lie)
    assert "zip entry 'plain/data/0' declares 2048 MB, over the" in _refused(path)


def test_a_pickle_larger_than_any_state_dict_needs_is_refused(tmp_path):
    """data.pkl holds only names and shapes: a few KB. 20 MB of pickle can build ten million objects."""
    data = _saved(_mlp_state(), tmp_path / "plain.pth").read_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(buffer := io.BytesIO(), "w") as archive:
        for entry in source.infolist():
            padded = entry.filename.endswith("data.pkl")  # a pickle ends at STOP: trailing bytes are ignored
            archive.writestr(entry.filename, source.read(entry) + (bytes(20 * MB) if padded else b""))
    path = tmp_path / "model.pth"
    path.write_bytes(buffer.getvalue())
    assert "zip entry 'plain/data.pkl' declares 20 MB, over the 1 MB it may hold" in _refused(path)


# --- tensors that are not weights ---------------------------------------------------------------


def test_a_meta_tensor_is_refused(tmp_path):
    state = _mlp_state()
    state[FIRST_LAYER] = torch.empty(16, 784, device="meta")
    assert f"tensor {FIRST_LAYER} is a meta tensor" in _refused(_saved(state, tmp_path / "m.pth"))


@pytest.mark.parametrize("layout", ["sparse_coo", "sparse_csr"])
def test_a_sparse_tensor_is_refused_without_a_warning(tmp_path, layout):
    state = _mlp_state()
    dense = state[FIRST_LAYER]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch calls its sparse CSR support beta
        state[FIRST_LAYER] = dense.to_sparse_csr() if layout == "sparse_csr" else dense.to_sparse()
    message = _refused(_saved(state, tmp_path / "m.pth"))
    assert f"tensor {FIRST_LAYER} is {layout}, but a model's weights are dense tensors" in message


@pytest.mark.parametrize("dtype", [torch.int64, torch.bool, torch.uint8, torch.complex64])
def test_weights_that_are_not_floating_point_are_refused(tmp_path, dtype):
    state = _mlp_state()
    state[FIRST_LAYER] = (state[FIRST_LAYER] * 100).to(dtype)
    message = _refused(_saved(state, tmp_path / "m.pth"))
    assert f"tensor {FIRST_LAYER} holds {str(dtype)[6:]} values, but weights are floating point" in message


def test_float64_weights_beyond_float32s_range_are_refused(tmp_path):
    state = {k: v.double() for k, v in _mlp_state().items()}
    state[FIRST_LAYER][0, 0] = 1e300  # inf once in float32: every prediction would be NaN
    assert f"tensor {FIRST_LAYER} contains NaN or Inf" in _refused(_saved(state, tmp_path / "m.pth"))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_weights_in_other_floating_dtypes_load_as_float32(tmp_path, dtype):
    state = {k: v.to(dtype) for k, v in _mlp_state().items()}
    loaded = load_checkpoint(_saved(state, tmp_path / "m.pth"))
    assert loaded.model.state_dict()[FIRST_LAYER].dtype == torch.float32
    assert torch.equal(loaded.model.state_dict()[FIRST_LAYER], state[FIRST_LAYER].float())


def test_a_cnn_counter_in_floating_point_is_refused(tmp_path):
    state = build_model("cnn", channels=4).state_dict()
    state["features.1.num_batches_tracked"] = torch.tensor(0.5)
    assert "num_batches_tracked holds float32 values, but it is a counter" in _refused(
        _saved(state, tmp_path / "m.pth")
    )


@pytest.mark.parametrize(("shape", "expected"), [((), "has shape (), but"), ((10**6, 784), "not 1000000")])
def test_a_layer_of_the_wrong_rank_or_width_is_named(tmp_path, shape, expected):
    state = _mlp_state()
    state[FIRST_LAYER] = torch.zeros(()).expand(shape)  # one float: its shape is all the pickle says
    assert expected in _refused(_saved(state, tmp_path / "m.pth"))


def test_a_key_that_is_not_a_name_is_named_for_what_it_is(tmp_path):
    message = _refused(_saved({1: torch.zeros(2)}, tmp_path / "m.pth"))
    assert "its keys must be layer names (text), but one is an int" in message
    assert "holds a Tensor" not in message


def test_a_huge_key_is_shortened_in_the_message(tmp_path):
    message = _refused(_saved({"k" * 100_000: 3}, tmp_path / "m.pth"))
    assert "holds an int, not a tensor" in message and len(message) < 300


# --- sidecars -----------------------------------------------------------------------------------


def _with_sidecar(tmp_path: Path, edit) -> Path:
    """A saved MLP (hidden 16) whose sidecar `edit(meta)` changed, its sha256 left vouching."""
    path = save_checkpoint(
        build_model("mlp", hidden=16), tmp_path / "model.pth", model_name="mlp", model_options={"hidden": 16}
    )
    meta = json.loads(sidecar_path(path).read_text())
    edit(meta)
    sidecar_path(path).write_text(json.dumps(meta))
    return path


@pytest.mark.parametrize("model", [["mlp"], {"name": "mlp"}, 7, "resnet"])
def test_a_sidecar_naming_no_model_is_refused(tmp_path, model):
    path = _with_sidecar(tmp_path, lambda meta: meta.update(model=model))
    assert "sidecar" in (message := _refused(path)) and "'model' must be one of cnn, mlp, not" in message


def test_a_sidecar_whose_options_are_not_an_object_is_refused(tmp_path):
    path = _with_sidecar(tmp_path, lambda meta: meta.update(model_options=[16]))
    assert "'model_options' must be a JSON object, not a list" in _refused(path)


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"hidden": -5}, "hidden must be a whole number from 1 to 4096, not -5"),
        ({"hidden": 10_000_000}, "hidden must be a whole number from 1 to 4096, not 10000000"),
        ({"hidden": 16.5}, "hidden must be a whole number from 1 to 4096, not 16.5"),
        ({"hidden": "16"}, "hidden must be a number, not '16'"),
        ({"dropout": 2}, "dropout must be in [0, 1), not 2"),
        ({"depth": 3}, "model 'mlp' has no option(s) 'depth'"),
    ],
)
def test_sidecar_options_out_of_range_are_refused_before_building(tmp_path, options, expected):
    path = _with_sidecar(tmp_path, lambda meta: meta["model_options"].update(options))
    assert f"cannot build that model: {expected}" in _refused(path)


def test_a_deeply_nested_sidecar_is_refused(tmp_path):
    path = save_checkpoint(
        build_model("mlp", hidden=16), tmp_path / "model.pth", model_name="mlp", model_options={}
    )
    sidecar_path(path).write_text("[" * 100_000 + "]" * 100_000)
    assert "is nested too deeply to be a sidecar; delete it to load model.pth alone" in _refused(path)


def test_a_huge_sidecar_is_refused_before_it_is_read(tmp_path):
    path = save_checkpoint(
        build_model("mlp", hidden=16), tmp_path / "model.pth", model_name="mlp", model_options={}
    )
    with sidecar_path(path).open("wb") as f:
        f.truncate(100 * MB)  # sparse: 100 MB on paper
    tracemalloc.start()
    try:
        message = _refused(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert f"is 100 MB, over the {MAX_SIDECAR_BYTES // MB} MB limit for sidecars" in message
    assert peak < MB


def test_a_sidecar_without_a_hash_is_not_trusted_for_the_architecture(tmp_path):
    """It does not say which weights it describes: the weights load as a tutorial model.pth does."""

    def unvouched(meta):
        del meta["sha256"]
        meta["model"], meta["model_options"] = "cnn", {"channels": 4}

    loaded = load_checkpoint(_with_sidecar(tmp_path, unvouched))
    assert (loaded.model_name, loaded.model_options["hidden"], loaded.meta) == ("mlp", 16, None)


# --- paths that are not files --------------------------------------------------------------------


def test_a_folder_says_it_is_a_folder(tmp_path):
    assert f"checkpoint {tmp_path} is a folder, not a file" in _refused(tmp_path)


def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "model.pth"
    os.mkfifo(fifo)  # opening it to read would wait for a writer forever
    assert f"checkpoint {fifo} is not a regular file (it is a named pipe)" in _refused(fifo)


def test_a_device_is_refused_without_reading(tmp_path):
    assert "checkpoint /dev/zero is not a regular file (it is a character device)" in _refused(
        Path("/dev/zero")
    )


def test_a_fifo_sidecar_is_refused_without_blocking(tmp_path):
    path = save_checkpoint(
        build_model("mlp", hidden=16), tmp_path / "model.pth", model_name="mlp", model_options={}
    )
    sidecar_path(path).unlink()
    os.mkfifo(sidecar_path(path))
    assert "is not a regular file (it is a named pipe)" in _refused(path)


def test_uploaded_bytes_get_the_same_archive_checks(tmp_path):
    data = deflated_zeros(tmp_path / "model.pth", 2**20).read_bytes()
    with pytest.raises(BadCheckpoint, match="is compressed with DEFLATE"):
        load_checkpoint_bytes(data)
