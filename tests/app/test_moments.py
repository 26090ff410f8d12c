"""Predict, then see (ui.learn.moment) on the Tensors page: commit a guess, get a verdict, a score."""

import pytest
from streamlit.testing.v1 import AppTest

from core.data.fashion import PROJECT_ROOT
from core.learn import moments
from core.learn import tensors as tn

JOIN = "moment_tensors-join"
NUMPY = "moment_tensors-numpy"


@pytest.fixture
def at(real_data) -> AppTest:
    return (
        AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=60)
        .run()
        .switch_page("pages/Tensors.py")
        .run()
    )


def _codes(at: AppTest) -> list[str]:
    return [c.value for c in at.code]


def _score(at: AppTest) -> list[str]:
    return [m.value for m in at.sidebar.markdown if " right**" in m.value]


def test_the_join_output_waits_for_a_prediction_and_a_wrong_one_is_told_so(at):
    snippet = tn.joining("cat", 0, 3)
    assert snippet.code.rstrip("\n") in _codes(at)
    assert snippet.output.rstrip("\n") not in _codes(at)  # hidden until predicted
    assert not _score(at)
    at.text_input(key=f"{JOIN}_guess").input("2, 9")  # cat along dim 0 adds rows: (6, 3)
    at.button(key=f"{JOIN}_commit").click().run()
    assert not at.exception
    assert snippet.output.rstrip("\n") in _codes(at)  # revealed
    (verdict,) = [e.value for e in at.error if "Not quite" in e.value]
    assert "you said 2\\, 9" in verdict and "**(6, 3)**" in verdict  # what was typed, as text
    assert _score(at) == ["**0 of 1 right**"]
    assert any("Missed: What shape will `joined` have?" in p.proto.label for p in at.sidebar.get("page_link"))


def test_the_answer_follows_the_controls_and_a_right_guess_counts(at):
    at.selectbox(key="tensors_join_dim_cat").set_value(1).run()
    at.slider(key="tensors_join_count").set_value(4).run()
    answer = moments.join_shape("cat", 1, 4)
    assert answer == (2, 12)
    at.text_input(key=f"{JOIN}_guess").input("(2, 12)")
    at.button(key=f"{JOIN}_commit").click().run()
    assert any(s.value.startswith("Right: you said") and "**(2, 12)**" in s.value for s in at.success)
    assert tn.joining("cat", 1, 4).output.rstrip("\n") in _codes(at)
    assert _score(at) == ["**1 of 1 right**"]
    at.slider(key="tensors_join_count").set_value(2).run()  # another question of the same moment
    assert tn.joining("cat", 1, 4).output.rstrip("\n") not in _codes(at)
    at.text_input(key=f"{JOIN}_guess").input("7, 7")
    at.button(key=f"{JOIN}_commit").click().run()
    assert any("Not quite" in e.value and "**(2, 6)**" in e.value for e in at.error)
    assert _score(at) == ["**1 of 1 right**"]  # the moment's first committed guess is the one that counts


def test_just_show_me_reveals_without_counting_and_nonsense_is_refused(at):
    at.text_input(key=f"{JOIN}_guess").input("six by three")
    at.button(key=f"{JOIN}_commit").click().run()
    assert any("is not a shape" in w.value and "nothing was counted" in w.value for w in at.warning)
    assert tn.joining("cat", 0, 3).output.rstrip("\n") not in _codes(at)
    at.button(key=f"{JOIN}_show").click().run()
    assert tn.joining("cat", 0, 3).output.rstrip("\n") in _codes(at)
    assert any("The answer: **(6, 3)**" in i.value for i in at.info)
    at.radio(key=f"{NUMPY}_guess").set_value("the added values, like t")
    at.button(key=f"{NUMPY}_commit").click().run()
    assert any(s.value.startswith("Right: you said the added values") for s in at.success)
    assert tn.numpy_bridge(5, 1.0).output.rstrip("\n") in _codes(at)
    assert _score(at) == ["**1 of 1 right**"]  # the join was only shown
    assert not at.exception


def test_a_learn_page_opened_is_ticked_in_the_navigation_and_ends_with_next(at):
    from ui.nav import PAGES, VISITED

    assert PAGES["tensors"].path in at.session_state[VISITED]
    assert PAGES["explorer"].path not in at.session_state[VISITED]
    (following,) = [p for p in at.main.get("page_link") if p.proto.label.startswith("Next: ")]
    assert following.proto.label == "Next: Dataset Explorer" and following.proto.page == "Dataset_Explorer"


def test_the_explorers_batches_per_epoch_follow_the_batch_size(real_data):
    at = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=60).run()
    at.switch_page("pages/Dataset_Explorer.py").run()
    at.number_input(key="explorer_batch").set_value(100).run()
    key = "moment_explorer-batches"
    at.text_input(key=f"{key}_guess").input("600")  # 60,000 training images, 100 a batch
    at.button(key=f"{key}_commit").click().run()
    assert any(s.value.startswith("Right: you said 600") for s in at.success)
    at.number_input(key="explorer_batch").set_value(64).run()  # a new question: 937 full batches and one
    at.text_input(key=f"{key}_guess").input("937")
    at.button(key=f"{key}_commit").click().run()
    assert any("Not quite" in e.value and "**938**" in e.value for e in at.error)
    assert not at.exception
