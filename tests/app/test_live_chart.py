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


def _ticking_app() -> None:
    """The live chart as the live view draws it; st.session_state["tick"] plays a fragment rerun (the test
    patches live_chart._in_fragment_rerun: AppTest runs whole pages only)."""
    import streamlit as st

    from ui import live_chart

    st.session_state[live_chart.READY] = True
    points, layout = st.session_state["points"], st.session_state.get("layout", {"height": 300})
    figure = {"data": [{"x": points, "y": [p * 10 for p in points], "name": "loss"}], "layout": layout}
    live_chart.live_chart(figure, key="chart", fallback=lambda: None)


def _sent(at: AppTest) -> dict:
    assert not at.exception
    (component,) = at.get("bidi_component")
    return json.loads(component.proto.json)


def test_a_tick_sends_only_the_new_points_and_the_whole_figure_only_when_more_changed(monkeypatch):
    import streamlit as st

    from ui import live_chart

    monkeypatch.setattr(live_chart, "_in_fragment_rerun", lambda: st.session_state.get("tick", False))
    at = AppTest.from_function(_ticking_app)
    at.session_state["points"] = [1, 2, 3]
    first = _sent(at.run())  # a page run: the chart may be new, so the whole figure
    assert first["figure"]["data"][0]["x"] == [1, 2, 3] and "extend" not in first
    at.session_state["tick"] = True
    at.session_state["points"] = [1, 2, 3, 4, 5]
    tick = _sent(at.run())
    assert "figure" not in tick and tick["revision"] == first["revision"]
    assert tick["extend"] == {"from": [3], "x": [[4, 5]], "y": [[40, 50]]}
    quiet = _sent(at.run())  # nothing new: nothing to add
    assert quiet["extend"] == {"from": [5], "x": [[]], "y": [[]]}
    at.session_state["layout"] = {"height": 300, "shapes": [{"type": "line"}]}  # e.g. an lr change marked
    marked = _sent(at.run())
    assert marked["figure"]["layout"]["shapes"] and marked["revision"] != first["revision"]
    at.session_state["points"] = [2, 3, 4, 5, 6]  # thinned: no longer the same start
    assert "figure" in _sent(at.run())
    at.session_state["tick"] = False  # a page run again: the whole figure
    assert "figure" in _sent(at.run())


def test_update_extends_each_line_from_where_it_was():
    from ui.live_chart import update

    old = {"data": [{"x": [1], "y": [5]}, {"x": [1], "y": [6], "name": "test"}], "layout": {"height": 3}}
    new = {
        "data": [{"x": [1, 2], "y": [5, 4]}, {"x": [1], "y": [6], "name": "test"}],
        "layout": {"height": 3},
    }
    assert update((7, old), new, 8) == {
        "revision": 7,
        "extend": {"from": [1, 1], "x": [[2], []], "y": [[4], []]},
    }
    renamed = {"data": [new["data"][0], {**new["data"][1], "name": "other"}], "layout": {"height": 3}}
    assert update((7, old), renamed, 8) == {"revision": 8, "figure": renamed}
    assert update(None, new, 9) == {"revision": 9, "figure": new}
