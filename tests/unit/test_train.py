import pytest
import torch
from torch import nn

from core.base.errors import BadConfig
from core.data.augment import Augment
from core.data.fashion import TensorBatches, load_split
from core.training.config import PRESETS, TrainConfig, preset
from core.training.train import (
    BatchLogged,
    EpochEnd,
    Failed,
    Finished,
    Started,
    Stopped,
    evaluate,
    fit,
    train_one_epoch,
)


def tiny(**changes) -> TrainConfig:
    return TrainConfig(epochs=1, limit_batches=5, log_every=2, device="cpu").replace(**changes)


def test_tutorial_preset_is_exactly_the_quickstart():
    c = PRESETS["tutorial"]
    assert (c.model, c.optimizer, c.lr, c.batch_size, c.epochs, c.momentum) == ("mlp", "sgd", 1e-3, 64, 5, 0)
    assert c.model_options() == {"hidden": 512, "dropout": 0.0}


def test_config_round_trips_through_a_dict():
    c = preset("recommended", model="cnn", augment=Augment(hflip=0.5, rotate=10))
    assert TrainConfig.from_dict(c.to_dict()) == c


@pytest.mark.parametrize(
    "changes",
    [{"epochs": 0}, {"lr": -1.0}, {"optimizer": "rmsprop"}, {"model": "vit"}, {"momentum": 1.5},
     {"batch_size": 0}, {"dropout": 1.0}],
)  # fmt: skip
def test_bad_config_is_refused_with_a_message(changes):
    with pytest.raises(BadConfig):
        TrainConfig(**changes)


def test_fit_yields_events_in_order(real_data):
    events = list(fit(tiny(epochs=2)))
    assert isinstance(events[0], Started) and events[0].total_steps == 10
    assert isinstance(events[-1], Finished) and events[-1].step == 10
    epochs = [e for e in events if isinstance(e, EpochEnd)]
    assert [e.epoch for e in epochs] == [1, 2]
    steps = [e.step for e in events if isinstance(e, BatchLogged)]
    assert steps == [1, 2, 4, 5, 6, 7, 9, 10]
    end = epochs[-1]
    assert 0 <= end.test_acc <= 1 and len(end.per_class_acc) == 10
    assert sum(map(sum, end.confusion)) == 10000


def test_fit_is_deterministic_on_cpu(real_data):
    def metrics():
        return [e for e in fit(tiny(optimizer="adam", dropout=0.2)) if isinstance(e, EpochEnd | BatchLogged)]

    a, b = metrics(), metrics()
    assert [(e.loss if isinstance(e, BatchLogged) else e.test_loss) for e in a] == [
        (e.loss if isinstance(e, BatchLogged) else e.test_loss) for e in b
    ]
    assert [e.confusion for e in a if isinstance(e, EpochEnd)] == [
        e.confusion for e in b if isinstance(e, EpochEnd)
    ]


def test_stop_flag_is_honoured_within_one_batch(real_data):
    calls = 0

    def should_stop():
        nonlocal calls
        calls += 1
        return calls > 3  # three batches run, the fourth check says stop

    events = list(fit(tiny(limit_batches=50), should_stop=should_stop))
    assert isinstance(events[-1], Stopped) and events[-1].step == 3
    assert not any(isinstance(e, EpochEnd) for e in events)


def test_nan_loss_fails_with_the_step(real_data):
    events = list(fit(tiny(lr=1e6, limit_batches=200, log_every=1000)))
    last = events[-1]
    assert isinstance(last, Failed)
    assert last.error.startswith("diverged: loss is") and f"at step {last.step}" in last.error


def test_learning_actually_happens(real_data):
    events = list(fit(tiny(optimizer="adam", lr=1e-3, limit_batches=100, batch_size=128)))
    end = next(e for e in events if isinstance(e, EpochEnd))
    assert end.test_acc > 0.7  # chance is 0.1


class _ModeProbe(nn.Module):
    """Records the mode and grad state it is called in."""

    def __init__(self):
        super().__init__()
        self.inner = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
        self.seen = []

    def forward(self, x):
        self.seen.append((self.training, torch.is_grad_enabled()))
        return self.inner(x)


def test_train_uses_train_mode_and_evaluate_uses_eval_without_grad(real_data):
    x, y = load_split("test")
    batches = TensorBatches(x, y, batch_size=500, limit_batches=2)
    probe = _ModeProbe()
    probe.eval()  # train_one_epoch must switch it back
    list(train_one_epoch(probe, batches, torch.optim.SGD(probe.parameters(), lr=0.1)))
    assert probe.seen == [(True, True), (True, True)]
    probe.seen.clear()
    result = evaluate(probe, batches)
    assert probe.seen == [(False, False), (False, False)]
    assert 0 <= result.acc <= 1


def test_augment_is_seeded_and_keeps_range():
    x = torch.rand(16, 1, 28, 28)
    aug = Augment(hflip=0.5, rotate=15, translate=0.1, scale=0.1, erase=0.5)
    a = aug(x, torch.Generator().manual_seed(3))
    b = aug(x, torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and a.shape == x.shape
    assert a.min() >= 0 and a.max() <= 1 and not torch.equal(a, x)
    assert torch.equal(Augment(hflip=1.0)(x, torch.Generator()), x.flip(-1))
    assert torch.equal(Augment()(x, torch.Generator()), x)
