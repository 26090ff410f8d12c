"""Server-side render times of the Learn pages, measured with AppTest: the first render and a control change.

Prints JSON. The budget for a teaching page on this CPU: the first full render within 1 s (imports
already warm, the page's caches cold) and any control change within 300 ms.
"""

import importlib
import json
import statistics
import time
from collections.abc import Callable

from streamlit.testing.v1 import AppTest

from core.data.fashion import PROJECT_ROOT, prepare

Change = Callable[[AppTest, int], object]  # sets a widget for the i-th change; time_page calls .run()
FIRST_RENDER_S = 1.0
CHANGE_S = 0.3


def _ms(seconds: list[float]) -> dict:
    return {
        "median_ms": round(statistics.median(seconds) * 1000, 1),
        "best_ms": round(min(seconds) * 1000, 1),
        "worst_ms": round(max(seconds) * 1000, 1),
    }


def time_page(path: str, change: Change, *, warm: tuple[str, ...] = (), repeats: int = 10) -> dict:
    """Time the first `.run()` of the page at `path` (relative to the project), then `repeats` changes.

    `warm` names modules to import first, so that the first render is the page's own work and not
    Python importing torch, plotly or pandas (st.dataframe's, ~0.5 s here, paid once per server)."""
    for module in ("streamlit", "torch", "plotly.graph_objects", "pandas", *warm):
        importlib.import_module(module)
    at = AppTest.from_file(str(PROJECT_ROOT / path), default_timeout=60)
    start = time.perf_counter()
    at.run()
    first = time.perf_counter() - start
    if at.exception:
        raise RuntimeError(f"{path} failed: {at.exception[0].message}")
    changes = []
    for i in range(1, repeats + 1):
        change(at, i)
        start = time.perf_counter()
        at.run()
        changes.append(time.perf_counter() - start)
    if at.exception:
        raise RuntimeError(f"{path} failed after a change: {at.exception[0].message}")
    return {
        "first_render_ms": round(first * 1000, 1),
        "change": _ms(changes),
        "within_budget": first <= FIRST_RENDER_S and statistics.median(changes) <= CHANGE_S,
    }


def _build_model_sample(at: AppTest, i: int) -> None:
    at.number_input(key="build_model_sample").set_value(i * 7)


def _build_model_switch(at: AppTest, i: int) -> None:
    at.radio(key="build_model_model").set_value("cnn" if i % 2 else "mlp")


def _tensors_seed(at: AppTest, i: int) -> None:
    at.number_input(key="tensors_seed").set_value(i)


def _tensors_sample(at: AppTest, i: int) -> None:
    at.number_input(key="tensors_sample").set_value(i * 11)


def _autograd_backward(at: AppTest, i: int) -> None:
    at.button(key="autograd_backward" if i % 2 else "autograd_reset").click()


def _autograd_seed(at: AppTest, i: int) -> None:
    at.number_input(key="autograd_seed").set_value(i)


STEPS = ("forward", "backward", "step", "zero_grad")


def _optimization_step(at: AppTest, i: int) -> None:
    at.button(key=f"optimization_do_{STEPS[(i - 1) % len(STEPS)]}").click()


def main() -> None:
    prepare(allow_download=False)
    warm = (
        "ui.learn.build_model",
        "core.learn.build_model",
        "ui.learn.tensors",
        "ui.learn.autograd",
        "ui.learn.optimization",
    )
    report = {
        "tensors": {
            "new_seed": time_page("pages/Tensors.py", _tensors_seed, warm=warm),
            "another_image": time_page("pages/Tensors.py", _tensors_sample, warm=warm),
        },
        "build_model": {
            "another_test_image": time_page("pages/Build_Model.py", _build_model_sample, warm=warm),
            "mlp_cnn_switch": time_page("pages/Build_Model.py", _build_model_switch, warm=warm),
        },
        "autograd": {
            "backward_and_reset": time_page("pages/Autograd.py", _autograd_backward, warm=warm),
            "new_seed": time_page("pages/Autograd.py", _autograd_seed, warm=warm),
        },
        "optimization": {
            "step_buttons": time_page("pages/Optimization.py", _optimization_step, warm=warm, repeats=12),
        },
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
