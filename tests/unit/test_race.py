"""core.training.race: contenders start from identical weights, see identical images in the same order, and a
race reports each one's loss and accuracy (or where it diverged)."""

import time

import pytest
import torch

from core.base.errors import BadConfig
from core.training.race import (
    READY,
    Contender,
    RaceConfig,
    RaceFinished,
    RaceLogged,
    RaceStarted,
    prepare_runners,
    run_race,
)

DEVICE = torch.device("cpu")


def test_contenders_start_from_identical_weights(real_data):
    runners = prepare_runners(RaceConfig(READY["Optimizers"], model="cnn", seed=3), DEVICE)
    first = runners[0].model.state_dict()
    for runner in runners[1:]:
        assert runner.model is not runners[0].model
        assert all(torch.equal(first[k], v) for k, v in runner.model.state_dict().items())


def test_contenders_with_one_batch_size_see_identical_batches(real_data):
    runners = prepare_runners(RaceConfig(READY["Optimizers"]), DEVICE)
    for _ in range(5):
        batches = [r.batch_indices() for r in runners]
        assert all(torch.equal(batches[0], b) for b in batches[1:])


def test_other_batch_sizes_walk_the_same_images_in_the_same_order(real_data):
    small, big = prepare_runners(RaceConfig(READY["Batch sizes"][:2] + READY["Batch sizes"][2:]), DEVICE)[:2]
    seen_small = torch.cat([small.batch_indices() for _ in range(8)])  # 8 x 16
    seen_big = torch.cat([big.batch_indices() for _ in range(2)])  # 2 x 64
    assert torch.equal(seen_small, seen_big)


def test_the_race_seed_changes_the_start_but_not_the_sameness(real_data):
    a = prepare_runners(RaceConfig(READY["Optimizers"], seed=1), DEVICE)
    b = prepare_runners(RaceConfig(READY["Optimizers"], seed=2), DEVICE)
    weight = "linear_relu_stack.0.weight"
    assert not torch.equal(a[0].model.state_dict()[weight], b[0].model.state_dict()[weight])


def test_a_race_logs_every_contender_together_and_ends_with_a_table(real_data):
    config = RaceConfig(READY["Learning rates"], steps=60)
    events = list(run_race(config))
    assert isinstance(events[0], RaceStarted) and len(events[0].labels) == 5
    logged = [e for e in events if isinstance(e, RaceLogged)]
    assert [e.step for e in logged] == [1, 10, 20, 30, 40, 50, 60]
    assert all(len(e.losses) == 5 for e in logged)
    assert logged[0].losses[:4] == pytest.approx([logged[0].losses[0]] * 4)  # same weights, same batch
    finished = events[-1]
    assert isinstance(finished, RaceFinished) and not finished.stopped
    by_label = {r.label: r for r in finished.results}
    # lr 1 blows up: its loss jumps far above where it started and it learns nothing (10% is chance)
    peak = max(e.losses[4] for e in logged if e.losses[4] is not None)
    assert peak > 2 * logged[0].losses[4] and by_label["SGD lr=1 momentum=0.9"].test_acc <= 0.15
    assert 0.5 < by_label["SGD lr=0.01 momentum=0.9"].test_acc <= 1


def test_four_contenders_times_500_mlp_steps_within_30_s(real_data):
    start = time.perf_counter()
    finished = list(run_race(RaceConfig(READY["Optimizers"], steps=500)))[-1]
    took = time.perf_counter() - start
    print(f"4 contenders x 500 MLP steps: {took:.1f} s")
    assert all(r.test_acc > 0.7 for r in finished.results)
    assert took < 60  # the 30 s figure is measured by bench.race; this only catches a gross regression


def test_a_race_can_be_stopped():
    calls = []
    config = RaceConfig(READY["Optimizers"], steps=2000)
    events = list(run_race(config, should_stop=lambda: calls.append(1) or len(calls) > 3))
    assert events[-1].stopped and max(e.step for e in events if isinstance(e, RaceLogged)) == 1


@pytest.mark.parametrize(
    "changes",
    [
        {"contenders": READY["Optimizers"][:1]},
        {"contenders": READY["Learning rates"] + READY["Batch sizes"][:2]},
        {"steps": 2001},
        {"model": "resnet"},
        {"contenders": (Contender("a", lr=0.0), Contender("b"))},
        {"contenders": (Contender("a"), Contender("a"))},
        {"contenders": (Contender("a", optimizer="rmsprop"), Contender("b"))},
    ],
)
def test_bad_races_are_refused(changes):
    with pytest.raises(BadConfig):
        RaceConfig(**{"contenders": READY["Optimizers"], **changes})


def test_a_race_config_round_trips_through_json():
    config = RaceConfig(READY["Batch sizes"], model="cnn", steps=42, seed=5)
    assert RaceConfig.from_dict(config.to_dict()) == config
    with pytest.raises(BadConfig):
        RaceConfig.from_dict({"kind": "race", "contenders": [{"nonsense": 1}]})


def test_a_race_runs_in_a_worker_and_lands_in_the_run_store(real_data, runs_dir):
    from core import runs
    from core.base.errors import RunError
    from core.training.config import TrainConfig

    config = RaceConfig(READY["Optimizers"][:2], steps=30, device="cpu")
    race_id = runs.start(config, runs_dir=runs_dir)
    with pytest.raises(RunError, match="already training on cpu"):  # one thing at a time per device
        runs.start(TrainConfig(device="cpu", limit_batches=1, epochs=1), runs_dir=runs_dir)
    race = runs.wait(race_id, runs_dir, timeout=120)
    assert race.status == "finished", race.error
    assert [r.id for r in runs.list_races(runs_dir)] == [race_id]
    assert runs.list_runs(runs_dir) == []  # races are not training runs: no model.pth to offer
    rows = runs.read_metrics(race_id, runs_dir)
    assert [row["step"] for row in rows] == [1, 10, 20, 30] and all(len(row["losses"]) == 2 for row in rows)
    results = runs.read_results(race.dir)
    assert [r["label"] for r in results["results"]] == ["SGD", "SGD + momentum 0.9"]
    assert all(0 < r["test_acc"] <= 1 for r in results["results"]) and not results["stopped"]
    assert race.best_test_acc == max(r["test_acc"] for r in results["results"])


def test_a_race_can_be_stopped_from_the_store(real_data, runs_dir):
    from core import runs

    race_id = runs.start(RaceConfig(READY["Optimizers"], steps=2000, device="cpu"), runs_dir=runs_dir)
    wait_until = time.monotonic() + 60
    while not runs.read_metrics(race_id, runs_dir) and time.monotonic() < wait_until:
        time.sleep(0.1)
    runs.stop(race_id, runs_dir)
    race = runs.wait(race_id, runs_dir, timeout=120)
    assert race.status == "stopped"
    assert runs.read_results(race.dir)["stopped"] is True
