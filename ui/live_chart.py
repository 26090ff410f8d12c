"""A Plotly chart that stays mounted across live refreshes (a Streamlit v2 component, no build step).

st.plotly_chart gives a changed figure a new identity (its element id hashes the figure), so the
browser built a new Plotly chart on every refresh of the live view. Here one chart is updated in
place, and a refresh sends only what changed: the points added to the end of each line since the
last refresh (Plotly.extendTraces in the browser), or nothing at all, and the whole figure only when
something else changed (its layout, a line redrawn, a new page run). Plotly's uirevision keeps the
user's zoom.

It draws with the page's own Plotly: the one Streamlit loads for st.plotly_chart, which plotly.js
publishes as window.Plotly. So there is no second copy to fetch. Until the browser tab has it, the
chart is an st.plotly_chart (which loads it), and a waiter tells the session once it is there.
Its script is ui/live_chart.js.
"""

from collections.abc import Callable
from pathlib import Path

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from ui import live_feed

PLOTLY_JS = Path(__file__).with_name("plotly_page.js").read_text()  # the page's Plotly, the page's look
SCRIPT = Path(__file__).with_name("live_chart.js")
READY = "live_chart_plotly_ready"  # session_state: this session's browser tab has window.Plotly
_SENT = "live_chart_sent"  # session_state: {key: (revision, figure)}, what each chart was last sent
_REVISION = "live_chart_revision"  # session_state: the last revision given to a whole figure sent

_chart = st.components.v2.component(
    "studio_live_chart", js=PLOTLY_JS + SCRIPT.read_text(), isolate_styles=False
)


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
    if not plotly_ready(key):
        fallback()
        return
    sent = st.session_state.setdefault(_SENT, {})
    before = sent.get(key) if _in_fragment_rerun() else None  # a page run may have built a new chart
    revision = st.session_state[_REVISION] = st.session_state.get(_REVISION, 0) + 1
    payload = update(before, figure, revision)
    sent[key] = (payload["revision"], figure)
    _chart(data=payload, key=key, height=figure["layout"]["height"], on_resync_change=_resync(key))


def plotly_ready(key: str) -> bool:
    """Whether this session's browser tab has Plotly; until it does, a waiter (keyed from `key`) is drawn
    that tells the session once it has."""
    if st.session_state.get(READY):
        return True
    _chart(data={"wait": True}, key=f"{key}_waiter", on_ready_change=_ready)
    return False


def update(before: tuple[int, dict] | None, figure: dict, new_revision: int) -> dict:
    """What the browser needs to go from the figure it was last sent (`before`: its revision and the
    figure) to `figure`; `new_revision` names a whole figure if one must be sent (never used before).

    {"revision", "figure"}: draw this whole figure (the first time, or when anything but the ends of
    the lines changed). {"revision", "extend"}: add these points to the ends of the lines; "from"
    says how many each line must already have, so that a chart that missed a refresh asks for the
    whole figure again (live_chart.js) rather than drawing a gap."""
    tails = None if before is None else live_feed.tails(before[1], figure)
    if tails is None:
        return {"revision": new_revision, "figure": figure}
    return {"revision": before[0], "extend": tails}


def _resync(key: str) -> Callable[[], None]:
    def resync() -> None:
        """The browser's chart missed a refresh (or was built anew): the next one sends the whole figure."""
        st.session_state.get(_SENT, {}).pop(key, None)

    return resync


def _in_fragment_rerun() -> bool:
    """True in a run of a fragment alone: the page's elements outside it, this chart too, stay mounted."""
    ctx = get_script_run_ctx()
    return bool(ctx is not None and getattr(ctx, "fragment_ids_this_run", None))
