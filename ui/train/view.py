"""Train page pieces its parts share: names for the form's choices, the run shown, its header and curves."""

import streamlit as st

from core import runs
from core.base.errors import RunError, StudioError
from core.training import analysis, export
from core.training.config import TrainConfig
from core.training.race import RaceConfig
from ui import charts, learners, link
from ui.learn.race import RACE_KEY
from ui.live_run import EPOCHS_NOTE
from ui.text import escape_markdown

SHOWN = "train_run_id"  # session_state: the run shown (the one last started, picked or linked)
RUN_LINK = link.run_id("run", SHOWN, fallback="the newest run")
MODEL_NAMES = {"mlp": "MLP (the tutorial's)", "cnn": "Small CNN"}
OPTIMIZER_NAMES = {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW"}


def pick_run(all_runs: list[runs.RunInfo], selected: list[str]) -> runs.RunInfo | None:
    """A lone selected row; else the run this session last started, picked or linked, even once another
    run trains (several learners share a server: their runs queue and follow one another); else the run
    training now (a new session re-attaches to it); else the newest."""
    by_id = {r.id: r for r in all_runs}
    if len(selected) == 1:
        return by_id[selected[0]]
    if st.session_state.get(SHOWN, "") in by_id:
        return by_id[st.session_state[SHOWN]]
    active = next((r for r in all_runs if r.active), None)
    return active or (all_runs[0] if all_runs else None)


def say_if_not_listed(all_runs: list[runs.RunInfo]) -> None:
    """A linked (or remembered) run id that is not a training run of this store, said in words: an
    optimizer race opens on the Optimization page; anything else is gone or from another machine."""
    wanted = st.session_state.get(SHOWN)
    if not wanted or any(r.id == wanted for r in all_runs):
        return
    if _is_race(wanted):
        st.info(
            f":material/sports_score: {wanted} is an optimizer race: the Optimization page shows it, "
            "under 4. Optimizer races."
        )
        st.session_state[RACE_KEY] = wanted  # the race that page shows this session
        st.page_link("pages/Optimization.py", label="Open the race", icon=":material/arrow_forward:")
        return
    st.caption(
        f":material/info: There is no run {wanted} in this run store (deleted, or made on another "
        f"machine){', so another run is shown' if all_runs else ''}."
    )


def _is_race(run_id: str) -> bool:
    try:
        return isinstance(runs.get_run(run_id).config, RaceConfig)
    except StudioError:  # no such run here
        return False


# ---- the page at phone width -------------------------------------------------------------------------

PHONE = "(max-width: 640px)"  # Streamlit's own narrow breakpoint: its columns stack below it
RUN_PANE = "train_run_view"  # the key of the run's pane (beside the form on a wide window)
ALL_RUNS = "train_all_runs"  # the key of the runs table's section
_PANE = f"[data-testid=stLayoutWrapper] > .st-key-{RUN_PANE}"  # :has() may not hold a :has()
_ROW = f"[data-testid=stHorizontalBlock]:has(> {_PANE})"


def fit_phone(run_first: bool) -> None:
    """On a phone the form and the run take the screen's width; once a run exists, the run (its view and
    what its model gets wrong) comes first and the form after it: the form's height pushed them 2,500 px
    down. A wide window keeps the form beside the run."""
    css = f"{_ROW} > [data-testid=stLayoutWrapper] {{ flex: 1 1 100%; width: 100%; min-width: 0; }}"
    if run_first:
        # The row dissolves into the page's column (display: contents), so its two panes are ordered with
        # the page's other sections: the run, its mistakes, then the form, then all runs.
        css += (
            f"[data-testid=stLayoutWrapper]:has(> [data-testid=stHorizontalBlock] > {_PANE}), {_ROW} "
            "{ display: contents; }"
            f"{_ROW} > [data-testid=stLayoutWrapper]:first-child {{ order: 1; }}"
            f"[data-testid=stLayoutWrapper]:has(> .st-key-{ALL_RUNS}) {{ order: 2; }}"
        )
    st.html(f"<style>@media {PHONE} {{ {css} }}</style>")


# ---- one run ------------------------------------------------------------------------------------------


def render_header(run: runs.RunInfo) -> None:
    st.subheader(f"Run {run.id}")
    what = describe(run.config) if run.config else "unreadable config"
    where = f" · {run.where}" if run.where else ""  # a run on a Ray cluster: its machine
    waits = run.cluster_wait or run.status == "queued"
    said = "waiting" if waits else "training" if run.active else run.status
    st.caption(f"{what} · status **{said}**{where}")
    if run.parent:
        epochs, _steps = runs.lineage_offset(run)
        st.caption(
            f":material/subdirectory_arrow_right: Continues run **{run.parent}** from its checkpoint: "
            f"its epochs are numbered on from epoch {epochs}."
        )
    if learners.may_change(run):
        _label_fields(run)
    elif learners.owner_name(run):
        st.caption(f"Started by **{escape_markdown(learners.owner_name(run))}**")
    if run.config is not None:
        export_script(run.config, f"run {run.id}", run.id, key="train_export_run")
    if run.active and run.config is not None and runs.device_key(run.config) == "cpu":
        # Measured with bench.ui_speed: the browser drawing this view takes a CPU run's time too.
        st.caption(
            ":material/info: Watching takes a little CPU time from a CPU run: about a tenth of a core "
            "in the browser on a 2-core machine. It keeps training if you switch pages or close the tab."
        )


def describe(config: TrainConfig) -> str:
    """ "MLP (the tutorial's) · 2 epochs · SGD, lr 0.001, batch 64 · 2 processes (DistributedDataParallel) ·
    cap 100 batches per epoch · augmentation flip 50%"."""
    parts = [
        MODEL_NAMES.get(config.model, config.model),
        count(config.epochs, "epoch"),
        f"{OPTIMIZER_NAMES[config.optimizer]}, lr {config.lr:g}, batch {config.batch_size}",
    ]
    if config.processes > 1:
        parts.append(f"{config.processes} processes (DistributedDataParallel)")
    if config.limit_batches:
        parts.append(f"cap {count(config.limit_batches, 'batch', 'batches')} per epoch")
    if config.augment.active:
        parts.append(f"augmentation {analysis.augment_words(config.augment)}")
    return " · ".join(parts)


def count(n: int, word: str, plural: str | None = None) -> str:
    """ "1 epoch", "2 epochs", "5 batches" (with plural="batches")."""
    return f"{n:,} {word if n == 1 else plural or word + 's'}"


def _label_fields(run: runs.RunInfo) -> None:
    """The run's name and note, saved with the run (core.runs.set_label) as soon as they change."""
    name_key, note_key = f"train_name_{run.id}", f"train_note_{run.id}"
    st.session_state.setdefault(name_key, run.name)
    st.session_state.setdefault(note_key, run.note)
    row = st.container(horizontal=True)
    row.text_input(
        "Name", key=name_key, max_chars=runs.NAME_MAX, placeholder="e.g. baseline",
        on_change=_save_label, args=(run.id,), width=200,
        help="Shown in the runs table and in the legends when runs are compared.",
    )  # fmt: skip
    row.text_input(
        "Note", key=note_key, max_chars=runs.NOTE_MAX, placeholder="what this run tries",
        on_change=_save_label, args=(run.id,),
    )  # fmt: skip
    if error := st.session_state.pop("train_label_error", None):
        st.error(error)


def _save_label(run_id: str) -> None:
    name, note = st.session_state[f"train_name_{run_id}"], st.session_state[f"train_note_{run_id}"]
    try:
        runs.set_label(run_id, name or "", note or "", by=learners.actor())
    except RunError as exc:
        st.session_state["train_label_error"] = str(exc)


def export_script(config: TrainConfig, source: str, source_id: str | None, *, key: str) -> None:
    """The config as one standalone tutorial-style script (core.training.export): read, then download it."""
    with st.expander("Export as script", icon=":material/code:"):
        text = export.script(config, source)
        st.caption("Plain PyTorch and torchvision, in the tutorial's style: run it anywhere with `python`.")
        if config.processes > 1:  # core.training.export writes one process; its docstring says so too
            st.caption(
                f"It trains in one process: the run's {config.processes} processes split each batch of "
                f"{config.batch_size} and average their gradients, which one process on whole batches does "
                "at once."
            )
        st.download_button(
            f"Download {export.file_name(source_id)}", text.encode(), file_name=export.file_name(source_id),
            mime="text/x-python", on_click="ignore", icon=":material/download:", key=key,
        )  # fmt: skip
        st.code(text, language="python", height=360)
    book = export.notebook(config, source).encode()
    st.download_button(
        "Export as notebook", book, file_name=export.notebook_name(source_id),
        mime="application/x-ipynb+json", on_click="ignore", icon=":material/book_2:", key=f"{key}_notebook",
        help="The same code as a Jupyter notebook in the tutorial's shape, its first cell the epochs and a "
        "batch cap to make it quick: open it in Jupyter, VS Code or Colab.",
    )  # fmt: skip


def reader(run: runs.RunInfo) -> analysis.MetricsReader:
    """One incremental reader per run in this session: each refresh parses only the new lines."""
    readers = st.session_state.setdefault("train_readers", {})
    if run.id not in readers:
        readers[run.id] = analysis.MetricsReader(run.dir / "metrics.jsonl")
    return readers[run.id]


def render_curves(rows: list[dict], run: runs.RunInfo) -> None:
    """A finished run's training curves (a running run's are ui.live_run's).

    A continued run's epochs and steps are numbered on from those of the runs it continues."""
    rows = analysis.shift(rows, *runs.lineage_offset(run))
    run_id = run.id
    log = st.toggle("Log-scale loss", key="train_log_loss")
    st.plotly_chart(charts.step_loss(rows, run_id, log=log), key="train_chart_steps")
    if not analysis.epoch_rows(rows):
        st.caption(EPOCHS_NOTE)
        return
    left, right = st.columns(2)
    left.plotly_chart(charts.epoch_loss(rows, run_id, log=log), key="train_chart_epoch_loss")
    right.plotly_chart(charts.epoch_accuracy(rows, run_id), key="train_chart_epoch_acc")


def pct(value: float | None) -> str:
    return f"{value:.1%}" if value is not None else "—"
