"""The Train page's live view: a fragment that re-reads the training run's directory every second."""

import time

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from core import runs
from ui.train import duration, reader, render_curves

STARTING_POLL_S = 0.25  # how often the live view looks for the first loss while the worker starts


@st.fragment(run_every=1)
def live_view(run_id: str) -> None:
    """Redrawn every second from the run directory while the worker trains; cheap by design."""
    run = runs.get_run(run_id)
    if not run.active:
        st.rerun()  # the whole page then shows the finished view
    rows = reader(run).update()
    where = runs.progress(run)
    epochs = run.config.epochs if run.config else "?"
    st.progress(where.fraction, text=progress_text(where, epochs))
    stopping = (run.dir / runs.STOP_FILE).exists()
    if st.button(
        "Stop",
        icon=":material/stop_circle:",
        key="train_stop",
        disabled=stopping,
        help="Stops after the current batch, saving a checkpoint.",
    ):
        runs.stop(run_id)
        stopping = True
    if stopping:
        st.info("Stopping after the current batch; a checkpoint is being saved.")
    if not rows:
        st.info(
            "Starting the worker: loading PyTorch and FashionMNIST. The first loss appears in a few seconds."
        )
    render_curves(rows, run_id, live=True)  # drawn even while empty: the first point updates a mounted chart
    if not rows and _in_fragment_rerun():
        # Until the first loss is logged, look again in a quarter of a second rather than at the next
        # tick: the first point then shows as soon as it exists. Unchanged elements are not redrawn.
        time.sleep(STARTING_POLL_S)
        st.rerun(scope="fragment")


def _in_fragment_rerun() -> bool:
    """True in a run of a fragment alone (st.rerun(scope="fragment") is refused in the page's own run)."""
    ctx = get_script_run_ctx()
    return bool(ctx is not None and getattr(ctx, "fragment_ids_this_run", None))


def progress_text(where: runs.Progress, epochs) -> str:
    if not where.total_steps:  # the worker has not loaded the data yet
        return "starting the worker…"
    parts = [f"epoch {where.epoch}/{epochs}", f"step {where.step:,}/{where.total_steps:,}"]
    if where.samples_per_s:
        parts.append(f"{where.samples_per_s:,.0f} samples/s")
    if where.eta_s is not None:
        parts.append(f"about {duration(where.eta_s)} left")
    return " · ".join(parts)
