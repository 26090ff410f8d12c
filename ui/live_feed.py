"""The live view's feed: what a browser tab watching a run asks for every second, over plain HTTP.

Every Streamlit script run, a fragment's too, re-renders the whole page in the browser: at one a second,
that alone cost Chromium 0.1 to 0.2 of a core while a run trained, on the 2-core machine the run trains
on (bench.ui_speed). So a running run's view is a component (ui.live_run) that asks this route for what
changed, once a second, and draws it itself: the progress, and only the points its charts lack. The
page is run again only when something else changes (its `phase`: the run starts, ends, or finishes an
epoch; Stop is asked), so that the runs table, the buttons and the finished view follow.

The route is served beside Streamlit's own (serve.py, through st.App's routes), answers only the host
names Streamlit's websocket answers (server.allowedHosts: no DNS rebinding), with no CORS header (no
other site's script may read it), and only reads the run store.
"""

import threading
from collections import OrderedDict

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from streamlit.web.server.starlette.starlette_websocket import is_host_allowed

from core import runs
from core.base.errors import StudioError
from core.training import analysis
from core.training.race import RaceConfig
from ui import charts

PATH = "/studio/live/{run_id}"
_READERS_KEPT = 32  # incremental metrics readers kept in the server, one per run watched lately


# ---- the words every view of a run uses ----------------------------------------------------------------


def progress_text(where: runs.Progress, place: runs.Place | None = None) -> str:
    """The live view's progress line: the words every view uses (runs.Progress.label), then the detail.
    `place`: a run waiting in the queue, where it is in line (core.runs.queue)."""
    if place is not None:
        return f"queued: {place.words}"
    if where.queued:
        return where.label
    if where.waiting:
        return f"waiting for the cluster: {where.waiting}"
    if not where.total_steps:  # the worker has not loaded the data yet
        return "starting the worker…"
    parts = [where.label, f"step {where.step:,}/{where.total_steps:,}"]
    if where.samples_per_s:
        parts.append(f"{where.samples_per_s:,.0f} samples/s")
    if where.eta_s is not None:
        parts.append(f"about {duration(where.eta_s)} left")
    return " · ".join(parts)


def sidebar_words(
    run: runs.RunInfo, where: runs.Progress, place: runs.Place | None = None
) -> tuple[str, str]:
    """The sidebar's caption and progress text for a training run."""
    model = run.config.model.upper() if run.config else "run"
    if place is not None:
        return "Queued: the device is busy", f"{model} · {place.words}"
    if where.queued:
        caption = "Queued, waiting for its worker"
    elif where.waiting:
        caption = "Waiting for a machine of the cluster"
    elif runs.stop_asked(run):  # Stop was clicked: the worker saves a checkpoint, then leaves
        caption = "Stopping, saving a checkpoint"
    else:
        caption = "Training now"
    return caption, f"{model} · {where.label}"  # the Train page's words (runs.Progress)


def words(run: runs.RunInfo, where: runs.Progress) -> dict:
    """What every view of a training run says of its progress: the live view's line, the sidebar's."""
    place = runs.place_in_queue(run.id, run.dir.parent) if where.queued else None
    caption, sidebar_text = sidebar_words(run, where, place)
    text = progress_text(where, place)
    return {"fraction": where.fraction, "text": text, "caption": caption, "sidebar_text": sidebar_text,
            "waiting": place is not None or bool(where.waiting)}  # fmt: skip


def duration(seconds: float) -> str:
    seconds = round(seconds)
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


# ---- what the page was drawn with, and what changed since ----------------------------------------------


def phase(run: runs.RunInfo) -> str:
    """What the page's own elements show of the run: when it changes, the page is run again at once.

    (Not the epochs scored: the view adds its epoch charts by itself, and the runs table, which shows them
    too, is drawn again at most every EPOCHS_EVERY_S: ui.live_run.)"""
    return f"{run.status}|{runs.stop_asked(run)}|{bool(run.cluster_wait)}|{run.where}"


def epochs_scored(rows: list[dict]) -> int:
    return len(analysis.epoch_rows(rows))


def figures(rows: list[dict], run_id: str, *, log: bool) -> dict[str, dict]:
    """The live view's charts by key, from the run's rows (already shifted: analysis.shift)."""
    shown = {"steps": charts.step_loss(rows, run_id, log=log)}
    if analysis.epoch_rows(rows):
        shown["epoch_loss"] = charts.epoch_loss(rows, run_id, log=log)
        shown["epoch_acc"] = charts.epoch_accuracy(rows, run_id)
    return shown


def tails(old: dict, new: dict) -> dict | None:
    """The points added to the end of each trace of `old` to make `new`; None if anything else differs.

    {"from": [n, ...], "x": [[...], ...], "y": [[...], ...]}: "from" says how many points each line must
    already have, so that a chart that missed an update asks for the whole figure rather than draw a gap."""
    if old["layout"] != new["layout"] or len(old["data"]) != len(new["data"]):
        return None
    added = {"from": [], "x": [], "y": []}
    for was, now in zip(old["data"], new["data"], strict=True):
        n = len(was.get("x", ()))
        same = {k: v for k, v in was.items() if k not in "xy"} == {
            k: v for k, v in now.items() if k not in "xy"
        }
        if not (
            same
            and _starts(now.get("x", []), was.get("x", []), n)
            and _starts(now.get("y", []), was.get("y", []), n)
        ):
            return None
        added["from"].append(n)
        added["x"].append(list(now.get("x", []))[n:])
        added["y"].append(list(now.get("y", []))[n:])
    return added


def _starts(values, prefix, n: int) -> bool:
    return len(prefix) == n and len(values) >= n and list(values[:n]) == list(prefix)


# ---- one answer --------------------------------------------------------------------------------------------

_readers: OrderedDict = OrderedDict()  # run dir -> (lock, analysis.MetricsReader)
_readers_lock = threading.Lock()


def rows_of(run: runs.RunInfo) -> list[dict]:
    """The run's rows so far, read incrementally: each request parses only the lines added since."""
    with _readers_lock:
        entry = _readers.pop(run.dir, None) or (
            threading.Lock(),
            analysis.MetricsReader(run.dir / "metrics.jsonl"),
        )
        _readers[run.dir] = entry
        while len(_readers) > _READERS_KEPT:
            _readers.popitem(last=False)
    lock, reader = entry
    with lock:
        return list(reader.update())


def snapshot(
    run_id: str, *, have: int, log: bool, charts_too: bool, full: bool = False, runs_dir=None
) -> dict:
    """What a view of run `run_id` needs to catch up, having drawn its charts from its first `have` rows.

    {"gone": True} for a run that no longer exists. Otherwise the run's "phase", its progress (the live
    view's line and the sidebar's words), "rows" (how many the charts now show) and, with charts_too, for
    each chart either the points to add ({"from", "x", "y"}) or, when more than the ends of its lines
    changed (or `full`), the whole figure ({"figure"})."""
    try:
        run = runs.get_run(run_id, runs_dir)
    except (StudioError, OSError):
        return {"gone": True}
    where = runs.progress(run)
    rows = rows_of(run)
    answer = {"phase": phase(run), "epochs": epochs_scored(rows), "active": run.active}
    if isinstance(run.config, RaceConfig):
        return answer | {"fraction": where.fraction}
    answer |= words(run, where)
    if charts_too:
        shifted = analysis.shift(rows, *runs.lineage_offset(run))
        now = figures(shifted, run.id, log=log)
        before = {} if full else figures(shifted[: max(0, min(have, len(shifted)))], run.id, log=log)
        answer["rows"] = len(shifted)
        answer["charts"] = {}
        for key, figure in now.items():
            added = tails(before[key], figure) if key in before else None
            answer["charts"][key] = {"figure": figure} if added is None else added
    return answer


def _endpoint(request: Request) -> JSONResponse:
    # Streamlit's own rule for its websocket: a page on another name that resolves here gets nothing.
    if not is_host_allowed(request.headers.get("host")):
        return JSONResponse({"error": "host not allowed"}, status_code=403)
    query = request.query_params
    try:
        have = max(0, int(query.get("rows", "0")))
    except ValueError:
        return JSONResponse({"error": "rows is a number"}, status_code=400)
    answer = snapshot(
        request.path_params["run_id"],
        have=have,
        log=query.get("log") == "1",
        charts_too=query.get("charts") == "1",
        full=query.get("full") == "1",
    )
    return JSONResponse(answer, headers={"Cache-Control": "no-store"})


def routes(base_url: str = "") -> list[Route]:
    """The feed's route, for st.App (serve.py); `base_url`: server.baseUrlPath, if the app has one."""
    prefix = f"/{base_url.strip('/')}" if base_url.strip("/") else ""
    return [Route(prefix + PATH, _endpoint, methods=["GET"])]


def url(run_id: str, base_url: str = "") -> str:
    """The feed's address for a run, as the page's script asks for it (same origin)."""
    prefix = f"/{base_url.strip('/')}" if base_url.strip("/") else ""
    return prefix + PATH.format(run_id=run_id)
