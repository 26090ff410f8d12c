"""The sidebar every page shows: the device, the dataset, and the run that is training."""

import streamlit as st

from core import runs
from core.data.fashion import dataset_status
from core.training.race import RaceConfig
from ui.cache import device_info
from ui.text import escape_markdown


def format_device(info) -> str:
    """ "CPU (2 threads) · 24 GiB RAM" or "CUDA — NVIDIA H100 80GB HBM3 · 79 GiB"."""
    if info.type == "cpu":
        memory = f" · {info.memory_bytes / 2**30:.0f} GiB RAM" if info.memory_bytes else ""
        return f"{info.name}{memory}"
    memory = f" · {info.memory_bytes / 2**30:.0f} GiB" if info.memory_bytes else ""
    return f"{info.type.upper()} — {info.name}{memory}"


def render_sidebar() -> None:
    with st.sidebar:
        st.caption("Device")
        st.markdown(f"**{format_device(device_info())}**")
        status = dataset_status()
        st.caption("Dataset")
        st.markdown(
            ":green[:material/check_circle:] FashionMNIST ready"
            if status.ready
            else ":orange[:material/warning:] FashionMNIST not prepared"
        )
        _active_run(status.ready)


# Every 5 s: each run of a fragment re-renders the page's elements in the browser, and this one
# is on every page while a run trains (Chromium on the Explorer: 0.06 core at 2 s, 0.03 at 5 s).
# The Train page's own live view is the one refreshed every second.
@st.fragment(run_every=5)
def _active_run(dataset_ready: bool) -> None:
    all_runs = runs.list_runs(races=True)
    damaged = [r.id for r in all_runs if r.status == runs.DAMAGED]
    if damaged:
        names = escape_markdown(", ".join(damaged))  # folder names: text, never Markdown
        st.caption(f":orange[:material/warning:] Damaged run: {names} (see Train)")
    run = next((r for r in all_runs if r.active), None)
    if run is None:
        problem = runs.store_problem()
        if problem is not None:  # said once here; Start is off on the pages that start runs
            st.caption(f":orange[:material/lock:] {escape_markdown(problem[0].upper() + problem[1:])}")
        elif dataset_ready:  # a worker warms up in the background, so Start trains within a second
            runs.prepare_worker()
        return
    if isinstance(run.config, RaceConfig):  # its curves and Stop are on the Optimization page
        st.caption("Optimizer race running")
        st.page_link("pages/Optimization.py", label="Open the race", icon=":material/sports_score:")
        return
    stopping = runs.stop_asked(run)  # Stop was clicked: the worker saves a checkpoint, then leaves
    st.caption("Stopping, saving a checkpoint" if stopping else "Training now")
    where = runs.progress(run)
    model = run.config.model.upper() if run.config else "run"
    st.progress(where.fraction, text=f"{model} · {where.label}")  # the Train page's words (runs.Progress)
    st.page_link("pages/Train.py", label="Open the run", icon=":material/monitoring:")
