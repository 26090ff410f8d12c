"""Training faults end a run with a message in words and keep the last good checkpoint."""

import errno
import json
import tomllib

import pytest

from core import runs
from core.data.fashion import PROJECT_ROOT
from core.model import checkpoint
from core.model.checkpoint import load_checkpoint
from core.training.config import TrainConfig
from core.training.train import EpochEnd, Failed, fit
from tests.conftest import OutOfMemoryModel

GOOD = TrainConfig(epochs=1, limit_batches=20, device="cpu", log_every=10)


def _finished_run(runs_dir):
    directory = runs.create_run(GOOD, runs_dir / "r1")
    assert runs.train_run(directory) == "finished"
    return directory, (directory / runs.CHECKPOINT).read_bytes()


def _retry_with(directory, config: TrainConfig) -> None:
    """The same run directory trained again with another config, as "continue" would."""
    (directory / "config.json").write_text(json.dumps(config.to_dict()))


def test_a_finite_but_exploding_loss_is_reported_as_divergence(real_data):
    events = list(fit(GOOD.replace(optimizer="adam", lr=1000.0, limit_batches=200)))
    last = events[-1]
    assert isinstance(last, Failed), last
    assert last.error.startswith("diverged: loss is") and f"at step {last.step}" in last.error
    assert "lower the learning rate" in last.error
    assert not any(isinstance(e, EpochEnd) for e in events)


def test_divergence_keeps_the_last_good_checkpoint(real_data, runs_dir):
    directory, good = _finished_run(runs_dir)
    _retry_with(directory, GOOD.replace(lr=1e6, limit_batches=200))
    assert runs.run_worker(directory) == "failed"
    run = runs.get_run("r1", runs_dir)
    assert run.status == "failed" and run.error.startswith("diverged")
    assert (directory / runs.CHECKPOINT).read_bytes() == good
    load_checkpoint(directory / runs.CHECKPOINT)


def test_out_of_memory_asks_for_a_smaller_batch(real_data):
    last = list(fit(GOOD, model=OutOfMemoryModel()))[-1]
    assert isinstance(last, Failed)
    assert last.error == "out of memory: lower the batch size (or choose a smaller model)"


def test_disk_full_while_saving_fails_in_words_and_keeps_the_old_checkpoint(real_data, runs_dir, monkeypatch):
    directory, good = _finished_run(runs_dir)
    good_sidecar = (directory / "model.json").read_bytes()
    epoch_rows = [r for r in runs.read_metrics("r1", runs_dir) if r["kind"] == "epoch"]
    write = checkpoint.atomic_write_bytes

    def no_space_for_weights(path, data):  # the small sidecar fits; the weights do not
        if path.name == runs.CHECKPOINT:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        write(path, data)

    monkeypatch.setattr(checkpoint, "atomic_write_bytes", no_space_for_weights)
    assert runs.run_worker(directory) == "failed"
    run = runs.get_run("r1", runs_dir)
    assert run.status == "failed" and run.error.startswith("disk full")
    assert (directory / runs.CHECKPOINT).read_bytes() == good
    assert (directory / "model.json").read_bytes() == good_sidecar  # still describes the weights in place
    after = [r for r in runs.read_metrics("r1", runs_dir) if r["kind"] == "epoch"]
    assert after == epoch_rows  # the retry's epoch, whose weights could not be saved, is not listed
    monkeypatch.undo()
    assert load_checkpoint(directory / runs.CHECKPOINT).meta == json.loads(good_sidecar)


def test_server_config_keeps_its_protections():
    config = tomllib.loads((PROJECT_ROOT / ".streamlit" / "config.toml").read_text())
    server, client = config["server"], config["client"]
    assert server["enableXsrfProtection"] is True and server["enableCORS"] is True
    assert client["showErrorDetails"] in ("none", False)  # users see our messages, never a traceback
    assert 1 <= server["maxUploadSize"] <= 100  # MB: images and checkpoints only


@pytest.mark.parametrize("loss", [float("nan"), 5e4])
def test_divergence_message_names_the_loss(loss):
    from core.training.train import _Diverged

    text = str(_Diverged(7, loss))
    assert text.startswith("diverged: loss is ") and text.endswith("at step 7; lower the learning rate")
