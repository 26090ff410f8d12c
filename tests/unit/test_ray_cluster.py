"""Runs on a real Ray cluster: ray.cluster_utils.Cluster, two machines' worth of Ray on this one (a head
of 1 CPU, and a second node of 1 CPU with the custom resource "second" that steers a run there), one
cluster for the whole module. The run's keeper is the usual worker process; RAY_ADDRESS sends it there."""

import json
import subprocess
import sys

import pytest
import torch

from core import runs
from core.base.errors import RunError
from core.model.checkpoint import load_checkpoint
from core.runs import board, cluster, remote
from core.training.config import TrainConfig
from tests.conftest import two_node_cluster, wait_for
from tests.unit.test_checkpoint import NeuralNetwork

SECOND = {"second": 1}
QUICK = TrainConfig(epochs=2, limit_batches=12, log_every=3, device="cpu", seed=7)
LONG = TrainConfig(epochs=40, limit_batches=400, log_every=1, device="cpu", batch_size=16, seed=1)


@pytest.fixture(scope="module")
def ray_cluster():
    yield from two_node_cluster(SECOND)


@pytest.fixture
def on_cluster(ray_cluster, monkeypatch):
    """RAY_ADDRESS for this test's runs (their workers inherit it); the runs steered to the second node."""
    made, second = ray_cluster
    monkeypatch.setenv(cluster.ADDRESS_ENV, made.address)
    monkeypatch.setenv(cluster.RESOURCES_ENV, json.dumps(SECOND))
    return made, second


def _losses(run_id, runs_dir) -> list[float]:
    return [m["loss"] for m in runs.read_metrics(run_id, runs_dir) if m["kind"] == "batch"]


def test_a_run_trains_on_the_chosen_node_as_a_local_run_would(real_data, runs_dir, on_cluster, monkeypatch):
    _made, second = on_cluster
    run_id = runs.start(QUICK, runs_dir=runs_dir)
    run = runs.wait(run_id, runs_dir, timeout=180)
    assert run.status == "finished", run.error
    status = runs.read_status(run.dir)
    assert status["node"]["id"] == second.node_id  # steered by the custom resource
    assert run.where.startswith(f"on node {status['node']['ip']} ({second.node_id[:8]})")
    assert (runs_dir / cluster.CLUSTER_FILE).is_file()  # the keeper surveyed the cluster

    monkeypatch.delenv(cluster.ADDRESS_ENV)  # the same run, on this machine
    local_id = runs.start(QUICK, runs_dir=runs_dir)
    local = runs.wait(local_id, runs_dir, timeout=180)
    assert local.status == "finished", local.error
    assert "node" not in runs.read_status(local.dir)

    # The folder is a local run's: the same files, config, rows and numbers.
    def names(directory):  # TensorBoard's event files are named for their host, pid and time
        return sorted(
            "events" if p.name.startswith(board.EVENTS_PREFIX) else p.name for p in directory.iterdir()
        )

    assert names(run.dir) == names(local.dir) and "events" in names(run.dir)
    assert json.loads((run.dir / "config.json").read_text()) == QUICK.to_dict()
    rows, local_rows = runs.read_metrics(run_id, runs_dir), runs.read_metrics(local_id, runs_dir)
    assert [(r["kind"], r["step"]) for r in rows] == [(r["kind"], r["step"]) for r in local_rows]
    assert _losses(run_id, runs_dir) == pytest.approx(_losses(local_id, runs_dir), abs=1e-6)
    epochs = [r for r in rows if r["kind"] == "epoch"]
    local_epochs = [r for r in local_rows if r["kind"] == "epoch"]
    assert [r["test_loss"] for r in epochs] == pytest.approx([r["test_loss"] for r in local_epochs], abs=1e-6)
    assert (run.epoch, run.step, run.total_steps) == (local.epoch, local.step, local.total_steps)

    # Its model.pth loads in the tutorial's own class and predicts as the local run's does.
    tutorial = NeuralNetwork()
    tutorial.load_state_dict(torch.load(run.dir / "model.pth", weights_only=True))
    here = NeuralNetwork()
    here.load_state_dict(torch.load(local.dir / "model.pth", weights_only=True))
    x = torch.rand(5, 1, 28, 28)
    assert torch.allclose(tutorial(x), here(x), atol=1e-5)


def test_stop_a_new_learning_rate_and_continue_on_the_cluster(real_data, runs_dir, on_cluster, monkeypatch):
    run_id = runs.start(LONG, runs_dir=runs_dir)
    assert wait_for(lambda: len(_losses(run_id, runs_dir)) >= 3, timeout=120), runs.get_run(run_id, runs_dir)
    runs.set_lr(run_id, 0.05, runs_dir)
    assert wait_for(lambda: any(m["kind"] == "lr" for m in runs.read_metrics(run_id, runs_dir)), timeout=30)
    (changed,) = [m for m in runs.read_metrics(run_id, runs_dir) if m["kind"] == "lr"]
    assert changed["lr"] == pytest.approx(0.05)
    runs.stop(run_id, runs_dir)
    asked_at = runs.read_metrics(run_id, runs_dir)[-1]["step"]
    run = runs.wait(run_id, runs_dir, timeout=60)
    assert run.status == "stopped", run.error
    # Within a batch or so of the ask: the keeper passes it on within its next take (TAKE_S), and rows
    # already on their way are written too.
    assert run.step - asked_at <= 10
    loaded = load_checkpoint(run.checkpoint)
    assert loaded.meta["train_config"]["lr"] == pytest.approx(0.05)  # the checkpoint records the new rate

    # Continue: a new remote run from that checkpoint, its steps after its parent's.
    more = LONG.replace(epochs=1, limit_batches=4)
    next_id = runs.start(more, runs_dir=runs_dir, init_from=run.checkpoint)
    continued = runs.wait(next_id, runs_dir, timeout=180)
    assert continued.status == "finished", continued.error
    assert continued.parent == run_id
    assert runs.read_status(continued.dir)["node"]["id"] == on_cluster[1].node_id
    # It started from the checkpoint's weights: the same continuation on this machine logs the same losses.
    monkeypatch.delenv(cluster.ADDRESS_ENV)
    local_id = runs.start(more, runs_dir=runs_dir, init_from=run.checkpoint)
    assert runs.wait(local_id, runs_dir, timeout=180).status == "finished"
    assert _losses(next_id, runs_dir) == pytest.approx(_losses(local_id, runs_dir), abs=1e-6)


def test_a_run_no_machine_can_take_says_so_and_cancel_works(real_data, runs_dir, on_cluster, monkeypatch):
    monkeypatch.setenv(cluster.RESOURCES_ENV, json.dumps({"eight-gpu-box": 1}))
    run_id = runs.start(QUICK, runs_dir=runs_dir)
    assert wait_for(lambda: runs.get_run(run_id, runs_dir).cluster_wait, timeout=120)
    run = runs.get_run(run_id, runs_dir)
    assert (
        run.cluster_wait
        == "no machine of the cluster has the resource 'eight-gpu-box' (1): waiting for one to join"
    )
    assert runs.progress(run).waiting == run.cluster_wait
    with pytest.raises(RunError):
        runs.cancel(run_id, runs_dir, by="someone-else")  # only its owner (or the teacher)
    runs.cancel(run_id, runs_dir)
    run = runs.wait(run_id, runs_dir, timeout=60)
    assert run.status == "stopped" and "cancelled while waiting for a machine" in run.error
    assert run.checkpoint is None and not run.cluster_wait


def test_a_gpu_run_on_a_cluster_without_gpus_waits_with_words(real_data, runs_dir, on_cluster, monkeypatch):
    monkeypatch.delenv(cluster.RESOURCES_ENV)
    run_id = runs.start(QUICK.replace(device="cuda"), runs_dir=runs_dir)
    assert wait_for(lambda: runs.get_run(run_id, runs_dir).cluster_wait, timeout=120)
    assert runs.get_run(run_id, runs_dir).cluster_wait.startswith("no machine of the cluster has 1 GPU:")
    runs.stop(run_id, runs_dir)
    assert runs.wait(run_id, runs_dir, timeout=60).status == "stopped"


def test_a_lost_node_fails_the_run_naming_it_and_keeps_the_checkpoint(
    real_data, runs_dir, on_cluster, monkeypatch
):
    made, _second = on_cluster
    doomed = made.add_node(num_cpus=1, resources={"doomed": 1})
    made.wait_for_nodes()
    monkeypatch.setenv(cluster.RESOURCES_ENV, json.dumps({"doomed": 1}))
    run_id = runs.start(LONG.replace(limit_batches=20, log_every=5), runs_dir=runs_dir)
    assert wait_for(lambda: runs.get_run(run_id, runs_dir).epoch >= 1, timeout=120)
    made.remove_node(doomed)  # its raylet and workers killed, as a machine that goes down
    run = runs.wait(run_id, runs_dir, timeout=120)
    assert run.status == "failed"
    assert f"node {doomed.node_id[:8]}" in run.error and "was lost while training" in run.error
    assert "the last saved checkpoint is kept" in run.error
    loaded = load_checkpoint(run.checkpoint)
    assert loaded.meta["metrics"]["epoch"] >= 1
    NeuralNetwork().load_state_dict(torch.load(run.checkpoint, weights_only=True))


def test_the_cluster_places_follow_its_machines(ray_cluster, runs_dir, monkeypatch):
    made, _second = ray_cluster
    monkeypatch.setenv(cluster.ADDRESS_ENV, made.address)
    assert runs.device_keys(QUICK) == [cluster.CLUSTER_KEY]
    assert cluster.cluster_places(QUICK, runs_dir) == 1  # before any survey
    monkeypatch.setenv(cluster.ADDRESS_ENV, made.address)
    survey = subprocess.run(
        [
            sys.executable,
            "-c",
            f"from pathlib import Path; from core.runs import remote; "
            f"print(len(remote.survey(Path({str(runs_dir)!r}))))",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    nodes = int(survey.stdout.split()[-1])
    assert nodes >= 2
    assert cluster.cluster_places(QUICK, runs_dir) == nodes  # one CPU each, one run per CPU
    monkeypatch.setenv(cluster.RESOURCES_ENV, json.dumps(SECOND))
    assert cluster.cluster_places(QUICK, runs_dir) == 1  # only the second node has "second"


def test_an_unreachable_cluster_fails_the_run_in_one_line(real_data, runs_dir, monkeypatch):
    monkeypatch.setenv(cluster.ADDRESS_ENV, "127.0.0.1:9")  # discard: nothing listens
    run_id = runs.start(QUICK, runs_dir=runs_dir)
    run = runs.wait(run_id, runs_dir, timeout=60)
    assert run.status == "failed"
    assert run.error.startswith("the Ray cluster at 127.0.0.1:9 (RAY_ADDRESS) cannot be reached")
    assert "ray start --head" in run.error and "\n" not in run.error


def test_without_ray_address_ray_is_never_imported(real_data, runs_dir):
    program = (
        "import sys; from pathlib import Path; from core import runs, cli; import core.runs.dispatch; "
        "from core.training.config import TrainConfig; "
        f"root = Path({str(runs_dir)!r}); "
        "config = TrainConfig(epochs=1, limit_batches=2, device='cpu'); "
        "folder = runs.create_run(config, root / runs.new_run_id()); "
        "print(runs.run_worker(folder), 'ray' in sys.modules)"
    )
    env = {k: v for k, v in __import__("os").environ.items() if k != cluster.ADDRESS_ENV}
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=180, check=False, env=env
    )
    assert done.stdout.split()[-2:] == ["finished", "False"], done.stderr[-2000:]


def test_what_the_cluster_lacks_in_words():
    one_gpu = [{"resources": {"CPU": 8.0, "GPU": 1.0}}, {"resources": {"CPU": 4.0}}]
    assert cluster.missing({"CPU": 1.0, "GPU": 4.0}, one_gpu) == "no machine of the cluster has 4 GPUs"
    assert cluster.missing({"CPU": 1.0, "GPU": 1.0}, one_gpu) is None
    assert cluster.missing({"CPU": 6.0, "GPU": 1.0}, [{"resources": {"CPU": 4.0, "GPU": 1.0}},
                                                      {"resources": {"CPU": 8.0}}]) == (
        "no machine of the cluster has 6 CPUs and 1 GPU together"
    )  # fmt: skip
    assert cluster.missing({"CPU": 1.0}, []) == "the cluster has no machine"
    assert cluster.holds({"CPU": 2.0}, one_gpu) == 6
    assert cluster.holds({"CPU": 1.0, "GPU": 1.0}, one_gpu) == 1
    assert cluster.where_words({"ip": "10.0.0.7", "id": "3f2a9c1e77", "gpus": ["1"]}, "cuda:0") == (
        "on node 10.0.0.7 (3f2a9c1e), GPU 1"
    )
    assert cluster.where_words({"ip": "10.0.0.7", "id": "3f2a9c1e77", "gpus": []}, "cpu") == (
        "on node 10.0.0.7 (3f2a9c1e), CPU"
    )


def test_bad_cluster_settings_are_refused_in_words(monkeypatch):
    monkeypatch.setenv(cluster.RESOURCES_ENV, "[1]")
    with pytest.raises(Exception, match="JSON object of positive numbers"):
        cluster.custom_resources()
    monkeypatch.setenv(cluster.CPUS_ENV, "0")
    with pytest.raises(Exception, match="whole number from 1"):
        cluster.cpus()
    monkeypatch.setenv(cluster.ADDRESS_ENV, "ray://")
    with pytest.raises(RunError, match="names no machine"):
        remote.connect()


def test_the_queue_hands_runs_to_the_cluster_as_its_places_free(real_data, runs_dir, on_cluster, monkeypatch):
    made, second = on_cluster
    monkeypatch.delenv(cluster.RESOURCES_ENV)  # any machine: one run per CPU, so two at once
    remote_survey = [sys.executable, "-c", f"from pathlib import Path; from core.runs import remote; "
                     f"remote.survey(Path({str(runs_dir)!r}))"]  # fmt: skip
    subprocess.run(remote_survey, capture_output=True, timeout=120, check=True)
    assert cluster.cluster_places(QUICK, runs_dir) == 2
    ids = [runs.start(QUICK, runs_dir=runs_dir, wait=True, owner=f"learner{i}") for i in range(3)]
    place = runs.place_in_queue(ids[2], runs_dir)  # the first two took the cluster's two places
    assert place is not None and place.words.startswith("next in line for the Ray cluster (1 waiting)")
    done = [runs.wait(run_id, runs_dir, timeout=300) for run_id in ids]
    assert [r.status for r in done] == ["finished"] * 3, [r.error for r in done]
    statuses = [runs.read_status(r.dir) for r in done]
    assert {s["node"]["id"] for s in statuses} == {made.head_node.node_id, second.node_id}
    ends = sorted(runs.read_metrics(r.id, runs_dir)[-1]["time"] for r in done)
    last_started = max(s["started"] for s in statuses)
    assert last_started >= ends[0] - 0.5  # the third waited in the queue for a place of the cluster


def test_a_terminal_run_goes_to_the_cluster_and_says_where(real_data, runs_dir, on_cluster):
    done = subprocess.run(
        [sys.executable, "-m", "core", "train", "--epochs", "1", "--limit-batches", "5", "--device", "cpu"],
        capture_output=True, text=True, timeout=180, check=False,
        env={**__import__("os").environ, "STUDIO_RUNS_DIR": str(runs_dir)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    said = f"({on_cluster[1].node_id[:8]}), CPU"
    assert any(
        line.startswith("on the Ray cluster at ") and line.endswith(said) for line in done.stdout.splitlines()
    )
    (run,) = runs.list_runs(runs_dir)
    assert run.status == "finished" and runs.read_status(run.dir)["node"]["id"] == on_cluster[1].node_id
