import json

from streamlit.testing.v1 import AppTest

from core import runs
from core.base import paths
from core.data.fashion import CLASSES, PROJECT_ROOT
from core.model.checkpoint import save_checkpoint
from core.model.networks import build_model
from core.runs import store as runstore
from core.training import analysis
from core.training.config import TrainConfig
from tests.app.conftest import shown
from tests.conftest import live_view, live_views, wait_for
from ui import live_feed
from ui.live_feed import progress_text
from ui.train.outcome import GALLERY_SIZE

PAGE = str(PROJECT_ROOT / "pages" / "Train.py")


def _page(**state) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60)
    for key, value in state.items():
        at.session_state[key] = value
    return at.run()


def _fill(at: AppTest, *, epochs: int, limit_batches: int, batch_size: int = 64) -> None:
    at.text_input(key="train_epochs").input(str(epochs))
    at.text_input(key="train_limit_batches").input(str(limit_batches))
    at.text_input(key="train_log_every").input("1")
    at.select_slider(key="train_batch_size").set_value(batch_size)
    at.selectbox(key="train_device").set_value("cpu")


def _charts(at: AppTest) -> dict[str, dict]:
    """Plotly figures on the page by title: st.plotly_chart's, and the live view's (ui.live_run)."""
    specs = [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]
    specs = [spec for spec in specs if "title" in spec["layout"]]  # not the live view's Plotly loader
    specs += [figure for view in live_views(at) for figure in view.get("charts", {}).values()]
    return {spec["layout"]["title"]["text"]: spec for spec in specs}


def _gallery(at: AppTest) -> list[str]:
    """The misclassified images' captions, one st.image each."""
    return [caption for image in at.get("image") for caption in image.captions]


def _click_cell(at: AppTest, true: int, predicted: int) -> None:
    """What st.plotly_chart reports for a click on a confusion-matrix cell (its invisible marker)."""
    point = {
        "x": CLASSES[predicted],
        "y": CLASSES[true],
        "curve_number": 1,
        "point_index": true * 10 + predicted,
    }
    selection = {"points": [point], "point_indices": [point["point_index"]], "box": [], "lasso": []}
    at.session_state["train_chart_confusion"] = {"selection": selection}
    at.run()


def _errors(at: AppTest) -> list[str]:
    return [shown(e.value) for e in at.error]  # as read: run errors are shown as text, escaped


def test_a_started_run_shows_live_progress_and_stops(real_data, run_store):
    at = _page(train_augment={"hflip": 0.5, "rotate": 10.0})  # as the Transforms page hands it over
    assert not at.exception
    assert at.slider(key="train_aug_hflip").value == 0.5
    _fill(at, epochs=50, limit_batches=3000, batch_size=16)  # minutes of work: still running at Stop
    at.button(key="train_start").click().run()
    assert not at.exception and not _errors(at)
    run_id = at.session_state["train_run_id"]
    try:
        config = json.loads((run_store / run_id / "config.json").read_text())
        assert (config["epochs"], config["limit_batches"], config["batch_size"]) == (50, 3000, 16)
        assert config["augment"]["hflip"] == 0.5 and config["augment"]["rotate"] == 10.0
        assert wait_for(lambda: len(runs.read_metrics(run_id)) >= 3)
        at.run()  # the browser asks the feed every second (ui.live_run); AppTest draws the page again
        assert not at.exception
        assert any("Watching takes a little CPU time" in c.value for c in at.caption)  # a CPU run: its cost
        view = live_view(at, "run")
        assert view["text"].startswith("epoch 1/50 · 0% · step ")
        assert "/150,000" in view["text"] and "samples/s" in view["text"]
        steps = view["charts"]["steps"]["data"][0]["x"]
        assert len(steps) >= 3 and steps[:3] == [1, 2, 3]
        assert view["rows"] >= 3  # what the view's first question to the feed starts from
        # The view's curves are the page's Plotly's: an st.plotly_chart, out of sight, loads it.
        assert [c for c in at.get("plotly_chart") if "title" not in json.loads(c.proto.spec)["layout"]]
        # The feed then sends only the points added since.
        answer = live_feed.snapshot(run_id, have=view["rows"], log=False, charts_too=True)
        assert wait_for(lambda: len(runs.read_metrics(run_id)) > view["rows"] + 1)
        answer = live_feed.snapshot(run_id, have=view["rows"], log=False, charts_too=True)
        added = answer["charts"]["steps"]
        assert "figure" not in added and added["from"] == [len(steps)] and added["x"][0][0] > steps[-1]

        at.button(key="train_stop").click().run()
        assert runs.wait(run_id, timeout=60).status == "stopped"
    finally:
        runs.stop(run_id)
        runs.wait(run_id, timeout=60)
    at.run()
    assert not at.exception
    assert not at.get("progress")
    assert not any("Watching takes a little CPU time" in c.value for c in at.caption)  # nothing to watch now
    assert any("Stopped before the end" in w.value for w in at.warning)
    assert any(f"Run {run_id}" == h.value for h in at.subheader)


def test_a_finished_run_shows_metrics_confusion_matrix_and_a_filterable_gallery(
    real_data, run_store, monkeypatch
):
    at = _page()
    _fill(at, epochs=1, limit_batches=3)
    at.button(key="train_start").click().run()
    run = runs.wait(at.session_state["train_run_id"], timeout=120)
    assert run.status == "finished", run.error
    at.run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Test acc."] == f"{run.last_test_acc:.1%}"
    assert metrics["Epochs"] == "1/1"

    preds = analysis.checkpoint_predictions(run.checkpoint)
    figures = _charts(at)
    heatmap = figures["Confusion matrix (test set)"]["data"][0]
    assert heatmap["type"] == "heatmap" and heatmap["z"] == preds.confusion()
    assert sum(map(sum, heatmap["z"])) == 10_000
    assert figures["Accuracy per class (test set)"]["data"][0]["x"] == preds.per_class_accuracy()

    assert len(_gallery(at)) == min(GALLERY_SIZE, len(preds.misclassified()))
    true, predicted, count = preds.most_confused(1)[0]
    _click_cell(at, true, predicted)  # a click on that cell of the confusion matrix
    assert at.selectbox(key="train_cell_true").value == true
    assert at.selectbox(key="train_cell_pred").value == predicted
    assert len(_gallery(at)) == min(GALLERY_SIZE, count)
    assert all(c.startswith(f"{CLASSES[true]} → {CLASSES[predicted]} ") for c in _gallery(at))
    at.selectbox(key="train_cell_pred").set_value(None).run()  # the dropdowns stay free after a click
    assert at.selectbox(key="train_cell_pred").value is None
    assert len(_gallery(at)) == min(GALLERY_SIZE, len(preds.misclassified(true)))
    at.selectbox(key="train_cell_pred").set_value(predicted).run()
    assert any(c.value.startswith(f"{count:,} misclassified test images") for c in at.caption)
    assert _charts(at)["Training loss per logged step"]["layout"]["yaxis"]["type"] == "linear"
    at.toggle(key="train_log_loss").set_value(True).run()
    layout = _charts(at)["Training loss per logged step"]["layout"]
    assert layout["yaxis"]["type"] == "log"
    assert layout["uirevision"].startswith(run.id)  # the same across refreshes: zoom survives them
    labels = {b.label for b in at.get("download_button")}
    assert labels == {
        "model.pth",
        "model.json",
        "metrics.csv",
        f"Download train_{run.id}.py",
        "Download train_fashionmnist.py",
        "Export as notebook",  # the run's and the form's, beside their scripts
    }

    started = []
    real_start = runs.start

    def spy(config, **kwargs):
        started.append((config, kwargs))
        return real_start(config, **kwargs)

    monkeypatch.setattr(runs, "start", spy)
    at.text_input(key="train_more").input("1.5")
    at.button(key="train_continue").click().run()
    assert "Epochs must be a whole number, not 1.5" in _errors(at) and not started  # never rounded to 1
    at.text_input(key="train_more").input("1")
    at.select_slider(key="train_more_lr").set_value(1e-4)
    at.button(key="train_continue").click().run()
    assert not at.exception
    (config, kwargs) = started[0]
    assert config == run.config.replace(epochs=1, lr=1e-4) and kwargs["init_from"] == run.checkpoint
    continued = runs.wait(at.session_state["train_run_id"], timeout=120)
    assert continued.status == "finished" and continued.parent == run.id


def test_a_failed_run_shows_its_error_in_words(run_store):
    directory = runs.create_run(TrainConfig(), run_store / "20260101-000000-dead")
    runstore._write_status(directory, status="failed", error="diverged: loss is NaN at step 12")
    at = _page()
    assert not at.exception
    assert "diverged: loss is NaN at step 12" in _errors(at)


def test_a_missing_dataset_shows_the_fix_and_disables_start(run_store, monkeypatch, tmp_path):
    directory = runs.create_run(TrainConfig(), run_store / "20260101-000000-cafe")
    save_checkpoint(build_model("mlp"), directory / runs.CHECKPOINT, model_name="mlp", model_options={})
    runstore._write_status(directory, status="finished")
    monkeypatch.setattr(paths, "DATA_DIR", tmp_path / "nowhere")  # raw_dir reads it at call time
    at = _page()
    assert not at.exception
    fixes = [e for e in _errors(at) if "FashionMNIST is not prepared yet" in e and "make data" in e]
    assert len(fixes) == 2  # above the form, and where the finished run's mistakes would be
    assert at.button(key="train_start").disabled
    assert not at.get("image")  # no gallery: scoring the test set needs the dataset


def test_the_recommended_preset_fills_the_form(run_store):
    at = _page()
    at.button_group[0].set_value("recommended").run()
    assert not at.exception
    assert at.selectbox(key="train_optimizer").value == "adamw"
    assert at.select_slider(key="train_lr").value == 2e-3
    assert at.selectbox(key="train_lr_schedule").value == "cosine"
    assert at.text_input(key="train_dropout").value == "0.1"


def _fake_run(store, run_id: str, final_acc: float) -> None:
    directory = runs.create_run(TrainConfig(epochs=2), store / run_id)
    runstore._write_status(directory, status="finished", best_test_acc=final_acc, epoch=2)
    rows = [
        {"kind": "batch", "epoch": 1, "step": 1, "loss": 2.3},
        {"kind": "epoch", "epoch": 1, "step": 5, "test_acc": final_acc - 0.1, "test_loss": 1.0},
        {"kind": "epoch", "epoch": 2, "step": 10, "test_acc": final_acc, "test_loss": 0.8},
    ]
    (directory / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_the_runs_table_opens_one_run_and_overlays_several(run_store):
    _fake_run(run_store, "20260101-000000-aaaa", 0.5)
    _fake_run(run_store, "20260101-000001-bbbb", 0.7)
    at = _page()
    table = at.dataframe[0]
    assert list(table.value["id"]) == ["20260101-000001-bbbb", "20260101-000000-aaaa"]
    assert list(table.value["best test acc"]) == [0.7, 0.5]  # numbers, so the column sorts as numbers
    assert "Run 20260101-000001-bbbb" in [h.value for h in at.subheader]  # the newest by default

    at.session_state[table.key] = {"selection": {"rows": [1], "columns": [], "cells": []}}
    at.run()
    assert "Run 20260101-000000-aaaa" in [h.value for h in at.subheader]

    at.session_state[table.key] = {"selection": {"rows": [0, 1], "columns": [], "cells": []}}
    at.run()
    assert not at.exception
    curves = _charts(at)["Test accuracy per epoch"]["data"]
    assert [(c["name"], c["y"]) for c in curves] == [  # nothing sets them apart but their ids
        ("20260101-000001-bbbb", [0.6, 0.7]),
        ("20260101-000000-aaaa", [0.4, 0.5]),
    ]


def test_progress_text_says_where_the_run_is():
    assert progress_text(runs.Progress(1, 5, 0, None, None, None)) == "starting the worker…"
    text = progress_text(runs.Progress(2, 5, 1500, 4690, 25_000.0, 65.4))
    assert text == "epoch 2/5 · 32% · step 1,500/4,690 · 25,000 samples/s · about 1 min 05 s left"


def test_a_run_without_a_scored_epoch_has_no_best_accuracy_in_the_runs_table(run_store):
    directory = runs.create_run(TrainConfig(epochs=2), run_store / "20260101-000000-cccc")
    runstore._write_status(directory, status="stopped", epoch=0)
    at = _page()
    assert not at.exception
    assert at.dataframe[0].value["best test acc"].isna().all()


def test_the_live_view_changes_the_learning_rate_refuses_bad_values_and_marks_the_chart(real_data, run_store):
    at = _page()
    _fill(at, epochs=50, limit_batches=3000, batch_size=16)  # long enough to still be training
    at.button(key="train_start").click().run()
    run_id = at.session_state["train_run_id"]
    try:
        assert wait_for(lambda: len(runs.read_metrics(run_id)) >= 2)
        at.run()
        field = at.text_input(key=f"train_lr_{run_id}")
        assert field.value == "0.001"  # the run's own learning rate to start from
        for bad, said in (("0", "must be a number above 0"), ("-1", "above 0"), ("fast", "is not a number"),
                          ("nan", "must be a number"), ("1e9", "at most 1e+06")):  # fmt: skip
            at.text_input(key=f"train_lr_{run_id}").input(bad)
            at.button(key="train_lr_apply").click().run()
            assert not at.exception
            assert any(said in e for e in _errors(at)), (bad, _errors(at))
            assert runs.get_run(run_id).active  # the run goes on
        at.text_input(key=f"train_lr_{run_id}").input("0.05")
        at.button(key="train_lr_apply").click().run()
        assert any("Learning rate 0.05 from the next batch on" in s.value for s in at.success)
        assert wait_for(lambda: any(r.get("kind") == "lr" for r in runs.read_metrics(run_id)), 60)
        assert wait_for(lambda: len(runs.read_metrics(run_id)) >= 6)
        at.run()
        layout = _charts(at)["Training loss per logged step"]["layout"]
        assert [a["text"] for a in layout["annotations"]] == ["lr 0.05"]
        assert layout["shapes"][0]["x0"] == next(
            r["step"] for r in runs.read_metrics(run_id) if r["kind"] == "lr"
        )
    finally:
        runs.stop(run_id)
        runs.wait(run_id, timeout=60)


def test_a_learning_rate_changed_while_training_shows_in_the_table_and_seeds_continue(real_data, run_store):
    directory = runs.create_run(TrainConfig(epochs=1, limit_batches=5), run_store / "20260101-000000-ab12")
    save_checkpoint(build_model("mlp"), directory / runs.CHECKPOINT, model_name="mlp", model_options={})
    runstore._write_status(directory, status="finished", epoch=1, step=5, lr=0.05, lr_history=[[3, 0.05]])
    at = _page(train_run_id=directory.name)
    assert not at.exception
    table = at.dataframe[0].value
    assert list(table["lr changed"]) == ["0.05 at step 3"]
    assert at.select_slider(key="train_more_lr").value == 0.05  # continuing starts from the last value


def test_a_second_start_waits_in_the_queue_shows_its_place_and_can_be_cancelled(real_data, run_store):
    first = runs.start(TrainConfig(epochs=50, limit_batches=3000, batch_size=16, device="cpu"))
    try:
        assert wait_for(lambda: runs.get_run(first).status == "running", 60)
        at = _page()
        _fill(at, epochs=1, limit_batches=3)
        at.button(key="train_start").click().run()  # the CPU is busy: the run waits its turn
        assert not at.exception and not _errors(at)
        second = at.session_state["train_run_id"]
        assert second != first and runs.get_run(second).status == "queued"
        view = live_view(at, "run")
        assert view["text"].startswith("queued: next in line for cpu (1 waiting)") and view["waiting"]
        assert live_feed.snapshot(second, have=0, log=False, charts_too=False)["text"] == view["text"]
        assert not [b for b in at.button if b.key == "train_stop"]  # nothing trains yet: no Stop, no lr
        table = at.dataframe[0].value.set_index("id")
        assert table.loc[second, "status"] == "waiting" and table.loc[first, "status"] == "training"
        assert table.loc[second, "progress"] == view["text"]
        at.button(key="train_cancel").click().run()
        assert runs.get_run(second).status == "stopped"
        assert f"Run {second}" in [h.value for h in at.subheader]  # still this session's run
        assert any(i.value == "Cancelled while waiting in the queue: it never trained." for i in at.info)
        assert not (run_store / second / "metrics.jsonl").exists()
    finally:
        runs.stop(first)
        runs.wait(first, timeout=60)
    assert not _page().exception  # a new session: the newest run, the cancelled one, shown as well
