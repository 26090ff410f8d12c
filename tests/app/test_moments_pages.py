"""Predict, then see on the Explorer, Transforms, Autograd, Optimization and Save & Load pages: each hides
what its question is about until a commit or "Just show me", judges the guess against PyTorch, and the
sidebar's switch turns the game off. (The Tensors page's moments: test_moments.py.)"""

import pytest
from streamlit.testing.v1 import AppTest

from core.data.fashion import CLASSES, PROJECT_ROOT, fashion_mnist
from core.learn import moments
from ui.learn.moment import ON
from ui.nav import PAGES


def _open(page: str) -> AppTest:
    at = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=60).run()
    at.switch_page(PAGES[page].path).run()
    assert not at.exception
    return at


def _commit(at: AppTest, moment: moments.Moment, guess: str) -> AppTest:
    key = f"moment_{moment.id}"
    if moment.kind == "choice":
        at.radio(key=f"{key}_guess").set_value(guess)
    else:
        at.text_input(key=f"{key}_guess").input(guess)
    at.button(key=f"{key}_commit").click().run()
    assert not at.exception
    return at


def _right(at: AppTest) -> list[str]:
    return [s.value for s in at.success if s.value.startswith("Right: you said")]


def _wrong(at: AppTest) -> list[str]:
    return [e.value for e in at.error if e.value.startswith("Not quite")]


def _score(at: AppTest) -> list[str]:
    return [m.value for m in at.sidebar.markdown if " right**" in m.value]


def _boxes(at: AppTest) -> list[str]:
    return sorted({b.key for b in at.button if b.key and b.key.startswith("moment_")})


def test_the_explorer_asks_for_the_last_batch_at_the_batch_size_chosen(real_data):
    at = _open("explorer")
    at.text_input(key="moment_explorer-last-batch_guess").input("64")  # 60,000 = 937 × 64 + 32
    at.button(key="moment_explorer-last-batch_commit").click().run()
    assert any("**32**" in e for e in _wrong(at))
    at.number_input(key="explorer_batch").set_value(100).run()  # divides 60,000: the last batch is whole
    _commit(at, moments.LAST_BATCH, "100")
    assert any("**100**" in s for s in _right(at))
    assert _score(at) == ["**0 of 1 right**"]  # the first committed guess counts


def test_transforms_hides_the_statistics_until_the_range_is_predicted(real_data):
    at = _open("transforms")
    assert not any("min" in list(d.value.iloc[:, 0]) for d in at.dataframe)  # the statistics wait
    _commit(at, moments.VALUE_RANGE, "0 to 255, whole numbers")
    assert any("PyTorch gives **0 to 1**" in e for e in _wrong(at))  # the tutorial's ToTensor alone
    assert any("min" in list(d.value.iloc[:, 0]) for d in at.dataframe)
    at.button(key="transforms_preset_Normalized").click().run()  # another pipeline: another question
    assert not any("min" in list(d.value.iloc[:, 0]) for d in at.dataframe)
    _commit(at, moments.VALUE_RANGE, "−1 to 1, with negatives")  # Normalize with FashionMNIST's mean, std
    assert any("PyTorch gives **another range**" in e for e in _wrong(at))


def test_transforms_asks_for_the_first_labels_one_hot_vector(real_data):
    at = _open("transforms")
    assert not any(c.value.startswith("y = ") for c in at.code)  # the printed vectors wait
    printed = next(m.value for m in at.markdown if "What does `target_transform(y)` return?" in m.value)
    label = int(printed.split("label is y = ")[1].split(" ")[0])
    _, first = fashion_mnist("train")[int(at.number_input(key="transforms_index").value)]
    assert label == first and CLASSES[label] in printed
    at.number_input(key="transforms_index").set_value(1).run()  # another first sample, another label
    _, other = fashion_mnist("train")[1]
    assert any(f"label is y = {other} " in m.value for m in at.markdown)
    at.number_input(key="transforms_index").set_value(0).run()
    question = moments.one_hot_moment(label, CLASSES[label])
    _commit(at, question, question.options[1])
    assert any(f"1. at index {label}" in s for s in _right(at))
    assert any(c.value.startswith(f"y = {label} ") for c in at.code)


def test_autograd_asks_what_requires_grad_prints_after_no_grad_and_detach(real_data):
    at = _open("autograd")
    printed = "True\nFalse"
    assert printed not in [c.value for c in at.code]
    _commit(at, moments.STOP_TRACKING, "True")
    assert any("**False**" in e for e in _wrong(at))
    assert printed in [c.value for c in at.code]
    at.segmented_control(key="ag_how").set_value("detach").run()  # the other way: asked again
    assert printed not in [c.value for c in at.code]
    at.button(key="moment_autograd-stop-tracking_show").click().run()
    assert printed in [c.value for c in at.code]
    assert any("The answer: **False**" in i.value for i in at.info)


def test_optimization_asks_before_its_two_experiments(real_data, run_store):
    at = _open("optimization")
    assert not any("What happened" in m.value for m in at.markdown)
    _commit(at, moments.GRAD_RATIO, "2")
    assert any(s.startswith("Right: you said 2,") for s in _right(at))
    assert any("What happened" in m.value for m in at.markdown)
    assert not any("SGD on one batch" in str(c.proto.spec) for c in at.get("plotly_chart"))
    _commit(at, moments.BIG_RATE, "below where it started")  # lr 3 from the page's 0.001: it climbs
    assert any("**above where it started, or blown up**" in e for e in _wrong(at))
    assert _score(at) == ["**1 of 2 right**"]


def test_save_load_asks_about_train_mode_and_the_whole_model(real_data):
    at = _open("save_load")
    assert at.selectbox(key="save_load_model").value == "untrained:mlp"
    _commit(at, moments.TRAIN_CALLS, "different")  # the MLP has no Dropout, no BatchNorm
    assert any("**the same, to the last digit**" in e for e in _wrong(at))
    at.selectbox(key="save_load_model").set_value("untrained:cnn").run()
    _commit(at, moments.TRAIN_CALLS, "different")
    assert any("**different**" in s for s in _right(at))
    assert not any(c.value.startswith("Weights only load failed") for c in at.code)
    _commit(at, moments.WHOLE_LOAD, "refuses it: an error")
    assert any("**refuses it: an error**" in s for s in _right(at))
    assert any(c.value.startswith("Weights only load failed") for c in at.code)  # PyTorch's words, now


@pytest.mark.parametrize("page", ["transforms", "save_load"])
def test_the_sidebar_switch_shows_every_answer_at_once(real_data, page):
    at = _open(page)
    assert _boxes(at)
    assert at.toggle(key=ON).value is True
    at.toggle(key=ON).set_value(False).run()
    assert not _boxes(at) and not at.exception
    at.switch_page(PAGES["explorer"].path).run()  # and on every page after
    assert not _boxes(at) and at.toggle(key=ON).value is False


def test_each_learn_page_opens_with_its_goal_and_a_task(real_data):
    at = _open("save_load")
    (goal,) = [m.value for m in at.markdown if "**Goal:**" in m.value]
    assert PAGES["save_load"].goal in goal and PAGES["save_load"].task in goal
    assert all(info.goal and info.task for info in PAGES.values() if info.section == "Learn the basics")
