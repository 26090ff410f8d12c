"""The teacher's panel on a shared server (ui.learners): the queue, to reorder or clear, the limit of waiting
runs per learner, and how the class answered the Learn pages' predictions (counts only, no names)."""

import pandas as pd
import streamlit as st

from core import runs
from core.base.errors import StudioError
from core.runs import classroom, queue

LIMIT_KEY = "teacher_limit"
PICK_KEY = "teacher_pick"


def render() -> None:
    with st.expander("Class · the teacher's view", icon=":material/school:", expanded=True):
        _queue()
        _limit()
        _answers()


def _queue() -> None:
    places = runs.places_in_queue()
    if not places:
        st.caption("Nobody is waiting: every run has its place.")
        return
    line = sorted(places.items(), key=lambda item: (item[1].keys, item[1].position))
    rows = []
    for run_id, place in line:
        status = runs.read_status(runs.run_dir(run_id))
        rows.append({"device": ", ".join(place.keys), "place": place.position, "run": run_id,
                     "learner": status.get("owner_name", ""), "in line": place.words})  # fmt: skip
    st.dataframe(pd.DataFrame(rows), hide_index=True)
    row = st.container(horizontal=True, vertical_alignment="bottom")
    row.selectbox("Waiting run", [run_id for run_id, _ in line], key=PICK_KEY, width=260)
    row.button("Move to the front", key="teacher_promote", on_click=_promote)
    row.button("Clear the queue", key="teacher_clear", on_click=_clear, type="tertiary")


def _promote() -> None:
    try:
        queue.promote(st.session_state[PICK_KEY])
    except StudioError as exc:  # it started meanwhile
        st.session_state["teacher_said"] = str(exc)


def _clear() -> None:
    st.session_state["teacher_said"] = f"{queue.clear()} waiting runs cancelled."


def _limit() -> None:
    if said := st.session_state.pop("teacher_said", None):
        st.info(said)
    st.session_state.setdefault(LIMIT_KEY, queue.queue_limit())
    st.number_input("Runs each learner may have waiting", 1, queue.LIMIT_MAX, key=LIMIT_KEY, width=240,
                    on_change=lambda: queue.set_limit(st.session_state[LIMIT_KEY]))  # fmt: skip


def _answers() -> None:
    counts = classroom.answer_counts()
    st.markdown("**Predictions on the Learn pages**, the most missed first")
    if not counts:
        st.caption("No learner has committed a prediction yet.")
        return
    table = pd.DataFrame(counts)[["question", "answered", "right"]]
    st.dataframe(table, hide_index=True, width="stretch")
