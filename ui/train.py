"""Train page pieces its parts share: names for the form's choices, the run shown, its header and curves."""

import streamlit as st

from core import analysis, runs
from ui import charts
from ui.live_chart import live_chart

MODEL_NAMES = {"mlp": "MLP (the tutorial's)", "cnn": "Small CNN"}
OPTIMIZER_NAMES = {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW"}


def pick_run(all_runs: list[runs.RunInfo], selected: list[str]) -> runs.RunInfo | None:
    """A lone selected row; else the run training now (re-attach); else the last started; else the newest."""
    by_id = {r.id: r for r in all_runs}
    if len(selected) == 1:
        return by_id[selected[0]]
    active = next((r for r in all_runs if r.active), None)
    if active is not None:
        return active
    return by_id.get(st.session_state.get("train_run_id", "")) or (all_runs[0] if all_runs else None)


# ---- one run ------------------------------------------------------------------------------------------


def render_header(run: runs.RunInfo) -> None:
    config = run.config
    what = "unreadable config"
    if config is not None:
        what = (
            f"{MODEL_NAMES.get(config.model, config.model)} · {config.epochs} epoch(s) · "
            f"{OPTIMIZER_NAMES[config.optimizer]}, lr {config.lr:g}, batch {config.batch_size}"
        )
    st.subheader(f"Run {run.id}")
    st.caption(f"{what} · status **{'training' if run.active else run.status}**")
    if run.active and config is not None and runs.device_key(config) == "cpu":
        # Measured with bench.ui_speed: the browser drawing this view takes a CPU run's time too.
        st.caption(
            ":material/info: Watching takes CPU time from a CPU run: on a 2-core machine it trains "
            "about a third slower with this page open. It keeps training if you switch pages or "
            "close the tab."
        )


def duration(seconds: float) -> str:
    seconds = round(seconds)
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def reader(run: runs.RunInfo) -> analysis.MetricsReader:
    """One incremental reader per run in this session: each refresh parses only the new lines."""
    readers = st.session_state.setdefault("train_readers", {})
    if run.id not in readers:
        readers[run.id] = analysis.MetricsReader(run.dir / "metrics.jsonl")
    return readers[run.id]


def render_curves(rows: list[dict], run_id: str, *, live: bool = False) -> None:
    """The training curves; `live`: while the run trains, each chart updated in place every second."""
    log = st.toggle("Log-scale loss", key="train_log_loss")
    _curve(charts.step_loss(rows, run_id, log=log), "train_chart_steps", live)
    if not analysis.epoch_rows(rows):
        st.caption("Loss and accuracy per epoch appear when the first epoch ends and the test set is scored.")
        return
    left, right = st.columns(2)
    with left:
        _curve(charts.epoch_loss(rows, run_id, log=log), "train_chart_epoch_loss", live)
    with right:
        _curve(charts.epoch_accuracy(rows, run_id), "train_chart_epoch_acc", live)


def _curve(figure: dict, key: str, live: bool) -> None:
    def built_in() -> None:
        st.plotly_chart(figure, key=key)

    if live:  # a new st.plotly_chart each time the figure changes would be a chart built from scratch
        live_chart(figure, key=f"{key}_live", fallback=built_in)
    else:
        built_in()


def pct(value: float | None) -> str:
    return f"{value:.1%}" if value is not None else "—"
