"""The Train page's words, and the same words wherever a training run is mentioned."""

import json
import os
import time

from streamlit.testing.v1 import AppTest

from core import runs
from core.base.procs import process_started
from core.data.fashion import PROJECT_ROOT
from core.runs import store as runstore
from core.training.config import TrainConfig

PAGES = PROJECT_ROOT / "pages"


def _training(store) -> str:
    """A run whose worker is this test process, so every page reads it as training."""
    directory = runs.create_run(TrainConfig(epochs=2, device="cpu"), store / "20260101-000000-a11e")
    me = os.getpid()
    runstore._write_status(
        directory, status="running", pid=me, pid_started=process_started(me), total_steps=10
    )
    row = {"kind": "batch", "epoch": 1, "step": 4, "loss": 1.0, "time": time.time()}
    (directory / "metrics.jsonl").write_text(json.dumps(row) + "\n")
    return directory.name


def test_home_and_quick_train_say_training_as_the_train_page_does(run_store):
    run_id = _training(run_store)
    home = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=60).run()
    assert not home.exception
    line = next(m.value for m in home.markdown if run_id in m.value)
    assert "**training** · epoch 1/2 · 40%" in line and "running" not in line
    predict = AppTest.from_file(str(PAGES / "Predict.py"), default_timeout=60).run()
    assert not predict.exception
    (bar,) = predict.get("progress")
    assert bar.text == f"Training run {run_id}: epoch 1/2 · 40%"  # no "⏳", which fonts draw as a box


def test_the_run_header_counts_in_words(run_store):
    for run_id, config in [("20260101-000000-0001", TrainConfig(epochs=1, limit_batches=5)),
                           ("20260101-000000-0002", TrainConfig(epochs=2, limit_batches=1))]:  # fmt: skip
        runstore._write_status(runs.create_run(config, run_store / run_id), status="finished")
    at = AppTest.from_file(str(PAGES / "Train.py"), default_timeout=60).run()
    header = "MLP (the tutorial's) · 2 epochs · SGD, lr 0.001, batch 64 · cap 1 batch per epoch"
    assert any(c.value.startswith(header) for c in at.caption)  # the newest run is shown
    at.session_state[at.dataframe[0].key] = {"selection": {"rows": [1], "columns": [], "cells": []}}
    at.run()
    assert any("· 1 epoch · SGD, lr 0.001, batch 64 · cap 5 batches per epoch" in c.value for c in at.caption)
    assert not any("epoch(s)" in c.value or "epoches" in c.value for c in at.caption)


def test_augmentation_from_the_transforms_page_is_said_in_words_in_the_form(run_store):
    at = AppTest.from_file(str(PAGES / "Train.py"), default_timeout=60)
    at.session_state["train_augment"] = {"hflip": 0.5, "rotate": 10.0}
    at.run()
    assert not at.exception
    said = [c.value for c in at.caption if "Transforms page:" in c.value]
    assert said == [
        "The tutorial preset with augmentation from the Transforms page: flip 50% · rotate ±10°.",
        ":material/input: From the Transforms page: flip 50% · rotate ±10°.",
    ]
    assert not at.toast  # the form itself says so: no toast that is gone before it is read
