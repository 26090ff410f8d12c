"""One run on several processes: real ranks (gloo on this CPU), real data, real run folders.

Each run goes through the project's own paths: core.runs.run_worker launches the ranks with torch's
launcher API exactly as `python -m core train --nproc N` and the dashboard do."""

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from core import runs
from core.base import errors as runs_errors
from core.base.errors import BadConfig
from core.data.fashion import TensorBatches
from core.model.checkpoint import load_checkpoint
from core.model.networks import NeuralNetwork
from core.runs import board
from core.training.config import preset
from core.training.ranks import check_processes, timeout_s
from core.training.train import evaluate, make_batches
from tests.conftest import rank_pids, wait_for

pytestmark = pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is missing")

ROOT = Path(__file__).resolve().parents[2]


def _train(runs_dir: Path, name: str, **overrides) -> Path:
    config = preset(
        "tutorial", **{"device": "cpu", "epochs": 1, "limit_batches": 20, "log_every": 1, **overrides}
    )
    directory = runs.create_run(config, runs_dir / name)
    status = runs.run_worker(directory)
    assert status == "finished", runs.read_status(directory).get("error")
    return directory


def _rows(directory: Path, kind: str) -> list[dict]:
    lines = (directory / "metrics.jsonl").read_text().splitlines()
    return [row for row in map(json.loads, lines) if row["kind"] == kind]


def test_shares_cover_every_global_batch_once_even_when_it_does_not_divide():
    images = torch.arange(103, dtype=torch.uint8).view(103, 1, 1).expand(103, 28, 28).contiguous()
    labels = torch.arange(103) % 10
    whole = TensorBatches(images, labels, batch_size=10, shuffle=True, seed=7)
    parts = [
        TensorBatches(images, labels, batch_size=10, shuffle=True, seed=7, rank=r, world=3) for r in range(3)
    ]
    for epoch in range(2):  # the second epoch's permutation must still agree across the ranks
        batches = [y for _x, y in whole]
        shares = [[y for _x, y in part] for part in parts]
        for i, batch in enumerate(batches):
            joined = torch.cat([shares[r][i] for r in range(3)])
            assert torch.equal(joined, batch), f"epoch {epoch}, batch {i}"
            assert parts[0].global_size(i) == len(batch)
    assert [len(y) for y in shares[0]][-1] + [len(y) for y in shares[2]][-1] <= 3  # the short last batch


def test_two_processes_log_the_losses_of_one_within_1e_5(real_data, runs_dir):
    one = _train(runs_dir, "one")
    two = _train(runs_dir, "two", processes=2)
    losses_one = [row["loss"] for row in _rows(one, "batch")]
    losses_two = [row["loss"] for row in _rows(two, "batch")]
    assert len(losses_one) == len(losses_two) == 20
    for step, (a, b) in enumerate(zip(losses_one, losses_two, strict=True), start=1):
        assert abs(a - b) <= 1e-5 * abs(a), f"step {step}: {a} vs {b}"
    epoch_one, epoch_two = _rows(one, "epoch")[0], _rows(two, "epoch")[0]
    assert epoch_two["test_acc"] == pytest.approx(epoch_one["test_acc"], abs=1e-4)
    assert json.loads((two / "config.json").read_text())["processes"] == 2
    # Rank 0 alone writes TensorBoard's files: one writer for the scalars, one for the hyperparameters,
    # each named for its process (rank 1 would add its own).
    events = [p.name for p in two.iterdir() if p.name.startswith(board.EVENTS_PREFIX)]
    assert len(events) == 2 and len({name.rsplit(".", 2)[1] for name in events}) == 1, events


def test_a_batch_that_does_not_split_evenly_still_matches_one_process(real_data, runs_dir):
    # 63 images per batch: shares of 32 and 31, so a plain mean per rank would weigh them wrongly.
    one = _train(runs_dir, "one", batch_size=63, limit_batches=8)
    two = _train(runs_dir, "two", batch_size=63, limit_batches=8, processes=2)
    for a, b in zip(_rows(one, "batch"), _rows(two, "batch"), strict=True):
        assert abs(a["loss"] - b["loss"]) <= 1e-5 * abs(a["loss"])


def test_the_checkpoint_is_the_plain_model_and_its_accuracy_is_that_of_all_test_images(real_data, runs_dir):
    two = _train(runs_dir, "two", processes=2)
    state = torch.load(two / "model.pth", weights_only=True)
    assert not any(key.startswith("module.") for key in state)
    tutorial = NeuralNetwork()  # the tutorial's two loading lines
    tutorial.load_state_dict(torch.load(two / "model.pth", weights_only=True))
    loaded = load_checkpoint(two / "model.pth").model
    _train_batches, test = make_batches(preset("tutorial"), torch.device("cpu"))
    result = evaluate(loaded, test)  # one process, all 10,000 images, the same weights
    epoch = _rows(two, "epoch")[0]
    assert result.acc == epoch["test_acc"]
    assert result.loss == pytest.approx(epoch["test_loss"], rel=1e-5)
    assert sum(map(sum, epoch["confusion"])) == 10_000
    assert evaluate(tutorial, test).acc == result.acc


def test_stop_ends_every_rank_and_leaves_a_loadable_checkpoint(real_data, runs_dir):
    config = preset("tutorial", device="cpu", epochs=50, processes=2)
    run_id = runs.start(config, runs_dir=runs_dir)
    directory = runs_dir / run_id
    assert wait_for(
        lambda: len(_rows(directory, "batch")) >= 3 if (directory / "metrics.jsonl").exists() else False
    )
    pids = rank_pids(run_id)
    assert sorted(pids) == [0, 1]
    runs.stop(run_id, runs_dir)
    run = runs.wait(run_id, runs_dir, timeout=60)
    assert run.status == "stopped", run.error
    assert load_checkpoint(directory / "model.pth").model is not None
    assert wait_for(lambda: not rank_pids(run_id), timeout=10)


def test_a_killed_rank_fails_the_run_by_name_and_keeps_the_last_checkpoint(real_data, runs_dir):
    config = preset("tutorial", device="cpu", epochs=50, limit_batches=40, processes=2)
    run_id = runs.start(config, runs_dir=runs_dir)
    directory = runs_dir / run_id
    assert wait_for(lambda: (directory / "metrics.jsonl").exists() and _rows(directory, "epoch"))
    saved = (directory / "model.pth").read_bytes()
    pids = rank_pids(run_id)
    os.kill(pids[1], signal.SIGKILL)
    run = runs.wait(run_id, runs_dir, timeout=90)
    assert run.status == "failed"
    assert "rank 1" in run.error and "SIGKILL" in run.error, run.error
    assert wait_for(lambda: not rank_pids(run_id), timeout=40), "a rank was left running"
    checkpoint = (directory / "model.pth").read_bytes()
    epochs = _rows(directory, "epoch")
    assert load_checkpoint(directory / "model.pth").model is not None
    assert checkpoint == saved or len(epochs) > 1  # the last good one: the first, or one saved since


def test_the_processes_a_machine_can_start_are_checked_before_anything_starts():
    cores = os.cpu_count() or 1
    check_processes(preset("tutorial", device="cpu", processes=cores))
    with pytest.raises(BadConfig, match=f"choose at most {cores}"):
        check_processes(preset("tutorial", device="cpu", processes=cores + 1))
    with pytest.raises(BadConfig, match="batch_size .* at least the number of processes"):
        preset("tutorial", batch_size=2, processes=3)


def _cli(*args, env=None, timeout=120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "core", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def test_the_cli_refuses_more_processes_than_cores_in_one_line(runs_dir):
    result = _cli("train", "--nproc", str((os.cpu_count() or 1) + 1), "--device", "cpu",
                  "--run-dir", str(runs_dir / "x"))  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0 and "choose at most" in result.stderr
    assert not (runs_dir / "x").exists()


def test_torchrun_runs_the_same_command_and_writes_one_run(real_data, runs_dir):
    torchrun = Path(sys.executable).with_name("torchrun")
    env = {**os.environ, "STUDIO_RUNS_DIR": str(runs_dir)}
    result = subprocess.run(
        [str(torchrun), "--standalone", "--nproc-per-node", "2", "-m", "core", "train", "--device", "cpu",
         "--epochs", "1", "--limit-batches", "5"],
        cwd=ROOT, capture_output=True, text=True, timeout=180, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    made = [p for p in runs_dir.iterdir() if not p.name.startswith(".")]
    assert len(made) == 1
    assert json.loads((made[0] / "config.json").read_text())["processes"] == 2
    assert runs.read_status(made[0])["status"] == "finished"
    assert result.stdout.count("finished:") == 1  # rank 0 alone speaks


def test_twenty_runs_in_a_row_exit_cleanly(real_data, runs_dir):
    """Gloo ranks sometimes crashed in the interpreter's teardown after the process group was destroyed
    (SIGABRT, "terminate called without an active exception"): the ranks now leave without it
    (core.base.procs.leave), after DDP is released and the group destroyed."""
    for i in range(20):
        result = _cli("train", "--nproc", "2", "--device", "cpu", "--epochs", "1", "--limit-batches", "2",
                      "--run-dir", str(runs_dir / f"r{i}"))  # fmt: skip
        assert result.returncode == 0, f"run {i}: exit {result.returncode}\n{result.stderr[-2000:]}"
        assert "terminate called" not in result.stderr and "SIGABRT" not in result.stderr, result.stderr
        assert runs.read_status(runs_dir / f"r{i}")["status"] == "finished"


def test_a_run_on_several_devices_holds_every_one_of_their_locks(runs_dir):
    """One rank per GPU: the run locks each GPU, so a one-GPU run cannot start on any of them meanwhile
    (keys as device_keys gives them for a 2-GPU run; the lock files do not need the GPUs)."""

    def refused(keys) -> bool:
        try:
            with runs.device_lock(keys, runs_dir, grace=0):
                return False
        except runs_errors.RunError:
            return True

    with runs.device_lock(["cuda:0", "cuda:1"], runs_dir) as fds:
        assert len(fds) == 2
        assert refused("cuda:0") and refused("cuda:1") and not refused("cuda:2")
    assert not refused("cuda:1")  # released with the run
    with runs.device_lock(["cuda:2"], runs_dir):
        assert refused(["cuda:3", "cuda:2"])
    assert not refused("cuda:3")  # a lock taken before the refusal was let go


def test_the_launcher_blames_the_rank_that_failed_first_not_the_ones_it_stopped(tmp_path):
    from torch.distributed.elastic.multiprocessing.errors import ProcessFailure

    from core.runs.launcher import _culprit
    from core.training.ranks import RankFailed

    made = iter(range(100))

    def failure(rank: int, pid: int, exitcode: int, error: str | None = None) -> ProcessFailure:
        error_file = tmp_path / f"error-{next(made)}.json"  # one per failure, as the agent gives each rank
        if error is not None:
            message = {"message": f"{RankFailed.__name__}: {error}", "extraInfo": {"timestamp": "1"}}
            error_file.write_text(json.dumps({"message": message}))
        return ProcessFailure(local_rank=rank, pid=pid, exitcode=exitcode, error_file=str(error_file))

    # rank 1 killed; rank 0 left on its own (exit 1, nothing reported), rank 2 stopped by the agent
    killed = {0: failure(0, 100, 1), 1: failure(1, 101, -signal.SIGKILL), 2: failure(2, 102, -signal.SIGTERM)}
    assert _culprit(killed) == "process rank 1 (pid 101) was killed by SIGKILL"
    # a rank that reported its own error is named with it, before one that a signal ended
    oom = "out of memory: lower the batch size"
    reported = {0: failure(0, 100, -signal.SIGSEGV), 1: failure(1, 101, 1, oom)}
    assert _culprit(reported) == f"process rank 1 (pid 101) failed: {oom}"
    # a rank that hung: rank 0 timed out on it and said so, then the agent killed it
    timed_out = "lost contact: Timed out waiting 10000ms"
    hung = {0: failure(0, 100, 1, timed_out), 1: failure(1, 101, -signal.SIGKILL)}
    assert _culprit(hung) == (
        "process rank 1 (pid 101) was killed by SIGKILL "
        "(rank 0 had lost contact with it: Timed out waiting 10000ms)"
    )
    # nobody died, the ranks could not reach each other
    apart = {0: failure(0, 100, 1, timed_out), 1: failure(1, 101, 1, timed_out)}
    assert _culprit(apart) == "the processes lost contact with each other (rank 0: Timed out waiting 10000ms)"
    # only ranks the agent stopped, or ranks that left after rank 0 recorded why: nobody to blame
    assert _culprit({0: failure(0, 100, 1), 1: failure(1, 101, -signal.SIGTERM)}) is None


def test_a_rank_that_hangs_times_out_and_no_rank_is_left(real_data, runs_dir, monkeypatch):
    """SIGSTOP: a rank that neither answers nor dies. The others give up after the collective timeout
    (5 s here, 120 s by default), torch's agent kills the hung one (after its own 30 s), and the run
    says which rank it was and what the others saw."""
    monkeypatch.setenv("STUDIO_DIST_TIMEOUT_S", "5")  # the worker and its ranks inherit it
    config = preset("tutorial", device="cpu", epochs=50, processes=2)
    run_id = runs.start(config, runs_dir=runs_dir)
    directory = runs_dir / run_id
    assert wait_for(lambda: (directory / "metrics.jsonl").exists() and len(_rows(directory, "batch")) >= 2)
    pids = rank_pids(run_id)
    os.kill(pids[1], signal.SIGSTOP)
    try:
        run = runs.wait(run_id, runs_dir, timeout=120)
        assert run.status == "failed"
        assert run.error.startswith("process rank 1") and "rank 0 had lost contact with it" in run.error, (
            run.error
        )
        assert "no answer within 5 s" in run.error  # gloo words the timeout several ways; we say it once
        assert wait_for(lambda: not rank_pids(run_id), timeout=10), "a rank was left running"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pids[1], signal.SIGKILL)


def test_a_timeout_is_said_plainly_however_gloo_words_it():
    from core.training.train import backend_words

    for said in (
        "[../third_party/gloo/gloo/transport/tcp/pair.cc:545] Timed out waiting 5000ms for recv operation",
        "[gloo/transport/tcp/unbound_buffer.cc:81] Application timeout caused pair closure",
    ):
        words = backend_words(RuntimeError(said))
        assert words.startswith(f"no answer within {timeout_s():g} s"), words
        assert "pair.cc" not in words and "unbound_buffer" not in words
    assert backend_words(RuntimeError("[pair.cc:1] Connection reset by peer")) == "Connection reset by peer"


BAD_TIMEOUTS = ("abc", "nan", "inf", "0", "-1", "1e9")


def timeout_error(text: str) -> str:
    return (
        f"STUDIO_DIST_TIMEOUT_S={text!r} is not a timeout: set it to a number of seconds from 1 to 86400 "
        "(default 120), or unset it"
    )


@pytest.mark.parametrize("text", BAD_TIMEOUTS)
def test_a_bad_timeout_setting_is_refused_in_words(text, monkeypatch):
    monkeypatch.setenv("STUDIO_DIST_TIMEOUT_S", text)
    with pytest.raises(
        BadConfig, match=r"^STUDIO_DIST_TIMEOUT_S=.* set it to a number of seconds from 1 to 86400"
    ):
        timeout_s()


def test_a_good_timeout_setting_is_taken_and_none_is_the_default(monkeypatch):
    monkeypatch.setenv("STUDIO_DIST_TIMEOUT_S", " 7.5 ")
    assert timeout_s() == 7.5
    monkeypatch.delenv("STUDIO_DIST_TIMEOUT_S")
    assert timeout_s() == 120


def test_a_bad_timeout_setting_does_not_break_the_import():
    env = {**os.environ, "STUDIO_DIST_TIMEOUT_S": "abc"}
    result = subprocess.run([sys.executable, "-c", "import core.runs.launcher"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.parametrize("text", ["abc", "inf", "-1"])
def test_the_cli_refuses_a_bad_timeout_setting_in_one_line_before_making_a_run(text, runs_dir):
    env = {**os.environ, "STUDIO_DIST_TIMEOUT_S": text, "STUDIO_RUNS_DIR": str(runs_dir)}
    result = _cli("train", "--nproc", "2", "--device", "cpu", "--epochs", "1", "--limit-batches", "2",
                  "--run-dir", str(runs_dir / "x"), env=env)  # fmt: skip
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.strip().count("\n") == 0, result.stderr[-2000:]
    assert result.stderr.startswith(f"error: STUDIO_DIST_TIMEOUT_S={text!r} is not a timeout")
    assert not (runs_dir / "x").exists()


def test_a_dashboard_run_with_a_bad_timeout_setting_fails_in_words_before_any_rank_starts(
    runs_dir, monkeypatch
):
    monkeypatch.setenv("STUDIO_DIST_TIMEOUT_S", "nan")
    directory = runs.create_run(preset("tutorial", device="cpu", processes=2), runs_dir / "r1")
    assert runs.run_worker(directory) == "failed"  # what the dashboard's worker runs
    run = runs.get_run("r1", runs_dir)
    assert (run.status, run.error) == ("failed", timeout_error("nan"))
    assert not (directory / "metrics.jsonl").exists()
