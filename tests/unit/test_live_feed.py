"""The live view's feed (ui.live_feed): from the rows a browser has, what it lacks; the phase; a gone run."""

import json
import os

from core import runs
from core.base.procs import process_started
from core.runs import store as runstore
from core.training.config import TrainConfig
from ui import live_feed

RUN_ID = "20260101-000000-feed"


def _running(runs_dir, rows: list[dict]):
    directory = runs.create_run(TrainConfig(epochs=3, device="cpu"), runs_dir / RUN_ID)
    me = os.getpid()  # its worker is this test process: it reads as training
    started = process_started(me)
    runstore._write_status(directory, status="running", pid=me, pid_started=started, total_steps=300)
    _log(directory, rows)
    return directory


def _log(directory, rows: list[dict]) -> None:
    with (directory / "metrics.jsonl").open("a") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)


def _batch(step: int, loss: float) -> dict:
    epoch = 1 + (step - 1) // 100
    return {"kind": "batch", "epoch": epoch, "step": step, "loss": loss, "time": 1000.0 + step}


def _epoch(epoch: int) -> dict:
    losses = {"train_loss": 1.0 / epoch, "test_loss": 1.1 / epoch}
    accuracies = {"train_acc": 0.5 + epoch / 10, "test_acc": 0.45 + epoch / 10}
    return {"kind": "epoch", "epoch": epoch, "step": 100 * epoch, **losses, **accuracies, "seconds": 3.0}


def test_a_view_gets_only_the_points_added_since_what_it_has(runs_dir):
    directory = _running(runs_dir, [_batch(10, 2.3), _batch(20, 2.1)])
    first = live_feed.snapshot(RUN_ID, have=0, log=False, charts_too=True, runs_dir=runs_dir)
    assert first["rows"] == 2 and first["text"].startswith("epoch 1/3 · ")
    steps = first["charts"]["steps"]
    assert steps == {"from": [0], "x": [[10, 20]], "y": [[2.3, 2.1]]}  # from nothing: every point, as points
    _log(directory, [_batch(30, 1.9)])
    later = live_feed.snapshot(RUN_ID, have=2, log=False, charts_too=True, runs_dir=runs_dir)
    assert later["rows"] == 3 and later["charts"]["steps"] == {"from": [2], "x": [[30]], "y": [[1.9]]}
    full = live_feed.snapshot(RUN_ID, have=2, log=False, charts_too=True, full=True, runs_dir=runs_dir)
    assert full["charts"]["steps"]["figure"]["data"][0]["x"] == [10, 20, 30]  # a chart that missed an update
    assert "epoch_loss" not in later["charts"]  # no epoch scored yet


def test_the_first_scored_epoch_brings_its_charts_whole_and_does_not_change_the_phase(runs_dir):
    directory = _running(runs_dir, [_batch(10, 2.3)])
    before = live_feed.snapshot(RUN_ID, have=1, log=False, charts_too=True, runs_dir=runs_dir)
    _log(directory, [_epoch(1)])
    after = live_feed.snapshot(RUN_ID, have=1, log=False, charts_too=True, runs_dir=runs_dir)
    assert after["charts"]["epoch_loss"]["figure"]["data"][1]["y"] == [1.1]  # a new chart: its whole figure
    assert after["charts"]["epoch_acc"]["figure"]["layout"]["title"]["text"] == "Accuracy per epoch"
    assert (before["epochs"], after["epochs"]) == (0, 1)
    assert after["phase"] == before["phase"]  # the view adds the charts itself: no page run for that


def test_a_changed_learning_rate_sends_the_step_chart_whole_with_its_mark(runs_dir):
    directory = _running(runs_dir, [_batch(10, 2.3), _batch(20, 2.1)])
    _log(directory, [{"kind": "lr", "step": 20, "lr": 0.05, "time": 1021.0}, _batch(30, 1.5)])
    answer = live_feed.snapshot(RUN_ID, have=2, log=False, charts_too=True, runs_dir=runs_dir)
    figure = answer["charts"]["steps"]["figure"]  # the layout changed (a mark): not only new points
    assert [a["text"] for a in figure["layout"]["annotations"]] == ["lr 0.05"]


def test_the_phase_changes_when_the_run_ends_or_stop_is_asked_and_a_deleted_run_is_gone(runs_dir):
    directory = _running(runs_dir, [_batch(10, 2.3)])
    running = live_feed.snapshot(RUN_ID, have=0, log=False, charts_too=False, runs_dir=runs_dir)
    assert "charts" not in running and running["caption"] == "Training now"
    runs.stop(RUN_ID, runs_dir)
    stopping = live_feed.snapshot(RUN_ID, have=0, log=False, charts_too=False, runs_dir=runs_dir)
    assert stopping["phase"] != running["phase"] and stopping["caption"] == "Stopping, saving a checkpoint"
    runstore._write_status(directory, status="stopped")
    ended = live_feed.snapshot(RUN_ID, have=0, log=False, charts_too=False, runs_dir=runs_dir)
    assert ended["phase"] not in (running["phase"], stopping["phase"]) and not ended["active"]
    for missing in ("20260101-000000-none", "../../etc"):  # deleted, or not a run of the store at all
        answer = live_feed.snapshot(missing, have=0, log=False, charts_too=True, runs_dir=runs_dir)
        assert answer == {"gone": True}


def test_the_feed_route_sits_under_the_apps_base_path():
    assert live_feed.url("r1") == "/studio/live/r1"
    assert live_feed.url("r1", "/lab/") == "/lab/studio/live/r1"
    (route,) = live_feed.routes("lab")
    assert route.path == "/lab/studio/live/{run_id}"
