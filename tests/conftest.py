"""Shared fixtures: the real dataset (prepared once), tiny generated IDX files, a runs folder."""

import gzip
import re
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from core.base.paths import DATA_DIR
from core.base.procs import pid_alive
from core.data.fashion import FILES, prepare


@pytest.fixture(scope="session")
def real_data() -> None:
    """The real FashionMNIST, prepared the way `make data` does (CI installs Debian's copy)."""
    prepare(allow_download=False)


def write_idx(path: Path, tensor: torch.Tensor, *, gz: bool = False) -> None:
    """Write a uint8 tensor as an IDX file (the MNIST format)."""
    ndim = tensor.dim()
    header = struct.pack(f">{1 + ndim}I", 0x0800 | ndim, *tensor.shape)
    data = header + tensor.to(torch.uint8).numpy().tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data) if gz else data)


def make_tiny_dataset(folder: Path, *, n_train: int = 20, n_test: int = 10, gz: bool = False) -> None:
    """Four IDX files with random images and labels 0-9 (".gz" names when gz=True)."""
    g = torch.Generator().manual_seed(0)
    for split, n in (("train", n_train), ("test", n_test)):
        images, labels = FILES[split]
        suffix = ".gz" if gz else ""
        write_idx(folder / f"{images}{suffix}", torch.randint(0, 256, (n, 28, 28), generator=g), gz=gz)
        write_idx(folder / f"{labels}{suffix}", torch.arange(n) % 10, gz=gz)


@pytest.fixture
def runs_dir(tmp_path) -> Path:
    path = tmp_path / "runs"
    path.mkdir()
    return path


def wait_for(predicate, timeout: float = 60.0) -> bool:
    """Poll `predicate` every 50 ms until it holds (True) or `timeout` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


class OutOfMemoryModel(nn.Module):
    """A model whose forward pass fails the way CUDA does when a batch does not fit."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(784, 10)

    def forward(self, x):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")


def rank_pids(run_id: str) -> dict[int, int]:
    """The live rank processes of a distributed run, found by the environment torch's launcher gave
    them (TORCHELASTIC_RUN_ID is the run's id); a zombie is not alive."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            items = (entry / "environ").read_bytes().decode().split("\0")
        except (OSError, UnicodeDecodeError):
            continue
        env = dict(item.split("=", 1) for item in items if "=" in item)
        if env.get("TORCHELASTIC_RUN_ID") == run_id and "RANK" in env and pid_alive(int(entry.name)):
            found[int(env["RANK"])] = int(entry.name)
    return found


def run_program(program, folder: Path, timeout: float = 300.0) -> str:
    """Run a Learn page's "code you would write" as a learner would (`python tensors.py`) in `folder`, with
    the real FashionMNIST at ./data as torchvision's download leaves it; return what it prints. Its notebook
    (`program.notebook()`, nbformat-validated) runs too, its code cells in order, and must print the same."""
    (folder / "data").mkdir(exist_ok=True)
    link = folder / "data" / "FashionMNIST"
    if not link.exists():
        link.symlink_to(DATA_DIR / "FashionMNIST", target_is_directory=True)
    path = folder / program.file_name
    path.write_text(program.source())
    done = subprocess.run(
        [sys.executable, path.name], cwd=folder, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, f"{program.file_name} failed:\n{done.stderr[-3000:]}"
    # The page's "Open as notebook": a valid notebook whose code cells, run in order, print the same.
    from core.base.notebooks import code_cells

    book = folder / program.notebook_name
    book.write_text(program.notebook())
    cells = folder / f"{program.page}_cells.py"
    cells.write_text("\n\n".join(code_cells(book.read_text())) + "\n")
    ran = subprocess.run(
        [sys.executable, cells.name], cwd=folder, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert ran.returncode == 0, f"{program.notebook_name} failed:\n{ran.stderr[-3000:]}"

    def same(text: str) -> str:  # objects print with their addresses (grad_fn's next_functions)
        return re.sub(r" at 0x[0-9a-f]+", " at 0x...", text)

    assert same(ran.stdout) == same(done.stdout), (
        f"{program.notebook_name} printed otherwise than {program.file_name}"
    )
    return done.stdout


def live_views(block) -> list[dict]:
    """What the page sent each running-run view of an AppTest page (or of its .main or .sidebar): their data
    (ui.live_run), {"mode": "run" | "sidebar", "text", "sidebar_text", "fraction", "charts", ...}."""
    import json

    sent = [json.loads(component.proto.json or "{}") for component in block.get("bidi_component")]
    return [data for data in sent if data.get("mode") in ("run", "sidebar")]


def live_view(block, mode: str) -> dict:
    """The one running-run view of this `mode` ("run": the Train page's, "sidebar") in `block`."""
    (view,) = [data for data in live_views(block) if data["mode"] == mode]
    return view


def two_node_cluster(second_resources: dict):
    """A real Ray cluster on this machine for a test module's fixture (`yield from` it): a head of 1 CPU
    and a second node of 1 CPU holding `second_resources`; yields (cluster, second node), then shuts down."""
    from ray.cluster_utils import Cluster  # Ray is pinned in requirements-test.txt, which make test installs

    made = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    second = made.add_node(num_cpus=1, resources=second_resources)
    made.wait_for_nodes()
    yield made, second
    made.shutdown()
