"""A Plotly chart that stays mounted across live refreshes (a Streamlit v2 component, no build step).

st.plotly_chart gives a changed figure a new identity (its element id hashes the figure), so the
browser built a new Plotly chart on every refresh of the live view. Updating one chart in place
with Plotly.react (the step chart and, at each epoch end, the two epoch charts) took Chromium's
CPU on the live Train page from about 0.29 to 0.22 of a core while a tutorial run trained here,
time that run gets back (bench.ui_speed). Plotly's uirevision keeps the user's zoom.

It draws with the page's own Plotly: the one Streamlit loads for st.plotly_chart, which plotly.js
publishes as window.Plotly. So there is no second copy to fetch. Until the browser tab has it, the
chart is an st.plotly_chart (which loads it), and a waiter tells the session once it is there.
Its script is ui/live_chart.js.
"""

from collections.abc import Callable
from pathlib import Path

import streamlit as st

SCRIPT = Path(__file__).with_name("live_chart.js")
READY = "live_chart_plotly_ready"  # session_state: this session's browser tab has window.Plotly

_chart = st.components.v2.component("studio_live_chart", js=SCRIPT.read_text(), isolate_styles=False)


def _ready() -> None:
    # A plain session_state flag rather than the waiter's own state: that goes once the waiter is
    # no longer drawn, and the chart would then go back to the fallback.
    st.session_state[READY] = True


def chart(figure: dict, *, key: str, live: bool) -> None:
    """st.plotly_chart for a figure that is done; while it changes at every refresh, live_chart, so that
    the mounted chart is updated rather than a new one built from scratch each time."""

    def built_in() -> None:
        st.plotly_chart(figure, key=key)

    if live:
        live_chart(figure, key=f"{key}_live", fallback=built_in)
    else:
        built_in()


def live_chart(figure: dict, *, key: str, fallback: Callable[[], None]) -> None:
    """Draw `figure` ({"data": [...], "layout": {...}}, plain JSON) in place of the previous one.

    Until this browser tab has Plotly, `fallback` draws the chart (with st.plotly_chart); the
    switch then happens once, at the next refresh."""
    if st.session_state.get(READY):
        _chart(data={"figure": figure}, key=key, height=figure["layout"]["height"])
        return
    fallback()
    _chart(data={"wait": True}, key=f"{key}_waiter", on_ready_change=_ready)
