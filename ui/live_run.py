"""A running run's progress (and on the Train page its curves), kept current by the browser itself.

The page draws the view once, from what the run's files say; from then on the view's script
(ui/live_run.js) asks the feed (ui.live_feed, served beside Streamlit by serve.py) once a second for
what changed and draws it, every 10 s while the tab is hidden. Streamlit runs the page again only when
the run's phase changes (it starts, ends, finishes an epoch, Stop is asked): watching a run then costs
the browser a small fetch a second instead of a page re-render (bench.ui_speed).
"""

from pathlib import Path

import streamlit as st

from core import runs
from core.training import analysis
from ui import live_chart, live_feed

EVERY_S = 1  # how often the view looks while the tab is shown
# How often its curves are redrawn: each redraw of a Plotly chart is the costly part of watching.
CHARTS_EVERY_S = 2
HIDDEN_EVERY_S = 10  # while it is hidden: nobody sees it, and its run trains on the same cores
STARTING_EVERY_S = 0.25  # until the first point, so that it shows as soon as it exists
# The page is run again when an epoch ends (its runs table shows the run's progress and best accuracy), but
# not more often than this: each page run re-renders the whole page in the browser, and an epoch of the
# tutorial's run takes 2-3 s on this machine's CPU.
EPOCHS_EVERY_S = 30

STARTING_NOTE = (
    "Starting the worker: loading PyTorch and FashionMNIST. The first loss appears in a few seconds."
)
EPOCHS_NOTE = "Loss and accuracy per epoch appear when the first epoch ends and the test set is scored."

_LOADER = {"data": [{"type": "scatter", "x": [], "y": []}], "layout": {"height": 10}}  # the least chart
_SCRIPT = live_chart.PLOTLY_JS + Path(__file__).with_name("live_run.js").read_text()
_view = st.components.v2.component("studio_live_run", js=_SCRIPT, isolate_styles=True)
_REVISION = "live_run_revision"  # session_state: the last revision given to a drawing of a view


def _noop() -> None:
    """The phase's callback: the rerun it asks for is the point; Streamlit keeps triggers that have one."""


def _data(run: runs.RunInfo, mode: str) -> dict:
    revision = st.session_state[_REVISION] = st.session_state.get(_REVISION, 0) + 1
    said = live_feed.words(run, runs.progress(run))
    return said | {
        "mode": mode,
        "revision": revision,
        "url": live_feed.url(run.id, st.get_option("server.baseUrlPath") or ""),
        "phase": live_feed.phase(run),
        "caption": said["caption"] if mode == "sidebar" else None,
        "color": st.get_option("theme.primaryColor") or "#D9480F",
        "every": EVERY_S,
        "charts_every": CHARTS_EVERY_S,
        "hidden_every": HIDDEN_EVERY_S,
        "starting_every": STARTING_EVERY_S,
    }


def run_view(run: runs.RunInfo, rows: list[dict], *, log: bool, key: str) -> None:
    """The Train page's live view of `run`: its progress line and curves, from `rows` (its metrics so far).

    The curves are drawn with the page's own Plotly (ui/plotly_page.js), which Streamlit loads with its
    first st.plotly_chart: an empty one, out of sight, makes it load in a tab that has none yet."""
    shifted = analysis.shift(rows, *runs.lineage_offset(run))  # a continued run's go on from its parent's
    data = _data(run, "run") | {
        "epochs": live_feed.epochs_scored(rows),
        "epochs_every": EPOCHS_EVERY_S,
        "rows": len(shifted),
        "log": log,
        "charts": live_feed.figures(shifted, run.id, log=log),
        "starting_note": STARTING_NOTE,
        "epochs_note": EPOCHS_NOTE,
    }
    _view(data=data, key=key, on_phase_change=_noop)
    with st.container(key=f"{key}_plotly"):  # out of sight: it only loads Plotly
        st.html(f"<style>.st-key-{key}_plotly {{ display: none; }}</style>")
        st.plotly_chart(_LOADER, key=f"{key}_plotly_loader")


def sidebar_progress(run: runs.RunInfo, *, key: str) -> None:
    """The sidebar's words and progress bar for a training run, current within a second on every page."""
    _view(data=_data(run, "sidebar"), key=key, on_phase_change=_noop)
