"""The Train page on a shared server (STUDIO_SHARED=1): a learner's own run has its controls, another
learner's is there to watch, with none; the runs table says whose each run is and can show "Mine"; a
prediction committed on a Learn page is counted for the teacher, without a name."""

import pytest
from streamlit.testing.v1 import AppTest

from core import runs
from core.base.errors import RunError
from core.data.fashion import PROJECT_ROOT
from core.runs import classroom
from core.training.config import TrainConfig
from tests.conftest import wait_for
from ui import learners

PAGE = str(PROJECT_ROOT / "pages" / "Train.py")
LONG = TrainConfig(epochs=50, limit_batches=3000, batch_size=16, device="cpu")


@pytest.fixture(autouse=True)
def shared(monkeypatch):
    monkeypatch.setenv("STUDIO_SHARED", "1")


def _buttons(at: AppTest) -> set[str]:
    return {b.key for b in at.button if b.key}


def test_another_learners_run_is_watched_not_controlled(real_data, run_store):
    theirs = runs.start(LONG, owner=learners.owner_id("someone else"), owner_name="Ada *bold*")
    try:
        assert wait_for(lambda: runs.get_run(theirs).status == "running", 60)
        at = AppTest.from_file(PAGE, default_timeout=60)
        at.query_params["run"] = theirs  # a crafted link to Ada's run
        at.run()
        assert not at.exception
        assert "train_stop" not in _buttons(at) and "train_lr_apply" not in _buttons(at)
        assert not [t for t in at.text_input if t.key == f"train_name_{theirs}"]  # no renaming either
        assert any(r"Ada \*bold\*'s run: watch it and learn" in c.value for c in at.caption)  # as text
        assert list(at.dataframe[0].value["learner"]) == ["Ada *bold*"]
        at.segmented_control(key=learners.MINE_KEY).set_value(learners.MINE).run()
        assert not any("learner" in d.value.columns for d in at.dataframe)  # none of this browser's
        with pytest.raises(RunError, match="is Ada"):
            runs.stop(theirs, by=learners.owner_id("a forged session"))
        assert runs.get_run(theirs).status == "running"
    finally:
        runs.stop(theirs)
        runs.wait(theirs, timeout=60)


def test_a_learners_own_run_has_its_controls_and_records_its_owner(real_data, run_store):
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    at.text_input(key="train_epochs").input("50")
    at.text_input(key="train_limit_batches").input("3000")
    at.selectbox(key="train_device").set_value("cpu")
    at.button(key="train_start").click().run()
    run_id = at.session_state["train_run_id"]
    try:
        run = runs.get_run(run_id)
        assert run.owner and run.owner_name.startswith("learner ")  # no name given yet: a short one
        assert wait_for(lambda: runs.get_run(run_id).status == "running", 60)
        at.run()
        assert "train_stop" in _buttons(at)
        at.button(key="train_stop").click().run()
        assert runs.wait(run_id, timeout=60).status == "stopped"
    finally:
        runs.stop(run_id)
        runs.wait(run_id, timeout=60)


def test_a_prediction_is_counted_for_the_teacher_without_a_name(real_data, run_store):
    at = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=60).run()
    at.switch_page("pages/Tensors.py").run()
    at.text_input(key="moment_tensors-join_guess").input("6, 3")
    at.button(key="moment_tensors-join_commit").click().run()
    (count,) = classroom.answer_counts()
    assert (count["moment"], count["answered"], count["right"]) == ("tensors-join", 1, 1)
    assert "Your name" in [t.label for t in at.sidebar.text_input]
    assert not any("teacher's view" in e.proto.label for e in at.get("expander"))
