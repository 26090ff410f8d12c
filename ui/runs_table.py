"""The Train page's table of all runs, and the overlay of several runs' curves."""

import contextlib

import pandas as pd
import streamlit as st

from core import analysis, runs
from core.errors import StudioError
from ui import charts
from ui.train import pct


def table_key(all_runs: list[runs.RunInfo]) -> str:
    """The runs table's widget key; it changes when runs are added so row positions never go stale."""
    return f"train_runs_table_{len(all_runs)}_{all_runs[0].id if all_runs else ''}"


def selected_ids(all_runs: list[runs.RunInfo]) -> list[str]:
    state = st.session_state.get(table_key(all_runs))
    rows = state.get("selection", {}).get("rows", []) if state else []
    return [all_runs[i].id for i in rows if 0 <= i < len(all_runs)]


def render_runs_table(all_runs: list[runs.RunInfo]) -> None:
    table = pd.DataFrame(
        {
            "id": [r.id for r in all_runs],
            # "training" rather than queued/running: the table is as of page load, the run view is live
            "status": ["training" if r.active else r.status for r in all_runs],
            "model": [r.config.model if r.config else "?" for r in all_runs],
            "progress": [_progress(r) for r in all_runs],
            # text, so a run without a scored epoch reads "—" rather than the grid's grey "None"
            "best test acc": [pct(r.best_test_acc) for r in all_runs],
            "created": [pd.to_datetime(r.created, utc=True, errors="coerce") for r in all_runs],
        }
    )
    st.dataframe(
        table,
        key=table_key(all_runs),
        on_select="rerun",
        selection_mode="multi-row",
        hide_index=True,
        column_config={
            "created": st.column_config.DatetimeColumn("created (UTC)", format="YYYY-MM-DD HH:mm:ss"),
        },
    )
    for run in all_runs:  # what is wrong with each damaged run, without having to open it
        if run.status == runs.DAMAGED:
            st.warning(f"Run {run.id}: {run.error}", icon=":material/warning:")


def _progress(run: runs.RunInfo) -> str:
    """A training run in the sidebar's and the live view's words (runs.Progress); else epochs done."""
    if run.active:
        return runs.progress(run).label
    return f"{run.epoch}/{run.config.epochs if run.config else '?'} epochs"


def render_comparison(chosen: list[runs.RunInfo]) -> None:
    """Overlay the curves of several runs, one colour per run."""
    st.markdown(f"**Comparing {len(chosen)} runs**")
    metrics = {}
    for run in chosen:
        label = f"{run.id} · {run.config.model if run.config else '?'}"
        with contextlib.suppress(StudioError):
            metrics[label] = runs.read_metrics(run.id)
    ids = [run.id for run in chosen]
    revision = "+".join(ids)
    log = st.toggle("Log-scale loss", key="train_compare_log")
    left, right = st.columns(2)
    left.plotly_chart(
        charts.overlay(
            analysis.overlay(metrics, "test_acc"),
            "Test accuracy per epoch",
            "epoch",
            "accuracy",
            revision,
            percent=True,
        ),
        key="train_compare_acc",
    )
    right.plotly_chart(
        charts.overlay(
            analysis.overlay(metrics, "test_loss"), "Test loss per epoch", "epoch", "loss", revision, log=log
        ),
        key="train_compare_loss",
    )
    st.plotly_chart(
        charts.overlay(
            analysis.overlay(metrics, "loss", kind="batch"),
            "Training loss per logged step",
            "step (batches)",
            "loss",
            revision,
            log=log,
            markers=False,
        ),
        key="train_compare_steps",
    )
