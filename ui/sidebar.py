"""The sidebar every page shows: the device, the dataset, and the run that is training."""

import streamlit as st

from core import runs
from core.data.fashion import dataset_status
from core.training.race import RaceConfig
from ui.cache import device_info
from ui.text import escape_markdown

RUN_SLOT = "sidebar_run_slot"  # session_state: the sidebar's place for the active run, made in each full run
SHOWN = "sidebar_run_shown"  # session_state: the id of the run the sidebar shows ("" for none)


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
        # Outside the fragment below, so that the Train page's live view can fill it too, at each of its
        # ticks: the sidebar then reads what the page reads, in the same second (see show_run).
        st.session_state[RUN_SLOT] = st.empty()
        _active_run(status.ready)


# Every 5 s: each run of a fragment re-renders every element of the page in the browser, and this one
# is on every page while a run trains (Chromium on the Explorer: 0.06 core at 2 s, 0.03 at 5 s).
# On the Train page the live view refreshes the run's part every second (show_run).
@st.fragment(run_every=5)
def _active_run(dataset_ready: bool) -> None:
    all_runs = runs.list_runs(races=True)
    damaged = [r.id for r in all_runs if r.status == runs.DAMAGED]
    if damaged:
        names = escape_markdown(", ".join(damaged))  # folder names: text, never Markdown
        st.caption(f":orange[:material/warning:] Damaged run: {names} (see Train)")
    run = pick_run(all_runs)
    show_run(run)
    if run is None:
        problem = runs.store_problem()
        if problem is not None:  # said once here; Start is off on the pages that start runs
            st.caption(f":orange[:material/lock:] {escape_markdown(problem[0].upper() + problem[1:])}")
        elif dataset_ready:  # a worker warms up in the background, so Start trains within a second
            runs.prepare_worker()


def pick_run(all_runs: list[runs.RunInfo]) -> runs.RunInfo | None:
    """The run to show: one that trains, before one still queued for its worker (newest first in each)."""
    active = [r for r in all_runs if r.active]
    return next((r for r in active if r.status == "running"), active[0] if active else None)


def shows(run_id: str) -> bool:
    """Whether the sidebar shows this run (so a view of it may refresh the sidebar's part: show_run)."""
    return st.session_state.get(SHOWN) == run_id and RUN_SLOT in st.session_state


def show_run(run: runs.RunInfo | None) -> None:
    """The active run's part of the sidebar, from runs.progress as every view of a run: the sidebar's
    own fragment draws it every 5 s, the Train page's live view at each of its ticks."""
    slot = st.session_state.get(RUN_SLOT)
    if slot is None:  # a page run without app.py (AppTest of one page)
        return
    st.session_state[SHOWN] = run.id if run is not None else ""
    if run is None:
        slot.empty()
        return
    box = slot.container()
    where = runs.progress(run)
    if isinstance(run.config, RaceConfig):  # its curves and Stop are on the Optimization page
        box.caption(
            "Optimizer race queued, waiting for its worker" if where.queued else "Optimizer race running"
        )
        box.page_link("pages/Optimization.py", label="Open the race", icon=":material/sports_score:")
        return
    if where.queued:
        box.caption("Queued, waiting for its worker")
    elif runs.stop_asked(run):  # Stop was clicked: the worker saves a checkpoint, then leaves
        box.caption("Stopping, saving a checkpoint")
    else:
        box.caption("Training now")
    model = run.config.model.upper() if run.config else "run"
    box.progress(where.fraction, text=f"{model} · {where.label}")  # the Train page's words (runs.Progress)
    box.page_link("pages/Train.py", label="Open the run", icon=":material/monitoring:")
