"""Train: choose hyperparameters, launch a run in a worker process, watch it live, inspect the result."""

import streamlit as st

from core import runs
from core.data.fashion import dataset_status
from ui import learners, link
from ui.layout import side_by_side
from ui.nav import title
from ui.train import form, live, outcome, runs_table, teacher, view

heading = title("train")
st.caption(
    "Pick hyperparameters (or a preset), start training and watch loss and accuracy live. "
    "Training runs in its own process: switch pages or close the tab and it keeps going."
)

if learners.is_teacher():
    teacher.render()

# Side by side on a wide window, stacked on a narrow one, so the charts are never squeezed.
form_col, run_col = side_by_side(view.RUN_PANE, 270)
with form_col:
    form.render_form(dataset_status())

all_runs = runs.list_runs()  # after the form, so a run it just started is listed
views = [view.RUN_LINK, *outcome.CELL_LINKS]  # the run shown and the gallery's classes
link.notify(link.adopt(views))
listed = learners.listed(all_runs)  # the table's: on a shared server, "Mine" or "Everyone"
selected = runs_table.selected_ids(listed)
with run_col:
    view.say_if_not_listed(all_runs)  # before the run shown replaces the id asked for
run = view.pick_run(all_runs, selected)
if run is not None:
    st.session_state[view.SHOWN] = run.id  # kept when the table's selection goes with a page switch
view.fit_phone(run_first=run is not None)

with run_col:
    if run is None:
        st.info(
            "No runs yet. Start one with the form: the tutorial preset trains the MLP for 5 epochs, "
            "about a minute on a CPU. Set a batches-per-epoch cap (under Advanced) for a quicker try."
        )
    else:
        view.render_header(run)
        if run.active:
            live.scroll_into_view(run.id)  # after Start: the progress, controls and chart in sight
            live.live_view(run.id)
        else:
            outcome.render_outcome(run)

if run is not None and not run.active:
    outcome.render_mistakes(run)

with st.container(key=view.ALL_RUNS):
    st.divider()
    st.subheader("All runs")
    learners.whose_control()
    if listed:
        st.caption("Select one row to open that run above; select several to compare their curves.")
        runs_table.render_runs_table(listed)
        if len(selected) > 1:
            runs_table.render_comparison([r for r in listed if r.id in selected])
    else:
        st.caption("Runs you start appear here, newest first, with their best test accuracy.")

link.keep(views, where=heading)  # last: the gallery's classes are drawn by then
