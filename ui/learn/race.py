"""Streamlit pieces of the optimizer races on the Optimization page: set one up, watch it, read the table."""

import pandas as pd
import streamlit as st

from core import runs
from core.base.errors import StudioError
from core.training.config import OPTIMIZERS
from core.training.race import MAX_CONTENDERS, MAX_STEPS, READY, Contender, RaceConfig
from ui import learners
from ui.live_chart import chart

LEGEND_HELP = (
    "Each contender has its own colour and dash. Click a name in the legend to hide or show its line; "
    "double-click a name to show that line alone, and double-click again to bring all back."
)
RACE_KEY = "race_shown"  # the id of the race this session shows
ERROR_KEY = "race_error"
CUSTOM = "Custom"
DEFAULT_RACE = "Optimizers"  # chosen when the page opens: its contenders are the section's subject
COLORS = ["#D9480F", "#1F6FEB", "#2B8A3E", "#7048E8", "#C2255C", "#495057"]  # one hue each
# And one dash each: two contenders that learn alike (Adam and AdamW at lr 1e-3) draw one line over the
# other, and a dashed line over a solid one still shows both.
DASHES = ["solid", "dash", "dot", "dashdot", "longdash", "longdashdot"]
COLUMNS = ["label", "optimizer", "lr", "momentum", "weight_decay", "batch_size"]


def setup() -> None:
    """Pick a ready-made race or write one; Start hands it to a worker like any run."""
    choice = st.segmented_control(
        "Race", [*READY, CUSTOM], default=DEFAULT_RACE, key="race_choice",
        help="Each ready-made race changes one thing: the optimizer, the learning rate or the batch size.",
    )  # fmt: skip
    if choice is None:  # the user unselected the chosen race
        st.info(_PICK, icon=":material/touch_app:")
        contenders = None
    elif choice == CUSTOM:
        contenders = _custom()
    else:
        contenders = READY[choice]
        st.dataframe(_table(contenders), hide_index=True)
    row = st.container(horizontal=True, vertical_alignment="bottom")
    model = row.radio("Model", ["mlp", "cnn"], horizontal=True, key="race_model", format_func=str.upper)
    steps = row.slider("Steps per contender", 10, MAX_STEPS, 500, step=10, key="race_steps", width=280)
    seed = int(row.number_input("Seed", 0, 2**31 - 1, 0, key="race_seed", width=130))
    read_only = runs.store_problem()  # the sidebar says so too
    why_not = read_only or ("Pick a race first." if choice is None else None)
    row.button(
        "Start the race", icon=":material/flag:", type="primary", key="race_start",
        on_click=_start, args=(contenders, model, steps, seed),
        disabled=why_not is not None, help=why_not,
    )  # fmt: skip
    error = st.session_state.pop(ERROR_KEY, None)
    if error:
        st.error(error)


_PICK = (
    "Pick a race above to see its contenders: **Optimizers** (SGD, SGD with momentum, Adam, AdamW), "
    "**Learning rates** (SGD with momentum at five rates) or **Batch sizes** (three), or **Custom** to write "
    "your own. Then start it."
)


def _custom() -> tuple[Contender, ...] | None:
    start = pd.DataFrame([vars(c) for c in READY["Optimizers"]], columns=COLUMNS)
    edited = st.data_editor(
        start, num_rows="dynamic", hide_index=True, key="race_custom",
        column_config={
            "optimizer": st.column_config.SelectboxColumn(options=list(OPTIMIZERS), required=True),
            "lr": st.column_config.NumberColumn("learning rate", min_value=1e-6, max_value=10.0, format="%g"),
            "momentum": st.column_config.NumberColumn(min_value=0.0, max_value=0.999, format="%g"),
            "weight_decay": st.column_config.NumberColumn("weight decay", min_value=0.0, max_value=1.0),
            "batch_size": st.column_config.NumberColumn("batch size", min_value=1, max_value=4096, step=1),
        },
    )  # fmt: skip
    try:
        return tuple(_contender(row) for row in edited.to_dict("records"))
    except (TypeError, ValueError) as exc:
        st.error(f"A row of the table is incomplete: {exc}")
        return None


def _contender(row: dict) -> Contender:
    label = str(row.get("label") or "").strip()[:40] or f"{row.get('optimizer')} lr={row.get('lr')}"
    return Contender(
        label, str(row["optimizer"]), float(row["lr"]), float(row.get("momentum") or 0.0),
        float(row.get("weight_decay") or 0.0), int(row["batch_size"]),
    )  # fmt: skip


def _table(contenders) -> pd.DataFrame:
    shown = {
        "label": "contender",
        "lr": "learning rate",
        "weight_decay": "weight decay",
        "batch_size": "batch size",
    }
    return pd.DataFrame([vars(c) for c in contenders], columns=COLUMNS).rename(columns=shown)


def _start(contenders, model: str, steps: int, seed: int) -> None:
    # The race chosen when Start was clicked: a click right after another choice comes with that choice,
    # before the page has redrawn the button with the new race's contenders.
    contenders = READY.get(st.session_state.get("race_choice"), contenders)
    if contenders is None:
        st.session_state[ERROR_KEY] = "Fix the table first: every contender needs an optimizer and a number."
        return
    try:
        config = RaceConfig(tuple(contenders), model=model, steps=steps, seed=seed)
        st.session_state[RACE_KEY] = runs.start(config, wait=True, **learners.start_fields())
    except StudioError as exc:  # a bad table, or the device is busy with a run or another race
        st.session_state[ERROR_KEY] = str(exc)


def shown_race() -> runs.RunInfo | None:
    """The race this session started or picked; else the newest in the store."""
    races = runs.list_races()
    if not races:
        return None
    by_id = {race.id: race for race in races}
    picked = st.session_state.get(RACE_KEY)
    if picked not in by_id:
        picked = races[0].id
    if len(races) > 1:
        picked = st.selectbox("Race to show", list(by_id), index=list(by_id).index(picked), key="race_pick",
                              format_func=lambda i: _race_label(by_id[i]), width=480)  # fmt: skip
    return by_id[picked]


def _race_label(race: runs.RunInfo) -> str:
    labels = ", ".join(c.label for c in race.config.contenders) if race.config else "?"
    return f"{race.id} · {race.status} · {labels}"[:90]


@st.fragment(run_every=1)
def live(race_id: str) -> None:
    """The race's curves, growing together; Stop while it runs, the table when it ends."""
    try:
        race = runs.get_run(race_id)
    except StudioError as exc:
        st.error(str(exc))
        return
    if race.config is None:
        st.error(race.error or "this race cannot be read")
        return
    labels = [c.label for c in race.config.contenders]
    rows = runs.read_metrics(race_id)
    where = runs.progress(race)  # what the sidebar reads too: "queued" until its worker takes it
    row = st.container(horizontal=True, vertical_alignment="center")
    said = "queued, waiting for its worker" if where.queued else race.status
    row.progress(where.fraction, text=f"{said} · step {where.step:,} of {where.total_steps:,}")
    if race.active:
        row.button("Stop", icon=":material/stop:", key="race_stop", on_click=runs.stop, args=(race_id,))
    chart(race_figure(rows, labels), key="race_chart", live=race.active)  # redrawn every second while it runs
    st.caption(LEGEND_HELP)
    if not race.active:
        _results(race)


def race_figure(rows: list[dict], labels: list[str]) -> dict:
    """One loss curve per contender over the steps; a contender that diverged stops where it blew up.

    Plain JSON, as the Train page's curves: st.plotly_chart takes it, and so does ui.live_chart."""
    traces = []
    for i, label in enumerate(labels):
        points = [(r["step"], loss) for r in rows if (loss := _loss(r, i)) is not None]
        traces.append({
            "type": "scatter", "x": [p[0] for p in points], "y": [p[1] for p in points], "name": label,
            "mode": "lines", "line": {"color": COLORS[i % len(COLORS)], "dash": DASHES[i % len(DASHES)]},
        })  # fmt: skip
    layout = {
        "title": {"text": "Batch loss, every contender on the same images"}, "height": 360,
        "xaxis": {"title": {"text": "step"}, "automargin": True},
        "yaxis": {"title": {"text": "loss (cross-entropy)"}, "automargin": True},
        "margin": {"l": 10, "r": 10, "t": 40, "b": 10},
        # Plotly's own legend clicks, said in the caption under the chart: one click hides or shows a line,
        # a double click shows it alone (and a second one all of them again).
        "legend": {"orientation": "h", "y": -0.25, "itemclick": "toggle", "itemdoubleclick": "toggleothers"},
        "uirevision": "race",
    }  # fmt: skip
    return {"data": traces, "layout": layout}


def _loss(row: dict, i: int) -> float | None:
    """Contender i's loss in a metrics row, if it is a number (None once it diverged)."""
    losses = row.get("losses")
    value = losses[i] if isinstance(losses, list) and i < len(losses) else None
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def _results(race: runs.RunInfo) -> None:
    try:
        data = runs.read_results(race.dir)
    except StudioError as exc:
        st.error(str(exc))
        return
    if data is None:
        st.info(race.error or "This race ended without results.")
        return
    table = pd.DataFrame(
        {
            "Contender": [r["label"] for r in data["results"]],
            "Final loss": [r["final_loss"] for r in data["results"]],
            "Test accuracy": [
                None if r["test_acc"] is None else r["test_acc"] * 100 for r in data["results"]
            ],
            "Note": [_note(r) for r in data["results"]],
        }
    )
    st.dataframe(
        table, hide_index=True,
        column_config={
            "Final loss": st.column_config.NumberColumn(format="%.4f", help="mean of the last batch losses"),
            "Test accuracy": st.column_config.ProgressColumn(format="%.1f%%", min_value=0, max_value=100),
        },
    )  # fmt: skip
    if data.get("stopped"):
        st.caption("Stopped early: the table is for the steps done.")


def _note(result: dict) -> str:
    if result.get("diverged_at") is not None:
        return f"diverged at step {result['diverged_at']}: the loss blew up"
    if result.get("test_acc") is not None and result["test_acc"] <= 0.15:
        return "no better than chance (10%): the steps were too large to learn"
    return ""


def limits_caption() -> None:
    st.caption(
        f"2 to {MAX_CONTENDERS} contenders, up to {MAX_STEPS:,} steps each. They start from the same initial "
        "weights and see the same images in the same order, taking turns one step each, so only the "
        "chosen difference separates their curves. A race trains in a worker, like a run: it goes on if "
        "you leave the page."
    )
