"""The Train page's live view: a fragment that re-reads the training run's directory every second."""

import time

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from core import runs
from core.base.errors import StudioError
from core.base.runfiles import DamagedRunFile
from ui.train.view import duration, reader, render_curves

STARTING_POLL_S = 0.25  # how often the live view looks for the first loss while the worker starts


_SCROLL_JS = """
export default function ({ parentElement }) {
  // Mounted once, just after Start: bring the run's view up to where the user is looking.
  parentElement.scrollIntoView({ behavior: "smooth", block: "start" });
}
"""
_scroll_here = st.components.v2.component("studio_scroll_here", js=_SCROLL_JS, isolate_styles=False)
SCROLL_TO = "train_scroll_to"  # session_state: the run just started, whose view is scrolled into sight once
_SHOWN_EPOCH = "train_live_epoch"  # session_state: (run id, epoch) the page was last drawn for
_LR_SAID = "train_lr_said"  # session_state: (ok, message, shown until) after the last Apply
LR_SAID_S = 5.0  # how long the answer to Apply stays: the live view redraws every second


def scroll_into_view(run_id: str) -> None:
    """After Start the page is still scrolled down at the button: bring the run's view into sight."""
    if st.session_state.get(SCROLL_TO) == run_id:
        del st.session_state[SCROLL_TO]
        _scroll_here(key=f"train_scroll_{run_id}")


@st.fragment(run_every=1)
def live_view(run_id: str) -> None:
    """Redrawn every second from the run directory while the worker trains; cheap by design."""
    try:
        run = runs.get_run(run_id)
    except (StudioError, OSError):  # deleted while watched (its worker then stops): no error box
        st.rerun()  # the whole page then shows the runs that are left
    if not run.active:
        st.rerun()  # the whole page then shows the finished view
    where = runs.progress(run)
    _redraw_page_at_each_epoch(run_id, where)
    st.progress(where.fraction, text=progress_text(where))
    controls = st.container(horizontal=True, vertical_alignment="bottom")  # one row: the chart stays in sight
    _stop_control(run, controls)
    _lr_control(run, controls)
    _curves(run)


def _redraw_page_at_each_epoch(run_id: str, where: runs.Progress) -> None:
    """A new epoch redraws the whole page, so the runs table and the sidebar say what this view says."""
    shown = (run_id, where.epoch)
    if st.session_state.get(_SHOWN_EPOCH, shown) != shown and _in_fragment_rerun():
        st.session_state[_SHOWN_EPOCH] = shown
        st.rerun()
    st.session_state[_SHOWN_EPOCH] = shown


def _stop_control(run: runs.RunInfo, row) -> None:
    stopping = runs.stop_asked(run)
    if row.button(
        "Stop",
        icon=":material/stop_circle:",
        key="train_stop",
        disabled=stopping,
        help="Stops after the current batch, saving a checkpoint.",
    ):
        runs.stop(run.id)
        stopping = True
    if stopping:
        st.info("Stopping after the current batch; a checkpoint is being saved.")


def _lr_control(run: runs.RunInfo, row) -> None:
    """A new learning rate for the running run: the worker uses it from its next batch on."""
    try:
        current = runs.read_status(run.dir).get("lr") or run.config.lr
    except DamagedRunFile:
        return
    row.text_input(
        "Learning rate", value=f"{current:g}", key=f"train_lr_{run.id}", width=160,
        help="Type a new value and press Apply: the run keeps training with it from its next batch, and "
        "the loss chart marks where it changed. A schedule (cosine) keeps scaling it.",
    )  # fmt: skip
    row.button("Apply", key="train_lr_apply", on_click=_apply_lr, args=(run.id,))
    # Kept for a few seconds rather than shown once: the next tick (or one already queued behind the
    # click) would otherwise take it away before it could be read.
    said = st.session_state.get(_LR_SAID)
    if said is not None and time.monotonic() < said[2]:
        (st.success if said[0] else st.error)(said[1])
    elif said is not None:
        del st.session_state[_LR_SAID]


def _apply_lr(run_id: str) -> None:
    text = str(st.session_state.get(f"train_lr_{run_id}", "")).strip()
    try:
        lr = runs.set_lr(run_id, float(text))  # "1e-3" and "0.001" alike; set_lr checks the range
    except ValueError:
        _say(False, f"{text[:40]!r} is not a number: the run goes on as it was.")
        return
    except StudioError as exc:
        _say(False, str(exc))
        return
    _say(True, f"Learning rate {lr:g} from the next batch on.")


def _say(ok: bool, message: str) -> None:
    st.session_state[_LR_SAID] = (ok, message, time.monotonic() + LR_SAID_S)


def _curves(run: runs.RunInfo) -> None:
    rows = reader(run).update()
    if not rows:
        st.info(
            "Starting the worker: loading PyTorch and FashionMNIST. The first loss appears in a few seconds."
        )
    render_curves(rows, run, live=True)  # drawn even while empty: the first point updates a mounted chart
    if not rows and _in_fragment_rerun():
        # Until the first loss is logged, look again in a quarter of a second rather than at the next
        # tick: the first point then shows as soon as it exists. Unchanged elements are not redrawn.
        time.sleep(STARTING_POLL_S)
        st.rerun(scope="fragment")


def _in_fragment_rerun() -> bool:
    """True in a run of a fragment alone (st.rerun(scope="fragment") is refused in the page's own run)."""
    ctx = get_script_run_ctx()
    return bool(ctx is not None and getattr(ctx, "fragment_ids_this_run", None))


def progress_text(where: runs.Progress) -> str:
    """The live view's progress line: the words every view uses (runs.Progress.label), then the detail."""
    if not where.total_steps:  # the worker has not loaded the data yet
        return "starting the worker…"
    parts = [where.label, f"step {where.step:,}/{where.total_steps:,}"]
    if where.samples_per_s:
        parts.append(f"{where.samples_per_s:,.0f} samples/s")
    if where.eta_s is not None:
        parts.append(f"about {duration(where.eta_s)} left")
    return " · ".join(parts)
