"""One epoch of the tutorial's own loop vs one epoch of core, same config; prints JSON with the ratio.
Also one epoch as a run's worker records it, with and without TensorBoard's event files, and their share of
the run's disk."""

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader
from torchvision import datasets
from torchvision.transforms import ToTensor

from core import runs
from core.base.device import describe_device, resolve_device
from core.data.fashion import DATA_DIR, load_split, prepare
from core.model.networks import build_model, flops_per_sample
from core.runs import board
from core.training.config import preset
from core.training.train import fit


class TutorialNeuralNetwork(nn.Module):
    """The quickstart's model, as the tutorial defines it."""

    def __init__(self):
        super().__init__()
        self.flatten = nn.Flatten()
        self.linear_relu_stack = nn.Sequential(
            nn.Linear(28 * 28, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10)
        )

    def forward(self, x):
        return self.linear_relu_stack(self.flatten(x))


def tutorial_epoch(device: torch.device, batch_size: int) -> float:
    """The quickstart's train() and test() loops over its ToTensor Datasets, one epoch, timed."""
    training_data = datasets.FashionMNIST(str(DATA_DIR), train=True, download=False, transform=ToTensor())
    test_data = datasets.FashionMNIST(str(DATA_DIR), train=False, download=False, transform=ToTensor())
    train_dataloader = DataLoader(training_data, batch_size=batch_size)
    test_dataloader = DataLoader(test_data, batch_size=batch_size)
    torch.manual_seed(0)
    model = TutorialNeuralNetwork().to(device)
    loss_fn = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    start = time.perf_counter()
    model.train()
    for batch, (X, y) in enumerate(train_dataloader):
        X, y = X.to(device), y.to(device)
        loss = loss_fn(model(X), y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if batch % 100 == 0:
            loss.item()  # the tutorial prints the loss here
    model.eval()
    correct = 0
    with torch.no_grad():
        for X, y in test_dataloader:
            X, y = X.to(device), y.to(device)
            correct += (model(X).argmax(1) == y).type(torch.float).sum().item()
    return time.perf_counter() - start


def core_epoch(device: torch.device, batch_size: int) -> float:
    config = preset("tutorial", epochs=1, batch_size=batch_size, device=str(device))
    load_split("train"), load_split("test")  # read from disk once, outside the timing, as a run does
    start = time.perf_counter()
    for _ in fit(config):
        pass
    return time.perf_counter() - start


def recorded_epoch(device: torch.device, batch_size: int, events: bool) -> tuple[float, int, int]:
    """One epoch as a run's worker records it (core.runs.train_run: metrics.jsonl, checkpoint, status), with
    or without TensorBoard's event files (core.runs.board); (seconds, event file bytes, run folder bytes)."""
    config = preset("tutorial", epochs=1, batch_size=batch_size, device=str(device))
    load_split("train"), load_split("test")
    os.environ[board.ENV] = "1" if events else "0"
    with tempfile.TemporaryDirectory(prefix="bench_speed_") as folder:
        directory = runs.create_run(config, Path(folder) / runs.new_run_id())
        start = time.perf_counter()
        assert runs.train_run(directory) == "finished"
        seconds = time.perf_counter() - start
        sizes = {p.name: p.stat().st_size for p in directory.iterdir()}
    os.environ.pop(board.ENV)
    return seconds, sum(v for k, v in sizes.items() if k.startswith(board.EVENTS_PREFIX)), sum(sizes.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2, help="take the best of this many epochs each")
    args = parser.parse_args()
    prepare(allow_download=False)
    device = resolve_device(args.device)
    tutorial = min(tutorial_epoch(device, args.batch_size) for _ in range(args.repeats))
    core = min(core_epoch(device, args.batch_size) for _ in range(args.repeats))
    with_events, without_events = [], []
    recorded_epoch(
        device, args.batch_size, events=True
    )  # once untimed: TensorBoard's import (0.2 s) is a start's
    for _ in range(args.repeats):  # alternating, so a slow minute of the machine hits both
        with_events.append(recorded_epoch(device, args.batch_size, events=True))
        without_events.append(recorded_epoch(device, args.batch_size, events=False))
    seconds_on, seconds_off = min(r[0] for r in with_events), min(r[0] for r in without_events)
    _, event_bytes, run_bytes = with_events[0]
    # Training costs ~3 forward passes per sample (forward, and backward for inputs and weights).
    fwd = flops_per_sample(build_model("mlp"))
    flops = 3 * fwd * 60000 + fwd * 10000
    print(json.dumps({
        "benchmark": "one epoch (train 60k + test 10k), tutorial MLP, SGD lr 1e-3",
        "device": describe_device(device).name,
        "machine": platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "batch_size": args.batch_size,
        "tutorial_loop_s": round(tutorial, 3),
        "core_s": round(core, 3),
        "speedup": round(tutorial / core, 2),
        "flops_per_epoch": flops,
        "core_gflop_per_s": round(flops / core / 1e9, 1),
        "tutorial_gflop_per_s": round(flops / tutorial / 1e9, 1),
        "recorded_epoch_s": {"with_event_files": round(seconds_on, 3), "without": round(seconds_off, 3),
                             "ratio": round(seconds_on / seconds_off, 3),
                             "with_trials": [round(r[0], 3) for r in with_events],
                             "without_trials": [round(r[0], 3) for r in without_events]},
        "event_files": {"bytes": event_bytes, "run_folder_bytes": run_bytes,
                        "share": round(event_bytes / run_bytes, 4)},
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
