"""Changing a running run's learning rate: the next step uses it, it is logged, bad values are refused."""

import json
import math

import pytest
import torch

from core import runs
from core.base.errors import BadConfig, RunError
from core.data.fashion import TensorBatches
from core.model.networks import build_model
from core.runs import store as runstore
from core.training.config import TrainConfig
from core.training.race import READY, RaceConfig
from core.training.train import LrChanged, _scheduler, build_optimizer, train_one_epoch
from tests.conftest import wait_for


def _batches() -> TensorBatches:
    g = torch.Generator().manual_seed(0)
    images, labels = torch.randint(0, 256, (64, 28, 28), generator=g), torch.arange(64) % 10
    return TensorBatches(images, labels, batch_size=8)


def _asking(at_call: int, value: float):
    calls = []

    def new_lr():
        calls.append(1)
        return value if len(calls) == at_call else None

    return new_lr


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_a_new_learning_rate_reaches_the_optimizer_at_the_next_step_and_is_announced(schedule):
    config = TrainConfig(lr=0.1, lr_schedule=schedule)
    model = build_model("mlp", hidden=16)
    optimizer = build_optimizer(config, model.parameters())
    scheduler = _scheduler(config, optimizer, total_steps=8)
    seen_lrs = []  # the learning rate each optimizer.step() used
    optimizer.register_step_pre_hook(lambda opt, _args, _kwargs: seen_lrs.append(opt.param_groups[0]["lr"]))
    run = train_one_epoch(model, _batches(), optimizer, scheduler=scheduler, log_every=100,
                          new_lr=_asking(3, 0.5))  # fmt: skip
    events = [e for e in run if isinstance(e, LrChanged)]
    assert events == [LrChanged(epoch=1, step=3, lr=0.5)]
    assert seen_lrs[:2] == pytest.approx([0.1 * _factor(schedule, s) for s in range(2)])
    assert seen_lrs[2:] == pytest.approx(
        [0.5 * _factor(schedule, s) for s in range(2, 8)]
    )  # the schedule goes on


def _factor(schedule: str, step: int, total: int = 8) -> float:
    return 1.0 if schedule == "constant" else 0.5 * (1 + math.cos(math.pi * step / total))


def test_a_running_run_takes_a_new_learning_rate_logs_it_and_saves_it(real_data, runs_dir):
    config = TrainConfig(epochs=2, limit_batches=300, device="cpu", log_every=10)
    run_id = runs.start(config, runs_dir=runs_dir)
    try:
        assert wait_for(lambda: runs.read_metrics(run_id, runs_dir), timeout=60)
        for bad in (0, -1.0, float("nan"), float("inf"), "fast", True, 1e9):
            with pytest.raises(BadConfig, match="the run goes on"):
                runs.set_lr(run_id, bad, runs_dir)
        assert runs.set_lr(run_id, 0.05, runs_dir) == 0.05
        assert wait_for(lambda: any(r.get("kind") == "lr" for r in runs.read_metrics(run_id, runs_dir)), 60)
    finally:
        run = runs.wait(run_id, runs_dir, timeout=300)
    assert run.status == "finished", run.error
    changes = [r for r in runs.read_metrics(run_id, runs_dir) if r.get("kind") == "lr"]
    assert len(changes) == 1 and changes[0]["lr"] == 0.05 and changes[0]["step"] > 1
    status = runs.read_status(run.dir)
    assert status["lr"] == 0.05 and status["lr_history"] == [[changes[0]["step"], 0.05]]
    sidecar = json.loads((run.dir / "model.json").read_text())
    assert sidecar["train_config"]["lr"] == 0.05  # a continuation starts from the last value
    with pytest.raises(RunError, match="not training"):
        runs.set_lr(run_id, 0.01, runs_dir)


def test_a_runs_current_learning_rate_is_its_last_change(tmp_path):
    directory = runs.create_run(TrainConfig(lr=0.002), tmp_path / "20260101-000000-beef")
    run = runs.get_run(directory.name, tmp_path)
    assert runs.current_lr(run) == 0.002 and runs.lr_history(run) == []
    runstore._write_status(directory, lr_history=[[40, 0.05], [90, 0.01]])
    assert runs.lr_history(run) == [(40, 0.05), (90, 0.01)] and runs.current_lr(run) == 0.01
    runstore._write_status(directory, lr_history="damaged")
    assert runs.current_lr(run) == 0.002  # a history that is not one is ignored


def test_a_learning_rate_asked_for_while_the_run_starts_is_applied_at_its_first_batch(real_data, runs_dir):
    directory = runs.create_run(TrainConfig(epochs=1, limit_batches=3, device="cpu", log_every=1),
                                runs_dir / "20260101-000000-soon")  # fmt: skip
    assert runs.set_lr(directory.name, 0.05, runs_dir) == 0.05  # queued: the page says it will apply
    assert runs.train_run(directory) == "finished"
    changes = [r for r in runs.read_metrics(directory.name, runs_dir) if r.get("kind") == "lr"]
    assert [c["lr"] for c in changes] == [0.05]
    assert runs.read_status(directory)["lr"] == 0.05


def test_a_learning_rate_for_a_race_or_of_thousands_of_digits_is_refused_in_words(runs_dir):
    race = runs.create_run(RaceConfig(READY["Optimizers"], device="cpu"), runs_dir / "20260101-000000-race")
    with pytest.raises(RunError, match="optimizer race"):
        runs.set_lr(race.name, 0.05, runs_dir)
    for huge in (10**20, 10**400, 10**5000):
        with pytest.raises(BadConfig, match="the run goes on"):
            runs.set_lr(race.name, huge, runs_dir)
