"""A model to teach with: the MLP or the CNN untrained (seed 0), or a finished run's weights."""

import streamlit as st
from torch import nn

from core import runs
from core.base.errors import BadCheckpoint, StudioError
from core.learn import build_model as bm
from core.model.checkpoint import LoadedCheckpoint, load_checkpoint
from core.model.networks import MODELS

USABLE = ("finished", "stopped")  # a running run's checkpoint changes every epoch


@st.cache_resource(show_spinner="Loading the run's weights…", max_entries=8)
def _run_checkpoint(path: str, mtime_ns: int) -> LoadedCheckpoint:
    """A run's weights, for the Learn pages (Build Model, Autograd, Optimization); `mtime_ns` makes a
    re-saved file load afresh."""
    return load_checkpoint(path)


def load_run(run: runs.RunInfo) -> LoadedCheckpoint:
    """A finished run's weights; raises BadCheckpoint saying why they cannot be used."""
    path = run.checkpoint
    try:
        mtime_ns = path.stat().st_mtime_ns if path is not None else None
    except OSError as exc:
        raise BadCheckpoint(f"run {run.id}'s checkpoint cannot be read: {exc.strerror or exc}") from exc
    if mtime_ns is None:
        raise BadCheckpoint(f"run {run.id} has no model.pth any more")
    return _run_checkpoint(str(path), mtime_ns)


@st.cache_resource(show_spinner=False)
def _untrained(name: str) -> nn.Module:
    return bm.untrained_model(name)


def _label(choice: str, finished: dict[str, runs.RunInfo]) -> str:
    kind, _, value = choice.partition(":")
    if kind == "untrained":
        return f"{MODELS[value].title}, untrained (seed 0)"
    run = finished[value]
    model = run.config.model.upper() if run.config else "?"
    accuracy = f"{run.best_test_acc:.1%}" if run.best_test_acc is not None else "not evaluated"
    return f"Run {run.id} · {model} · test accuracy {accuracy}"


def pick_model(key: str, where=st) -> tuple[nn.Module, str] | None:
    """A selectbox in `where`; the chosen model (shared: do not change it, copy it) and its label, or
    None after an error message."""
    finished = {r.id: r for r in runs.list_runs() if r.status in USABLE and r.checkpoint is not None}
    options = [f"untrained:{name}" for name in MODELS] + [f"run:{run_id}" for run_id in finished]
    if st.session_state.get(key) not in options:
        st.session_state.pop(key, None)  # the run was deleted: back to the default
    choice = where.selectbox(
        "Model", options, format_func=lambda c: _label(c, finished), key=key, width=360,
        help="An untrained model, or the weights of a finished run from the Train page",
    )  # fmt: skip
    kind, _, value = choice.partition(":")
    if kind == "untrained":
        return _untrained(value), _label(choice, finished)
    try:
        return load_run(finished[value]).model, _label(choice, finished)
    except StudioError as exc:
        st.error(f"Run {value}'s weights cannot be used: {exc}")
        return None
