"""The Train page and runs trained by several processes (DistributedDataParallel, core.runs.launcher):
the form's Processes field, and the view of a real 2-process run."""

import os

import pytest
from streamlit.testing.v1 import AppTest

from core import runs
from core.base.procs import pid_alive
from core.data.fashion import CLASSES, PROJECT_ROOT, load_split
from core.model.checkpoint import load_checkpoint
from core.model.predict import predict
from core.runs import store as runstore
from core.training import ranks
from core.training.config import preset
from tests.conftest import wait_for

PAGE = str(PROJECT_ROOT / "pages" / "Train.py")
PREDICT = str(PROJECT_ROOT / "pages" / "Predict.py")
DDP = "2 processes (DistributedDataParallel)"

needs_two_cores = pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="two processes need two CPU cores")


def _page(query: dict | None = None, **state) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=90)
    for name, value in (query or {}).items():
        at.query_params[name] = value
    for key, value in state.items():
        at.session_state[key] = value
    return at.run()


def _errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


def _captions(at: AppTest) -> list[str]:
    return [c.value for c in at.caption]


def _fill_small(at: AppTest, *, processes: int) -> None:
    at.text_input(key="train_epochs").input("1")
    at.text_input(key="train_limit_batches").input("4")
    at.text_input(key="train_log_every").input("1")
    at.selectbox(key="train_device").set_value("cpu")
    at.selectbox(key="train_processes").set_value(processes)


# ---- the form --------------------------------------------------------------------------------------


def test_processes_is_1_by_default_and_offers_one_per_cpu_core(run_store):
    at = _page()
    assert not at.exception
    field = at.selectbox(key="train_processes")
    assert field.label == "Processes" and field.value == 1
    most = ranks.most_processes("cpu")
    assert most == os.cpu_count()  # a CPU machine: one process per core
    assert field.options == [str(n) for n in range(1, most + 1)]
    assert f"up to {most} here, one per CPU core" in field.help
    said = [c for c in _captions(at) if c.startswith("On one CPU, several processes show")]
    assert len(said) == (most > 1)
    if said:
        assert "DistributedDataParallel" in said[0] and "rather than a speed-up" in said[0]


@needs_two_cores
def test_a_batch_smaller_than_the_processes_is_listed_like_the_other_problems(run_store):
    # The sliders start at batch 8, so only a link can ask for a batch of 1.
    at = _page({"batch": "1", "procs": "2"})
    assert not at.exception
    assert at.select_slider(key="train_batch_size").value == 1
    assert at.selectbox(key="train_processes").value == 2
    assert any("batch_size (1) must be at least the number of processes (2)" in c for c in _captions(at))
    at.text_input(key="train_epochs").input("0").run()
    at.button(key="train_start").click().run()
    assert not at.exception
    (message,) = _errors(at)
    assert message.startswith("Not started. Fix this first:")
    assert "Epochs must be a whole number between 1 and 1000, not 0" in message  # each field is read first
    at.text_input(key="train_epochs").input("1").run()
    (message,) = _errors(at)  # the list follows the fixes, and the next problem shows
    assert message.startswith("Not started. Fix this first:")
    assert "batch_size (1) must be at least the number of processes (2): each process takes its share" in (
        message
    )
    at.selectbox(key="train_processes").set_value(1).run()
    assert not _errors(at)
    assert runs.list_runs() == []  # nothing was started


def test_a_link_asking_for_more_processes_than_this_machine_has_is_refused_in_words(run_store):
    too_many = ranks.most_processes("cpu") + 1
    at = _page({"procs": str(too_many)})
    assert not at.exception
    assert at.selectbox(key="train_processes").value == 1
    notice = f"From the link: procs {too_many:,} is out of range (1 to {too_many - 1:,}). Showing 1 process"
    assert any(notice in c for c in _captions(at)), _captions(at)


@needs_two_cores
def test_processes_survive_presets_the_link_and_a_page_switch(run_store):
    at = _page()
    at.selectbox(key="train_processes").set_value(2).run()
    assert at.query_params["procs"] == "2"
    assert at.button_group[0].value == "tutorial"  # the machine's settings are no part of a preset
    at.button_group[0].set_value("recommended").run()
    assert (
        at.selectbox(key="train_processes").value == 2
        and at.select_slider(key="train_batch_size").value == 128
    )
    saved = at.session_state["train_form_saved"]
    assert saved["processes"] == 2

    back = _page(train_form_saved=saved)  # another page, then the Train page again: widgets are new
    assert back.selectbox(key="train_processes").value == 2
    linked = _page({"procs": "2"})  # a copied link
    assert linked.selectbox(key="train_processes").value == 2
    at.selectbox(key="train_processes").set_value(1).run()
    assert "procs" not in at.query_params  # the default leaves links short


@needs_two_cores
def test_an_exported_script_for_two_processes_says_it_trains_in_one(run_store):
    at = _page({"procs": "2"})
    (code,) = [c for c in at.code if 'EXPORTED_FROM = "the Train form\'s settings"' in c.value]
    assert "The Studio trains this in 2 processes (DistributedDataParallel)" in code.value
    compile(code.value, "exported.py", "exec")
    assert any(c.startswith("It trains in one process: the run's 2 processes") for c in _captions(at))


@needs_two_cores
def test_start_creates_a_run_of_two_processes_that_trains_and_says_so(real_data, run_store):
    at = _page()
    _fill_small(at, processes=2)
    at.run()
    at.button(key="train_start").click().run()
    assert not at.exception and not _errors(at)
    run_id = at.session_state["train_run_id"]
    try:
        assert runs.read_config(run_store / run_id).processes == 2
        assert any(DDP in c and "status **" in c for c in _captions(at))  # the header, while it trains
    finally:
        run = runs.wait(run_id, timeout=180)
    assert run.status == "finished", run.error
    at.run()
    assert not at.exception
    assert any(DDP in c and "status **finished**" in c for c in _captions(at))


# ---- a run two processes trained ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def ddp_store(tmp_path_factory, real_data):
    """A run store holding one finished run trained by 2 processes, started as the dashboard starts one."""
    if (os.cpu_count() or 1) < 2:
        pytest.skip("two processes need two CPU cores")
    store = tmp_path_factory.mktemp("ddp") / "runs"
    config = preset("recommended", epochs=1, limit_batches=20, log_every=2, device="cpu", processes=2)
    run_id = runs.start(config, runs_dir=store)
    run = runs.wait(run_id, store, timeout=180)
    assert run.status == "finished", run.error
    # The processes leave after rank 0 wrote "finished", and hold the device until they have: seconds on a
    # busy machine (over core.runs.LOCK_GRACE_S at a load of 8 on 2 cores), when a Start is refused.
    assert wait_for(lambda: _processes_gone(store / run_id), 120)
    return store


def _processes_gone(directory) -> bool:
    status = runs.read_status(directory)
    runs.wait(directory.name, directory.parent, timeout=0)  # collects the launcher, a child of this process
    return not pid_alive(status["pid"], started=status.get("pid_started"))


def _continue(at: AppTest, store, processes: int | None = None) -> runs.RunInfo:
    """One more epoch from the run shown, on `processes` (else the field's default); the continued run,
    finished."""
    at.text_input(key="train_more").input("1")
    if processes is not None:
        at.selectbox(key="train_more_processes").set_value(processes)
    at.button(key="train_continue").click().run()
    assert not at.exception and not _errors(at)
    continued = runs.wait(at.session_state["train_run_id"], store, timeout=180)
    assert continued.status == "finished", continued.error
    return continued


def test_a_two_process_run_shows_its_processes_metrics_downloads_and_continues(ddp_store, monkeypatch):
    monkeypatch.setattr(runstore, "RUNS_DIR", ddp_store)
    (run,) = runs.list_runs()
    at = _page()
    assert not at.exception and not _errors(at)
    assert any(h.value == f"Run {run.id}" for h in at.subheader)
    (header,) = [c for c in _captions(at) if "status **finished**" in c]
    assert f"batch 128 · {DDP} · cap 20 batches per epoch" in header
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Epochs"] == "1/1" and metrics["Test acc."] == f"{run.last_test_acc:.1%}"
    assert {"model.pth", "model.json", "metrics.csv", f"Download train_{run.id}.py"} <= {
        b.label for b in at.get("download_button")
    }
    (script,) = [c for c in at.code if f"EXPORTED_FROM = 'run {run.id}'" in c.value]
    assert "in 2 processes (DistributedDataParallel)" in script.value

    field = at.selectbox(key="train_more_processes")
    assert field.label == "Processes" and field.value == 2  # as many as trained it
    assert field.options == [str(n) for n in range(1, ranks.most_processes("cpu") + 1)]
    continued = _continue(at, ddp_store)  # the same config, 2 processes, from the checkpoint
    assert continued.parent == run.id and continued.config.processes == 2
    at.run()
    assert any(DDP in c and "status **finished**" in c for c in _captions(at))


def test_a_two_process_run_continues_on_one_process_from_the_same_weights(ddp_store, monkeypatch):
    monkeypatch.setattr(runstore, "RUNS_DIR", ddp_store)
    first = runs.list_runs()[-1]  # the run 2 processes trained (the previous test may have continued it)
    at = _page({"run": first.id})
    assert any(h.value == f"Run {first.id}" for h in at.subheader)
    continued = _continue(at, ddp_store, processes=1)
    assert continued.parent == first.id and continued.config.processes == 1
    at.run()
    (header,) = [c for c in _captions(at) if "status **finished**" in c]
    assert "processes" not in header  # one process: the header does not mention DistributedDataParallel
    assert at.selectbox(key="train_more_processes").value == 1  # what the run now shown had


def test_predict_shows_what_a_two_process_runs_checkpoint_answers(ddp_store, monkeypatch):
    monkeypatch.setattr(runstore, "RUNS_DIR", ddp_store)
    run = runs.list_runs()[-1]  # the first run (the previous test may have continued it)
    assert run.config.processes == 2
    model = load_checkpoint(run.checkpoint).model  # the plain model, as one process saves it
    at = AppTest.from_file(PREDICT, default_timeout=90)
    at.query_params["run"] = run.id
    at.run()
    assert at.selectbox(key="predict_model").value == f"run:{run.id}"
    at.selectbox(key="predict_sample_class").set_value(CLASSES.index("Bag")).run()
    assert not at.exception and not _errors(at)
    images, _labels = load_split("test")
    best = predict(model, images[at.session_state["predict_sample"]], 1)[0]
    assert any(
        m.value.startswith(f"Prediction: **{best.label}** · {best.prob:.1%} — truth: **Bag**")
        for m in at.markdown
    )
