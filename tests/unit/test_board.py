"""TensorBoard event files in the run folders (core.runs.board), read back with TensorBoard's own
EventAccumulator: the scalars are the run's metrics rows, learning-rate changes show, the hyperparameters
are there, a continued run's steps follow its parent's, and older runs get theirs from the command line."""

import os
import subprocess
import sys

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from core import runs
from core.data.fashion import PROJECT_ROOT
from core.runs import board
from core.training.config import TrainConfig
from tests.conftest import wait_for

CONFIG = TrainConfig(epochs=2, limit_batches=6, log_every=2, device="cpu", lr=0.01, optimizer="adam")


def _scalars(directory) -> dict[str, list[tuple[int, float]]]:
    events = EventAccumulator(str(directory))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def _hparams(directory) -> dict:
    """The hyperparameters add_hparams recorded (the HParams plugin's session start)."""
    events = EventAccumulator(str(directory))
    events.Reload()
    content = events.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    data = plugin_data_pb2.HParamsPluginData.FromString(content)
    values = data.session_start_info.hparams
    return {k: v.string_value or v.number_value for k, v in values.items()}


def _rows(run_id, runs_dir, kind):
    return [r for r in runs.read_metrics(run_id, runs_dir) if r["kind"] == kind]


def _close(actual: list[tuple[int, float]], expected: list[tuple[int, float]]) -> None:
    assert [s for s, _ in actual] == [s for s, _ in expected]
    assert [v for _, v in actual] == pytest.approx([v for _, v in expected], rel=1e-6)  # stored as float32


def test_a_runs_event_files_hold_its_metrics_and_hyperparameters(real_data, runs_dir):
    directory = runs.create_run(CONFIG, runs_dir / runs.new_run_id())
    assert runs.train_run(directory) == "finished"
    assert board.has_events(directory)
    scalars = _scalars(directory)
    batches, epochs = _rows(directory.name, runs_dir, "batch"), _rows(directory.name, runs_dir, "epoch")
    _close(scalars["train/loss_per_step"], [(r["step"], r["loss"]) for r in batches])
    for name, tag in (("train_loss", "train_loss"), ("train_acc", "train_accuracy"),
                      ("test_loss", "test_loss"), ("test_acc", "test_accuracy")):  # fmt: skip
        _close(scalars[f"epoch/{tag}"], [(r["epoch"], r[name]) for r in epochs])
    _close(scalars["train/learning_rate"], [(1, 0.01)])
    best = max(r["test_acc"] for r in epochs)
    assert scalars["hparam/best_test_accuracy"][0][1] == pytest.approx(best, rel=1e-6)
    assert scalars["hparam/last_test_loss"][0][1] == pytest.approx(epochs[-1]["test_loss"], rel=1e-6)
    hparams = _hparams(directory)
    assert hparams["optimizer"] == "adam" and hparams["lr"] == pytest.approx(0.01)
    assert hparams["batch_size"] == 64 and hparams["model"] == "mlp" and hparams["status"] == "finished"
    # A few percent of the run's disk at most: the checkpoint is what takes room.
    events = sum(p.stat().st_size for p in directory.iterdir() if p.name.startswith(board.EVENTS_PREFIX))
    total = sum(p.stat().st_size for p in directory.iterdir())
    assert events < 0.03 * total, (events, total)


def test_a_learning_rate_changed_mid_run_is_in_the_event_files(real_data, runs_dir):
    long = TrainConfig(epochs=20, limit_batches=400, log_every=1, device="cpu", batch_size=16)
    run_id = runs.start(long, runs_dir=runs_dir)
    try:
        assert wait_for(lambda: len(_rows(run_id, runs_dir, "batch")) >= 3)
        runs.set_lr(run_id, 0.2, runs_dir)
        assert wait_for(lambda: _rows(run_id, runs_dir, "lr"))
    finally:
        runs.stop(run_id, runs_dir)
    run = runs.wait(run_id, runs_dir, timeout=60)
    assert run.status == "stopped"
    (changed,) = _rows(run_id, runs_dir, "lr")
    lrs = _scalars(run.dir)["train/learning_rate"]
    _close(lrs, [(1, 1e-3), (changed["step"], 0.2)])
    assert _hparams(run.dir)["status"] == "stopped"


def test_a_continued_runs_steps_and_epochs_follow_its_parents(real_data, runs_dir):
    parent = runs.create_run(CONFIG, runs_dir / runs.new_run_id())
    assert runs.train_run(parent) == "finished"
    child = runs.create_run(CONFIG.replace(epochs=1), runs_dir / runs.new_run_id(), parent=parent.name)
    assert runs.train_run(child, init_from=parent / runs.CHECKPOINT) == "finished"
    scalars = _scalars(child)
    steps = [s for s, _ in scalars["train/loss_per_step"]]
    own = [r["step"] for r in _rows(child.name, runs_dir, "batch")]
    assert own[0] == 1 and steps == [12 + s for s in own]  # the parent trained 12 steps: 2 epochs of 6
    assert [s for s, _ in scalars["epoch/test_accuracy"]] == [3]
    assert [s for s, _ in scalars["train/learning_rate"]] == [13]


def test_older_runs_get_their_event_files_from_the_command_line(real_data, runs_dir, monkeypatch):
    monkeypatch.setenv(board.ENV, "0")  # runs made before runs wrote event files
    old = [runs.create_run(CONFIG, runs_dir / runs.new_run_id()) for _ in range(2)]
    for directory in old:
        assert runs.train_run(directory) == "finished"
        assert not board.has_events(directory)
    env = {k: v for k, v in os.environ.items() if k != board.ENV} | {"STUDIO_RUNS_DIR": str(runs_dir)}

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "core", "tensorboard", *args], cwd=PROJECT_ROOT, env=env,
                              capture_output=True, text=True, timeout=120, check=False)  # fmt: skip

    named = cli(str(old[0]))  # a run folder
    assert named.returncode == 0, named.stderr
    assert f"{old[0].name}: event files written" in named.stdout
    assert board.has_events(old[0]) and not board.has_events(old[1])
    every = cli()  # every run of the store that lacks them
    assert every.returncode == 0, every.stderr
    assert f"{old[0].name}: has its event files already" in every.stdout
    assert f"{old[1].name}: event files written" in every.stdout
    assert f"tensorboard --logdir {runs_dir}" in every.stdout
    scalars = _scalars(old[1])
    _close(
        scalars["train/loss_per_step"],
        [(r["step"], r["loss"]) for r in _rows(old[1].name, runs_dir, "batch")],
    )
    assert _hparams(old[1])["status"] == "finished"
    missing = cli("20990101-000000-dead")
    assert (
        missing.returncode == 1
        and missing.stderr.count("\n") == 1
        and "neither a run folder" in missing.stderr
    )
