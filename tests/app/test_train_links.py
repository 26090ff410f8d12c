"""The Train page's state in its URL (ui.link): the form's settings, the run shown, the gallery's classes."""

import json

from streamlit.testing.v1 import AppTest

from core import runs
from core.data.fashion import CLASSES, PROJECT_ROOT
from core.model.checkpoint import save_checkpoint
from core.model.networks import build_model
from core.runs import store as runstore
from core.training.config import TrainConfig

PAGE = str(PROJECT_ROOT / "pages" / "Train.py")


def _page(**query) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60)
    for name, value in query.items():
        at.query_params[name] = value
    return at.run()


def _finished(store, run_id: str) -> None:
    directory = runs.create_run(TrainConfig(epochs=1), store / run_id)
    save_checkpoint(build_model("mlp"), directory / runs.CHECKPOINT, model_name="mlp", model_options={})
    runstore._write_status(directory, status="finished", epoch=1)
    row = {"kind": "epoch", "epoch": 1, "step": 5, "test_acc": 0.1, "test_loss": 2.3}
    (directory / "metrics.jsonl").write_text(json.dumps(row) + "\n")


def test_a_link_fills_the_form_and_starts_nothing(run_store):
    at = _page(epochs="3", opt="adamw", lr="0.002", cap="20", flip="0.5", hidden="5000000")
    assert not at.exception
    assert at.text_input(key="train_epochs").value == "3"
    assert at.text_input(key="train_limit_batches").value == "20"
    assert at.selectbox(key="train_optimizer").value == "adamw"
    assert at.select_slider(key="train_lr").value == 0.002
    assert at.slider(key="train_aug_hflip").value == 0.5
    assert at.text_input(key="train_hidden").value == ""  # refused, and said so
    assert any("From the link: Hidden units must be a whole number" in c.value for c in at.caption)
    assert runs.list_runs() == []  # a link never starts a run


def _advanced_open(at: AppTest) -> bool:
    (section,) = [e for e in at.expander if e.label == "Advanced"]
    return section.proto.expanded


def test_advanced_opens_when_the_link_sets_a_field_there_and_stays_shut_for_the_main_knobs(run_store):
    main = _page(epochs="3", opt="adamw", lr="0.002", batch="128", model="cnn")
    assert not main.exception and main.text_input(key="train_epochs").value == "3"
    assert not _advanced_open(main)
    for query in ({"seed": "7"}, {"cap": "20"}, {"schedule": "cosine"}, {"device": "cpu"}):
        at = _page(epochs="3", **query)
        assert not at.exception and _advanced_open(at), query
    tutorials = _page(seed="0", log="50")  # the tutorial's own values: nothing to show there
    assert not _advanced_open(tutorials)


def test_the_forms_settings_go_into_the_url_leaving_the_tutorials_out(run_store):
    at = _page()
    at.text_input(key="train_epochs").input("7")
    at.text_input(key="train_limit_batches").input("")
    at.selectbox(key="train_optimizer").set_value("adam").run()
    assert at.query_params["epochs"] == "7" and at.query_params["opt"] == "adam"
    assert "cap" not in at.query_params and "lr" not in at.query_params  # the tutorial's: left out


def test_the_run_shown_and_the_true_class_filter_survive_a_page_switch_and_a_link(real_data, run_store):
    _finished(run_store, "20260101-000000-aaaa")
    _finished(run_store, "20260101-000001-bbbb")
    at = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=60).run()  # pages are registered
    at.query_params["run"] = "20260101-000000-aaaa"
    at.switch_page(PAGE).run()
    assert "Run 20260101-000000-aaaa" in [h.value for h in at.subheader]  # not the newest: the linked one
    at.selectbox(key="train_cell_true").set_value(CLASSES.index("Shirt")).run()
    assert at.query_params["true"] == "Shirt" and at.query_params["run"] == "20260101-000000-aaaa"
    at.switch_page(str(PROJECT_ROOT / "pages" / "Tensors.py")).run()
    at.run()  # a second run there: Streamlit drops the state of widgets the last run did not draw
    at.query_params.clear()  # as in the browser, where a page link leaves the old page's query behind
    at.switch_page(PAGE).run()
    assert not at.exception
    assert "Run 20260101-000000-aaaa" in [h.value for h in at.subheader]
    assert at.selectbox(key="train_cell_true").value == CLASSES.index("Shirt")

    shared = _page(run="20260101-000000-aaaa", true="Shirt", predicted="Coat")
    assert "Run 20260101-000000-aaaa" in [h.value for h in shared.subheader]
    assert shared.selectbox(key="train_cell_true").value == CLASSES.index("Shirt")
    assert shared.selectbox(key="train_cell_pred").value == CLASSES.index("Coat")


def test_a_link_to_a_run_that_is_not_here_says_so_and_shows_another(real_data, run_store):
    _finished(run_store, "20260101-000001-bbbb")
    at = _page(run="20260101-000000-dead")  # a run id of the right shape, deleted or from elsewhere
    assert not at.exception
    assert any(
        c.value.endswith("There is no run 20260101-000000-dead in this run store (deleted, or made on "
                         "another machine), so another run is shown.")
        for c in at.caption
    ), [c.value for c in at.caption]  # fmt: skip
    assert "Run 20260101-000001-bbbb" in [h.value for h in at.subheader]
    at.run()  # said once: the run shown is now the one in the URL
    assert not any("There is no run" in c.value for c in at.caption)
    assert at.query_params["run"] == "20260101-000001-bbbb"


def test_a_link_to_an_optimizer_race_offers_the_optimization_page_where_it_is_shown(real_data, run_store):
    from core.training.race import READY, RaceConfig
    from ui.learn.race import RACE_KEY

    race_id = "20260101-000002-cccc"
    for steps, run_id in ((5, race_id), (6, "20260101-000003-dddd")):  # the second is the newer race
        race = runs.create_run(RaceConfig(READY["Optimizers"], steps=steps), run_store / run_id)
        runstore._write_status(race, status="finished")
    _finished(run_store, "20260101-000001-bbbb")
    at = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=60).run()  # pages are registered
    at.query_params["run"] = race_id
    at.switch_page(PAGE).run()
    assert not at.exception
    (notice,) = [i.value for i in at.info if race_id in i.value]
    said = f"{race_id} is an optimizer race: the Optimization page shows it, under 4. Optimizer races."
    assert notice.endswith(said)
    (opener,) = [p for p in at.main.get("page_link") if p.proto.label == "Open the race"]
    assert opener.proto.page == "Optimization"
    at.switch_page(str(PROJECT_ROOT / "pages" / "Optimization.py")).run()  # the link, as AppTest follows it
    assert not at.exception
    assert at.session_state[RACE_KEY] == race_id
    assert at.selectbox(key="race_pick").value == race_id  # the linked race, not the newest one
