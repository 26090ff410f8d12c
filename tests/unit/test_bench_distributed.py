"""bench.distributed's steady training rate, from metrics.jsonl rows (the benchmark itself is not a test)."""

import pytest

from bench.distributed import steady_rate


def _batch(step: int, time: float, epoch: int = 1, samples_per_s: float = 1.0) -> dict:
    return {"kind": "batch", "epoch": epoch, "step": step, "loss": 2.3, "samples_per_s": samples_per_s,
            "time": time}  # fmt: skip


def test_the_rate_runs_from_the_first_logged_step_to_the_last():
    # Step 1 ends at t=10 (start-up and the warm-up batch before it are not counted); 99 batches of 64
    # follow in 4 s.
    rows = [_batch(1, 10.0, samples_per_s=5.0), _batch(50, 12.0), _batch(100, 14.0)]
    assert steady_rate(rows, 64) == pytest.approx(99 * 64 / 4.0)


def test_only_the_first_epochs_batches_count_and_other_rows_are_skipped():
    rows = [
        _batch(1, 0.0),
        {"kind": "lr", "epoch": 1, "step": 20, "lr": 0.1, "time": 0.5},
        _batch(50, 1.0),
        {"kind": "epoch", "epoch": 1, "step": 50, "time": 30.0},  # the test pass lies between the epochs
        _batch(51, 31.0, epoch=2),
        _batch(100, 32.0, epoch=2),
    ]
    assert steady_rate(rows, 10) == pytest.approx(49 * 10 / 1.0)


def test_the_epochs_last_batch_counts_only_the_images_left():
    # 60,000 images in batches of 64: 937 full ones and a last of 32, logged at step 938.
    rows = [_batch(1, 0.0), _batch(900, 1.0), _batch(938, 2.0)]
    assert steady_rate(rows, 64) == pytest.approx((60_000 - 64) / 2.0)
    assert steady_rate(rows, 64, num_samples=100_000) == pytest.approx(937 * 64 / 2.0)


@pytest.mark.parametrize(
    "rows",
    [
        [],
        [_batch(1, 0.0)],  # one logged step: no stretch to time
        [_batch(1, 0.0), _batch(2, 0.0, epoch=2)],
        [_batch(1, 5.0), _batch(50, 5.0)],  # no time between them
    ],
)
def test_too_little_to_time_is_an_error_not_a_number(rows):
    with pytest.raises(ValueError):
        steady_rate(rows, 64)
