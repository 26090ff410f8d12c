"""Which pixels mattered: what each attribution method costs for one image, MLP and CNN, on this CPU.

Prints JSON: the first call (which imports Captum), then the median and best of 20 calls per method.
"""

import json
import statistics
import time

import torch

from core.data.fashion import load_split, prepare
from core.model.attribution import METHODS, attribute
from core.model.networks import build_model

CALLS = 20


def method_times() -> dict:
    images, labels = load_split("test")
    x, target = images[0].float().div(255), int(labels[0])
    report: dict = {"threads": torch.get_num_threads()}
    start = time.perf_counter()
    attribute(build_model("mlp"), x, target, "integrated_gradients")
    report["first_captum_call_ms"] = round((time.perf_counter() - start) * 1000, 1)
    for name in ("mlp", "cnn"):
        model = build_model(name).eval()
        for method in METHODS:
            attribute(model, x, target, method)  # warm
            samples = []
            for _ in range(CALLS):
                start = time.perf_counter()
                attribute(model, x, target, method)
                samples.append(time.perf_counter() - start)
            report[f"{name}.{method}"] = {
                "median_ms": round(statistics.median(samples) * 1000, 2),
                "best_ms": round(min(samples) * 1000, 2),
            }
    return report


def main() -> None:
    prepare(allow_download=False)
    print(json.dumps(method_times(), indent=2))


if __name__ == "__main__":
    main()
