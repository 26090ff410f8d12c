"""The live chart (ui.live_chart): st.plotly_chart until the tab has Plotly, then the chart in place."""

import json

from streamlit.testing.v1 import AppTest


def _chart_app(points: list[int], loaded: bool) -> None:
    import streamlit as st

    from ui.live_chart import READY, live_chart

    if loaded:
        st.session_state[READY] = True
    figure = {"data": [{"x": points, "y": points}], "layout": {"height": 300}}
    live_chart(figure, key="chart", fallback=lambda: st.caption(f"fallback with {len(points)} points"))


def _drawn(points: list[int], loaded: bool) -> tuple[list[str], list[dict]]:
    at = AppTest.from_function(_chart_app, args=(points, loaded)).run()
    assert not at.exception
    return [c.value for c in at.caption], [json.loads(c.proto.json) for c in at.get("bidi_component")]


def test_the_chart_is_st_plotly_chart_until_the_tab_has_plotly_then_the_chart_in_place():
    # Before the tab has Plotly: the fallback, and the waiter that says when it has.
    assert _drawn([1, 2], loaded=False) == (["fallback with 2 points"], [{"wait": True}])
    # Once it has (the waiter's state, set in the browser): the chart in place alone.
    captions, components = _drawn([1, 2], loaded=True)
    assert captions == [] and [c["figure"]["data"][0]["x"] for c in components] == [[1, 2]]
