"""What the pages show after a fault: a diverged, out-of-memory, disk-full or vanished worker, a metrics
file cut mid-line, temp files left in a run directory. The failures are produced by the real code paths
(core.runs.train_run in this process) wherever that is cheap, so the page shows the engine's own words."""

import errno
import json
import subprocess
from pathlib import Path

from streamlit.testing.v1 import AppTest

from core import runs
from core.data.fashion import PROJECT_ROOT
from core.model import checkpoint
from core.runs import store as runstore
from core.training import train
from core.training.config import TrainConfig
from tests.app.conftest import shown
from tests.conftest import OutOfMemoryModel, live_views

APP = str(PROJECT_ROOT / "app.py")
TRAIN_PAGE = "pages/Train.py"
RUN = "20260101-000000-f00d"
GOOD = TrainConfig(epochs=1, limit_batches=2, log_every=1, device="cpu")


# ---- reaching the pages the way a user does: app.py's navigation, sidebar included ---------------------


def _home() -> AppTest:
    return AppTest.from_file(APP, default_timeout=60).run()


def _train_page() -> AppTest:
    return _home().switch_page(TRAIN_PAGE).run()


def _errors(at: AppTest) -> list[str]:
    return [shown(e.value) for e in at.error]  # as read: run errors are shown as text, escaped


def _metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def _downloads(at: AppTest) -> set[str]:
    # The run's own files; its config as a script and a notebook is offered too, with or without them
    # (test_train_downloads).
    return {
        b.label
        for b in at.get("download_button")
        if not b.label.endswith(".py") and "notebook" not in b.label
    }


def _charts(at: AppTest) -> dict[str, dict]:
    """Plotly figures on the page by title, as the browser receives them."""
    specs = [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]
    return {spec["layout"]["title"]["text"]: spec for spec in specs}


def _header(at: AppTest) -> str:
    return next(c.value for c in at.caption if "· status **" in c.value)


def _sidebar_shows_a_run_training(at: AppTest) -> bool:
    return bool(live_views(at.sidebar)) or bool(at.sidebar.get("progress"))


# ---- producing the faults -----------------------------------------------------------------------------


def _trained(store: Path) -> Path:
    directory = runs.create_run(GOOD, store / RUN)
    assert runs.train_run(directory) == "finished"
    return directory


def _train_again(directory: Path, config: TrainConfig) -> str:
    """The same run directory trained again with `config`; returns the final status the worker wrote."""
    (directory / "config.json").write_text(json.dumps(config.to_dict()))
    return runs.run_worker(directory)


def _no_space(path, data):
    raise OSError(errno.ENOSPC, "No space left on device", str(path))


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()  # reaped: no process has this pid any more
    return proc.pid


# ---- the tests ----------------------------------------------------------------------------------------


def test_a_diverged_run_shows_why_and_still_offers_its_last_good_checkpoint(real_data, run_store):
    directory = _trained(run_store)
    good = runs.read_metrics(RUN, run_store)[-1]  # the epoch row of the good training
    assert _train_again(directory, GOOD.replace(lr=1e6, limit_batches=200)) == "failed"
    error = runs.read_status(directory)["error"]
    assert error.startswith("diverged: loss is ") and error.endswith("; lower the learning rate")

    at = _train_page()
    assert not at.exception
    assert _errors(at) == [error]
    assert "status **failed**" in _header(at)
    assert _metrics(at)["Test acc."] == f"{good['test_acc']:.1%}"
    assert _downloads(at) == {"model.pth", "model.json", "metrics.csv"}
    # The saved weights are the good ones: they load (diverged weights would be refused as NaN) and score
    # what the good epoch scored.
    assert f"Its answers on the 10,000 test images: {good['test_acc']:.1%} right." in [
        c.value for c in at.caption
    ]
    assert not _sidebar_shows_a_run_training(at)
    # It can go on from those weights at a lower learning rate (offered, the value the run used).
    assert at.select_slider(key="train_more_lr").value == 1e6
    assert at.button(key="train_continue").label == "Continue training from this checkpoint"


def test_an_out_of_memory_run_says_to_lower_the_batch_size_and_the_page_keeps_working(
    real_data, run_store, monkeypatch
):
    directory = runs.create_run(GOOD, run_store / RUN)
    with monkeypatch.context() as patch:  # scoped: run_store's own patch must stay
        patch.setattr(train, "build_model", lambda *_args, **_kwargs: OutOfMemoryModel())
        assert runs.train_run(directory) == "failed"
    error = runs.read_status(directory)["error"]
    assert error.startswith("out of memory: lower the batch size")

    at = _train_page()
    assert not at.exception
    assert _errors(at) == [error]
    assert "status **failed**" in _header(at)
    assert not _downloads(at)  # nothing was saved, so nothing is offered
    assert "train_continue" not in [b.key for b in at.button]  # no weights to continue from
    assert not at.button(key="train_start").disabled  # a smaller batch can be started right away


def test_a_disk_full_run_says_so_and_still_offers_the_old_checkpoint(real_data, run_store, monkeypatch):
    directory = _trained(run_store)
    good = runs.read_metrics(RUN, run_store)[-1]
    with monkeypatch.context() as patch:
        patch.setattr(checkpoint, "atomic_write_bytes", _no_space)
        assert _train_again(directory, GOOD) == "failed"
    error = runs.read_status(directory)["error"]
    assert error.startswith("disk full")

    at = _train_page()
    assert not at.exception
    assert _errors(at) == [error]
    assert _downloads(at) == {"model.pth", "model.json", "metrics.csv"}
    assert f"Its answers on the 10,000 test images: {good['test_acc']:.1%} right." in [
        c.value for c in at.caption
    ]


def test_a_run_whose_worker_vanished_shows_as_failed_not_training(real_data, run_store):
    directory = runs.create_run(GOOD, run_store / RUN)
    pid = _dead_pid()
    left_behind = directory / f".model.pth.{pid}.abcd1234.tmp"  # it was killed while saving
    as_found = {"status": "running", "pid": pid, "error": None, "total_steps": 2}
    runstore._write_status(directory, **as_found)
    left_behind.write_bytes(b"half a checkpo")

    at = _home()
    assert not at.exception
    line = next(m.value for m in at.markdown if RUN in m.value)
    assert "**failed**" in line and "running" not in line
    assert not _sidebar_shows_a_run_training(at)
    assert not left_behind.exists()

    # As found again, written by hand (the store lets only the recorded owner change a final status):
    # the Train page must notice on its own.
    status = json.loads((directory / "status.json").read_text())
    (directory / "status.json").write_text(json.dumps({**status, **as_found}))
    assert runs.read_status(directory)["status"] == "running"
    at.switch_page(TRAIN_PAGE).run()
    assert not at.exception
    assert [e.split(";")[0] for e in _errors(at)] == [f"the training process (pid {pid}) ended unexpectedly"]
    assert "status **failed**" in _header(at)
    assert not at.get("progress")  # no live view
    assert "train_stop" not in [b.key for b in at.button]
    assert list(at.dataframe[0].value["status"]) == ["failed"]
    assert not _sidebar_shows_a_run_training(at)


def test_a_metrics_file_cut_mid_line_shows_every_complete_point(real_data, run_store):
    directory = runs.create_run(GOOD.replace(epochs=3), run_store / RUN)
    batches = [{"kind": "batch", "epoch": 1 + s // 3, "step": s, "loss": 2.3 - s / 10} for s in range(1, 7)]
    epochs = [
        {"kind": "epoch", "epoch": e, "step": 3 * e, "train_loss": 1.0, "train_acc": 0.5,
         "test_loss": 1.0, "test_acc": 0.5 + e / 10}
        for e in (1, 2)
    ]  # fmt: skip
    rows = sorted(batches + epochs, key=lambda r: (r["step"], r["kind"] == "epoch"))
    cut = json.dumps({"kind": "batch", "epoch": 3, "step": 7, "loss": 0.9})[:25]  # the writer died here
    (directory / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + cut)
    killed = f"the training process (pid {_dead_pid()}) ended unexpectedly"
    runstore._write_status(directory, status="failed", error=killed, epoch=2, best_test_acc=0.7)

    at = _train_page()
    assert not at.exception
    assert _errors(at) == [killed]  # and nothing about the damaged line
    charts = _charts(at)
    assert charts["Training loss per logged step"]["data"][0]["x"] == [1, 2, 3, 4, 5, 6]
    assert [trace["x"] for trace in charts["Accuracy per epoch"]["data"]] == [[1, 2], [1, 2]]
    assert [trace["y"] for trace in charts["Accuracy per epoch"]["data"]][1] == [0.6, 0.7]
    assert _metrics(at)["Test acc."] == "70.0%"


def test_leftover_temp_files_in_the_run_store_show_as_nothing(real_data, run_store):
    directory = _trained(run_store)
    for name in (".model.pth.4242.abcd1234.tmp", ".model.json.4242.efgh5678.tmp", ".status.json.4242.ij.tmp"):
        (directory / name).write_bytes(b'{"half a fi')
    (run_store / ".20260101-000001-beef.tmp").write_bytes(b"")  # beside the runs, not in one

    at = _train_page()
    assert not at.exception
    assert not _errors(at) and not at.warning
    assert list(at.dataframe[0].value["id"]) == [RUN]
    assert "status **finished**" in _header(at)
    assert _downloads(at) == {"model.pth", "model.json", "metrics.csv"}
    assert "What the saved model gets wrong" in [h.value for h in at.subheader]
