"""Runs told apart: what differs as columns and legends, a name and note per run, a continued run's parent."""

import json

from streamlit.testing.v1 import AppTest

from core import runs
from core.data.augment import Augment
from core.data.fashion import PROJECT_ROOT
from core.runs import control
from core.runs import store as runstore
from core.training.config import PRESETS, TrainConfig

PAGE = str(PROJECT_ROOT / "pages" / "Train.py")


def _run(store, run_id: str, config: TrainConfig, *, parent: str | None = None, epochs_done: int = 2):
    directory = runs.create_run(config, store / run_id, parent=parent)
    runstore._write_status(directory, status="finished", best_test_acc=0.5, epoch=epochs_done, step=10)
    rows = [{"kind": "batch", "epoch": e, "step": 5 * e, "loss": 1.0} for e in range(1, epochs_done + 1)]
    rows += [{"kind": "epoch", "epoch": e, "step": 5 * e, "test_acc": 0.5, "test_loss": 1.0} for e in (1, 2)]
    (directory / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def _select(at: AppTest, rows: list[int]) -> AppTest:
    at.session_state[at.dataframe[0].key] = {"selection": {"rows": rows, "columns": [], "cells": []}}
    return at.run()


def _curves(at: AppTest, title: str) -> list[dict]:
    (chart,) = [json.loads(c.proto.spec) for c in at.get("plotly_chart") if title in c.proto.spec]
    return chart["data"]


def test_the_runs_table_has_a_column_for_each_setting_that_differs(run_store):
    _run(run_store, "20260101-000000-aaaa", PRESETS["tutorial"])
    _run(run_store, "20260101-000001-bbbb", PRESETS["tutorial"].replace(lr=0.01, limit_batches=100))
    _run(run_store, "20260101-000002-cccc", PRESETS["recommended"].replace(augment=Augment(hflip=0.5)))
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception
    table = at.dataframe[0].value
    for column in ("lr", "optimizer", "batch size", "cap", "augment", "preset", "weight decay", "dropout"):
        assert column in table.columns, column
    assert "model" not in table.columns and "seed" not in table.columns  # the same for every run
    assert list(table["lr"]) == [2e-3, 0.01, 1e-3]  # newest first, numbers so the column sorts
    assert list(table["preset"]) == ["recommended", "custom", "tutorial"]
    assert list(table["augment"]) == ["flip 50%", "none", "none"]

    at = _select(at, [1, 2])
    names = [c["name"] for c in _curves(at, "Test accuracy per epoch")]
    assert names == [
        "20260101-000001-bbbb · lr 0.01 · cap 100 · preset custom",
        "20260101-000000-aaaa · lr 0.001 · cap default · preset tutorial",
    ]


def test_a_run_keeps_the_name_and_note_it_is_given(run_store):
    _run(run_store, "20260101-000000-aaaa", TrainConfig(epochs=2))
    _run(run_store, "20260101-000001-bbbb", TrainConfig(epochs=2, lr=0.01))
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    at.text_input(key="train_name_20260101-000001-bbbb").input("faster lr").run()
    at.text_input(key="train_note_20260101-000001-bbbb").input("10x the tutorial's").run()
    assert not at.exception
    saved = json.loads((run_store / "20260101-000001-bbbb" / runs.LABEL_FILE).read_text())
    assert saved == {"name": "faster lr", "note": "10x the tutorial's"}
    run = runs.get_run("20260101-000001-bbbb")
    assert (run.name, run.note) == ("faster lr", "10x the tutorial's")

    at = AppTest.from_file(PAGE, default_timeout=60).run()  # a new session reads it from the run
    assert at.text_input(key="train_name_20260101-000001-bbbb").value == "faster lr"
    table = at.dataframe[0].value
    assert list(table["name"]) == ["faster lr", ""] and list(table["note"]) == ["10x the tutorial's", ""]
    at = _select(at, [0, 1])
    names = [c["name"] for c in _curves(at, "Test accuracy per epoch")]
    assert names == ["faster lr · lr 0.01", "20260101-000000-aaaa · lr 0.001"]


def test_a_continued_run_names_its_parent_and_numbers_its_epochs_on(run_store):
    _run(run_store, "20260101-000000-aaaa", TrainConfig(epochs=2))
    _run(run_store, "20260101-000001-bbbb", TrainConfig(epochs=2), parent="20260101-000000-aaaa")
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception
    assert any("Continues run **20260101-000000-aaaa**" in c.value for c in at.caption)
    assert list(at.dataframe[0].value["continues"]) == ["20260101-000000-aaaa", ""]
    (loss,) = [json.loads(c.proto.spec) for c in at.get("plotly_chart") if "Loss per epoch" in c.proto.spec]
    assert loss["data"][1]["x"] == [3, 4]  # the test curve, after the parent's 2 epochs
    steps = _curves(at, "Training loss per logged step")
    assert steps[0]["x"] == [15, 20]  # after the parent's 10 steps
    at = _select(at, [0, 1])
    curves = _curves(at, "Test accuracy per epoch")
    assert [c["x"] for c in curves] == [[3, 4], [1, 2]]


def test_a_run_started_from_a_checkpoint_of_the_store_records_it_as_its_parent(run_store):
    _run(run_store, "20260101-000000-aaaa", TrainConfig(epochs=2))
    assert control._parent_of(run_store / "20260101-000000-aaaa" / runs.CHECKPOINT, run_store) == (
        "20260101-000000-aaaa"
    )
    assert control._parent_of(run_store.parent / "elsewhere" / "model.pth", run_store) is None
