"""The Train page's live view: a fragment that re-reads the training run's directory every second."""

import time

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from core import runs
from core.base.errors import StudioError
from core.base.runfiles import DamagedRunFile
from core.training import analysis
from ui import charts, sidebar
from ui.live_chart import chart
from ui.train.view import duration, reader

STARTING_POLL_S = 0.25  # how often the live view looks for the first loss while the worker starts
HIDDEN_EVERY_S = 10  # how often it looks while the browser tab is hidden (nobody sees it: its run trains)


_SCROLL_JS = """
export default function ({ parentElement }) {
  // Mounted once, just after Start: bring the run's view up to where the user is looking.
  parentElement.scrollIntoView({ behavior: "smooth", block: "start" });
}
"""
_scroll_here = st.components.v2.component("studio_scroll_here", js=_SCROLL_JS, isolate_styles=False)
_TAB_JS = """
export default function ({ setStateValue }) {
  // Says when the browser tab is hidden or shown again: the live view then looks less often, or again
  // every second. Only changes are said: each one reruns the page.
  const say = () => setStateValue("hidden", document.hidden);
  document.addEventListener("visibilitychange", say);
  return () => document.removeEventListener("visibilitychange", say);
}
"""
_tab = st.components.v2.component("studio_tab_watch", js=_TAB_JS, isolate_styles=False)
SCROLL_TO = "train_scroll_to"  # session_state: the run just started, whose view is scrolled into sight once
_SHOWN_EPOCH = "train_live_epoch"  # session_state: (run id, epoch) the page was last drawn for
_FILLS_SIDEBAR = "train_live_fills_sidebar"  # session_state: the live view drew the sidebar's run part
_LR_SAID = "train_lr_said"  # session_state: (ok, message) after the last Apply
LOG_KEY = "train_log_loss"  # the toggle for a log-scale loss axis, also the finished view's (ui.train.view)


def scroll_into_view(run_id: str) -> None:
    """After Start the page is still scrolled down at the button: bring the run's view into sight."""
    if st.session_state.get(SCROLL_TO) == run_id:
        del st.session_state[SCROLL_TO]
        _scroll_here(key=f"train_scroll_{run_id}")


def live_view(run_id: str) -> None:
    """The running run's controls, progress and curves, redrawn every second from the run directory
    while the worker trains (every HIDDEN_EVERY_S while the browser tab is hidden); cheap by design.

    Each redraw re-renders every element of the page in the browser (Streamlit's run state changes), and
    those of the redrawn fragment anew: so the controls, which a tick never changes, are drawn outside
    it, and a tick sends only what changed (the curves' new points: ui.live_chart)."""
    try:
        run = runs.get_run(run_id)
    except (StudioError, OSError):  # deleted meanwhile: the fragment's first tick reruns the page
        run = None
    if run is not None:
        controls = st.container(horizontal=True, vertical_alignment="bottom")  # one row: the chart in sight
        _stop_control(run, controls)
        _lr_control(run, controls)
        controls.toggle("Log-scale loss", key=LOG_KEY)
        _lr_said()
    state = _tab(
        key="train_tab", data={"watch": "tab"}, default={"hidden": False}, on_hidden_change=_noop, height=0
    )
    (_live_hidden if state.get("hidden") else _live)(run_id)


def _noop() -> None:
    """A callback, so that the tab watcher's state is kept (Streamlit keeps states that have one)."""


@st.fragment(run_every=1)
def _live(run_id: str) -> None:
    _tick(run_id)


@st.fragment(run_every=HIDDEN_EVERY_S)
def _live_hidden(run_id: str) -> None:
    _tick(run_id)


def _tick(run_id: str) -> None:
    try:
        run = runs.get_run(run_id)
    except (StudioError, OSError):  # deleted while watched (its worker then stops): no error box
        st.rerun()  # the whole page then shows the runs that are left
    if not run.active:
        st.rerun()  # the whole page then shows the finished view
    where = runs.progress(run)
    _redraw_page_at_each_epoch(run_id, where)
    st.progress(where.fraction, text=progress_text(where))
    _fill_sidebar(run)
    _curves(run)


def _redraw_page_at_each_epoch(run_id: str, where: runs.Progress) -> None:
    """A new epoch redraws the whole page, so the runs table and the sidebar say what this view says."""
    shown = (run_id, where.epoch)
    if st.session_state.get(_SHOWN_EPOCH, shown) != shown and _in_fragment_rerun():
        st.session_state[_SHOWN_EPOCH] = shown
        st.rerun()
    st.session_state[_SHOWN_EPOCH] = shown


def _fill_sidebar(run: runs.RunInfo) -> None:
    """The sidebar's run part, drawn from the same runs.progress in the same tick: it reads what this view
    reads (its own fragment only looks every 5 s).

    Streamlit lets a fragment fill a place made outside it only if it did so in the page's last full run."""
    if not _in_fragment_rerun():
        st.session_state[_FILLS_SIDEBAR] = sidebar.shows(run.id)
    if st.session_state.get(_FILLS_SIDEBAR) and sidebar.shows(run.id):
        sidebar.show_run(run)


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


def _lr_said() -> None:
    """The answer to the last Apply, once: outside the ticking fragment, it stays until the page reruns."""
    said = st.session_state.pop(_LR_SAID, None)
    if said is not None:
        (st.success if said[0] else st.error)(said[1])


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
    st.session_state[_LR_SAID] = (ok, message)


def _curves(run: runs.RunInfo) -> None:
    rows = reader(run).update()
    if not rows:
        st.info(
            "Starting the worker: loading PyTorch and FashionMNIST. The first loss appears in a few seconds."
        )
    _charts(analysis.shift(rows, *runs.lineage_offset(run)), run.id)  # drawn even while empty
    if not rows and _in_fragment_rerun():
        # Until the first loss is logged, look again in a quarter of a second rather than at the next
        # tick: the first point then shows as soon as it exists. Unchanged elements are not redrawn.
        time.sleep(STARTING_POLL_S)
        st.rerun(scope="fragment")


def _charts(rows: list[dict], run_id: str) -> None:
    """The curves of ui.train.view.render_curves (its toggle is drawn above, with the controls); each chart
    stays mounted and gets only its new points (ui.live_chart). A continued run's numbers go on from its
    parent's (analysis.shift)."""
    log = bool(st.session_state.get(LOG_KEY))
    chart(charts.step_loss(rows, run_id, log=log), key="train_chart_steps", live=True)
    if not analysis.epoch_rows(rows):
        st.caption("Loss and accuracy per epoch appear when the first epoch ends and the test set is scored.")
        return
    left, right = st.columns(2)
    with left:
        chart(charts.epoch_loss(rows, run_id, log=log), key="train_chart_epoch_loss", live=True)
    with right:
        chart(charts.epoch_accuracy(rows, run_id), key="train_chart_epoch_acc", live=True)


def _in_fragment_rerun() -> bool:
    """True in a run of a fragment alone (st.rerun(scope="fragment") is refused in the page's own run)."""
    ctx = get_script_run_ctx()
    return bool(ctx is not None and getattr(ctx, "fragment_ids_this_run", None))


def progress_text(where: runs.Progress) -> str:
    """The live view's progress line: the words every view uses (runs.Progress.label), then the detail."""
    if where.queued:
        return where.label
    if not where.total_steps:  # the worker has not loaded the data yet
        return "starting the worker…"
    parts = [where.label, f"step {where.step:,}/{where.total_steps:,}"]
    if where.samples_per_s:
        parts.append(f"{where.samples_per_s:,.0f} samples/s")
    if where.eta_s is not None:
        parts.append(f"about {duration(where.eta_s)} left")
    return " · ".join(parts)
