"""The CPU thread count follows the load: simulated speeds on a fake clock, then a real busy core."""

import subprocess
import sys
import time

import pytest
import torch

from core.base import threads as th
from core.base.threads import CpuThreads
from core.model.networks import build_model
from core.training.config import preset
from core.training.train import EpochEnd, build_optimizer, fit, make_batches, train_one_epoch

BATCH = 64


class Machine:
    """A fake clock whose training speed (samples/s) depends on the thread count and on `busy`."""

    def __init__(self):
        self.now = 0.0
        self.busy = False

    def clock(self) -> float:
        return self.now

    def speed(self, threads: int) -> float:
        if self.busy:  # another process on one core: two threads stall each other, one runs on
            return 6_000 if threads == 2 else 15_000
        return 30_000 if threads == 2 else 20_000


def _train(machine: Machine, governor: CpuThreads, seconds: float) -> list[int]:
    """Run batches for `seconds` of fake time; returns the thread count used for each batch."""
    used, end = [], machine.now + seconds
    while machine.now < end:
        used.append(governor.current)
        machine.now += BATCH / machine.speed(governor.current)
        governor.batch_done(BATCH)
    return used


@pytest.fixture
def machine():
    before = torch.get_num_threads()
    yield Machine()
    torch.set_num_threads(before)


def test_on_a_quiet_machine_all_threads_are_kept_and_other_counts_tried_rarely(machine):
    governor = CpuThreads(most=2, clock=machine.clock)
    used = _train(machine, governor, 300.0)
    share_fewer = used.count(1) / len(used)
    assert governor.current == 2 and governor.switches == 0
    assert 0 < share_fewer < 0.06  # a window now and then, to notice a load that was there from the start


def test_a_busy_core_moves_training_to_fewer_threads_and_back_when_it_is_gone(machine):
    governor = CpuThreads(most=2, clock=machine.clock)
    _train(machine, governor, 20.0)
    machine.busy = True
    used = _train(machine, governor, 60.0)
    assert governor.current == 1
    later = used[len(used) // 6 :]  # after the first 10 s
    assert later.count(1) / len(later) > 0.9
    assert torch.get_num_threads() == 1
    machine.busy = False
    _train(machine, governor, 200.0)  # a recheck finds all threads faster again
    assert governor.current == 2 and torch.get_num_threads() == 2


def test_a_load_present_from_the_start_is_found_by_the_periodic_try(machine):
    machine.busy = True
    governor = CpuThreads(most=2, clock=machine.clock)
    _train(machine, governor, 60.0)
    assert governor.current == 1


def test_one_thread_has_nothing_to_choose(machine):
    governor = CpuThreads(most=1, clock=machine.clock)
    assert not governor.active
    assert set(_train(machine, governor, 5.0)) == {1}


def test_fit_restores_the_thread_count_and_the_adapting_can_be_turned_off(real_data, monkeypatch):
    torch.set_num_threads(2)
    made = []
    real = th.CpuThreads

    def spy(*args, **kwargs):
        made.append(real(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr("core.training.train.CpuThreads", spy)
    config = preset("tutorial", epochs=1, limit_batches=30, device="cpu")
    assert any(isinstance(e, EpochEnd) for e in fit(config))
    assert len(made) == 1 and torch.get_num_threads() == 2
    list(fit(config, adapt_threads=False))
    assert len(made) == 1


@pytest.mark.skipif(torch.get_num_threads() < 2, reason="needs at least two CPU threads")
def test_a_real_busy_process_moves_a_real_run_to_fewer_threads(real_data):
    """A process spinning on one core while the MLP trains: the governor must give up a thread."""
    config = preset("tutorial", epochs=1, device="cpu")
    train, _ = make_batches(config, torch.device("cpu"))
    model = build_model("mlp")
    optimizer = build_optimizer(config, model.parameters())
    governor = CpuThreads()
    for _event in train_one_epoch(model, train, optimizer, threads=governor):
        pass  # a quiet epoch: the speed to compare with
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    # Slower now; one epoch is usually enough to notice and switch. On a noisy CI machine the first
    # probe can lose (the quiet epoch was itself slowed), so allow the periodic re-probe too: it comes
    # every PROBE_EVERY windows (~30 s); past 100 s without a switch the governor has failed.
    deadline = time.monotonic() + 100
    try:
        while not governor.switches and time.monotonic() < deadline:
            for _event in train_one_epoch(model, train, optimizer, threads=governor):
                if governor.switches or time.monotonic() > deadline:
                    break
    finally:
        hog.kill()
        hog.wait()
        governor.close()
    assert governor.current < governor.most and governor.switches >= 1
