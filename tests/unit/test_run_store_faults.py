"""The run store against damaged files and folders that are not runs: one bad run never hides the
others, a worker never writes outside a run it was given, and a folder deleted mid-run stops its worker."""

import errno
import json
import os
import shutil
import signal

import pytest

from core import runs
from core.base import fsutil
from core.base.errors import RunError
from core.base.procs import pid_alive
from core.base.runfiles import MAX_DEPTH, DamagedRunFile, is_run_id, parse_row, read_object
from core.model.checkpoint import load_checkpoint
from core.runs import execute
from core.runs import store as runstore
from core.training.config import TrainConfig
from core.training.train import EpochEnd
from tests.conftest import wait_for

QUICK = TrainConfig(epochs=1, limit_batches=3, log_every=1, device="cpu")
TWO_EPOCHS = TrainConfig(epochs=2, limit_batches=2, log_every=1, device="cpu")
LONG = TrainConfig(epochs=50, limit_batches=500, log_every=1, device="cpu", batch_size=16)

# What a damaged run file may hold, each a way json.loads or the code after it used to fail.
DAMAGE = {
    "array": b"[]",
    "number": b"1",
    "not utf-8": b'{"status": "fin\xff\xfeshed"}',
    "deep": b"[" * 100_000,
    "not json": b'{"status": ',
    "wrong type": b'{"status": "finished", "epoch": "three"}',
    "unknown status": b'{"status": "exploded"}',
    # json.loads raises ValueError past 4300 digits; 10**400 overflowed math.isfinite (OverflowError).
    "5000 digits": b'{"status": "finished", "epoch": 1' + b"0" * 5000 + b"}",
    "400 digits": b'{"status": "finished", "epochs": 1' + b"0" * 400 + b', "step": 1' + b"0" * 400 + b"}",
    "beyond a float": b'{"status": "finished", "best_test_acc": 1e400, "lr": 1e400}',
}


def _two_runs(runs_dir, damaged_file: str, content: bytes):
    good = runs.create_run(QUICK, runs_dir / "20260101-000000-good")
    runstore._write_status(good, status="finished", best_test_acc=0.8, epoch=1)
    bad = runs.create_run(QUICK, runs_dir / "20260102-000000-bad")
    (bad / damaged_file).write_bytes(content)
    return good, bad


# ---- item 3: damaged run files ------------------------------------------------------------------------


@pytest.mark.parametrize("content", DAMAGE.values(), ids=DAMAGE.keys())
@pytest.mark.parametrize("damaged_file", ["status.json", "config.json"])
def test_a_damaged_run_is_listed_as_damaged_and_the_others_as_usual(runs_dir, damaged_file, content):
    if damaged_file == "config.json" and content == DAMAGE["wrong type"]:
        content = b'{"epochs": "three"}'  # a config's wrong type
    _good, bad = _two_runs(runs_dir, damaged_file, content)
    listed = {run.id: run for run in runs.list_runs(runs_dir)}
    assert listed["20260101-000000-good"].status == "finished"
    assert listed["20260101-000000-good"].best_test_acc == 0.8
    damaged = listed["20260102-000000-bad"]
    assert damaged.status == runs.DAMAGED and not damaged.active
    assert damaged_file in damaged.error
    assert (bad / damaged_file).read_bytes() == content  # left as found: nothing is lost
    assert runs.active_run(runs_dir=runs_dir) is None


@pytest.mark.timeout(20)
def test_a_config_with_a_number_of_hundreds_of_digits_is_damaged_not_an_error(runs_dir):
    directory = runs.create_run(QUICK, runs_dir / "20260103-000000-huge")
    config = json.loads((directory / "config.json").read_text())
    (directory / "config.json").write_text(json.dumps({**config, "epochs": 10**400, "seed": 10**400}))
    run = runs.get_run(directory.name, runs_dir)
    assert run.status == runs.DAMAGED and "digits" in run.error


def test_a_folder_whose_name_is_no_run_id_is_no_run_of_the_store(runs_dir):
    runs.create_run(QUICK, runs_dir / "20260101-000000-good")
    planted = runs_dir / 'z"""\n__import__("os").system("id > PWNED")\n"""'
    shutil.copytree(runs_dir / "20260101-000000-good", planted)
    assert [run.id for run in runs.list_runs(runs_dir)] == ["20260101-000000-good"]
    for name in (planted.name, "[a link](http://attacker.test)", "two words", "-flag", "x" * 101):
        with pytest.raises(RunError, match="is not a run id"):
            runs.get_run(name, runs_dir)
        with pytest.raises(RunError, match="cannot name a run"):
            runs.create_run(QUICK, runs_dir / name)
        assert not (runs_dir / name / "config.json").exists() or name == planted.name
    assert is_run_id(runs.new_run_id()) and is_run_id("my-run_2.b")


def test_a_fifo_or_a_folder_in_place_of_status_json_is_damage_and_never_hangs(runs_dir):
    fifo = runs.create_run(QUICK, runs_dir / "r1")
    (fifo / "status.json").unlink()
    os.mkfifo(fifo / "status.json")  # reading it would wait forever for a writer
    folder = runs.create_run(QUICK, runs_dir / "r2")
    (folder / "status.json").unlink()
    (folder / "status.json").mkdir()
    listed = {run.id: run for run in runs.list_runs(runs_dir)}
    assert {r.status for r in listed.values()} == {runs.DAMAGED}
    assert "not a regular file" in listed["r1"].error


def test_the_reader_bounds_size_and_depth(tmp_path):
    big = tmp_path / "big.json"
    big.write_text(json.dumps({"x": "a" * 100}))
    with pytest.raises(DamagedRunFile, match="larger than 50 bytes"):
        read_object(big, max_bytes=50)
    nested = tmp_path / "nested.json"
    nested.write_text('{"a": ' + "[" * MAX_DEPTH + "1" + "]" * MAX_DEPTH + "}")  # one level too many
    with pytest.raises(DamagedRunFile, match=f"deeper than {MAX_DEPTH}"):
        read_object(nested)
    brackets_in_text = tmp_path / "text.json"
    brackets_in_text.write_text(json.dumps({"error": "[" * 100 + "{" * 100}))
    assert read_object(brackets_in_text)["error"].startswith("[[")  # inside a string they do not nest


def test_metrics_lines_that_are_not_rows_are_skipped_everywhere(runs_dir):
    from core.training.analysis import MetricsReader, epoch_rows, metrics_csv

    directory = runs.create_run(QUICK, runs_dir / "r1")
    runstore._write_status(directory, total_steps=10)
    good = [{"kind": "batch", "epoch": 1, "step": 2, "samples_per_s": 100.0},
            {"kind": "epoch", "epoch": 1, "step": 2, "test_acc": 0.5}]  # fmt: skip
    lines = [json.dumps(good[0]), "1", "[]", "[" * 20_000, '"text"', json.dumps(good[1]),
             '{"kind": "batch", "step": "x"}', "null"]  # fmt: skip
    (directory / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    assert runs.read_metrics("r1", runs_dir) == good
    assert MetricsReader(directory / "metrics.jsonl").update() == good
    where = runs.progress(runs.get_run("r1", runs_dir))  # its last line is no row: the last good one counts
    assert (where.epoch, where.step) == (1, 2)
    assert epoch_rows([1, [], "x", None, good[1]]) == [good[1]]
    odd = {"kind": "epoch", "epoch": 2, "per_class_acc": 5}  # numbers where numbers go, a number for a list
    assert metrics_csv([*good, odd]).splitlines()[-1].startswith("epoch,2,")
    assert parse_row(b'{"kind": "batch", "loss": true}') is None


def _damage_status_after_first_epoch(monkeypatch, directory):
    real_fit = execute.fit

    def fit(config, **kwargs):
        for event in real_fit(config, **kwargs):
            yield event
            if isinstance(event, EpochEnd) and event.epoch == 1:
                (directory / "status.json").write_text("[]")

    monkeypatch.setattr(execute, "fit", fit)


def test_a_status_json_damaged_mid_run_ends_the_worker_cleanly_and_keeps_its_checkpoint(
    real_data, runs_dir, monkeypatch
):
    directory = runs.create_run(TWO_EPOCHS, runs_dir / "r1")
    _damage_status_after_first_epoch(monkeypatch, directory)
    lines = []
    assert runs.run_worker(directory, echo=lines.append) == "failed"  # no exception out of the handler
    run = runs.get_run("r1", runs_dir)
    assert run.status == "failed" and "status.json" in run.error and "checkpoint is kept" in run.error
    assert lines[-1].startswith("failed: status.json holds a JSON array")
    load_checkpoint(run.checkpoint)


# ---- item 4: only a new or empty folder becomes a run; a worker only trains a run the store made ------


def _users_folder(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    files = {"model.pth": b"my own weights", "model.json": b'{"mine": true}', ".notes.tmp": b"draft"}
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder, files


def _unchanged(folder, files) -> bool:
    return {p.name: p.read_bytes() for p in folder.iterdir()} == files


def test_a_folder_holding_files_never_becomes_a_run(runs_dir, tmp_path):
    folder, files = _users_folder(tmp_path)
    with pytest.raises(RunError, match="not empty"):
        runs.create_run(QUICK, folder)
    assert _unchanged(folder, files)
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(RunError, match="not a folder"):
        runs.create_run(QUICK, a_file)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert runs.create_run(QUICK, empty) == empty  # an empty folder is fine


@pytest.mark.parametrize("entry", [runs.run_worker, runs.train_run])
def test_a_worker_pointed_at_a_folder_that_is_no_run_writes_nothing_there(tmp_path, entry):
    folder, files = _users_folder(tmp_path)
    (folder / "config.json").write_text(json.dumps(QUICK.to_dict()))  # looks like a run, was not made as one
    files["config.json"] = (folder / "config.json").read_bytes()
    with pytest.raises(RunError, match="not a run folder"):
        entry(folder)
    assert _unchanged(folder, files)


def test_the_worker_command_takes_only_a_queued_run(runs_dir):
    from core.runs.worker import work

    directory = runs.create_run(QUICK, runs_dir / "r1")
    runstore._write_status(directory, status="finished")
    with pytest.raises(RunError, match="trained already"):
        work(directory)


# ---- item 6: a store that cannot be written, a full disk -----------------------------------------------


def test_a_read_only_run_store_is_one_clear_error(runs_dir, monkeypatch):
    real_open = os.open

    def read_only(path, *args, **kwargs):
        if ".lock-" in str(path):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", read_only)
    with pytest.raises(RunError, match="Read-only file system: set STUDIO_RUNS_DIR"):
        runs.start(QUICK, runs_dir=runs_dir)


def test_a_read_only_store_still_lists_a_run_whose_worker_died_as_failed(runs_dir, monkeypatch):
    directory = runs.create_run(QUICK, runs_dir / "r1")
    runstore._write_status(directory, status="running", pid=2**22 + 1)  # above pid_max: no such process

    def read_only(path, data, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    monkeypatch.setattr(fsutil, "atomic_write_bytes", read_only)
    (run,) = runs.list_runs(runs_dir)
    assert run.status == "failed" and "ended unexpectedly" in run.error  # said, though not recorded


def test_a_full_disk_while_creating_a_run_leaves_no_folder_behind(runs_dir, tmp_path, monkeypatch):
    real_write = fsutil.atomic_write_bytes

    def full_at_status(path, data, **kwargs):
        if path.name == "status.json":
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real_write(path, data, **kwargs)

    monkeypatch.setattr(fsutil, "atomic_write_bytes", full_at_status)
    with pytest.raises(RunError, match="disk is full"):
        runs.create_run(QUICK, runs_dir / "r1")
    assert list(runs_dir.iterdir()) == []
    empty = tmp_path / "given"
    empty.mkdir()
    with pytest.raises(RunError, match="disk is full"):
        runs.create_run(QUICK, empty)
    assert empty.is_dir() and list(empty.iterdir()) == []  # the user's folder stays, empty as it was


# ---- item 9: stale state ------------------------------------------------------------------------------


def test_a_pid_now_owned_by_another_process_is_not_the_runs_worker(runs_dir):
    directory = runs.create_run(QUICK, runs_dir / "r1")
    # This very process is alive and ours, as a reused pid would be, but it started at another time.
    runstore._write_status(directory, status="running", pid=os.getpid(), pid_started=1_000_000.0)
    run = runs.get_run("r1", runs_dir)
    assert run.status == "failed" and "ended unexpectedly" in run.error
    fresh = runs.create_run(QUICK, runs_dir / "r2")
    runstore._write_status(fresh, status="running", **runstore._pid_fields(os.getpid()))
    assert runs.get_run("r2", runs_dir).status == "running"


def test_deleting_a_run_folder_mid_training_stops_its_worker_and_frees_the_device(real_data, runs_dir):
    run_id = runs.start(LONG, runs_dir=runs_dir)
    directory = runs_dir / run_id
    assert wait_for(lambda: runs.read_metrics(run_id, runs_dir))
    pid = runs.get_run(run_id, runs_dir).pid
    gone = runs_dir.parent / f"deleted-{run_id}"
    try:
        # As a user tidying data/runs might (the e2e test too): moved away at once, then deleted. A plain
        # rmtree can meet a file the worker writes while it walks the folder, and fail "not empty".
        directory.rename(gone)
        shutil.rmtree(gone, ignore_errors=True)
        assert wait_for(lambda: not pid_alive(pid), timeout=20)
    finally:
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
    assert not directory.exists()  # not made again, in part, by the worker's next write
    with runs.device_lock("cpu", runs_dir):  # the lock went with the worker
        pass
