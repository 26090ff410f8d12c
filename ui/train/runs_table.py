"""The Train page's table of all runs, and the overlay of several runs' curves."""

import contextlib

import pandas as pd
import streamlit as st

from core import runs
from core.base.errors import StudioError
from core.training import analysis
from ui import charts
from ui.text import escape_markdown


def table_key(all_runs: list[runs.RunInfo]) -> str:
    """The runs table's widget key; it changes when runs are added so row positions never go stale."""
    return f"train_runs_table_{len(all_runs)}_{all_runs[0].id if all_runs else ''}"


def selected_ids(all_runs: list[runs.RunInfo]) -> list[str]:
    state = st.session_state.get(table_key(all_runs))
    rows = state.get("selection", {}).get("rows", []) if state else []
    return [all_runs[i].id for i in rows if 0 <= i < len(all_runs)]


# How each config column reads in the table (analysis.config_columns names them as TrainConfig does).
_COLUMN_NAMES = {"batch_size": "batch size", "limit_batches": "cap", "lr_schedule": "schedule",
                 "weight_decay": "weight decay", "log_every": "log every"}  # fmt: skip
_COLUMN_HELP = {
    "limit_batches": "Batches per epoch cap; empty: every batch.",
    "hidden": "Hidden units; empty: the model's default.",
    "dropout": "Empty: the model's default.",
}


def render_runs_table(all_runs: list[runs.RunInfo]) -> None:
    """Every run, each TrainConfig field that differs between runs a column; a click on a header sorts."""
    differ = analysis.differing([r.config for r in all_runs])
    table = pd.DataFrame(_fixed_columns(all_runs) | _config_columns(all_runs, differ))
    config = {
        "best test acc": st.column_config.NumberColumn(format="percent"),
        "created": st.column_config.DatetimeColumn("created (UTC)", format="YYYY-MM-DD HH:mm:ss"),
        "lr": st.column_config.NumberColumn(format="%g"),
    }
    config |= {
        _COLUMN_NAMES.get(name, name): st.column_config.Column(help=text)
        for name, text in _COLUMN_HELP.items()
        if name in differ
    }
    st.dataframe(
        table,
        key=table_key(all_runs),
        on_select="rerun",
        selection_mode="multi-row",
        hide_index=True,
        column_config=config,
    )
    for run in all_runs:  # what is wrong with each damaged run, without having to open it
        if run.status == runs.DAMAGED:
            st.warning(escape_markdown(f"Run {run.id}: {run.error}"), icon=":material/warning:")


def _fixed_columns(all_runs: list[runs.RunInfo]) -> dict[str, list]:
    waiting = runs.places_in_queue() if any(r.status == "queued" for r in all_runs) else {}
    columns = {"name": [r.name for r in all_runs]} if any(r.name for r in all_runs) else {}
    if any(r.owner_name for r in all_runs):  # a shared server: who started each
        columns["learner"] = [r.owner_name for r in all_runs]
    columns |= {
        "id": [r.id for r in all_runs],
        # "waiting" for a run in the queue; "training" for one whose worker has it, starting or running: the
        # table is as of page load, the run view is live
        "status": _statuses(all_runs, waiting),
        "progress": _progress(all_runs, waiting),
        "best test acc": [r.best_test_acc for r in all_runs],  # a number, so the column sorts as one
        "created": [pd.to_datetime(r.created, utc=True, errors="coerce") for r in all_runs],
    }
    if any(r.parent for r in all_runs):
        columns["continues"] = [r.parent or "" for r in all_runs]
    changes = [runs.lr_history(r) for r in all_runs]
    if any(changes):  # learning rates changed while a run trained, in order
        columns["lr changed"] = [" → ".join(f"{lr:g} at step {step:,}" for step, lr in c) for c in changes]
    if any(r.note for r in all_runs):
        columns["note"] = [r.note for r in all_runs]
    return columns


def _config_columns(all_runs: list[runs.RunInfo], names: list[str]) -> dict[str, list]:
    values = [analysis.config_columns(r.config) if r.config else {} for r in all_runs]
    return {_COLUMN_NAMES.get(n, n): [v.get(n) for v in values] for n in names}


def _statuses(all_runs: list[runs.RunInfo], waiting: dict[str, runs.Place]) -> list[str]:
    return [
        "waiting" if r.id in waiting or r.cluster_wait else "training" if r.active else r.status
        for r in all_runs
    ]


def _progress(all_runs: list[runs.RunInfo], waiting: dict[str, runs.Place]) -> list[str]:
    """Each run in the sidebar's and the live view's words: where it waits in the queue (runs.Place),
    where it trains (runs.Progress), else the epochs it did."""
    return [
        f"queued: {waiting[r.id].words}" if r.id in waiting
        else runs.progress(r).label if r.active
        else f"{r.epoch}/{r.config.epochs if r.config else '?'} epochs"
        for r in all_runs
    ]  # fmt: skip


def legend_labels(chosen: list[runs.RunInfo]) -> list[str]:
    """Each run by its name (else its id) and what sets it apart: "baseline · lr 0.002 · optimizer adamw"."""
    differ = analysis.differing([r.config for r in chosen])
    labels = []
    for run in chosen:
        words = analysis.config_words(run.config, differ) if run.config and differ else ""
        labels.append(" · ".join(part for part in (run.name or run.id, words) if part))
    # Two runs alike in name and settings are still two curves: the id tells them apart.
    pairs = zip(chosen, labels, strict=True)
    return [f"{label} ({run.id})" if labels.count(label) > 1 else label for run, label in pairs]


def render_comparison(chosen: list[runs.RunInfo]) -> None:
    """Overlay the curves of several runs, one colour per run."""
    st.markdown(f"**Comparing {len(chosen)} runs**")
    metrics = {}
    for run, label in zip(chosen, legend_labels(chosen), strict=True):
        with contextlib.suppress(StudioError):
            metrics[label] = analysis.shift(runs.read_metrics(run.id), *runs.lineage_offset(run))
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
