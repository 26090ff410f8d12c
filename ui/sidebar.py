"""The sidebar every page shows: the device, the dataset, and the run that is training."""

import streamlit as st

from core import runs
from core.data.fashion import dataset_status
from core.runs import classroom, cluster
from core.training.race import RaceConfig
from ui import learners, live_run
from ui.cache import device_info
from ui.learn import moment
from ui.nav import PAGES
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
        if cluster.address():  # RAY_ADDRESS: training runs go to the cluster (core.runs.remote)
            st.caption("Training runs go to")
            st.markdown(f"**{escape_markdown(cluster.summary(runs.store_root()))}**")
        status = dataset_status()
        st.caption("Dataset")
        st.markdown(
            ":green[:material/check_circle:] FashionMNIST ready"
            if status.ready
            else ":orange[:material/warning:] FashionMNIST not prepared"
        )
        all_runs = runs.list_runs(races=True)
        followed = _follows_itself(pick_run(all_runs))
        st.session_state[_STILL] = followed
        (_run_part_still if followed else _run_part)(status.ready)
        if learners.shared():
            _your_name()
        moment.toggle()


NAME_KEY = "learner_name"


def _your_name() -> None:
    """On a shared server: the name shown beside this browser's runs, given once and kept (ui.learners)."""
    st.session_state.setdefault(NAME_KEY, learners.name())
    st.text_input(
        "Your name", key=NAME_KEY, max_chars=classroom.NAME_MAX, placeholder="shown beside your runs",
        on_change=lambda: learners.set_name(st.session_state[NAME_KEY]),
        help="Others on this server see it beside your runs. Only your browser can stop or change them.",
    )  # fmt: skip
    if learners.is_teacher():
        st.caption(":material/school: Teacher: you can stop any run and order the queue (Train page).")


_STILL = "sidebar_still"  # session_state: the page's run drew the sidebar's run part without the 5 s tick


def _follows_itself(run: runs.RunInfo | None) -> bool:
    """A training run's sidebar part follows it by itself (ui.live_run); a race's, or none, needs the tick."""
    return run is not None and not isinstance(run.config, RaceConfig)


# Every 5 s: each run of a fragment re-renders every element of the page in the browser, and this one
# is on every page (Chromium on the Explorer: 0.06 core at 2 s, 0.03 at 5 s). It finds runs started
# elsewhere and the end of races. While a training run is shown it does not tick: the run's words and
# bar follow it every second by themselves (ui.live_run), and ask for this fragment to run when it ends.
@st.fragment(run_every=5)
def _run_part(dataset_ready: bool) -> None:
    _active_run(dataset_ready)


@st.fragment
def _run_part_still(dataset_ready: bool) -> None:
    _active_run(dataset_ready)


def _active_run(dataset_ready: bool) -> None:
    all_runs = runs.list_runs(races=True)
    if _follows_itself(pick_run(all_runs)) != st.session_state.get(_STILL):
        st.rerun()  # a run started or ended since the page's run: the page picks the other kind of part
    damaged = [r.id for r in all_runs if r.status == runs.DAMAGED]
    if damaged:
        names = escape_markdown(", ".join(damaged))  # folder names: text, never Markdown
        st.caption(f":orange[:material/warning:] Damaged run: {names} (see Train)")
    if any(r.status == "queued" for r in all_runs):
        runs.ensure_dispatcher()  # runs wait (a restarted server): their dispatcher goes on with them
    run = pick_run(all_runs)
    show_run(run)
    if run is None:
        problem = runs.store_problem()
        if problem is not None:  # said once here; Start is off on the pages that start runs
            st.caption(f":orange[:material/lock:] {escape_markdown(problem[0].upper() + problem[1:])}")
        elif dataset_ready:  # a worker warms up in the background, so Start trains within a second
            runs.prepare_worker()


def pick_run(all_runs: list[runs.RunInfo]) -> runs.RunInfo | None:
    """The run to show: one that trains, before one still queued (newest first in each); on a shared
    server, this browser's own before anyone else's."""
    active = [r for r in all_runs if r.active]
    if active and learners.shared():
        owner = learners.me()
        active = [r for r in active if r.owner == owner] or active
    return next((r for r in active if r.status == "running"), active[0] if active else None)


def show_run(run: runs.RunInfo | None) -> None:
    """The active run's part of the sidebar, from runs.progress as every view of a run."""
    if run is None:
        return
    where = runs.progress(run)
    if isinstance(run.config, RaceConfig):  # its curves and Stop are on the Optimization page
        st.caption(
            "Optimizer race queued, waiting for its worker" if where.queued else "Optimizer race running"
        )
        st.page_link("pages/Optimization.py", label="Open the race", icon=":material/sports_score:")
        return
    live_run.sidebar_progress(run, key="sidebar_run")  # its words and bar, current within a second
    st.page_link("pages/Train.py", label="Open the run", icon=":material/monitoring:")


def show_score() -> None:
    """The predictions made on the Learn pages in this browser session (ui.learn.moment): how many were
    right, and a way back to each one missed."""
    right, answered, missed = moment.score()
    if not answered:
        return
    st.caption("Your predictions")
    st.markdown(f"**{right} of {answered} right**")
    for answer in missed:
        page = PAGES[answer["page"]]
        st.page_link(page.path, label=f"Missed: {answer['question']}", icon=":material/replay:")
