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

from core.data import PROJECT_ROOT, prepare

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


def main() -> None:
    prepare(allow_download=False)
    warm = ("ui.build_model", "core.build_model")
    report = {
        "build_model": {
            "another_test_image": time_page("pages/6_Build_Model.py", _build_model_sample, warm=warm),
            "mlp_cnn_switch": time_page("pages/6_Build_Model.py", _build_model_switch, warm=warm),
        }
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
