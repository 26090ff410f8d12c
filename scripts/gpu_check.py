"""On a CUDA machine: train one short epoch per model on the GPU, check where tensors live, time it."""

import json
import sys
import time

import torch

from core.device import describe_device, resolve_device
from core.train import EpochEnd, Failed, Started, fit, make_batches, preset


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


def main() -> None:
    if not torch.cuda.is_available():
        sys.exit("no CUDA device here: this check needs a GPU machine")
    device = resolve_device("cuda")
    info = describe_device(device)
    print(json.dumps({"gpu": info.name, "memory_gib": round(info.memory_bytes / 2**30, 1),
                      "torch": torch.__version__}))  # fmt: skip
    check("mlp")  # warm-up: CUDA context, kernels, allocator
    for name in ("mlp", "cnn"):
        print(json.dumps(check(name)))


if __name__ == "__main__":
    main()
