"""A run whose files are damaged shows as damaged on every page, and the other runs as usual: one bad
run never takes a page down (TensorBoard's rule: one bad event file never hides the others)."""

import json

import pytest
from streamlit.testing.v1 import AppTest

from core import runs
from core.data.fashion import PROJECT_ROOT
from core.model.networks import build_model
from core.runs import execute
from core.runs import store as runstore
from core.training.config import TrainConfig
from tests.app.conftest import shown

APP = str(PROJECT_ROOT / "app.py")
GOOD_RUN = "20260101-000000-good"
CONFIG = TrainConfig(epochs=1, limit_batches=2, device="cpu")
# run id -> (file, what it holds); each once broke every page with "This app has encountered an error".
DAMAGED = {
    "20260102-000000-sarr": ("status.json", b"[]"),
    "20260102-000000-sutf": ("status.json", b'{"status": "fini\xff\xfe"}'),
    "20260102-000000-sdee": ("status.json", b"[" * 100_000),
    "20260102-000000-styp": ("status.json", b'{"status": "finished", "best_test_acc": "high"}'),
    "20260102-000000-carr": ("config.json", b"[]"),
    "20260102-000000-cutf": ("config.json", b"\xff\xfe"),
    "20260102-000000-cdee": ("config.json", b"{" * 50_000),
    "20260102-000000-slnk": ("status.json", b'{"status": "[Open the run](http://attacker.test/)"}'),
    "20260102-000000-sbig": ("status.json", b'{"status": "finished", "epoch": 1' + b"0" * 5000 + b"}"),
    "20260102-000000-cbig": ("config.json", b'{"epochs": 1' + b"0" * 400 + b"}"),
    "20260102-000000-cinf": ("config.json", b'{"lr": 1e400}'),
}
LINK = "20260102-000000-slnk"  # what the file holds reaches the page's text: a link in Markdown


def _no_link(markdown: str) -> bool:
    return "](" not in markdown.replace("\\]\\(", "")


ODD_METRICS = "20260103-000000-mets"  # valid status and config; metrics.jsonl lines that are no rows


def _good(store):
    directory = runs.create_run(CONFIG, store / GOOD_RUN)
    execute._save(directory, build_model("mlp"), CONFIG, None)  # a checkpoint the Predict page can offer
    rows = [
        {"kind": "batch", "epoch": 1, "step": 1, "loss": 2.3},
        {"kind": "epoch", "epoch": 1, "step": 2, "train_loss": 2.2, "train_acc": 0.2, "test_loss": 2.1,
         "test_acc": 0.3, "seconds": 1.0},
    ]  # fmt: skip
    (directory / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    runstore._write_status(
        directory, status="finished", epoch=1, step=2, best_test_acc=0.3, last_test_acc=0.3
    )


def _damaged(store, run_id):
    name, content = DAMAGED[run_id]
    directory = runs.create_run(CONFIG, store / run_id)
    (directory / name).write_bytes(content)


def _odd_metrics(store):
    directory = runs.create_run(CONFIG, store / ODD_METRICS)
    good = json.dumps({"kind": "epoch", "epoch": 1, "step": 2, "test_acc": 0.25, "test_loss": 2.0})
    (directory / "metrics.jsonl").write_text("\n".join(["1", "[]", good, '"x"', "null", "[" * 9_000]) + "\n")
    runstore._write_status(directory, status="stopped", epoch=1, step=2, best_test_acc=0.25)


@pytest.fixture
def damaged_store(run_store):
    _good(run_store)
    for run_id in DAMAGED:
        _damaged(run_store, run_id)
    _odd_metrics(run_store)
    return run_store


def _page(path: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60).run()
    if path is not None:
        at = at.switch_page(path).run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def _sidebar_warning(at: AppTest) -> str:
    return next(c.value for c in at.sidebar.caption if "Damaged run" in c.value)


@pytest.mark.parametrize("run_id", DAMAGED)
def test_home_lists_a_damaged_run_as_damaged_beside_the_good_one(real_data, run_store, run_id):
    _good(run_store)
    _damaged(run_store, run_id)
    at = _page()
    lines = {m.value.split("`")[1]: m.value for m in at.markdown if m.value.startswith("`")}
    assert "**damaged**" in lines[run_id] and DAMAGED[run_id][0] in shown(lines[run_id])
    assert "**finished**" in lines[GOOD_RUN] and "30.0%" in lines[GOOD_RUN]
    assert _no_link(lines[run_id]) and (run_id != LINK or "attacker.test" in shown(lines[run_id]))
    assert run_id in shown(_sidebar_warning(at))


def test_train_lists_every_damaged_run_with_what_is_wrong_and_the_others_as_usual(real_data, damaged_store):
    at = _page("pages/Train.py")
    table = at.dataframe[0].value
    status = dict(zip(table["id"], table["status"], strict=True))
    assert status[GOOD_RUN] == "finished" and status[ODD_METRICS] == "stopped"
    assert all(status[run_id] == "damaged" for run_id in DAMAGED)
    warnings = [w.value for w in at.warning]
    for run_id, (name, _content) in DAMAGED.items():
        assert any(shown(w).startswith(f"Run {run_id}: damaged run: {name}") for w in warnings), run_id
    assert all(_no_link(w) for w in warnings)


def _open_run(at: AppTest, run_id: str) -> AppTest:
    """Select one row of the runs table, as a click does, and rerun."""
    table = at.dataframe[0]
    row = list(table.value["id"]).index(run_id)
    at.session_state[table.key] = {"selection": {"rows": [row], "columns": [], "cells": []}}
    return at.run()


@pytest.mark.parametrize("run_id", [*DAMAGED, ODD_METRICS, GOOD_RUN])
def test_train_opens_any_run_of_the_store(real_data, damaged_store, run_id):
    at = _open_run(_page("pages/Train.py"), run_id)
    assert not at.exception, [e.message for e in at.exception]
    header = next(c.value for c in at.caption if "· status **" in c.value)
    assert at.subheader and any(s.value == f"Run {run_id}" for s in at.subheader)
    if run_id in DAMAGED:
        assert "status **damaged**" in header
        assert any(shown(e.value).startswith(f"damaged run: {DAMAGED[run_id][0]}") for e in at.error)
        assert all(_no_link(e.value) for e in at.error)
    else:
        assert "damaged" not in header and any(m.label == "Test acc." for m in at.metric)


@pytest.mark.parametrize("page", ["pages/Dataset_Explorer.py", "pages/Predict.py"])
def test_the_other_pages_show_and_say_which_run_is_damaged(real_data, damaged_store, page):
    at = _page(page)
    warning = shown(_sidebar_warning(at))
    assert all(run_id in warning for run_id in DAMAGED)
    if page.endswith("Predict.py"):  # the good run's model is still offered
        options = [o for box in at.selectbox for o in box.options]
        assert any(GOOD_RUN in o for o in options)
