"""The Train page with RAY_ADDRESS set: a run started from the form trains on a machine of a real Ray
cluster (ray.cluster_utils.Cluster: a head and a second node on this machine, one cluster for the module),
the page says where, its live view follows, Stop works; a run no machine can take says why and can be
cancelled."""

import json

import pytest
from streamlit.testing.v1 import AppTest

from core import runs
from core.data.fashion import PROJECT_ROOT
from core.runs import cluster
from tests.app.test_train_page import _fill
from tests.conftest import live_view, two_node_cluster, wait_for

PAGE = str(PROJECT_ROOT / "pages" / "Train.py")


@pytest.fixture(scope="module")
def ray_cluster():
    yield from two_node_cluster({"second": 1})


@pytest.fixture
def on_cluster(ray_cluster, monkeypatch):
    made, second = ray_cluster
    monkeypatch.setenv(cluster.ADDRESS_ENV, made.address)
    monkeypatch.setenv(cluster.RESOURCES_ENV, json.dumps({"second": 1}))
    return second


def _start(*, epochs: int, limit_batches: int) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    _fill(at, epochs=epochs, limit_batches=limit_batches, batch_size=16)  # the Train page tests' own filling
    at.button(key="train_start").click().run()
    assert not at.exception and not at.error
    return at


def test_a_run_started_on_the_page_trains_on_the_chosen_node(real_data, run_store, on_cluster):
    at = _start(epochs=30, limit_batches=2000)
    run_id = at.session_state["train_run_id"]
    try:
        assert wait_for(lambda: len(runs.read_metrics(run_id)) >= 3, timeout=120), runs.get_run(run_id)
        at.run()
        assert not at.exception
        node = runs.read_status(run_store / run_id)["node"]
        where = f"on node {node['ip']} ({on_cluster.node_id[:8]}), CPU"
        assert any(where in c.value for c in at.caption), [c.value for c in at.caption]
        # Every page's sidebar says where training runs go: the cluster, as the keeper last surveyed it.
        home = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=60).run()
        assert "Training runs go to" in [c.value for c in home.sidebar.caption]
        assert any(m.value.startswith("**Ray cluster at ") and "· 2 machines · 2 CPUs" in m.value
                   for m in home.sidebar.markdown)  # fmt: skip
        assert live_view(home.sidebar, "sidebar")["caption"] == "Training now"
        view = live_view(at, "run")
        assert view["text"].startswith("epoch 1/30 · 0% · step ") and "/60,000" in view["text"]
        assert view["charts"]["steps"]["data"][0]["x"][:3] == [1, 2, 3]
        at.button(key="train_stop").click().run()
        assert runs.wait(run_id, timeout=60).status == "stopped"
    finally:
        runs.stop(run_id)
        runs.wait(run_id, timeout=60)
    at.run()
    assert not at.exception
    assert any("Stopped before the end" in w.value for w in at.warning)
    assert (run_store / run_id / "model.pth").is_file()


def test_a_run_no_machine_can_take_waits_in_words_and_is_cancelled(
    real_data, run_store, on_cluster, monkeypatch
):
    monkeypatch.setenv(cluster.RESOURCES_ENV, json.dumps({"a-gpu-box": 1}))
    at = _start(epochs=1, limit_batches=3)
    run_id = at.session_state["train_run_id"]
    assert wait_for(lambda: runs.get_run(run_id).cluster_wait, timeout=120), runs.get_run(run_id)
    at.run()
    view = live_view(at, "run")
    assert view["text"] == (
        "waiting for the cluster: no machine of the cluster has the resource 'a-gpu-box' (1): "
        "waiting for one to join"
    )
    assert not [b for b in at.button if b.key == "train_stop"]
    assert any("status **waiting**" in c.value for c in at.caption)
    assert at.dataframe[0].value.set_index("id").loc[run_id, "status"] == "waiting"
    at.button(key="train_cancel").click().run()
    run = runs.wait(run_id, timeout=60)
    assert run.status == "stopped" and "cancelled while waiting for a machine of the cluster" in run.error
