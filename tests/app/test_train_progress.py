"""Where a training run is: the live view, the runs table and the sidebar say it in the same words."""

import json
import os
import time

from streamlit.testing.v1 import AppTest

from core import runs
from core.base.procs import process_started
from core.data.fashion import PROJECT_ROOT
from core.runs import store as runstore
from core.training.config import TrainConfig
from tests.conftest import live_view
from ui import live_feed

PAGE = str(PROJECT_ROOT / "pages" / "Train.py")
RUN_ID = "20260101-000000-a11e"


def _training_run(store, rows: list[dict]):
    """A run whose worker is this test process (so it reads as training), 5 epochs of 400 steps."""
    directory = runs.create_run(TrainConfig(epochs=5, device="cpu"), store / RUN_ID)
    me = os.getpid()
    runstore._write_status(
        directory, status="running", pid=me, pid_started=process_started(me), total_steps=2000, epoch=2
    )
    (directory / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return runs.get_run(RUN_ID)


def _batch(step: int, seconds: float) -> dict:
    epoch = (step - 1) // 400 + 1
    return {"kind": "batch", "epoch": epoch, "step": step, "samples_per_s": 900.0, "time": seconds}


def _home() -> AppTest:
    return AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=60).run()


def test_the_live_view_the_runs_table_and_the_sidebar_agree(run_store):
    now = time.time()
    _training_run(run_store, [_batch(50, now - 30), _batch(950, now)])
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception
    assert live_view(at, "run")["text"].startswith("epoch 3/5 · 48% · step 950/2,000 · ")
    assert list(at.dataframe[0].value["progress"]) == ["epoch 3/5 · 48%"]
    home = _home()
    assert not home.exception
    assert live_view(home.sidebar, "sidebar")["sidebar_text"] == "MLP · epoch 3/5 · 48%"
    # and the feed, which both views ask once a second from then on (ui.live_feed), says the same
    answer = live_feed.snapshot(RUN_ID, have=0, log=False, charts_too=False)
    assert answer["text"].startswith("epoch 3/5 · 48% · step 950/2,000 · ")
    assert answer["sidebar_text"] == "MLP · epoch 3/5 · 48%"


def test_the_sidebar_says_a_run_is_stopping_once_stop_is_asked_until_its_worker_leaves(run_store):
    now = time.time()
    _training_run(run_store, [_batch(50, now - 30), _batch(950, now)])
    assert live_view(_home().sidebar, "sidebar")["caption"] == "Training now"
    before = live_feed.snapshot(RUN_ID, have=0, log=False, charts_too=False)["phase"]
    runs.stop(RUN_ID)
    assert live_view(_home().sidebar, "sidebar")["caption"] == "Stopping, saving a checkpoint"
    answer = live_feed.snapshot(RUN_ID, have=0, log=False, charts_too=False)
    assert answer["caption"] == "Stopping, saving a checkpoint"
    assert answer["phase"] != before  # so an open page runs again, and greys its Stop
    at = AppTest.from_file(PAGE, default_timeout=60).run()  # the Train page says the same, Stop greyed
    assert at.button(key="train_stop").disabled
    assert any(i.value.startswith("Stopping after the current batch") for i in at.info)


def test_a_running_optimizer_race_is_in_the_sidebar_with_a_link_to_its_page(run_store):
    from core.training.race import READY, RaceConfig

    directory = runs.create_run(RaceConfig(READY["Optimizers"], steps=5), run_store / RUN_ID)
    me = os.getpid()  # its worker is this test process, so it reads as running
    runstore._write_status(directory, status="running", pid=me, pid_started=process_started(me))
    home = _home()
    assert not home.exception
    assert "Optimizer race running" in [c.value for c in home.sidebar.caption]
    (opener,) = [p for p in home.sidebar.get("page_link") if p.proto.label == "Open the race"]
    assert opener.proto.page == "Optimization"
    runstore._write_status(directory, status="finished", pid=me, pid_started=process_started(me))
    assert "Optimizer race running" not in [c.value for c in _home().sidebar.caption]


def test_no_time_estimate_until_enough_steps_are_timed_then_the_pace_so_far(run_store):
    now = time.time()
    # The first logged rows carry the worker's warm-up: 1 s for 10 steps says nothing about the rest.
    run = _training_run(run_store, [_batch(10, now - 1), _batch(20, now)])
    where = runs.progress(run)
    assert where.eta_s is None
    (run.dir / "metrics.jsonl").open("a").write(json.dumps(_batch(210, now + 19)) + "\n")
    where = runs.progress(run)
    assert where.eta_s == (2000 - 210) * 20 / 200  # 0.1 s a step since the first row: 179 s
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert live_view(at, "run")["text"].endswith("about 2 min 59 s left")


def test_the_train_page_and_its_sidebar_read_the_same_progress_as_the_run_goes_on(run_store):
    now = time.time()
    run = _training_run(run_store, [_batch(50, now - 30), _batch(950, now)])
    at = _home().switch_page(PAGE).run()
    for step, said in ((950, "epoch 3/5 · 48%"), (1700, "epoch 5/5 · 85%")):
        if step != 950:
            (run.dir / "metrics.jsonl").open("a").write(json.dumps(_batch(step, now + 5)) + "\n")
            at.run()
        assert not at.exception
        page, side = live_view(at.main, "run"), live_view(at.sidebar, "sidebar")
        assert page["text"].startswith(f"{said} · step {step:,}/2,000")
        assert side["sidebar_text"] == f"MLP · {said}"
        assert side["fraction"] == page["fraction"]
        # From then on each view asks the feed every second, the same question, on the same second.
        answer = live_feed.snapshot(RUN_ID, have=0, log=False, charts_too=False)
        assert answer["text"] == page["text"] and answer["sidebar_text"] == side["sidebar_text"]
        assert page["every"] == side["every"] == 1


def test_a_queued_run_reads_queued_in_the_sidebar_and_the_live_view_and_a_running_one_comes_first(run_store):
    run = _training_run(run_store, [])
    runstore._write_status(run.dir, status="queued", total_steps=None)
    at = _home().switch_page(PAGE).run()
    assert not at.exception
    side = live_view(at.sidebar, "sidebar")
    assert side["caption"] == "Queued, waiting for its worker"
    assert side["sidebar_text"] == "MLP · queued, waiting for its worker"
    assert live_view(at.main, "run")["text"] == "queued, waiting for its worker"
    runstore._write_status(run.dir, status="running", total_steps=2000)  # its worker took it
    newer = runs.create_run(TrainConfig(epochs=1, device="cuda"), run_store / "20260101-000001-b0b0")
    me = os.getpid()
    runstore._write_status(newer, pid=me, pid_started=process_started(me))  # queued on another device
    home = _home()  # the newest active run is still queued: the one that trains is shown
    side = live_view(home.sidebar, "sidebar")
    assert side["caption"] == "Training now" and side["sidebar_text"] == "MLP · epoch 2/5 · 0%"
