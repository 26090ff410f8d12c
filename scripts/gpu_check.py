"""On a CUDA machine: train one short epoch per model on the GPU, check where tensors live, time it; the
tutorial's MLP epoch at batch 64 against its 0.5 s target, with CUDA's sync debug mode counting how often
the training loop waits for the GPU; with two GPUs or more, a 2-GPU DDP run. Prints JSON lines."""

import json
import sys
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path

import torch

from core.base.device import describe_device, resolve_device
from core.model.networks import build_model
from core.training.config import preset
from core.training.train import (
    BatchLogged,
    EpochEnd,
    Failed,
    Started,
    build_optimizer,
    fit,
    make_batches,
    train_one_epoch,
)

TUTORIAL_EPOCH_TARGET_S = 0.5  # the tutorial MLP's epoch (train 60k + test 10k) on an H100-class GPU
SYNC_WARNING = "called a synchronizing CUDA operation"


def check(model_name: str) -> dict:
    config = preset("recommended", model=model_name, epochs=1, device="cuda")
    device = resolve_device("cuda")
    train, test = make_batches(config, device)
    x, y = next(iter(train))
    assert x.is_cuda and y.is_cuda and train.images.is_cuda, "batches are not on the GPU"
    result = {"model": model_name}
    start = time.perf_counter()
    for event in fit(config, data=(train, test)):
        if isinstance(event, Started):
            params = list(event.model.parameters())
            assert all(p.is_cuda for p in params), "model parameters are not on the GPU"
            result["device"] = event.device
        elif isinstance(event, EpochEnd):
            result.update(epoch_s=round(event.seconds, 2), test_acc=round(event.test_acc, 4))
        elif isinstance(event, Failed):
            raise SystemExit(f"{model_name}: {event.error}")
    torch.cuda.synchronize()
    result["wall_s"] = round(time.perf_counter() - start, 2)
    result["samples_per_s"] = round(train.num_samples / result["epoch_s"])
    return result


def tutorial_epoch() -> dict:
    """The quickstart's config (MLP, SGD lr 1e-3, batch 64) for one epoch on CUDA, timed as fit() times
    it (train 60k + test 10k); then one more epoch of the training loop under CUDA's sync debug mode.

    Every synchronizing operation (a .item(), a copy to the host, ...) warns there; a loop that read the
    loss every batch would warn at least once per batch. The loop reads the device at logged steps only
    (every log_every batches), so expect about one warning per logged step plus a few per epoch (the
    epoch's permutation copied to the GPU, the epoch's totals)."""
    config = preset("tutorial", epochs=1, device="cuda")
    device = resolve_device("cuda")
    warm = make_batches(config.replace(limit_batches=100), device)
    for event in fit(config, data=warm):  # kernels, cuBLAS and the allocator for these shapes
        if isinstance(event, Failed):
            raise SystemExit(f"tutorial warm-up: {event.error}")
    result = {"check": "tutorial MLP epoch, batch 64, SGD lr 1e-3", "target_s": TUTORIAL_EPOCH_TARGET_S}
    train, test = make_batches(config, device)
    for event in fit(config, data=(train, test)):
        if isinstance(event, EpochEnd):  # fit's own clock; its test pass ends with a read of the device
            result.update(epoch_s=round(event.seconds, 3), test_acc=round(event.test_acc, 4))
        elif isinstance(event, Failed):
            raise SystemExit(f"tutorial epoch: {event.error}")
    result["within_target"] = result["epoch_s"] < TUTORIAL_EPOCH_TARGET_S
    result["samples_per_s"] = round(train.num_samples / result["epoch_s"])

    torch.manual_seed(config.seed)
    model = build_model(config.model, **config.model_options()).to(device)
    optimizer = build_optimizer(config, model.parameters())
    logged = 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # every warning, not the first per line of code
        torch.cuda.set_sync_debug_mode("warn")
        try:
            for event in train_one_epoch(model, train, optimizer, log_every=config.log_every):
                logged += isinstance(event, BatchLogged)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    syncs = [w for w in caught if SYNC_WARNING in str(w.message)]
    where = Counter(f"{Path(w.filename).name}:{w.lineno}" for w in syncs)
    result.update(
        batches=len(train),
        logged_steps=logged,
        sync_warnings=len(syncs),
        sync_sites=dict(where.most_common()),
        no_per_batch_sync=len(syncs) < len(train),
    )
    return result


def ddp_two_gpus() -> dict:
    """`python -m core train --nproc 2 --device cuda --epochs 1` (the tutorial config: a global batch of 64,
    32 per GPU), against the same command on one GPU; samples/s from the runs' metrics.jsonl."""
    from bench.distributed import one_run

    result = {"check": "DDP, 2 GPUs (NCCL): python -m core train --nproc 2 --device cuda --epochs 1"}
    with tempfile.TemporaryDirectory() as folder:
        for mode, name in (("plain", "one_gpu"), ("nproc2", "two_gpus")):
            got = one_run(mode, "mlp", None, 64, Path(folder), device="cuda")
            result[f"{name}_samples_per_s"] = round(got["samples_per_s"])
            result[f"{name}_epoch_s"] = round(got["epoch"]["seconds"], 2)
            result[f"{name}_test_acc"] = round(got["epoch"]["test_acc"], 4)
            result[f"{name}_wall_s"] = round(got["wall_s"], 1)
    return result


def main() -> None:
    if not torch.cuda.is_available():
        sys.exit("no CUDA device here: this check needs a GPU machine")
    device = resolve_device("cuda")
    info = describe_device(device)
    print(json.dumps({"gpu": info.name, "memory_gib": round(info.memory_bytes / 2**30, 1),
                      "gpus": torch.cuda.device_count(), "torch": torch.__version__}))  # fmt: skip
    check("mlp")  # warm-up: CUDA context, kernels, allocator
    for name in ("mlp", "cnn"):
        print(json.dumps(check(name)))
    tutorial = tutorial_epoch()
    print(json.dumps(tutorial))
    if torch.cuda.device_count() >= 2:
        print(json.dumps(ddp_two_gpus()))
    else:
        print(json.dumps({"check": "DDP, 2 GPUs", "skipped": "one GPU here"}))
    if not tutorial["no_per_batch_sync"]:
        sys.exit("the training loop waited for the GPU on every batch (see sync_sites)")


if __name__ == "__main__":
    main()
