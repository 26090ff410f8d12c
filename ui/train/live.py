"""The Train page's live view: the running run's controls, then its progress and curves (ui.live_run)."""

import streamlit as st

from core import runs
from core.base.errors import StudioError
from core.base.runfiles import DamagedRunFile
from ui import learners, live_run
from ui.text import escape_markdown
from ui.train.view import reader

_SCROLL_JS = """
export default function ({ parentElement }) {
  // Mounted once, just after Start: bring the run's view up to where the user is looking.
  parentElement.scrollIntoView({ behavior: "smooth", block: "start" });
}
"""
_scroll_here = st.components.v2.component("studio_scroll_here", js=_SCROLL_JS, isolate_styles=False)
SCROLL_TO = "train_scroll_to"  # session_state: the run just started, whose view is scrolled into sight once
_LR_SAID = "train_lr_said"  # session_state: (ok, message) after the last Apply
LOG_KEY = "train_log_loss"  # the toggle for a log-scale loss axis, also the finished view's (ui.train.view)


def scroll_into_view(run_id: str) -> None:
    """After Start the page is still scrolled down at the button: bring the run's view into sight."""
    if st.session_state.get(SCROLL_TO) == run_id:
        del st.session_state[SCROLL_TO]
        _scroll_here(key=f"train_scroll_{run_id}")


def live_view(run_id: str) -> None:
    """The running run's controls, progress and curves. The page draws them once; the view then follows
    the run by itself, every second (every live_run.HIDDEN_EVERY_S while the browser tab is hidden), and
    has the page run again when the run's phase changes: an epoch ends, the run ends, Stop is asked
    (ui.live_run)."""
    try:
        run = runs.get_run(run_id)
    except (StudioError, OSError):  # deleted meanwhile: the page shows the runs that are left
        st.rerun()
    if not run.active:
        st.rerun()  # it ended meanwhile: the page shows the finished view
    controls = st.container(horizontal=True, vertical_alignment="bottom")  # one row: the chart in sight
    if not learners.may_change(run):  # another learner's, on a shared server: to watch and learn from
        named = escape_markdown(learners.owner_name(run))  # typed by a learner: text, never Markdown
        whose = f"{named}'s run" if named else "Another learner's run"
        st.caption(f":material/visibility: {whose}: watch it and learn; only they or the teacher change it.")
    elif run.cluster_wait or runs.place_in_queue(run.id) is not None:  # waiting: it can leave, nothing else
        controls.button(
            "Cancel", icon=":material/cancel:", key="train_cancel", on_click=_cancel, args=(run.id,),
            help="Leave the queue: the run never trains.",
        )  # fmt: skip
    else:
        _stop_control(run, controls)
        _lr_control(run, controls)
    log = controls.toggle("Log-scale loss", key=LOG_KEY)
    _lr_said()
    live_run.run_view(run, reader(run).update(), log=log, key="train_live")


def _cancel(run_id: str) -> None:
    try:
        runs.cancel(run_id, by=learners.actor())
    except StudioError as exc:  # it started meanwhile: its Stop is shown now
        _say(False, str(exc))


def _stop_control(run: runs.RunInfo, row) -> None:
    stopping = runs.stop_asked(run)
    if row.button(
        "Stop",
        icon=":material/stop_circle:",
        key="train_stop",
        disabled=stopping,
        help="Stops after the current batch, saving a checkpoint.",
    ):
        try:
            runs.stop(run.id, by=learners.actor())
        except StudioError as exc:
            st.error(str(exc))
            return
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
        lr = runs.set_lr(
            run_id, float(text), by=learners.actor()
        )  # "1e-3" and "0.001" alike; set_lr checks the range
    except ValueError:
        _say(False, f"{text[:40]!r} is not a number: the run goes on as it was.")
        return
    except StudioError as exc:
        _say(False, str(exc))
        return
    _say(True, f"Learning rate {lr:g} from the next batch on.")


def _say(ok: bool, message: str) -> None:
    st.session_state[_LR_SAID] = (ok, message)
